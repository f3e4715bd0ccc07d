//! The one place that decides "inject this call or not" (DESIGN §3, §5). Every backend asks it, so a `--fault`
//! means the same on every backend.
//!
//! Three parts, composed by [`Decider`], the one handle a backend holds:
//! - [`policy`]: pure decisions: seed + rules (or a replayed log) + a call's index and counts → inject or not;
//! - [`ledger`]: call indices, counts per rule (including counts made in the kernel) and the injection log;
//! - [`switch`]: the runtime on/off.
//!
//! The `Decider` itself matches a call against the rules (syscall, path glob, shape predicates) and says what a
//! filter may decide without asking (`unconditional_errno`, `register_guard`).
//! Does not own: reading arguments from the target (the backends do that and pass the path in).

pub mod ledger;
pub mod policy;
pub mod switch;

use std::{
    collections::HashMap,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use self::policy::{Key, Replay, thread_hash};
pub use self::{ledger::Ledger, policy::Policy, switch::Switch};
use crate::model::{
    Effect, Errno, FORMAT_VERSION, FaultSpec, Injection, InjectionLog, Shape, Syscall, TargetExit, When,
    fault::{SHORT_COUNT_ARG, SHORT_SYSCALLS},
    realism, shape,
    shape::{
        ArgTest, COSTLY_KEYS, Predicate, Probe, UNKNOWN, grammar_name, guard_value, guards_of, keys_of,
        register_tests, restartable, shape_of, shape_of_asked, timed_out_after,
    },
};

/// A call a backend stopped at, before it runs.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub syscall: Syscall,
    pub pid: i32,
    pub tid: i32,
    /// The calling thread's key, its thread path (`0.2.1`, docs/formats.md "Thread keys"), when the backend knows it:
    /// the roll and the replay then key on it and the thread's own call index, whatever the interleaving.
    pub thread: Option<&'a str>,
    /// Nanoseconds since the target's exec.
    pub t_ns: u64,
    /// The resolved absolute path argument, when [`Decider::needs_path`] said so and it could be read.
    pub path: Option<&'a str>,
    /// The call's register arguments, for its shape (DESIGN §6).
    pub args: [u64; 6],
}

/// What to do with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Fail it with an errno; or (`Effect::Short(n)`, a `short=` rule) let it run with a byte count of `n` instead
    /// of the larger one it asked for: the backend lowers the count argument
    /// ([`SHORT_COUNT_ARG`](crate::model::fault::SHORT_COUNT_ARG)) at the entry and restores it at the exit; or
    /// (`Effect::Run`, a latency fault such as `read:delay=50ms`) hold it for `delay`, then let it run for real.
    pub effect: Effect,
    /// For an errno, whether it replaces the call or its result; `Exit` for a partial transfer.
    pub when: When,
    pub delay: Option<Duration>,
    /// The rule that decided (index into the rules).
    pub rule: usize,
    /// The call's index among the calls of its syscall (what [`Decider::undelivered`] names it by).
    pub index: u64,
    /// The signal the kernel would raise in the calling thread with this errno (SIGPIPE with a write's EPIPE,
    /// [`realism::raised_signal`]): the backend raises it too, before the errno reaches the program.
    pub signal: Option<i32>,
}

struct Rule {
    fault: FaultSpec,
    glob: Option<glob::Pattern>,
}

/// Shell-like path globs: `*` and `?` stop at `/` (so `/etc/*` is the files directly in /etc); `**` crosses it.
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Matches calls against rules and asks the policy, keeping the ledger; one handle for a backend.
pub struct Decider {
    seed: u64,
    rules: Vec<Rule>,
    /// Rule indices per targeted syscall, in rule order.
    by_syscall: HashMap<Syscall, Vec<usize>>,
    policy: Policy,
    ledger: Ledger,
    /// Every decision stays in user space (no in-kernel rules), so that the runtime switch covers every rule.
    user_space_only: bool,
    /// While off, calls are still counted (indices stay aligned) but nothing is matched or injected.
    switch: Switch,
    /// The rules that matched the call last decided, for [`Decider::watch_result`].
    last_matched: Vec<usize>,
}

