//! Backends: the mechanisms that run a target and stop, observe or fail its system calls.
//!
//! Each backend turns kernel stops into the core's types (`model`, `decide`); none defines its own event or
//! model types. Owns: the three backends, the [`backend`] lookup between them, the backend chosen for rules
//! ([`for_rules`]) and for observing ([`default_observer`]). What every backend implements and shares — the
//! [`Backend`] trait, its [`Mode`], [`Probe`] and [`Outcome`], [`BackendError`], [`Target`], `facts`, `lineage`,
//! `counts` — is the `phoebe-backend-common` crate (`src/backend-common`), re-exported here under its old paths;
//! the filter compiler is `phoebe-filter` (`src/filter`). Does not own: deciding (see `crate::decide`),
//! aggregation (see `model::ObservationBuilder`) or machine-wide facts (`sys::host`).
//!
//! A crate of its own (`phoebe-backend`) above the three backends' crates: the campaign and the binary ask it
//! for a backend; no backend can ask it (Cargo refuses the cycle).

/// The three backends: crates of their own (`src/backend-ebpf`, `src/backend-ptrace`, `src/backend-seccomp`).
pub use phoebe_backend_ebpf as ebpf;
pub use phoebe_backend_ptrace as ptrace;
pub use phoebe_backend_seccomp as seccomp;

pub use phoebe_backend_common::{
    Backend, BackendError, BackendKind, CampaignObserver, Capability, Mode, ModeKind, Outcome, OwnError,
    Probe, Target, counts, facts, lineage, refuse_short, target,
};
/// The classic-BPF compiler the ptrace and seccomp backends build their filters with: a crate of its own.
pub use phoebe_filter as filter;

use phoebe_core::model::FaultSpec;

/// The backend for `faults` when none is given: `inject`'s choice, and the one named for experiments another
/// backend skipped (`--backend X runs them`). seccomp, the fast unprivileged injector, when its own
/// [`Backend::check_rules`] accepts them all, else ptrace, which honours `when=exit` too. The rules alone
/// decide (nothing is probed), so every run, report, shard and resume names the same backend.
pub fn for_rules<'f>(faults: impl IntoIterator<Item = &'f FaultSpec>) -> BackendKind {
    let faults: Vec<&FaultSpec> = faults.into_iter().collect();
    match backend(BackendKind::Seccomp).check_rules(&faults) {
        Ok(()) => BackendKind::Seccomp,
        Err(_) => BackendKind::Ptrace,
    }
}

/// The backend that runs every one of a report's skipped experiments ([`for_rules`] of all their rules), or
/// `None` when nothing was skipped: what the reports' "--backend X runs them" names (`Report::skipped_backend`).
pub fn runs_skipped(skipped: &[phoebe_core::model::Skipped]) -> Option<String> {
    (!skipped.is_empty()).then(|| {
        for_rules(skipped.iter().flat_map(|s| &s.faults))
            .name()
            .to_owned()
    })
}

/// The hints of every error type a backend run can give (the backends' own, `BackendError`, `TargetError`,
/// `FilterError`) and of the layers below (`phoebe_sys::error::hints_of`): the registry this crate's callers
/// extend with their own types (`phoebe`'s `hint::of`).
pub fn hints_of<'e>(e: &'e (dyn std::error::Error + 'static)) -> Vec<std::borrow::Cow<'e, str>> {
    use phoebe_core::hint::ask;
    [
        phoebe_sys::error::hints_of,
        ask::<BackendError>,
        ask::<target::TargetError>,
        ask::<filter::FilterError>,
        ptrace::own_hints_of,
        ask::<ebpf::EbpfError>,
    ]
    .iter()
    .flat_map(|ask| ask(e))
    .collect()
}

/// The backend of `kind`.
pub fn backend(kind: BackendKind) -> &'static dyn Backend {
    match kind {
        BackendKind::Ptrace => &ptrace::PtraceBackend,
        BackendKind::Seccomp => &seccomp::SeccompBackend,
        BackendKind::Ebpf => &ebpf::EbpfBackend,
    }
}

/// The observer to use when the user named none: eBPF wherever it can observe (in the kernel, at a small fraction
/// of ptrace's cost), otherwise ptrace with a one-line note on why and on what ptrace distorts.
pub fn default_observer() -> (BackendKind, Option<String>) {
    let observe = backend(BackendKind::Ebpf).probe_observe();
    if observe.available {
        return (BackendKind::Ebpf, None);
    }
    (
        BackendKind::Ptrace,
        Some(format!(
            "observing with ptrace, as eBPF cannot observe here ({}): ptrace stops the program at every call, \
             which slows it and can inflate timing-dependent errors (futex contention)",
            observe.reason
        )),
    )
}

#[cfg(test)]
mod tests {
    use phoebe_core::{
        decide::Decider,
        hint::Hint,
        model::{Draws, FaultSpec, shape::ShapeCoverage},
    };

    use super::*;

