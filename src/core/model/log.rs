//! `InjectionLog`: every injection a run made, enough to replay it exactly (DESIGN §5).
//!
//! Owns the data only; the decisions are made by `crate::decide`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    TargetExit, Usage,
    fault::{FaultSpec, When},
    names::{Errno, Syscall},
    shape::Shape,
};

/// Who drew a run's injection decisions, which says what its seed means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draws {
    /// phoebe's policy, from the seed (or the log it replays): the same seed decides the same way again.
    Seeded,
    /// The kernel, with its own random numbers: the seed decided nothing (the log's call indices replay).
    InKernel,
}

/// The injections of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectionLog {
    pub version: u32,
    pub command: Vec<String>,
    pub backend: String,
    /// The seed the decisions derived from (pass it to `--seed` to decide the same way again).
    pub seed: u64,
    /// True when this run replayed another log instead of rolling.
    #[serde(default)]
    pub replayed: bool,
    /// The rules in order, with how often each matched and injected.
    pub rules: Vec<RuleStats>,
    /// Every injection, in the order phoebe made them — the first `truncated_after` only, when that is set.
    pub injections: Vec<Injection>,
    /// `Some(n)`: the log stopped after its first `n` injections (`decide::ledger::MAX_LOGGED`); the rules'
    /// counters still count every one. Such a log cannot be replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_after: Option<u64>,
    pub exit: Option<TargetExit>,
    #[serde(default)]
    pub interrupted: bool,
    /// CPU time and peak memory of the target's process tree, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl InjectionLog {
    /// Why this log cannot be replayed (truncated, no rules, an injection naming a rule the log does not have, a call index
    /// of 0), or `None`: a replay must inject exactly what the log says, and its summary must add up.
    pub fn replay_problem(&self) -> Option<String> {
        if let Some(n) = self.truncated_after {
            let total: u64 = self.rules.iter().map(|r| r.injected).sum();
            return Some(format!(
                "it was truncated after {n} entries (of {total} injections), so a replay could not inject what \
                 came after them"
            ));
        }
        if self.rules.is_empty() {
            return Some("it has no rules, so there is nothing to replay".into());
        }
        self.injections.iter().enumerate().find_map(|(i, inj)| {
            if inj.rule >= self.rules.len() {
                Some(format!(
                    "injection {} names rule {}, but the log has {} rule(s) (rules are numbered from 0)",
                    i + 1,
                    inj.rule,
                    self.rules.len()
                ))
            } else if inj.index == 0 {
                Some(format!(
                    "injection {} has call index 0 (call indices start at 1)",
                    i + 1
                ))
            } else {
                None
            }
        })
    }
}

/// One rule's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    pub fault: FaultSpec,
    /// Calls the rule matched (its syscalls, and its path when it has one), eligible or not.
    pub matched: u64,
    /// Calls it injected.
    pub injected: u64,
    /// Its syscalls that a seccomp filter failed in the kernel (`SECCOMP_RET_ERRNO`) on every call: those calls
    /// are in neither counter nor in `injections`, because nothing outside the kernel saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_kernel: Vec<Syscall>,
    /// Matched calls phoebe let run that failed by themselves with one of the rule's errnos. Absent where the
    /// backend does not see the result of a call it lets run (seccomp, eBPF): the achieved rate then counts
    /// injections only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub natural: Option<u64>,
    /// Calls of the rule's syscall, path and shape that one of its guards (`caught=`, `peer=`, `edge=`) kept out,
    /// by what the call had (`edge=yes`: the first guard it failed): why a rule whose calls the program made
    /// matched none of them. Not in `matched`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guarded: BTreeMap<String, u64>,
}

impl RuleStats {
    /// Injected / matched, or `None` before any call matched; 1 when a filter failed every call in the kernel and
    /// no call was counted.
    pub fn achieved_rate(&self) -> Option<f64> {
        if self.matched == 0 && !self.in_kernel.is_empty() {
            return Some(1.0);
        }
        (self.matched > 0).then(|| self.injected as f64 / self.matched as f64)
    }

    /// (Injected + natural failures) / matched: the total failure rate of the matched calls, on the same footing
    /// as a model's target rate; `None` where the natural failures are unknown ([`RuleStats::natural`]) or before
    /// any call matched.
    pub fn achieved_total_rate(&self) -> Option<f64> {
        let natural = self.natural?;
        (self.matched > 0).then(|| self.injected.saturating_add(natural) as f64 / self.matched as f64)
    }
}

/// What an injection did to its call. In a log it is one field of the injection, or none: `"errno": "EIO"`,
/// `"short": 1`, or (a latency fault, [`Effect::Run`]) no field, beside the entry's `delay_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "EffectFields", try_from = "EffectFields")]
pub enum Effect {
    /// The call failed with this errno.
    Errno(Errno),
    /// A partial transfer (`short=`): the call ran with this byte count instead of the larger one it asked for, and
    /// returned what it transferred.
    Short(u64),
    /// A latency fault (`delay=` alone): the call was held for the decision's delay, then ran for real.
    Run,
}

