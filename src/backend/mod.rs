//! Backends: the mechanisms that run a target and stop, observe or fail its system calls.
//!
//! Each backend turns kernel stops into the core's types (`model`, `decide`); none defines its own event or
//! model types. Owns: the [`Backend`] trait every backend implements, the
//! [`Mode`] it runs in, the [`backend`] lookup, the [`Outcome`] a run returns and the [`Probe`] of what a backend
//! can do on this machine (each backend probes itself, in its `probe.rs`). Does not own: deciding (see
//! `crate::decide`), aggregation (see `model::ObservationBuilder`) or machine-wide facts (`sys::host`).

pub mod counts;
pub mod ebpf;
pub mod facts;
pub mod lineage;
pub mod ptrace;
pub mod seccomp;
pub mod target;

use std::{borrow::Cow, collections::HashSet, time::Duration};

use crate::{
    control::Control,
    decide::Decider,
    hint::{Hint, Hinted},
    model::{Draws, FaultSpec, ObservationBuilder, Syscall, TargetExit, shape::ShapeCoverage},
};

pub use self::target::Target;
/// The classic-BPF compiler the ptrace and seccomp backends build their filters with: a crate of its own.
pub use phoebe_filter as filter;

/// The mechanisms phoebe can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// ptrace (+ a seccomp RET_TRACE filter when only some syscalls matter): observes and injects, entry or exit.
    Ptrace,
    /// seccomp user notification: injects at entry only; a targeted call makes one round trip to phoebe, the
    /// others run at native speed; cannot observe.
    Seccomp,
    /// eBPF, in the kernel (root): observes with raw tracepoints at near-native speed; injects with BPF LSM
    /// programs where the kernel allows them (file opens, reads, writes and socket calls only).
    Ebpf,
}

impl BackendKind {
    /// Every backend, in the order `phoebe doctor` lists them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Ptrace, BackendKind::Seccomp, BackendKind::Ebpf];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ptrace => "ptrace",
            BackendKind::Seccomp => "seccomp",
            BackendKind::Ebpf => "ebpf",
        }
    }

    /// The backend named `name` (as files and `--backend` write it).
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Refuses a partial-transfer rule (`short=`) on a backend that cannot run it (all but ptrace): `why` says what
/// this backend lacks.
pub fn refuse_short(faults: &[&FaultSpec], backend: &'static str, why: &str) -> Result<(), BackendError> {
    match faults.iter().find(|f| f.short.is_some()) {
        Some(fault) => Err(BackendError::Unsupported {
            fault: fault.to_string(),
            backend,
            reason: why.to_owned(),
            hint: Some(Hint::PtraceRunsShort),
        }),
        None => Ok(()),
    }
}

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

/// What a backend is asked to do with one run of a target: observe it, with the options observing takes, or
/// inject faults into it, with the rules a decider holds.
pub enum Mode<'a> {
    Observe {
        /// Record completed calls here.
        builder: &'a mut ObservationBuilder,
        /// Record only these syscalls (`--syscalls`); `None` records all.
        record_only: Option<&'a HashSet<Syscall>>,
        /// Measure each call's latency where that costs extra (eBPF: a second tracepoint); ptrace always does.
        latency: bool,
    },
    Inject {
        /// Asked about every call of a syscall it targets.
        decider: &'a mut Decider,
        /// Handed one line for the user when the backend has something to say before the target starts (eBPF:
        /// how its hooks were attached).
        note: &'a mut dyn FnMut(&str),
    },
}

/// The two things a backend may be asked to do, without what doing them takes (that is [`Mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeKind {
    Observe,
    Inject,
}

impl ModeKind {
    /// Both modes, in the order `phoebe doctor` lists them.
    pub const ALL: [ModeKind; 2] = [ModeKind::Observe, ModeKind::Inject];

