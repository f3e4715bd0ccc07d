//! What every backend implements and what they share, as a crate of its own on the core, the sys layer and the
//! filter compiler: the [`Backend`] trait with its [`Mode`], [`Probe`] and [`Outcome`], the [`BackendError`] a
//! backend's own errors are wrapped in ([`BackendError::own`]), the [`Target`] a backend launches, the
//! [`control::Control`] it publishes the target through, what the tracers learn about a stopped call
//! ([`facts`]), who a task's process is ([`lineage`]) and the eBPF counters' decoding ([`counts`]).
//!
//! It names no backend: `phoebe`'s `backend` module holds the three and the lookup between them, and re-exports
//! this crate under its old paths (`crate::backend::Backend`, `crate::backend::facts`, `crate::control`).
//! `docs/architecture.md` maps the crates.

pub mod control;
pub mod counts;
pub mod facts;
pub mod lineage;
pub mod target;

use std::{borrow::Cow, collections::HashSet, error::Error, fmt, time::Duration};

use phoebe_core::{
    decide::Decider,
    hint::{Hint, Hinted},
    model::{Draws, FaultSpec, ObservationBuilder, Syscall, TargetExit, shape::ShapeCoverage},
};

use self::control::Control;
pub use self::target::Target;

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

    /// An observer a campaign starts once and lends to the `phoebe observe` of each of its baseline runs, when
    /// this backend's start-up is worth paying once (eBPF: the verifier's pass over its programs); `None` when
    /// every run starts its own (ptrace: nothing to load).
    fn campaign_observer(&self) -> Result<Option<Box<dyn CampaignObserver>>, BackendError> {
        Ok(None)
    }
}

/// See [`Backend::campaign_observer`]. Dropping it unloads what it holds (file descriptors only: it goes with
/// the process, killed or not).
pub trait CampaignObserver: Send {
    /// Readies the observer for one run (nothing counted yet, attached) and makes `cmd`, a `phoebe observe`
    /// with this backend and without `--latency`, use it instead of starting its own.
    fn lend(&mut self, cmd: &mut std::process::Command) -> Result<(), BackendError>;
    /// The run it was lent to has ended (its `phoebe observe` exited): stops observing until the next `lend`.
    fn reclaim(&mut self);
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

/// Why a backend could not run a job. Messages name the step; its `Hinted` impl says what to do, where one helps.
/// Errors only one backend has are that backend's own type, wrapped by [`BackendError::own`] (each backend's
/// `From` impl): their message and causes are this error's, and their hint is kept with them.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Own(OwnError),
    #[error("cannot execute '{command}': {source}")]
    Exec {
        command: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot build the seccomp filter")]
    FilterBuild(#[source] phoebe_filter::FilterError),
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

impl BackendError {
    /// One backend's own error, wrapped: its message and causes are the wrapper's, and its hint (asked now, as
    /// data) is the wrapper's too.
    pub fn own<E: Error + Hinted + Send + Sync + 'static>(error: E) -> BackendError {
        let hint = error.hint().map(Cow::into_owned);
        BackendError::Own(OwnError {
            error: Box::new(error),
            hint,
        })
    }

    /// One backend's own error that gives no hint of its own (its causes may: a chain asks them).
    pub fn own_unhinted<E: Error + Send + Sync + 'static>(error: E) -> BackendError {
        BackendError::Own(OwnError {
            error: Box::new(error),
            hint: None,
        })
    }
}

/// A backend's own error inside a [`BackendError`]: shows as that error, with its causes, and keeps its hint.
#[derive(Debug)]
pub struct OwnError {
    error: Box<dyn Error + Send + Sync + 'static>,
    hint: Option<String>,
}

impl fmt::Display for OwnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for OwnError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

impl Hinted for BackendError {
    fn hint(&self) -> Option<Cow<'_, str>> {
        match self {
            BackendError::Own(own) => own.hint.as_deref().map(Cow::Borrowed),
            BackendError::CannotObserve { .. } => Some(Hint::UsePtrace.into()),
            BackendError::Unsupported { hint, .. } => hint.map(Cow::from),
            BackendError::Exec { .. }
            | BackendError::FilterBuild(_)
            | BackendError::Wait { .. }
            | BackendError::Thread { .. } => None,
        }
    }
}