impl Effect {
    /// The errno, for an injection that failed its call.
    pub fn errno(self) -> Option<Errno> {
        match self {
            Effect::Errno(e) => Some(e),
            Effect::Short(_) | Effect::Run => None,
        }
    }
}

impl std::fmt::Display for Effect {
    /// `ENOENT`, `short=1`, or `run` (a latency fault's call, which ran after its delay).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Errno(e) => write!(f, "{e}"),
            Effect::Short(n) => write!(f, "short={n}"),
            Effect::Run => f.write_str("run"),
        }
    }
}

/// [`Effect`] as the fields of a log entry: at most one of `errno` and `short`; neither is [`Effect::Run`].
#[derive(Serialize, Deserialize)]
struct EffectFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    errno: Option<Errno>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    short: Option<u64>,
}

impl From<Effect> for EffectFields {
    fn from(effect: Effect) -> EffectFields {
        match effect {
            Effect::Errno(e) => EffectFields {
                errno: Some(e),
                short: None,
            },
            Effect::Short(n) => EffectFields {
                errno: None,
                short: Some(n),
            },
            Effect::Run => EffectFields {
                errno: None,
                short: None,
            },
        }
    }
}

impl TryFrom<EffectFields> for Effect {
    type Error = &'static str;

    fn try_from(fields: EffectFields) -> Result<Effect, Self::Error> {
        match (fields.errno, fields.short) {
            (Some(e), None) => Ok(Effect::Errno(e)),
            (None, Some(n)) => Ok(Effect::Short(n)),
            (None, None) => Ok(Effect::Run),
            (Some(_), Some(_)) => Err("an injection has an errno or a short count, not both"),
        }
    }
}

/// One injected call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// Nanoseconds since the target's exec.
    pub t_ns: u64,
    pub pid: i32,
    pub tid: i32,
    pub syscall: Syscall,
    /// 1-based index of this call among all calls of `syscall` in the target's process tree.
    pub index: u64,
    /// The thread's key: its thread path, e.g. `0.2.1` (the first task created by the second task the target's main
    /// thread created; docs/formats.md "Thread keys"). Absent in logs older than thread keys and on eBPF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// 1-based index of this call among the calls of `syscall` made by `thread`: with `thread`, the replay key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_index: Option<u64>,
    /// What was done to the call: `"errno": "EIO"`, `"short": 1` for a partial transfer, or neither for a latency
    /// fault (`read:delay=50ms`), whose call was held for `delay_ns` and then ran for real.
    #[serde(flatten)]
    pub effect: Effect,
    /// How long the call was held before its effect (or, for a latency fault, before it ran), in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ns: Option<u64>,
    /// Index into `rules` of the rule that injected.
    pub rule: usize,
    pub when: When,
    /// The call's shape (DESIGN §6), e.g. `op=FUTEX_WAIT_PRIVATE:timeout=no`; absent where the backend cannot
    /// compute it (eBPF) and in logs older than shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// The decoded path the call was about (its path argument, or the file its descriptor refers to), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The signal raised in the calling thread with the errno, as the kernel raises it (13, SIGPIPE, with a
    /// write's EPIPE); absent when none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// An EINTR's only possible causes: the signals the process caught as the call started whose handler
    /// would have interrupted it (for a call the kernel restarts, installed without `SA_RESTART`), by name
    /// (`["SIGHUP", "SIGINT", "SIGTERM"]`); empty when no handler would have — an EINTR the kernel never returns
    /// there. Absent for another effect, a call no signal interrupts, or where the backend cannot tell (eBPF, a
    /// handler not seen installed). A maintainer reading the finding knows which handler must return for it to
    /// happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One decision type, three log shapes: `"errno"`, `"short"`, or neither (a latency fault's call, with only
    /// its `delay_ns`); an entry with both is refused.
    #[test]
    fn an_effect_is_one_field_of_a_log_entry_or_none() {
        let eio = Effect::Errno(Errno::parse("EIO").unwrap());
        for (effect, json) in [
            (eio, r#"{"errno":"EIO"}"#),
            (Effect::Short(3), r#"{"short":3}"#),
            (Effect::Run, "{}"),
        ] {
            assert_eq!(serde_json::to_string(&effect).unwrap(), json);
            assert_eq!(serde_json::from_str::<Effect>(json).unwrap(), effect);
        }
        assert!(serde_json::from_str::<Effect>(r#"{"errno":"EIO","short":3}"#).is_err());
        assert_eq!(
            [eio.errno(), Effect::Short(3).errno(), Effect::Run.errno()],
            [Some(Errno::parse("EIO").unwrap()), None, None]
        );
    }
}