impl Decider {
    /// A decider for these rules (already validated by the parser) and seed.
    pub fn new(faults: Vec<FaultSpec>, seed: u64) -> Self {
        let rules: Vec<Rule> = faults
            .into_iter()
            .map(|fault| Rule {
                // The parser already checked the glob; a failure here would be a bug, not bad input.
                glob: fault
                    .path
                    .as_deref()
                    .map(|p| glob::Pattern::new(p).expect("glob validated by the parser")),
                fault,
            })
            .collect();
        let mut by_syscall: HashMap<Syscall, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for sc in &rule.fault.syscalls {
                by_syscall.entry(*sc).or_default().push(i);
            }
        }
        Decider {
            seed,
            ledger: Ledger::new(rules.len()),
            rules,
            by_syscall,
            policy: Policy::Rules { seed },
            switch: Switch::default(),
            user_space_only: false,
            last_matched: Vec::new(),
        }
    }

    /// Keeps every decision in user space: [`Decider::unconditional_errno`] then says `None`, so no backend
    /// fails calls in the kernel where the runtime switch could not reach them.
    pub fn keep_in_user_space(&mut self) {
        self.user_space_only = true;
    }

    /// The runtime switch (on by default): store `false` to stop injecting while the target runs, `true` to
    /// start again. Calls keep being counted while it is off, so call indices mean the same either way.
    pub fn switch(&self) -> Arc<AtomicBool> {
        self.switch.handle()
    }

    /// A decider that injects exactly what `log` injected, at the same call indices, and nothing else.
    pub fn replay(log: &InjectionLog) -> Self {
        let mut decider = Decider::new(log.rules.iter().map(|r| r.fault.clone()).collect(), log.seed);
        let replay = Replay::of(log);
        for sc in replay.syscalls() {
            decider.by_syscall.entry(sc).or_default();
        }
        decider.policy = Policy::Replay(replay);
        decider
    }

    /// The errno a seccomp filter may return by itself, without asking, for every call of `syscall`: when the only
    /// rule for it fails every call with one errno (no probability, window, max, path or delay), or, in a replay,
    /// when the replayed run did exactly that in the kernel; never an errno the kernel raises a signal with (a
    /// write's EPIPE: [`Decision::signal`]). Such calls cannot be counted: a backend that uses it must say so with
    /// [`Decider::failed_unasked`].
    pub fn unconditional_errno(&self, syscall: Syscall) -> Option<Errno> {
        if self.user_space_only {
            return None;
        }
        let &[id] = self.by_syscall.get(&syscall)?.as_slice() else {
            return None;
        };
        // A filter's errno raises no signal: an errno the kernel raises one with is decided here, in user space.
        self.policy
            .unconditional_errno(syscall, id, &self.rules[id].fault)
            .filter(|&errno| realism::raised_signal(syscall, errno, &[0; 6]).is_none())
    }

    /// Records that every call of `syscall` is failed without asking (a filter does it in the kernel with
    /// [`Decider::unconditional_errno`]): those calls are never shown to [`Decider::decide`], so the log lists the
    /// syscall under its rule instead of counting calls (a replay does the same again).
    pub fn failed_unasked(&mut self, syscall: Syscall) {
        for &id in self.by_syscall.get(&syscall).into_iter().flatten() {
            self.ledger.failed_unasked(id, syscall);
        }
    }

    /// The ledger, for a backend that counts and logs elsewhere (an eBPF program counts in the kernel) to add
    /// what it found.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The syscalls any rule (or the replayed log) targets: the only ones a backend needs to stop.
    pub fn targets(&self) -> impl Iterator<Item = Syscall> + '_ {
        self.by_syscall.keys().copied()
    }

    pub fn is_targeted(&self, syscall: Syscall) -> bool {
        self.by_syscall.contains_key(&syscall)
    }

    /// Does deciding on `syscall` need its path argument (a rule for it has `path=`)?
    /// A replay needs it too, so that the replayed log counts the same matches.
    pub fn needs_path(&self, syscall: Syscall) -> bool {
        self.by_syscall
            .get(&syscall)
            .is_some_and(|rules| rules.iter().any(|i| self.rules[*i].glob.is_some()))
    }

    /// Does a rule ask whether a caught signal would interrupt its calls (`caught=`)? The backend then records the
    /// handlers the target installs (`rt_sigaction`), whose `SA_RESTART` `/proc` does not show.
    pub fn needs_handlers(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.fault.shape.iter().any(|p| p.key == shape::Key::Caught))
    }

    /// Does deciding on `syscall` need the call's shape (a rule for it has a shape predicate)?
    pub fn needs_shape(&self, syscall: Syscall) -> bool {
        self.by_syscall
            .get(&syscall)
            .is_some_and(|rules| rules.iter().any(|i| !self.rules[*i].fault.shape.is_empty()))
    }

    /// The shape of a call of `syscall` as the rules see it: [`shape_of`], plus the guards ([`guards_of`]) some rule
    /// for the syscall asks about, looked up through `probe`. A backend that reads the target before answering
    /// (the seccomp supervisor) calls this first, so that deciding reads nothing more.
    /// The components of [`COSTLY_KEYS`] are read only when a rule asks about them too: they cost a read of the
    /// task on every call, and the log of an injected call gets the whole shape ([`Decider::decide_with`]).
    pub fn shape_for(&self, syscall: Syscall, args: &[u64; 6], probe: &mut dyn Probe) -> Shape {
        let mut shape = shape_of_asked(syscall, args, probe, &|key| {
            !COSTLY_KEYS.contains(&key) || self.asks(syscall, key)
        });
        for &key in guards_of(syscall) {
            if self.asks(syscall, key) {
                shape.set(key, guard_value(key, syscall, args, probe));
            }
        }
        shape
    }

    /// Does a rule for `syscall` have a predicate on `key`?
    fn asks(&self, syscall: Syscall, key: shape::Key) -> bool {
        self.by_syscall.get(&syscall).is_some_and(|rules| {
            rules
                .iter()
                .any(|i| self.rules[*i].fault.shape.iter().any(|p| p.key == key))
        })
    }

    /// What a call of `syscall` must satisfy in its registers for any rule to match it, as alternatives (any) of
    /// conjunctions (all): a filter may let every other call run without asking, since no rule could match it.
    /// `None` when some rule for the syscall matches whatever the registers hold (no register predicate), or the
    /// alternatives would be too many to check in a filter. Deciding still checks every predicate; call indices
    /// then count the calls the filter let through, the same on every backend that uses it.
    pub fn register_guard(&self, syscall: Syscall) -> Option<Vec<Vec<ArgTest>>> {
        const MAX_ALTERNATIVES: usize = 16;
        let mut any: Vec<Vec<ArgTest>> = Vec::new();
        for &id in self.by_syscall.get(&syscall)? {
            // Within a rule: every register predicate (each a choice among its values) must hold.
            let mut all: Vec<Vec<ArgTest>> = vec![Vec::new()];
            let mut constrained = false;
            for pred in &self.rules[id].fault.shape {
                let Some(choices) = register_tests(syscall, pred) else {
                    continue;
                };
                constrained = true;
                all = all
                    .iter()
                    .flat_map(|prefix| {
                        choices
                            .iter()
                            .map(move |c| prefix.iter().chain(c).copied().collect::<Vec<_>>())
                    })
                    .collect();
                if all.len() > MAX_ALTERNATIVES {
                    return None;
                }
            }
            if !constrained {
                return None;
            }
            any.extend(all);
            if any.len() > MAX_ALTERNATIVES {
                return None;
            }
        }
        // A replayed syscall with no rule of its own (its log's rule targets it through another name) is not
        // guarded: every call is seen.
        (!any.is_empty()).then_some(any)
    }

    /// The faults, in order.
    pub fn faults(&self) -> impl Iterator<Item = &FaultSpec> {
        self.rules.iter().map(|r| &r.fault)
    }

    /// Whether a decision may hold a call before it is answered: a rule's `delay=`, or an ETIMEDOUT, which comes
    /// once the call's own timeout has passed ([`timed_out_after`]). A backend that answers held calls later
    /// must wake up for them.
    pub fn may_hold(&self) -> bool {
        self.faults()
            .any(|f| f.delay.is_some() || f.errnos.iter().any(|(errno, _)| errno.code() == libc::ETIMEDOUT))
    }

    /// Counts the call and decides. Call exactly once per call of a targeted syscall, at its entry. `probe`
    /// learns the call's shape: asked only when a rule has a shape predicate or the call is injected (the log
    /// names the shape of every injected call).
    pub fn decide(&mut self, call: &Call<'_>, probe: &mut dyn Probe) -> Option<Decision> {
        let shape = self
            .needs_shape(call.syscall)
            .then(|| self.shape_for(call.syscall, &call.args, probe));
        self.decide_with(call, probe, shape)
    }

    /// [`Decider::decide`] with the call's [`Decider::shape_for`] already computed (`None` when it
    /// [`Decider::needs_shape`] not): the seccomp supervisor reads it before ID_VALID vouches for what it read,
    /// and its reads of the task (a timespec, `/proc/locks`) are not made twice.
    pub fn decide_with(
        &mut self,
        call: &Call<'_>,
        probe: &mut dyn Probe,
        shape: Option<Shape>,
    ) -> Option<Decision> {
        self.last_matched.clear();
        let mut shape = shape;
        let rule_ids = self.by_syscall.get(&call.syscall)?;
        let index = self.ledger.next_index(call.syscall);
        let thread = call.thread.map(|t| {
            let h = thread_hash(t);
            (h, self.ledger.next_thread_index(h, call.syscall))
        });
        let key = Key { index, thread };
        if !self.switch.is_on() {
            return None;
        }
        let mut decision = None;
        let guards = guards_of(call.syscall);
        for &id in rule_ids {
            let rule = &self.rules[id];
            if let Some(glob) = &rule.glob
                && !call.path.is_some_and(|p| glob.matches_with(p, GLOB_OPTIONS))
            {
                continue;
            }
            // The first predicate the call fails, and whether only guards failed: a call of the rule's class that
            // a guard kept out is counted as such (why a rule matched nothing).
            let mut kept_out: Option<&Predicate> = None;
            let mut outside = false;
            for p in &rule.fault.shape {
                if shape.as_ref().is_some_and(|s| p.matches(s)) {
                    continue;
                }
                if guards.contains(&p.key) {
                    kept_out.get_or_insert(p);
                } else {
                    outside = true;
                    break;
                }
            }
            if outside {
                continue;
            }
            if let Some(guard) = kept_out {
                let had = shape.as_ref().and_then(|s| s.get(guard.key)).unwrap_or(UNKNOWN);
                self.ledger
                    .count_guarded(id, format!("{}={had}", grammar_name(guard.key)));
                continue;
            }
            let matched = self.ledger.count_match(id);
            self.last_matched.push(id);
            if decision.is_some() {
                continue;
            }
            let counts = (matched, self.ledger.injected(id));
            decision = self
                .policy
                .rule_injects(id, &rule.fault, call.syscall, key, counts, short_count(call))
                .map(|effect| Decision {
                    effect,
                    when: rule.fault.when,
                    delay: rule.fault.delay,
                    rule: id,
                    index,
                    signal: raised_signal(call, effect),
                });
        }
        if let Policy::Replay(replay) = &self.policy {
            decision = replay
                .at(call.syscall, key)
                // A logged partial transfer shortens the replayed call the same way, if it asks for more.
                .filter(|(effect, _, _)| match effect {
                    Effect::Short(n) => short_count(call).is_some_and(|count| count > *n),
                    Effect::Errno(_) | Effect::Run => true,
                })
                .map(|(effect, when, rule)| Decision {
                    effect,
                    when,
                    delay: self.rules.get(rule).and_then(|r| r.fault.delay),
                    rule,
                    index,
                    signal: raised_signal(call, effect),
                });
        }
        // An injected ETIMEDOUT comes when the call's own timeout has passed, as the kernel's does (a rule's
        // `delay=` says otherwise).
        if let Some(d) = &mut decision
            && d.delay.is_none()
            && d.effect == Effect::Errno(Errno::new(libc::ETIMEDOUT).expect("a valid errno"))
            && d.when == When::Entry
        {
            d.delay = timed_out_after(call.syscall, &call.args, probe);
        }
        if let Some(d) = decision {
            // The whole shape for the log: what deciding left out no rule asked about ([`COSTLY_KEYS`]).
            let whole = shape.is_none()
                || COSTLY_KEYS
                    .iter()
                    .any(|&key| keys_of(call.syscall).contains(&key) && !self.asks(call.syscall, key));
            if whole {
                shape = Some(shape_of(call.syscall, &call.args, probe));
            }
            let shape = shape.as_ref().expect("computed above");
            self.ledger.record(Injection {
                t_ns: call.t_ns,
                pid: call.pid,
                tid: call.tid,
                syscall: call.syscall,
                index,
                thread: call.thread.map(str::to_owned),
                thread_index: thread.map(|(_, i)| i),
                effect: d.effect,
                delay_ns: d
                    .delay
                    .map(|delay| u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX)),
                rule: d.rule,
                when: d.when,
                signal: d.signal,
                // An EINTR's possible causes, for whoever reads the finding.
                interrupted_by: (d.effect == Effect::Errno(Errno::new(libc::EINTR).expect("a valid errno"))
                    && guards_of(call.syscall).contains(&shape::Key::Caught))
                .then(|| probe.interrupting(restartable(call.syscall, &call.args)))
                .flatten()
                .map(crate::model::signal_names),
                path: call
                    .path
                    .map(str::to_owned)
                    .or_else(|| probe.path(call.syscall, &call.args)),
                shape: Some(shape.clone()),
            });
        }
        decision
    }

    /// Takes back `decision`, made for `call`, whose errno never reached the program: the call no longer waited
    /// for its answer (seccomp's SEND said ENOENT: the caller was killed, or, before WAIT_KILLABLE_RECV,
    /// signalled, and then its call comes back as a new one). Neither the rule's count nor the log claims it.
    pub fn undelivered(&mut self, decision: &Decision, tid: i32, syscall: Syscall) {
        self.ledger.withdraw(decision.rule, tid, syscall, decision.index);
    }

    /// Says that the backend sees the result of every matched call it lets run and reports the natural failures
    /// with [`Decider::watch_result`] and [`Decider::natural_failure`] (ptrace does, at the exit stop): the log's
    /// rules then say how many matched calls failed by themselves, so the achieved rate is the total failure rate
    /// of the matched calls, like a model's target, not the injections alone.
    pub fn sees_results(&mut self) {
        self.ledger.sees_results();
    }

    /// After [`Decider::decide`] let the call run (said `None`): the rules whose errnos a natural failure of it
    /// would count for ([`Decider::natural_failure`] at its exit). Empty when no rule with an errno matched it, so
    /// the backend need not wait for its result.
    pub fn watch_result(&self) -> Vec<usize> {
        self.last_matched
            .iter()
            .copied()
            .filter(|&id| !self.rules[id].fault.errnos.is_empty())
            .collect()
    }

    /// A call phoebe let run, watched with [`Decider::watch_result`], failed by itself with `errno`: counts it for
    /// each of `rules` that has that errno.
    pub fn natural_failure(&mut self, rules: &[usize], errno: Errno) {
        for &id in rules {
            if self
                .rules
                .get(id)
                .is_some_and(|r| r.fault.errnos.iter().any(|(e, _)| *e == errno))
            {
                self.ledger.count_natural(id);
            }
        }
    }

    /// Is this a replay of a log?
    pub fn is_replay(&self) -> bool {
        matches!(self.policy, Policy::Replay(_))
    }

    /// The log of everything decided.
    pub fn finish(
        self,
        command: Vec<String>,
        backend: &str,
        exit: Option<TargetExit>,
        interrupted: bool,
    ) -> InjectionLog {
        let replayed = self.is_replay();
        let ledger::Finished {
            rules,
            injections,
            truncated_after,
        } = self.ledger.finish(self.rules.into_iter().map(|r| r.fault));
        InjectionLog {
            truncated_after,
            version: FORMAT_VERSION,
            command,
            backend: backend.to_owned(),
            seed: self.seed,
            replayed,
            rules,
            injections,
            exit,
            interrupted,
            usage: None,
        }
    }
}

