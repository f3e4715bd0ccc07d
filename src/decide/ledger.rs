//! The ledger: what happened, whoever decided it. Call indices per syscall, per rule the calls it matched and
//! injected (counted here, or elsewhere and added: an eBPF program counts in the kernel), the syscalls a filter
//! failed on every call without asking, and the injection log.
//!
//! Does not own: deciding (the policy), which rules target a syscall (the `Decider`).

use std::collections::HashMap;

use crate::model::{FaultSpec, Injection, RuleStats, Syscall};

/// One rule's counts.
#[derive(Debug, Clone, Default)]
struct Counts {
    matched: u64,
    injected: u64,
    /// The rule's syscalls that were failed on every call without being asked about, uncounted.
    unasked: Vec<Syscall>,
}

/// Counts per rule and the injection log.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Calls seen so far per targeted syscall (the call index).
    calls: HashMap<Syscall, u64>,
    rules: Vec<Counts>,
    injections: Vec<Injection>,
}

impl Ledger {
    /// A ledger for `rules` rules, all counts zero.
    pub fn new(rules: usize) -> Self {
        Ledger {
            calls: HashMap::new(),
            rules: vec![Counts::default(); rules],
            injections: Vec::new(),
        }
    }

    /// Counts a call of `syscall` and returns its call index (1-based).
    pub fn next_index(&mut self, syscall: Syscall) -> u64 {
        let n = self.calls.entry(syscall).or_default();
        *n += 1;
        *n
    }

    /// Counts a call rule `id` matched; returns how many it matched so far (this one included).
    pub fn count_match(&mut self, id: usize) -> u64 {
        self.rules.get_mut(id).map_or(0, |r| {
            r.matched += 1;
            r.matched
        })
    }

    /// How many calls rule `id` injected so far.
    pub fn injected(&self, id: usize) -> u64 {
        self.rules.get(id).map_or(0, |r| r.injected)
    }

    /// Counts an injection of rule `id` and logs it.
    pub fn record(&mut self, injection: Injection) {
        if let Some(rule) = self.rules.get_mut(injection.rule) {
            rule.injected += 1;
        }
        self.injections.push(injection);
    }

    /// Adds counts of rule `id` made elsewhere (an eBPF program counts in the kernel): calls matched and injected.
    pub fn add_counts(&mut self, id: usize, matched: u64, injected: u64) {
        if let Some(rule) = self.rules.get_mut(id) {
            rule.matched += matched;
            rule.injected += injected;
        }
    }

    /// Logs an injection made and counted elsewhere (its counts come with [`Ledger::add_counts`]).
    pub fn log(&mut self, injection: Injection) {
        self.injections.push(injection);
    }

    /// Notes that every call of `syscall` was failed for rule `id` without being asked about (a filter did it in
    /// the kernel): the log lists the syscall under the rule instead of counting calls.
    pub fn failed_unasked(&mut self, id: usize, syscall: Syscall) {
        if let Some(rule) = self.rules.get_mut(id)
            && !rule.unasked.contains(&syscall)
        {
            rule.unasked.push(syscall);
        }
    }

    /// Each rule's stats, the faults given in rule order, and the log.
    pub fn finish(self, faults: impl IntoIterator<Item = FaultSpec>) -> (Vec<RuleStats>, Vec<Injection>) {
        let stats = faults
            .into_iter()
            .zip(self.rules)
            .map(|(fault, c)| RuleStats {
                fault,
                matched: c.matched,
                injected: c.injected,
                in_kernel: c.unasked,
            })
            .collect();
        (stats, self.injections)
    }
}