    /// The mode as the CLI and `phoebe doctor` name it.
    pub fn name(self) -> &'static str {
        match self {
            ModeKind::Observe => "observe",
            ModeKind::Inject => "inject",
        }
    }

    /// The mode named `name` (`"observe"` or `"inject"`).
    pub fn from_name(name: &str) -> Option<ModeKind> {
        ModeKind::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Whether a backend can do one mode on this machine, as its probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub available: bool,
    /// What the probe found: why it works, or exactly why not.
    pub reason: String,
    /// What to do about it, when it does not work.
    pub hint: Option<String>,
}

impl Capability {
    /// It works, because of `reason`.
    pub fn available(reason: impl Into<String>) -> Capability {
        Capability {
            available: true,
            reason: reason.into(),
            hint: None,
        }
    }

    /// It does not work, because of `reason`; `hint` says what to do about it.
    pub fn unavailable(reason: impl Into<String>, hint: Option<String>) -> Capability {
        Capability {
            available: false,
            reason: reason.into(),
            hint,
        }
    }
}

/// What a backend can do on this machine, per mode, from real probes of its own (what `phoebe doctor` prints, and
/// what `phoebe exec --backend X` asks before its first run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub observe: Capability,
    pub inject: Capability,
}

impl Probe {
    /// The capability for `mode`.
    pub fn get(&self, mode: ModeKind) -> &Capability {
        match mode {
            ModeKind::Observe => &self.observe,
            ModeKind::Inject => &self.inject,
        }
    }
}

/// One mechanism that runs a target. Refusals are decided by the backend, once, in [`Backend::check`]; `run`
/// checks first too, so a caller cannot skip it.
pub trait Backend: Sync {
    fn kind(&self) -> BackendKind;

