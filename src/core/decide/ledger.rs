//! The ledger: what happened, whoever decided it. Call indices per syscall, per rule the calls it matched and
//! injected (counted here, or elsewhere and added: an eBPF program counts in the kernel), the syscalls a filter
//! failed on every call without asking, and the injection log.
//!
//! Does not own: deciding (the policy), which rules target a syscall (the `Decider`).
//!
//! The log keeps the first [`MAX_LOGGED`] injections and counts the rest: a hung target that fails millions of
//! calls (EINTR in a retry loop) would otherwise grow a log of hundreds of MB, held in memory and written after
//! the target was killed, within the grace a campaign gives (issue 15). The counters stay exact.

use std::collections::{BTreeMap, HashMap};

use crate::model::{FaultSpec, Injection, RuleStats, Syscall};

/// One rule's counts.
#[derive(Debug, Clone, Default)]
struct Counts {
    matched: u64,
    injected: u64,
    /// Matched calls, not injected, that failed by themselves with one of the rule's errnos.
    natural: u64,
    /// The rule's syscalls that were failed on every call without being asked about, uncounted.
    unasked: Vec<Syscall>,
    /// Calls a guard kept out, by what the call had (`edge=yes`).
    guarded: BTreeMap<String, u64>,
}

/// How many injections a log keeps (about 26 MB of JSON, written in about a second); those after are counted,
/// not logged.
pub const MAX_LOGGED: usize = 100_000;

/// Counts per rule and the injection log.
#[derive(Debug)]
pub struct Ledger {
    /// Calls seen so far per targeted syscall (the call index).
    calls: HashMap<Syscall, u64>,
    /// Calls seen so far per thread (its key's hash, [`super::policy::thread_hash`]) and targeted syscall (the
    /// thread's own call index).
    thread_calls: HashMap<(u64, Syscall), u64>,
    rules: Vec<Counts>,
    injections: Vec<Injection>,
    /// The most injections `injections` keeps ([`MAX_LOGGED`]).
    cap: usize,
    /// Whether an injection was left out of `injections` because it was full.
    truncated: bool,
    /// The backend reports the results of the matched calls it lets run ([`Ledger::count_natural`]).
    sees_results: bool,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(0)
    }
}

/// What [`Ledger::finish`] hands over.
pub struct Finished {
    pub rules: Vec<RuleStats>,
    pub injections: Vec<Injection>,
    /// `Some(n)` when the log stopped at `n` entries and later injections were only counted.
    pub truncated_after: Option<u64>,
}

impl Ledger {
    /// A ledger for `rules` rules, all counts zero.
    pub fn new(rules: usize) -> Self {
        Ledger::with_cap(rules, MAX_LOGGED)
    }

    /// A ledger whose log keeps at most `cap` injections.
    pub fn with_cap(rules: usize, cap: usize) -> Self {
        Ledger {
            calls: HashMap::new(),
            thread_calls: HashMap::new(),
            rules: vec![Counts::default(); rules],
            injections: Vec::new(),
            cap,
            truncated: false,
            sees_results: false,
        }
    }

    /// Logs `injection` unless the log is full (then only notes that it is truncated).
    fn keep(&mut self, injection: Injection) {
        if self.injections.len() < self.cap {
            self.injections.push(injection);
        } else {
            self.truncated = true;
        }
    }

    /// Counts a call of `syscall` and returns its call index (1-based).
    pub fn next_index(&mut self, syscall: Syscall) -> u64 {
        let n = self.calls.entry(syscall).or_default();
        *n += 1;
        *n
    }

