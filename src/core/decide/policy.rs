//! The policy: pure decisions. Given the seed and a rule, or a replayed log, and a call's syscall, call index and
//! the rule's counts so far, says whether to inject and what: which errno, or how short a partial transfer. No state changes here: the counts live in
//! the ledger, the on/off in the switch.
//!
//! Every roll is a pure function of (seed, rule index, syscall number, [`Key`]) through a stateless hash, not one
//! global random stream. The key is the calling thread's key (its lineage, docs/formats.md "Thread keys") and the
//! thread's own index of the call, so thread interleaving cannot move a decision to another call; a caller that
//! knows no thread key (tests, the fuzzer) gets the per-syscall index over the whole tree, as before. The window and
//! `max` are phoebe-common's [`decide`](phoebe_common::decide) functions, which the eBPF injector runs too.

use std::collections::HashMap;

use phoebe_common::{decide, inject::UNLIMITED};

use crate::model::{Effect, Errno, FaultSpec, InjectionLog, Syscall, When};

/// An injection a replayed log prescribes: what it does (`Effect::Run`: a latency fault's delay alone), side, rule.
pub type Planned = (Effect, When, usize);

/// What identifies a call for a roll or a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The call's index among all calls of its syscall by the whole process tree.
    pub index: u64,
    /// The hash of the calling thread's key ([`thread_hash`]) and the thread's own index of calls of this syscall;
    /// `None` where the caller knows no thread key.
    pub thread: Option<(u64, u64)>,
}

/// A thread key's hash: FNV-1a over its bytes, then mixed. Written out (not std's hasher) because it feeds the
/// decisions, which must stay stable across releases.
pub fn thread_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// How calls are decided.
#[derive(Debug)]
pub enum Policy {
    /// Seeded rolls against each rule's probability, window, `max` and weights.
    Rules { seed: u64 },
    /// Exactly the injections of an earlier log, at the same call indices, and nothing else.
    Replay(Replay),
}

/// What a replayed log prescribes.
#[derive(Debug, Default)]
pub struct Replay {
    /// What to inject at each (syscall, thread key hash, call index): the thread's own index when the log has
    /// thread keys (the hash is then `Some`), otherwise the index over the tree (an older log).
    planned: HashMap<(Syscall, Option<u64>, u64), Planned>,
    /// The log keys its injections by thread.
    by_thread: bool,
    /// Syscalls the replayed run failed in the kernel on every call (no indices were logged), with the errno and
    /// the rule.
    in_kernel: HashMap<Syscall, (Errno, usize)>,
}

impl Replay {
    /// The injections of `log`.
    pub fn of(log: &InjectionLog) -> Self {
        let mut replay = Replay {
            by_thread: log.injections.iter().any(|i| i.thread.is_some()),
            ..Replay::default()
        };
        for inj in &log.injections {
            let key = match (&inj.thread, inj.thread_index) {
                (Some(thread), Some(index)) if replay.by_thread => (Some(thread_hash(thread)), index),
                _ => (None, inj.index),
            };
            replay
                .planned
                .insert((inj.syscall, key.0, key.1), (inj.effect, inj.when, inj.rule));
        }
        for (id, rule) in log.rules.iter().enumerate() {
            for sc in &rule.in_kernel {
                if let Some(&(errno, _)) = rule.fault.errnos.first() {
                    replay.in_kernel.insert(*sc, (errno, id));
                }
            }
        }
        replay
    }

    /// The syscalls the log injected into.
    pub fn syscalls(&self) -> impl Iterator<Item = Syscall> + '_ {
        self.planned.keys().map(|(sc, _, _)| *sc)
    }

    /// Does the log key its injections by thread (a log made before thread keys does not)?
    pub fn by_thread(&self) -> bool {
        self.by_thread
    }

    /// What to inject at the call of `syscall` with this key: matched by thread key and the thread's own index
    /// when the log has them, otherwise by the index over the tree.
    pub fn at(&self, syscall: Syscall, key: Key) -> Option<Planned> {
        let slot = match key.thread {
            Some((thread, index)) if self.by_thread => (Some(thread), index),
            // A log with thread keys, replayed where the thread is unknown: nothing to match.
            None if self.by_thread => (Some(0), 0),
            _ => (None, key.index),
        };
        self.planned.get(&(syscall, slot.0, slot.1)).copied().or_else(|| {
            // The replayed run failed every call of this syscall in the kernel, without logging indices.
            let &(errno, rule) = self.in_kernel.get(&syscall)?;
            Some((Effect::Errno(errno), When::Entry, rule))
        })
    }
}