    /// Whether this backend can honour `mode` (observe at all, every rule of a decider): the refusal names the
    /// rule and says what to do instead.
    fn check(&self, mode: &Mode<'_>) -> Result<(), BackendError>;

    /// Whether this backend can honour every one of `faults`, from the rules alone (no decider, nothing loaded):
    /// what `check` asks of an `Inject` mode's rules, and what `for_rules` and `campaign_skips` ask.
    fn check_rules(&self, faults: &[&FaultSpec]) -> Result<(), BackendError>;

    /// Why a campaign on this backend skips an experiment with these rules instead of running it, or `None`. By
    /// default never: a refusal fails the experiment's runs. eBPF skips what [`Backend::check_rules`] refuses,
    /// since its hooks cover some syscalls only and a synthesized plan routinely holds others.
    fn campaign_skips(&self, faults: &[&FaultSpec]) -> Option<BackendError> {
        let _ = faults;
        None
    }

    /// What `decider`'s rules really cover on this backend, for the user before a run, where that differs from
    /// the rules as written (eBPF: hooks are not syscalls); refuses a rule none of its mechanisms honours.
    fn describe(&self, decider: &Decider) -> Result<Option<String>, BackendError> {
        let _ = decider;
        Ok(None)
    }

    /// What this backend can do on this machine, found by loading, attaching or launching what it would (a probe
    /// child, a trivial program), then undoing it. Costs milliseconds: asked by `phoebe doctor` and once before a
    /// campaign, never per run.
    fn probe(&self) -> Probe;

    /// What [`Backend::probe`] says of observing, probing only that (choosing an observer, checking
    /// `--observer`: eBPF's inject probes cost tens of milliseconds more).
    fn probe_observe(&self) -> Capability {
        self.probe().observe
    }

    /// Who draws this backend's injection decisions: phoebe's seeded policy, unless the kernel rolls (eBPF).
    fn draws(&self) -> Draws {
        Draws::Seeded
    }

    /// Which components of a call's shape an observation on this backend records: all of them (the tracer reads
    /// the target's paths and descriptors), unless it sees only what its programs learn in the kernel (eBPF).
    fn observed_shapes(&self) -> ShapeCoverage {
        ShapeCoverage::All
    }

    /// Whether an observation on this backend measures each call's latency, `asked` or not (`--latency`): the
    /// tracer times every call anyway, unless measuring costs the target something the backend only pays when
    /// asked (eBPF).
    fn measures_latency(&self, asked: bool) -> bool {
        let _ = asked;
        true
    }

    /// Runs `target` in `mode` until its whole process tree has ended; `control` is where the backend publishes
    /// the target's pid and learns of interruptions.
    fn run(&self, target: &Target, mode: Mode<'_>, control: &Control) -> Result<Outcome, BackendError>;
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

impl<'a> Job<'a> {
    /// The job for `mode`.
    fn new<'m: 'a>(target: &'a Target, mode: Mode<'m>, control: &'a Control) -> Self {
        match mode {
            Mode::Observe {
                builder, record_only, ..
            } => Job {
                target,
                observer: Some(builder),
                record_only,
                decider: None,
                control,
            },
            Mode::Inject { decider, .. } => Job {
                target,
                observer: None,
                record_only: None,
                decider: Some(decider),
                control,
            },
        }
    }
}

/// One run of a target, as the ptrace tracer keeps it (built from a [`Mode`]; the other backends take the mode).
pub(crate) struct Job<'a> {
    pub target: &'a Target,
    /// Record completed calls here (observe mode).
    pub observer: Option<&'a mut ObservationBuilder>,
    /// Record only these syscalls (`--syscalls`); `None` records all.
    pub record_only: Option<&'a HashSet<Syscall>>,
    /// Ask this decider about every call of a syscall it targets (inject mode).
    pub decider: Option<&'a mut Decider>,
    /// Where the backend publishes the target's pid, and learns of interruptions.
    pub control: &'a Control,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The status of the process phoebe launched.
    pub exit: TargetExit,
    /// From the target's exec to the end of its whole process tree (zero if it never exec'd).
    pub duration: Duration,
    /// Things the user should know about the run, one sentence each (a `hint:` line may follow).
    pub warnings: Vec<String>,
}

/// Why a backend could not run a job. Messages name the step; its `Hinted` impl says what to do, where one helps. Errors only one
/// backend has are that backend's own type, wrapped here (their message and causes are this error's).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Ptrace(#[from] ptrace::PtraceError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Ebpf(#[from] ebpf::RunError),
    #[error("cannot execute '{command}': {source}")]
    Exec {
        command: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot build the seccomp filter")]
    FilterBuild(#[source] filter::FilterError),
    #[error("waitpid failed while waiting for the target's tasks: {source}")]
    Wait {
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot start a thread of phoebe ({what})")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {backend} backend cannot observe: {reason}")]
    CannotObserve {
        backend: &'static str,
        reason: &'static str,
    },
    #[error("fault '{fault}' cannot run on the {backend} backend: {reason}")]
    Unsupported {
        fault: String,
        backend: &'static str,
        reason: String,
        /// What to do instead, where one backend can.
        hint: Option<Hint>,
    },
}

impl Hinted for BackendError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            BackendError::Ptrace(e) => e.hint(),
            BackendError::CannotObserve { .. } => Some(Hint::UsePtrace.into()),
            BackendError::Unsupported { hint, .. } => hint.map(Cow::from),
            BackendError::Seccomp(_)
            | BackendError::Ebpf(_)
            | BackendError::Exec { .. }
            | BackendError::FilterBuild(_)
            | BackendError::Wait { .. }
            | BackendError::Thread { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FaultSpec;

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
        let chain = crate::hint::chain(&err);
        assert_eq!(
            chain.message(),
            "fault 'read:short=1:fd=pipe' cannot run on the seccomp backend: cannot"
        );
        assert_eq!(
            chain.hints(),
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
        let refused = crate::hint::chain(&seccomp::SeccompBackend.check(&mode).unwrap_err());
        assert!(
            refused.message().starts_with(
                "fault 'read:short=1:fd=pipe' cannot run on the seccomp backend: a call it lets run"
            ),
            "{refused:?}"
        );
        assert_eq!(refused.hints(), [Hint::PtraceRunsShort.text()]);
    }
}
