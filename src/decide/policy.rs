//! The policy: pure decisions. Given the seed and a rule, or a replayed log, and a call's syscall, call index and
//! the rule's counts so far, says whether to inject and which errno. No state changes here: the counts live in
//! the ledger, the on/off in the switch.
//!
//! Every roll is a pure function of (seed, rule index, syscall number, per-syscall call index) through a stateless
//! hash, not one global random stream, so thread scheduling cannot reshuffle unrelated decisions. The window and
//! `max` are phoebe-common's [`decide`](phoebe_common::decide) functions, which the eBPF injector runs too.

use std::collections::HashMap;

use phoebe_common::{decide, inject::UNLIMITED};

use crate::model::{Errno, FaultSpec, InjectionLog, Syscall, When};

/// An injection a replayed log prescribes: errno, side, rule.
pub type Planned = (Errno, When, usize);

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
    /// What to inject at each (syscall, call index).
    planned: HashMap<(Syscall, u64), Planned>,
    /// Syscalls the replayed run failed in the kernel on every call (no indices were logged), with the errno and
    /// the rule.
    in_kernel: HashMap<Syscall, (Errno, usize)>,
}

impl Replay {
    /// The injections of `log`.
    pub fn of(log: &InjectionLog) -> Self {
        let mut replay = Replay::default();
        for inj in &log.injections {
            replay
                .planned
                .insert((inj.syscall, inj.index), (inj.errno, inj.when, inj.rule));
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
        self.planned.keys().map(|(sc, _)| *sc)
    }

    /// What to inject at the `index`-th call of `syscall`.
    pub fn at(&self, syscall: Syscall, index: u64) -> Option<Planned> {
        self.planned.get(&(syscall, index)).copied().or_else(|| {
            // The replayed run failed every call of this syscall in the kernel, without logging indices.
            let &(errno, rule) = self.in_kernel.get(&syscall)?;
            Some((errno, When::Entry, rule))
        })
    }
}

impl Policy {
    /// Does rule `id` (`fault`) inject at the `index`-th call of `syscall`, the rule's `matched`-th match, after
    /// `injected` injections? Always `None` in a replay: the log decides, not the rules.
    pub fn rule_injects(
        &self,
        id: usize,
        fault: &FaultSpec,
        syscall: Syscall,
        index: u64,
        (matched, injected): (u64, u64),
    ) -> Option<Errno> {
        let Policy::Rules { seed } = *self else {
            return None;
        };
        // A partial-transfer rule (`short=`) has no errno to inject: every backend refuses it before a run
        // (`backend::refuse_short`), so it never decides here.
        if fault.short.is_some()
            || !fault.window.contains(matched)
            || !decide::under_max(injected, fault.max.unwrap_or(UNLIMITED))
        {
            return None;
        }
        let nr = syscall.number().into();
        if unit(seed, id as u64, nr, index, 0) >= fault.probability {
            return None;
        }
        Some(pick_errno(&fault.errnos, unit(seed, id as u64, nr, index, 1)))
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
        .expect("the parser requires at least one errno in every rule but short= ones, which never decide")
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

/// SplitMix64's finalizer: a stateless 64-bit mixer. Written out because the decision function must stay
/// bit-for-bit stable across releases and toolchains (std's hashers promise no such thing), and six lines do it.
pub(crate) fn mix(mut z: u64) -> u64 {
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
    }
}