impl Policy {
    /// Does rule `id` (`fault`) inject at the call of `syscall` with `key`, the rule's `matched`-th match, after
    /// `injected` injections, and what (`Effect::Run`: a latency fault chose the call, which is held and then
    /// runs)? Always `None` in a replay: the log decides, not the rules. The window and `max` count the rule's
    /// matches and injections over the whole tree; the roll uses the key. `count` is the call's byte count (`None`
    /// when unknown): a partial-transfer rule (`short=`) injects only into a call that asked for more than it lets
    /// through.
    pub fn rule_injects(
        &self,
        id: usize,
        fault: &FaultSpec,
        syscall: Syscall,
        key: Key,
        (matched, injected): (u64, u64),
        count: Option<u64>,
    ) -> Option<Effect> {
        let Policy::Rules { seed } = *self else {
            return None;
        };
        if !fault.window.contains(matched) || !decide::under_max(injected, fault.max.unwrap_or(UNLIMITED)) {
            return None;
        }
        let nr = syscall.number().into();
        let roll = |salt| match key.thread {
            Some((thread, index)) => unit_threaded(seed, id as u64, nr, thread, index, salt),
            None => unit(seed, id as u64, nr, key.index, salt),
        };
        if roll(0) >= fault.probability {
            return None;
        }
        match fault.short {
            Some(short) => short.shorten(count?).map(Effect::Short),
            None if fault.is_delay_only() => Some(Effect::Run),
            None => Some(Effect::Errno(pick_errno(&fault.errnos, roll(1)))),
        }
    }

    /// The errno a filter may return by itself for every call of `syscall`, whose only rule is `id` (`fault`):
    /// when that rule fails every call with one errno, or, in a replay, when the replayed run did exactly that in
    /// the kernel.
    pub fn unconditional_errno(&self, syscall: Syscall, id: usize, fault: &FaultSpec) -> Option<Errno> {
        match self {
            Policy::Rules { .. } => fault.is_unconditional().then(|| fault.errnos[0].0),
            Policy::Replay(replay) => replay
                .in_kernel
                .get(&syscall)
                .filter(|(_, rule)| *rule == id)
                .map(|(errno, _)| *errno),
        }
    }
}

/// Picks an errno by weight with `u` uniform in [0, 1).
fn pick_errno(errnos: &[(Errno, f64)], u: f64) -> Errno {
    let total: f64 = errnos.iter().map(|(_, w)| w).sum();
    let mut target = u * total;
    for (errno, weight) in errnos {
        if target < *weight {
            return *errno;
        }
        target -= weight;
    }
    errnos
        .last()
        .expect("the parser requires at least one errno in every rule but short= ones and latency faults, which pick none")
        .0
}

/// A uniform number in [0, 1) from the decision's key.
fn unit(seed: u64, rule: u64, syscall: u64, index: u64, salt: u64) -> f64 {
    let mut h = mix(seed ^ 0x7068_6f65_6265_0001);
    for part in [rule, syscall, index, salt] {
        h = mix(h ^ part);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A uniform number in [0, 1) from a threaded key: the thread key's hash and the thread's own call index.
fn unit_threaded(seed: u64, rule: u64, syscall: u64, thread: u64, index: u64, salt: u64) -> f64 {
    let mut h = mix(seed ^ 0x7068_6f65_6265_0002);
    for part in [rule, syscall, thread, index, salt] {
        h = mix(h ^ part);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64's finalizer: a stateless 64-bit mixer. Written out because the decision function must stay
/// bit-for-bit stable across releases and toolchains (std's hashers promise no such thing), and six lines do it.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixer_is_stable() {
        // Pinned: changing the decision function would silently change every seeded run.
        assert_eq!(mix(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(unit(7, 0, 257, 1, 0).to_bits(), unit(7, 0, 257, 1, 0).to_bits());
        // Pinned too: thread keys feed the rolls and the replay.
        assert_eq!(thread_hash("0.1"), thread_hash("0.1"));
        assert_ne!(thread_hash("0.1"), thread_hash("0.2"));
        assert_ne!(thread_hash("0.1.1"), thread_hash("0.11"));
    }
}