/// The signal an injection of `effect` into `call` raises with its errno ([`realism::raised_signal`]).
fn raised_signal(call: &Call<'_>, effect: Effect) -> Option<i32> {
    effect
        .errno()
        .and_then(|errno| realism::raised_signal(call.syscall, errno, &call.args))
}

/// The byte count of a call a partial transfer can shorten (its count register), `None` for other calls.
fn short_count(call: &Call<'_>) -> Option<u64> {
    SHORT_SYSCALLS
        .contains(&call.syscall.name())
        .then(|| call.args[SHORT_COUNT_ARG])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::model::shape::RegistersOnly;

    fn fault(s: &str) -> FaultSpec {
        FaultSpec::parse(s).unwrap()
    }

    fn call(name: &str) -> Call<'static> {
        Call {
            args: [0; 6],
            syscall: Syscall::parse(name).unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        }
    }

    fn run(decider: &mut Decider, name: &str, n: usize) -> Vec<bool> {
        (0..n)
            .map(|_| decider.decide(&call(name), &mut RegistersOnly).is_some())
            .collect()
    }

    #[test]
    fn register_guards_cover_every_rule_of_the_syscall() {
        let d = Decider::new(
            vec![
                FaultSpec::parse("futex:EAGAIN:op=FUTEX_WAIT_PRIVATE|FUTEX_WAIT:timeout=no").unwrap(),
                FaultSpec::parse("futex:ETIMEDOUT:op=FUTEX_WAIT_BITSET_PRIVATE").unwrap(),
                FaultSpec::parse("read:EAGAIN:fd=pipe").unwrap(),
                FaultSpec::parse("openat:ENOENT").unwrap(),
            ],
            1,
        );
        let futex = d.register_guard(Syscall::parse("futex").unwrap()).unwrap();
        assert_eq!(futex.len(), 3, "{futex:?}");
        assert!(
            futex[..2]
                .iter()
                .all(|all| all.len() == 2 && all[1] == ArgTest::Zero { arg: 3 })
        );
        // fd= needs /proc, a rule without predicates matches every call: no guard.
        assert_eq!(d.register_guard(Syscall::parse("read").unwrap()), None);
        assert_eq!(d.register_guard(Syscall::parse("openat").unwrap()), None);
        let both = Decider::new(
            vec![
                FaultSpec::parse("futex:EAGAIN:op=FUTEX_WAIT_PRIVATE").unwrap(),
                FaultSpec::parse("futex:EINTR").unwrap(),
            ],
            1,
        );
        assert_eq!(both.register_guard(Syscall::parse("futex").unwrap()), None);
    }

    #[test]
    fn untargeted_calls_are_not_counted() {
        let mut d = Decider::new(vec![fault("openat:ENOENT")], 1);
        assert_eq!(d.decide(&call("read"), &mut RegistersOnly), None);
        assert!(d.is_targeted(Syscall::parse("openat").unwrap()));
        assert!(!d.is_targeted(Syscall::parse("read").unwrap()));
    }

    #[test]
    fn probability_extremes() {
        let mut always = Decider::new(vec![fault("openat:ENOENT:p=1")], 9);
        assert!(run(&mut always, "openat", 100).iter().all(|x| *x));
        let mut never = Decider::new(vec![fault("openat:ENOENT:p=0")], 9);
        assert!(run(&mut never, "openat", 100).iter().all(|x| !*x));
    }

    #[test]
    fn same_seed_same_decisions_other_seed_differs() {
        let a = run(
            &mut Decider::new(vec![fault("openat:ENOENT:p=0.3")], 7),
            "openat",
            500,
        );
        let b = run(
            &mut Decider::new(vec![fault("openat:ENOENT:p=0.3")], 7),
            "openat",
            500,
        );
        let c = run(
            &mut Decider::new(vec![fault("openat:ENOENT:p=0.3")], 8),
            "openat",
            500,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        let hits = a.iter().filter(|x| **x).count();
        // binomial(500, 0.3): mean 150, sd ≈ 10.2; ±4 sd
        assert!((109..=191).contains(&hits), "{hits}");
    }

    #[test]
    fn interleaving_other_syscalls_does_not_reshuffle() {
        let mut plain = Decider::new(vec![fault("openat:ENOENT:p=0.5"), fault("read:EIO:p=0.5")], 3);
        let alone = run(&mut plain, "openat", 200);
        let mut mixed = Decider::new(vec![fault("openat:ENOENT:p=0.5"), fault("read:EIO:p=0.5")], 3);
        let interleaved: Vec<bool> = (0..200)
            .map(|_| {
                mixed.decide(&call("read"), &mut RegistersOnly);
                mixed.decide(&call("openat"), &mut RegistersOnly).is_some()
            })
            .collect();
        assert_eq!(alone, interleaved);
    }

    #[test]
    fn nth_after_every_max() {
        let nth = run(
            &mut Decider::new(vec![fault("openat:ENOENT:nth=3")], 0),
            "openat",
            6,
        );
        assert_eq!(nth, [false, false, true, false, false, false]);
        let after = run(
            &mut Decider::new(vec![fault("openat:ENOENT:after=4")], 0),
            "openat",
            6,
        );
        assert_eq!(after, [false, false, false, false, true, true]);
        let every = run(
            &mut Decider::new(vec![fault("openat:ENOENT:after=1:every=2")], 0),
            "openat",
            6,
        );
        assert_eq!(every, [false, true, false, true, false, true]);
        let max = run(
            &mut Decider::new(vec![fault("openat:ENOENT:max=2")], 0),
            "openat",
            5,
        );
        assert_eq!(max, [true, true, false, false, false]);
    }

    #[test]
    fn weights_pick_errnos_in_proportion() {
        let mut d = Decider::new(vec![fault("openat:ENOENT=3,EACCES=1")], 11);
        let enoent = Errno::parse("ENOENT").unwrap();
        let n = (0..4000)
            .filter(|_| {
                d.decide(&call("openat"), &mut RegistersOnly).unwrap().effect == Effect::Errno(enoent)
            })
            .count();
        // expected 3000, sd ≈ 27
        assert!((2850..=3150).contains(&n), "{n}");
    }

    #[test]
    fn path_predicates() {
        let mut d = Decider::new(vec![fault("openat:ENOENT:path=/etc/*")], 0);
        let sc = Syscall::parse("openat").unwrap();
        assert!(d.needs_path(sc));
        let at = |p: Option<&'static str>| Call {
            path: p,
            ..call("openat")
        };
        assert!(d.decide(&at(Some("/etc/hosts")), &mut RegistersOnly).is_some());
        assert!(d.decide(&at(Some("/tmp/x")), &mut RegistersOnly).is_none());
        assert!(
            d.decide(&at(Some("/etc/ssl/openssl.cnf")), &mut RegistersOnly)
                .is_none(),
            "* stops at /"
        );
        assert!(d.decide(&at(None), &mut RegistersOnly).is_none());
        let log = d.finish(vec![], "test", None, false);
        assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1));
    }

    #[test]
    fn first_injecting_rule_wins_and_all_matching_rules_count() {
        let mut d = Decider::new(vec![fault("openat:ENOENT:nth=2"), fault("openat:EACCES")], 0);
        let first = d.decide(&call("openat"), &mut RegistersOnly).unwrap();
        let second = d.decide(&call("openat"), &mut RegistersOnly).unwrap();
        assert_eq!((first.rule, second.rule), (1, 0));
        let log = d.finish(vec![], "test", None, false);
        assert_eq!(log.rules[0].matched, 2);
        assert_eq!(log.rules[1].matched, 2);
        assert_eq!(log.rules[1].injected, 1);
    }

    #[test]
    fn replay_injects_exactly_the_logged_calls() {
        let mut original = Decider::new(
            vec![fault("openat:ENOENT,EIO:p=0.2"), fault("read:EAGAIN:p=0.1")],
            42,
        );
        let mut pattern = Vec::new();
        for _ in 0..300 {
            pattern.push(
                original
                    .decide(&call("openat"), &mut RegistersOnly)
                    .map(|d| d.effect.errno()),
            );
            pattern.push(
                original
                    .decide(&call("read"), &mut RegistersOnly)
                    .map(|d| d.effect.errno()),
            );
        }
        let log = original.finish(vec!["app".into()], "test", None, false);
        assert!(!log.injections.is_empty());
        let mut replay = Decider::replay(&log);
        let mut again = Vec::new();
        for _ in 0..300 {
            again.push(
                replay
                    .decide(&call("openat"), &mut RegistersOnly)
                    .map(|d| d.effect.errno()),
            );
            again.push(
                replay
                    .decide(&call("read"), &mut RegistersOnly)
                    .map(|d| d.effect.errno()),
            );
        }
        assert_eq!(pattern, again);
        let replayed = replay.finish(vec!["app".into()], "test", None, false);
        assert!(replayed.replayed);
        assert_eq!(replayed.injections, log.injections);
    }

    /// A `short=` rule decides a partial transfer, not an errno: the count the call runs with, from the call's
    /// own count (its third argument); a call that asks for no more is left alone and not counted as injected.
    /// A replay shortens the same calls to the same counts.
    #[test]
    fn short_rules_decide_the_count_a_call_runs_with() {
        let read = |count: u64| Call {
            args: [3, 0x1000, count, 0, 0, 0],
            ..call("read")
        };
        let mut d = Decider::new(vec![fault("read:short=16"), fault("write:short=50%")], 1);
        let decided = d.decide(&read(4096), &mut RegistersOnly).unwrap();
        assert_eq!(decided.effect, Effect::Short(16));
        assert_eq!(decided.effect.errno(), None, "no fake errno");
        assert_eq!(decided.when, When::Exit);
        assert_eq!(
            d.decide(&read(16), &mut RegistersOnly),
            None,
            "16 bytes: nothing to shorten"
        );
        assert_eq!(d.decide(&read(1), &mut RegistersOnly), None);
        let write = Call {
            args: [1, 0x1000, 101, 0, 0, 0],
            ..call("write")
        };
        assert_eq!(
            d.decide(&write, &mut RegistersOnly).map(|d| d.effect),
            Some(Effect::Short(50))
        );
        let log = d.finish(vec!["app".into()], "test", None, false);
        assert_eq!(
            log.rules
                .iter()
                .map(|r| (r.matched, r.injected))
                .collect::<Vec<_>>(),
            [(3, 1), (1, 1)]
        );
        assert_eq!(log.injections[0].effect, Effect::Short(16));
        assert_eq!(log.injections[0].index, 1);
        let json = serde_json::to_string(&log.injections[0]).unwrap();
        assert!(
            json.contains(r#""short":16"#) && !json.contains("errno"),
            "{json}"
        );
        let parsed: Injection = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, log.injections[0]);

        let mut replay = Decider::replay(&log);
        assert_eq!(
            replay.decide(&read(4096), &mut RegistersOnly).map(|d| d.effect),
            Some(Effect::Short(16))
        );
        assert_eq!(replay.decide(&read(16), &mut RegistersOnly), None);
        assert_eq!(replay.decide(&read(1), &mut RegistersOnly), None);
        assert_eq!(
            replay.decide(&write, &mut RegistersOnly).map(|d| d.effect),
            Some(Effect::Short(50))
        );
        let mut smaller = Decider::replay(&log);
        assert_eq!(
            smaller.decide(&read(8), &mut RegistersOnly),
            None,
            "a replayed call that asks for fewer bytes than the log's count is not lengthened"
        );
    }

    /// Issue 14 item 6: `delay=` alone is a latency fault. Its decision carries the delay and no errno (nothing
    /// fake for a backend to inject), its log entries say so, and a replay holds the same calls.
    #[test]
    fn a_latency_fault_decides_a_delay_without_an_errno() {
        let mut d = Decider::new(
            vec![fault("read:delay=50ms:p=0.5"), fault("openat:ENOENT:p=0.3")],
            9,
        );
        let mut pattern = Vec::new();
        for _ in 0..200 {
            pattern.push(d.decide(&call("read"), &mut RegistersOnly));
            pattern.push(d.decide(&call("openat"), &mut RegistersOnly));
        }
        let delayed: Vec<Decision> = pattern
            .iter()
            .flatten()
            .filter(|d| d.rule == 0)
            .copied()
            .collect();
        assert!(
            (60..=140).contains(&delayed.len()),
            "p=0.5 of 200 reads: {}",
            delayed.len()
        );
        assert!(
            delayed
                .iter()
                .all(|d| d.effect == Effect::Run && d.delay == Some(Duration::from_millis(50)))
        );
        assert!(
            pattern
                .iter()
                .flatten()
                .filter(|d| d.rule == 1)
                .all(|d| matches!(d.effect, Effect::Errno(_)) && d.delay.is_none())
        );
        let log = d.finish(vec!["app".into()], "test", None, false);
        assert_eq!(log.rules[0].injected, delayed.len() as u64);
        let entry = log.injections.iter().find(|i| i.rule == 0).unwrap();
        assert_eq!((entry.effect, entry.delay_ns), (Effect::Run, Some(50_000_000)));
        let json = serde_json::to_value(entry).unwrap();
        assert!(
            json.get("errno").is_none() && json.get("short").is_none(),
            "no errno is written: {json}"
        );
        assert_eq!(json["delay_ns"], 50_000_000);
        let back: InjectionLog = serde_json::from_str(&serde_json::to_string(&log).unwrap()).unwrap();
        assert_eq!(back, log);
        let mut replay = Decider::replay(&back);
        let mut again = Vec::new();
        for _ in 0..200 {
            again.push(replay.decide(&call("read"), &mut RegistersOnly));
            again.push(replay.decide(&call("openat"), &mut RegistersOnly));
        }
        assert_eq!(pattern, again);
    }

    /// A futex wait's timeout, a timespec at 0x1000 in its memory, and the clocks at 100 s.
    struct TimedWait {
        timeout: (u64, u64),
    }

    impl Probe for TimedWait {
        fn read_u64(&mut self, addr: u64) -> Option<u64> {
            match addr {
                0x1000 => Some(self.timeout.0),
                0x1008 => Some(self.timeout.1),
                _ => None,
            }
        }
        fn clock_now(&mut self, _: shape::Clock) -> Option<Duration> {
            Some(Duration::from_secs(100))
        }
    }

    /// [`TimedWait`] that counts the reads of the task's memory.
    struct CountingWait {
        wait: TimedWait,
        reads: usize,
    }

    impl Probe for CountingWait {
        fn read_u64(&mut self, addr: u64) -> Option<u64> {
            self.reads += 1;
            self.wait.read_u64(addr)
        }
        fn clock_now(&mut self, clock: shape::Clock) -> Option<Duration> {
            self.wait.clock_now(clock)
        }
    }

    /// Every timed futex wait a rule with shape predicates intercepts was shaped whole, its timespec read for a
    /// `within=` no rule asked about (and, on seccomp, twice: the supervisor's shape was computed again in
    /// `decide`). Deciding reads it only for a rule that asks; the log of an injected call still has it.
    #[test]
    fn regression_every_timed_wait_read_its_timespec_for_a_within_no_rule_asked_about() {
        let wait = Call {
            args: [
                0x2000,
                (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as u64,
                0,
                0x1000,
                0,
                0,
            ],
            ..call("futex")
        };
        let mut probe = CountingWait {
            wait: TimedWait {
                timeout: (0, 300_000_000),
            },
            reads: 0,
        };
        let mut d = Decider::new(vec![fault("futex:EAGAIN:p=0:op=FUTEX_WAIT_PRIVATE")], 1);
        assert_eq!(d.decide(&wait, &mut probe), None);
        assert_eq!(probe.reads, 0, "no rule asks about within=");
        let mut d = Decider::new(vec![fault("futex:EAGAIN:op=FUTEX_WAIT_PRIVATE")], 1);
        let shape = d.shape_for(wait.syscall, &wait.args, &mut probe);
        assert_eq!(shape.get(shape::Key::Within), None);
        assert!(d.decide_with(&wait, &mut probe, Some(shape)).is_some());
        let log = d.finish(vec!["app".into()], "test", None, false);
        assert_eq!(
            log.injections[0]
                .shape
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("op=FUTEX_WAIT_PRIVATE:timeout=yes:within=1s"),
            "the log has the whole shape"
        );
        let mut d = Decider::new(vec![fault("futex:EAGAIN:within=1s")], 1);
        probe.reads = 0;
        assert!(d.decide(&wait, &mut probe).is_some());
        assert!(probe.reads > 0, "asked: read");
    }

    /// Found on filelock's suite under `--explore plausible`: an injected futex ETIMEDOUT came at once, before the
    /// wait's own timeout, which the kernel never does, and a test that counts a blocking wait's rounds failed
    /// (`test_lock_descriptor_blocking_wait_does_not_spin`, 2/5 runs). An ETIMEDOUT is held until the call's
    /// timeout has passed (relative for FUTEX_WAIT, absolute for FUTEX_WAIT_BITSET); its log says how long; a
    /// replay holds it again; a rule's own `delay=` stands; another errno is not held.
    #[test]
    fn regression_an_injected_etimedout_came_before_the_waits_timeout() {
        let wait = |op: i32| Call {
            args: [0x2000, op as u64, 0, 0x1000, 0, u64::from(u32::MAX)],
            ..call("futex")
        };
        let mut d = Decider::new(vec![fault("futex:ETIMEDOUT")], 1);
        assert!(d.may_hold(), "an ETIMEDOUT rule may hold calls");
        let relative = d
            .decide(
                &wait(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                &mut TimedWait {
                    timeout: (0, 300_000_000),
                },
            )
            .unwrap();
        assert_eq!(relative.delay, Some(Duration::from_millis(300)));
        // An absolute deadline 2.5 s after the clock's 100 s.
        let bitset = libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG;
        let absolute = d
            .decide(
                &wait(bitset),
                &mut TimedWait {
                    timeout: (102, 500_000_000),
                },
            )
            .unwrap();
        assert_eq!(absolute.delay, Some(Duration::from_millis(2500)));
        let passed = d
            .decide(&wait(bitset), &mut TimedWait { timeout: (99, 0) })
            .unwrap();
        assert_eq!(
            passed.delay,
            Some(Duration::ZERO),
            "a deadline already passed waits nothing"
        );
        // No timeout (a null pointer), or one that cannot be read: answered at once, as before.
        let untimed = Call {
            args: [0x2000, bitset as u64, 0, 0, 0, 0],
            ..call("futex")
        };
        assert_eq!(d.decide(&untimed, &mut RegistersOnly).unwrap().delay, None);
        assert_eq!(d.decide(&wait(bitset), &mut RegistersOnly).unwrap().delay, None);
        let log = d.finish(vec!["app".into()], "test", None, false);
        assert_eq!(log.injections[0].delay_ns, Some(300_000_000));
        let mut replay = Decider::replay(&log);
        let again = replay
            .decide(
                &wait(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                &mut TimedWait {
                    timeout: (0, 300_000_000),
                },
            )
            .unwrap();
        assert_eq!(again.delay, Some(Duration::from_millis(300)));
        let mut own = Decider::new(vec![fault("futex:ETIMEDOUT:delay=1ms")], 1);
        let held = own
            .decide(
                &wait(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                &mut TimedWait { timeout: (5, 0) },
            )
            .unwrap();
        assert_eq!(held.delay, Some(Duration::from_millis(1)));
        let mut other = Decider::new(vec![fault("futex:EINTR")], 1);
        assert!(!other.may_hold());
        let eintr = other
            .decide(
                &wait(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                &mut TimedWait { timeout: (5, 0) },
            )
            .unwrap();
        assert_eq!(eintr.delay, None);
    }

    /// Issue 14 item 5: the rules a call let run is watched for are the ones that matched it and have an errno, and
    /// only for the call just decided.
    #[test]
    fn a_call_let_run_is_watched_for_the_matching_rules_with_an_errno() {
        let mut d = Decider::new(
            vec![
                fault("openat:ENOENT:p=0"),
                fault("openat:delay=5ms:p=0"),
                fault("openat,read:EACCES:p=0"),
            ],
            1,
        );
        assert_eq!(d.decide(&call("openat"), &mut RegistersOnly), None);
        assert_eq!(
            d.watch_result(),
            [0, 2],
            "the latency fault has no errno to watch for"
        );
        assert_eq!(d.decide(&call("getpid"), &mut RegistersOnly), None);
        assert!(
            d.watch_result().is_empty(),
            "an untargeted call leaves nothing from the last one"
        );
        d.decide(&call("read"), &mut RegistersOnly);
        assert_eq!(d.watch_result(), [2]);
        d.switch().store(false, Ordering::Relaxed);
        d.decide(&call("openat"), &mut RegistersOnly);
        assert!(
            d.watch_result().is_empty(),
            "nothing is matched while switched off"
        );
        d.sees_results();
        d.natural_failure(&[0, 2], Errno::parse("ENOENT").unwrap());
        let log = d.finish(vec![], "ptrace", None, false);
        let natural: Vec<Option<u64>> = log.rules.iter().map(|r| r.natural).collect();
        assert_eq!(natural, [Some(1), None, Some(0)]);
    }

    /// A log truncated at the cap (`ledger::MAX_LOGGED`) lacks the injections after it: `--replay` refuses it,
    /// saying so, rather than replay part of the run.
    #[test]
    fn a_truncated_log_is_not_replayed() {
        let mut d = Decider::new(vec![fault("openat:ENOENT")], 1);
        for _ in 0..5 {
            d.decide(&call("openat"), &mut RegistersOnly);
        }
        let mut log = d.finish(vec!["app".into()], "test", None, false);
        assert_eq!((log.injections.len(), log.truncated_after), (5, None));
        assert_eq!(log.replay_problem(), None);
        log.injections.truncate(2);
        log.truncated_after = Some(2);
        let problem = log.replay_problem().expect("refused");
        assert!(
            problem.starts_with("it was truncated after 2 entries (of 5 injections)"),
            "{problem}"
        );
        let text = serde_json::to_value(&log).unwrap();
        assert_eq!(text["truncated_after"], 2, "the log says it was truncated");
    }

    #[test]
    fn the_switch_stops_and_restarts_injection_without_shifting_indices() {
        let mut d = Decider::new(vec![fault("openat:ENOENT:p=0.5")], 4);
        let mut reference = Decider::new(vec![fault("openat:ENOENT:p=0.5")], 4);
        let switch = d.switch();
        let mut got = Vec::new();
        for i in 0..300 {
            switch.store(!(100..200).contains(&i), Ordering::Relaxed);
            got.push(d.decide(&call("openat"), &mut RegistersOnly).is_some());
        }
        let want: Vec<bool> = (0..300)
            .map(|i| {
                reference.decide(&call("openat"), &mut RegistersOnly).is_some() && !(100..200).contains(&i)
            })
            .collect();
        assert_eq!(got, want);
        let log = d.finish(vec![], "test", None, false);
        assert_eq!(
            log.rules[0].matched, 200,
            "calls while switched off are not matched"
        );
    }

    /// The calls of two threads, `a` then `b`, in the order `order` gives (true: `a`'s next call); returns which
    /// of each thread's calls were injected, in that thread's order.
    fn interleaved(decider: &mut Decider, order: &[bool]) -> (Vec<bool>, Vec<bool>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for &first in order {
            let c = Call {
                thread: Some(if first { "0.1" } else { "0.2" }),
                tid: if first { 2 } else { 3 },
                ..call("openat")
            };
            let injected = decider.decide(&c, &mut RegistersOnly).is_some();
            if first { &mut a } else { &mut b }.push(injected);
        }
        (a, b)
    }

    /// Two interleavings of the same calls: `a a b b a b …` and `b a b a …`.
    fn orders(n: usize) -> (Vec<bool>, Vec<bool>) {
        let one: Vec<bool> = (0..2 * n).map(|i| i < n).collect();
        let two: Vec<bool> = (0..2 * n).map(|i| i % 2 == 1).collect();
        (one, two)
    }

    /// Issue 15 item 4: keyed by thread and the thread's own index, the same seed fails the same calls of each
    /// thread however the threads interleave.
    #[test]
    fn thread_keys_make_rolls_independent_of_interleaving() {
        let (one, two) = orders(200);
        let rule = || vec![fault("openat:ENOENT:p=0.2")];
        let first = interleaved(&mut Decider::new(rule(), 3), &one);
        let second = interleaved(&mut Decider::new(rule(), 3), &two);
        assert_eq!(first, second);
        assert!(first.0.iter().any(|x| *x) && first.1.iter().any(|x| *x));
        assert_ne!(first.0, first.1, "the threads roll apart");
        // Without thread keys the tree-wide index decides, and the interleaving moves the injections.
        let keyless = |order: &[bool]| {
            let mut d = Decider::new(rule(), 3);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for &first in order {
                let injected = d.decide(&call("openat"), &mut RegistersOnly).is_some();
                if first { &mut a } else { &mut b }.push(injected);
            }
            (a, b)
        };
        assert_ne!(keyless(&one), keyless(&two));
    }

    /// A log with thread keys replays by them: the same calls of each thread fail under another interleaving, and
    /// the replay's log names the same (thread, thread index) pairs.
    #[test]
    fn a_replay_matches_by_thread_key_whatever_the_interleaving() {
        let (one, two) = orders(150);
        let mut original = Decider::new(vec![fault("openat:ENOENT,EIO:p=0.1")], 8);
        let want = interleaved(&mut original, &one);
        let log = original.finish(vec!["app".into()], "test", None, false);
        assert!(
            log.injections
                .iter()
                .all(|i| i.thread.is_some() && i.thread_index.is_some())
        );
        let mut replay = Decider::replay(&log);
        assert_eq!(interleaved(&mut replay, &two), want);
        let replayed = replay.finish(vec!["app".into()], "test", None, false);
        let keys = |l: &InjectionLog| {
            let mut k: Vec<_> = l
                .injections
                .iter()
                .map(|i| (i.thread.clone(), i.thread_index, i.effect))
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(&replayed), keys(&log));
    }

    /// A log made before thread keys has none: it replays by the tree-wide index, as it always did.
    #[test]
    fn a_log_without_thread_keys_replays_by_tree_index() {
        let mut original = Decider::new(vec![fault("openat:ENOENT:p=0.3")], 2);
        let want = run(&mut original, "openat", 50);
        let log = original.finish(vec!["app".into()], "test", None, false);
        let mut text = serde_json::to_value(&log).unwrap();
        for inj in text["injections"].as_array_mut().unwrap() {
            let inj = inj.as_object_mut().unwrap();
            assert!(inj.get("thread").is_none(), "no key without a thread: {inj:?}");
            inj.remove("thread_index");
        }
        let old: InjectionLog = serde_json::from_value(text).unwrap();
        let mut replay = Decider::replay(&old);
        // Even calls that now come with thread keys: the old log's indices decide.
        let got: Vec<bool> = (0..50)
            .map(|i| {
                let c = Call {
                    thread: Some(if i % 2 == 0 { "0" } else { "0.1" }),
                    ..call("openat")
                };
                replay.decide(&c, &mut RegistersOnly).is_some()
            })
            .collect();
        assert_eq!(got, want);
    }

    /// Windows and `max` keep counting the rule's matches over the whole tree (harness/conformance.rs relies on
    /// it): `nth=3` fails the third matching call whichever thread makes it.
    #[test]
    fn windows_count_over_the_whole_tree() {
        let mut d = Decider::new(vec![fault("openat:ENOENT:nth=3")], 0);
        let (a, b) = interleaved(&mut d, &[true, false, false, true]);
        assert_eq!((a, b), (vec![false, false], vec![false, true]));
        let mut d = Decider::new(vec![fault("openat:ENOENT:max=3")], 0);
        let (a, b) = interleaved(&mut d, &[false, true, false, true, true]);
        assert_eq!((a, b), (vec![true, false, false], vec![true, true]));
    }

    #[test]
    fn only_a_lone_unconditional_rule_may_run_in_the_kernel() {
        let sc = |n| Syscall::parse(n).unwrap();
        let mut d = Decider::new(
            vec![
                fault("getppid,read:EPERM"),
                fault("openat:ENOENT:p=0.5"),
                fault("read:EIO:p=0.1"),
            ],
            1,
        );
        assert_eq!(d.unconditional_errno(sc("getppid")), Errno::parse("EPERM").ok());
        assert_eq!(d.unconditional_errno(sc("openat")), None, "p < 1");
        assert_eq!(
            d.unconditional_errno(sc("read")),
            None,
            "two rules: counts would be lost"
        );
        assert_eq!(d.unconditional_errno(sc("write")), None);
        d.failed_unasked(sc("getppid"));
        d.decide(&call("read"), &mut RegistersOnly);
        let log = d.finish(vec![], "test", None, false);
        assert_eq!(log.rules[0].in_kernel, [sc("getppid")]);
        assert_eq!(
            (log.rules[0].matched, log.rules[0].injected),
            (1, 1),
            "its read was counted"
        );

        // A replay fails every call of an in-kernel syscall again, logging each one, and may run it in the kernel.
        let mut replay = Decider::replay(&log);
        assert_eq!(
            replay.unconditional_errno(sc("getppid")),
            Errno::parse("EPERM").ok()
        );
        assert_eq!(
            replay
                .decide(&call("getppid"), &mut RegistersOnly)
                .map(|d| d.rule),
            Some(0)
        );
        assert_eq!(
            replay
                .decide(&call("getppid"), &mut RegistersOnly)
                .map(|d| d.rule),
            Some(0)
        );
        let replayed = replay.finish(vec![], "test", None, false);
        assert_eq!(
            replayed.injections.iter().map(|i| i.index).collect::<Vec<_>>(),
            [1, 2]
        );
    }
}