    /// An error and its causes in words, with the hints this crate's registry finds.
    fn chain(e: &(dyn std::error::Error + 'static)) -> phoebe_sys::error::Chain {
        phoebe_sys::error::Chain::asking(e, hints_of)
    }

    fn rules(specs: &[&str]) -> Vec<FaultSpec> {
        specs.iter().map(|s| FaultSpec::parse(s).unwrap()).collect()
    }

    #[test]
    fn a_backend_own_error_keeps_its_message_and_cause_when_wrapped() {
        use std::error::Error as _;
        let err = BackendError::from(ptrace::PtraceError::Trace {
            pid: 7,
            source: nix::errno::Errno::EPERM,
        });
        assert_eq!(
            err.to_string(),
            "ptrace failed while tracing pid 7: EPERM: Operation not permitted"
        );
        assert_eq!(
            err.source().and_then(|s| s.downcast_ref::<nix::errno::Errno>()),
            Some(&nix::errno::Errno::EPERM)
        );
        // Its hint is kept with it: the chain says it once, as `main` prints it.
        let filter = BackendError::from(ptrace::PtraceError::Filter {
            command: "true".into(),
            source: nix::errno::Errno::EACCES,
        });
        let chain = chain(&filter);
        assert_eq!(
            chain.message(),
            "cannot install the seccomp filter for 'true': EACCES: Permission denied"
        );
        assert_eq!(chain.hints().len(), 1, "{chain:?}");
        assert!(
            chain.hints()[0].ends_with("`--syscalls` can be left out to trace without a filter"),
            "{chain:?}"
        );
    }

    #[test]
    fn only_ebpf_draws_in_the_kernel_times_calls_only_when_asked_and_learns_shapes_in_the_kernel() {
        for kind in [BackendKind::Ptrace, BackendKind::Seccomp] {
            assert_eq!(backend(kind).draws(), Draws::Seeded, "{kind:?}");
            assert!(backend(kind).measures_latency(false), "{kind:?}");
            assert_eq!(backend(kind).observed_shapes(), ShapeCoverage::All, "{kind:?}");
        }
        let ebpf = backend(BackendKind::Ebpf);
        assert_eq!(ebpf.draws(), Draws::InKernel);
        assert!(!ebpf.measures_latency(false) && ebpf.measures_latency(true));
        assert_eq!(ebpf.observed_shapes(), ShapeCoverage::InKernel);
    }

    #[test]
    fn the_backend_for_rules_is_seccomp_unless_a_rule_needs_the_call_to_run_first() {
        let faults = |specs: &[&str]| -> Vec<FaultSpec> {
            specs.iter().map(|s| FaultSpec::parse(s).unwrap()).collect()
        };
        assert_eq!(for_rules(&faults(&[])), BackendKind::Seccomp);
        assert_eq!(
            for_rules(&faults(&["futex:EAGAIN", "mmap:ENOMEM"])),
            BackendKind::Seccomp
        );
        assert_eq!(
            for_rules(&faults(&["futex:EAGAIN", "write:EIO:when=exit"])),
            BackendKind::Ptrace
        );
        // short= lets the call run with a lower count, which only the tracer can set.
        assert_eq!(for_rules(&faults(&["read:short=1"])), BackendKind::Ptrace);
        assert_eq!(
            for_rules(&faults(&["futex:EAGAIN", "sendto:short=50%"])),
            BackendKind::Ptrace
        );
    }

    #[test]
    fn short_rules_are_refused_naming_the_rule_and_the_backend_that_runs_them() {
        assert!(
            refuse_short(
                &rules(&["read:EINTR:p=0.1"]).iter().collect::<Vec<_>>(),
                "seccomp",
                "cannot"
            )
            .is_ok()
        );
        let err = refuse_short(
            &rules(&["openat:ENOENT", "read:short=1:fd=pipe"])
                .iter()
                .collect::<Vec<_>>(),
            "seccomp",
            "cannot",
        )
        .unwrap_err();
        let said = chain(&err);
        assert_eq!(
            said.message(),
            "fault 'read:short=1:fd=pipe' cannot run on the seccomp backend: cannot"
        );
        assert_eq!(
            said.hints(),
            [
                "use --backend ptrace, which runs short= (it lowers the call's count at its entry and restores it at \
              its exit)"
            ]
        );
        let mut short = Decider::new(rules(&["read:short=1:fd=pipe"]), 1);
        let mut note = |_: &str| {};
        let mode = Mode::Inject {
            decider: &mut short,
            note: &mut note,
        };
        assert!(ptrace::PtraceBackend.check(&mode).is_ok(), "ptrace runs short=");
        let refused = chain(&seccomp::SeccompBackend.check(&mode).unwrap_err());
        assert!(
            refused.message().starts_with(
                "fault 'read:short=1:fd=pipe' cannot run on the seccomp backend: a call it lets run"
            ),
            "{refused:?}"
        );
        assert_eq!(refused.hints(), [Hint::PtraceRunsShort.text()]);
    }
}