    /// Counts a call of `syscall` by the thread whose key hashes to `thread` and returns the thread's own index of
    /// it (1-based).
    pub fn next_thread_index(&mut self, thread: u64, syscall: Syscall) -> u64 {
        let n = self.thread_calls.entry((thread, syscall)).or_default();
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

    /// Counts a call of rule `id`'s class that one of its guards kept out: `had` is what the call had
    /// (`edge=yes`).
    pub fn count_guarded(&mut self, id: usize, had: String) {
        if let Some(rule) = self.rules.get_mut(id) {
            *rule.guarded.entry(had).or_default() += 1;
        }
    }

    /// How many calls rule `id` injected so far.
    pub fn injected(&self, id: usize) -> u64 {
        self.rules.get(id).map_or(0, |r| r.injected)
    }

    /// Counts an injection of rule `id` and logs it (while the log is not full).
    pub fn record(&mut self, injection: Injection) {
        if let Some(rule) = self.rules.get_mut(injection.rule) {
            rule.injected += 1;
        }
        self.keep(injection);
    }

    /// Takes back the injection rule `id` made into call `index` of `syscall` by thread `tid`: the errno never
    /// reached the program (the call was no longer waiting for its answer). Its count goes, and its log entry
    /// (the last one of that call; none if the log was already full).
    pub fn withdraw(&mut self, id: usize, tid: i32, syscall: Syscall, index: u64) {
        if let Some(rule) = self.rules.get_mut(id) {
            rule.injected = rule.injected.saturating_sub(1);
        }
        if let Some(at) = self
            .injections
            .iter()
            .rposition(|i| i.rule == id && i.tid == tid && i.syscall == syscall && i.index == index)
        {
            self.injections.remove(at);
        }
    }

    /// Says that the backend sees the result of every matched call it lets run and reports its natural failures
    /// ([`Ledger::count_natural`]): the rules' `natural` counters are then written, zeros included.
    pub fn sees_results(&mut self) {
        self.sees_results = true;
    }

    /// Counts a call rule `id` matched and did not inject that failed by itself with one of the rule's errnos.
    pub fn count_natural(&mut self, id: usize) {
        if let Some(rule) = self.rules.get_mut(id) {
            rule.natural += 1;
        }
    }

    /// Adds counts of rule `id` made elsewhere (an eBPF program counts in the kernel): calls matched and injected.
    pub fn add_counts(&mut self, id: usize, matched: u64, injected: u64) {
        if let Some(rule) = self.rules.get_mut(id) {
            rule.matched += matched;
            rule.injected += injected;
        }
    }

    /// Logs an injection made and counted elsewhere (its counts come with [`Ledger::add_counts`]), while the log
    /// is not full.
    pub fn log(&mut self, injection: Injection) {
        self.keep(injection);
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
    pub fn finish(self, faults: impl IntoIterator<Item = FaultSpec>) -> Finished {
        let rules = faults
            .into_iter()
            .zip(self.rules)
            .map(|(fault, c)| RuleStats {
                matched: c.matched,
                injected: c.injected,
                in_kernel: c.unasked,
                // A rule without an errno (a latency fault, short=) has no natural failure to count.
                natural: (self.sees_results && !fault.errnos.is_empty()).then_some(c.natural),
                guarded: c.guarded,
                fault,
            })
            .collect();
        Finished {
            rules,
            truncated_after: self.truncated.then_some(self.injections.len() as u64),
            injections: self.injections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Errno, When};

    fn injection(rule: usize, index: u64) -> Injection {
        Injection {
            t_ns: index,
            pid: 1,
            tid: 1,
            syscall: Syscall::parse("read").unwrap(),
            index,
            thread: None,
            thread_index: None,
            effect: crate::model::Effect::Errno(Errno::parse("EINTR").unwrap()),
            delay_ns: None,
            rule,
            when: When::Entry,
            shape: None,
            path: None,
            signal: None,
            interrupted_by: None,
        }
    }

    /// Regression (issue 15): a hung target failed millions of reads with EINTR and its 186 MB log was not
    /// written within the grace after it was killed. The log stops at the cap; the counters stay exact.
    #[test]
    fn the_log_stops_at_the_cap_and_the_counts_stay_exact() {
        let mut ledger = Ledger::with_cap(2, 3);
        for i in 1..=5 {
            ledger.count_match(0);
            ledger.record(injection(0, i));
        }
        ledger.add_counts(1, 4, 2);
        ledger.log(injection(1, 6));
        let faults = ["read:EINTR", "write:EIO"].map(|f| FaultSpec::parse(f).unwrap());
        let done = ledger.finish(faults);
        assert_eq!(done.injections.len(), 3);
        assert_eq!(
            done.injections.iter().map(|i| i.index).collect::<Vec<_>>(),
            [1, 2, 3],
            "the first injections are kept"
        );
        assert_eq!(done.truncated_after, Some(3));
        assert_eq!((done.rules[0].matched, done.rules[0].injected), (5, 5));
        assert_eq!((done.rules[1].matched, done.rules[1].injected), (4, 2));
    }

    #[test]
    fn a_log_under_the_cap_is_not_truncated() {
        let mut ledger = Ledger::with_cap(1, 3);
        for i in 1..=3 {
            ledger.record(injection(0, i));
        }
        let done = ledger.finish([FaultSpec::parse("read:EINTR").unwrap()]);
        assert_eq!((done.injections.len(), done.truncated_after), (3, None));
    }
}
