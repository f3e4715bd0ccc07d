//! The ptrace backend: observes every syscall exit and injects at entry (the call is skipped) or at exit (the
//! call runs, then its result is replaced), following threads, fork, vfork, clone3 and exec.
//!
//! When the job only needs some syscalls (inject only, or `--syscalls`), a seccomp `RET_TRACE` filter makes only
//! those stop; everything else runs at native speed. Otherwise every syscall stops twice (PTRACE_SYSCALL).
//! Recording and injection start at the target's exec: the launcher's own calls before it are never counted.
//! Owns: the tracer loop and the tracee bookkeeping; what ptrace can do on this machine is `probe.rs`'s. Raw
//! calls live in `sys.rs`; the tracer reaches them through `sys::Kernel`, which the unit tests below answer with
//! `fake.rs`.

pub mod attach;
#[cfg(test)]
mod fake;
mod probe;
pub mod sys;
#[cfg(test)]
mod tests;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use nix::{
    errno::Errno as NixErrno,
    sys::{
        ptrace::{Event, Options},
        wait::WaitPidFlag,
    },
    unistd::Pid,
};

use self::sys::{Kernel, Resume, SyscallStop};
use phoebe_backend_common::{
    BackendError, Mode, Outcome, Target,
    control::Control,
    facts::{FactCache, ProcProbe, Procfs, Source, read_sigaction, resolve_path, tgid_of},
    lineage::Lineage,
};
use phoebe_core::{
    decide::{Call, Decider},
    hint::Hint,
    model::{
        Effect, Errno, FaultSpec, Shape, Syscall, TargetExit, When,
        fault::SHORT_COUNT_ARG,
        shape::{ArgTest, shape_of},
    },
};
use phoebe_filter as filter;
use phoebe_sys::{
    launch::Step,
    wait::{self, Status},
};

/// The ptrace backend: observes and injects, at entry or exit.
pub struct PtraceBackend;

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
struct Job<'a> {
    pub target: &'a Target,
    /// Record completed calls here (observe mode).
    pub observer: Option<&'a mut phoebe_core::model::ObservationBuilder>,
    /// Record only these syscalls (`--syscalls`); `None` records all.
    pub record_only: Option<&'a std::collections::HashSet<Syscall>>,
    /// Ask this decider about every call of a syscall it targets (inject mode).
    pub decider: Option<&'a mut Decider>,
    /// Where the backend publishes the target's pid, and learns of interruptions.
    pub control: &'a Control,
}

/// The hints this crate's own error types give (`PtraceError`, `SpawnError`, `AttachError`): `phoebe`'s
/// `hint::of` asks it beside the other crates' registries.
pub fn own_hints_of<'e>(e: &'e (dyn std::error::Error + 'static)) -> Vec<std::borrow::Cow<'e, str>> {
    use phoebe_core::hint::ask;
    [
        ask::<PtraceError>,
        ask::<sys::SpawnError>,
        ask::<attach::AttachError>,
    ]
    .iter()
    .flat_map(|ask| ask(e))
    .collect()
}

/// Those and the hints of the layers below (`phoebe_sys::error::hints_of`): the registry the probe's one-line
/// errors are put into words with.
fn hints_of<'e>(e: &'e (dyn std::error::Error + 'static)) -> Vec<std::borrow::Cow<'e, str>> {
    let mut hints = phoebe_sys::error::hints_of(e);
    hints.extend(own_hints_of(e));
    hints
}

/// What only the ptrace backend fails at (a [`BackendError`] wraps it).
#[derive(Debug, thiserror::Error)]
pub enum PtraceError {
    #[error("cannot start '{command}' under {backend}")]
    Spawn {
        command: String,
        backend: &'static str,
        #[source]
        source: sys::SpawnError,
    },
    #[error("cannot install the seccomp filter for '{command}': {source}")]
    Filter {
        command: String,
        #[source]
        source: NixErrno,
    },
    #[error("ptrace failed while tracing pid {pid}: {source}")]
    Trace {
        pid: i32,
        #[source]
        source: NixErrno,
    },
}

impl phoebe_core::hint::Hinted for PtraceError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            PtraceError::Filter { .. } => Some(
                format!(
                    "{}; `--syscalls` can be left out to trace without a filter",
                    Hint::FilterPrivileges
                )
                .into(),
            ),
            PtraceError::Spawn { .. } | PtraceError::Trace { .. } => None,
        }
    }
}

impl From<PtraceError> for BackendError {
    fn from(e: PtraceError) -> Self {
        BackendError::own(e)
    }
}

impl phoebe_backend_common::Backend for PtraceBackend {
    fn kind(&self) -> phoebe_backend_common::BackendKind {
        phoebe_backend_common::BackendKind::Ptrace
    }

    fn check(&self, mode: &Mode<'_>) -> Result<(), BackendError> {
        match mode {
            Mode::Observe { .. } => Ok(()),
            Mode::Inject { decider, .. } => self.check_rules(&decider.faults().collect::<Vec<_>>()),
        }
    }

    /// Every rule: errnos at either side, latency faults, and short= too (the tracer lowers the count register at
    /// the entry and restores it at the exit).
    fn check_rules(&self, _faults: &[&FaultSpec]) -> Result<(), BackendError> {
        Ok(())
    }

    fn probe(&self) -> phoebe_backend_common::Probe {
        probe::probe()
    }

    fn run(&self, target: &Target, mode: Mode<'_>, control: &Control) -> Result<Outcome, BackendError> {
        self.check(&mode)?;
        run(Job::new(target, mode, control))
    }
}

/// Runs `job` under ptrace until the target's whole process tree has ended.
fn run(job: Job<'_>) -> Result<Outcome, BackendError> {
    let full = job.observer.is_some() && job.record_only.is_none();
    let filter_prog = if full { None } else { Some(build_filter(&job)?) };
    let options = Options::PTRACE_O_EXITKILL
        | Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACESECCOMP;
    let command = job.target.display.join(" ");
    let spawned = sys::spawn_traced(
        &job.target.program_c,
        &job.target.argv,
        filter_prog.as_deref(),
        options,
    )
    .map_err(|source| PtraceError::Spawn {
        command: command.clone(),
        backend: "ptrace",
        source,
    })?;
    job.control.begin(spawned.pid.as_raw());
    let mut decider = job.decider;
    if let Some(decider) = decider.as_deref_mut() {
        // Every matched call's exit stop shows its result: natural failures are counted beside injections.
        decider.sees_results();
    }
    let mut tracer = Tracer::new(
        sys::Real,
        Procfs,
        spawned.pid,
        full,
        job.observer,
        job.record_only,
        decider,
        job.control,
    );
    let result = tracer.trace();
    job.control.end();
    let root_exit = match result {
        Ok(()) => tracer.root_exit,
        Err(e) => {
            // Do not leave a tracee behind: EXITKILL would kill them when phoebe exits, but we may live on.
            tracer.kill_all();
            return Err(e);
        }
    };
    let exit = root_exit.unwrap_or(TargetExit::Signal(libc::SIGKILL));
    if tracer.started.is_none()
        && let Some(failure) = spawned.failure()
    {
        let source = failure.errno;
        return Err(match failure.step {
            Step::Filter => PtraceError::Filter { command, source }.into(),
            Step::Exec => BackendError::Exec { command, source },
            // Reported by the launcher before the child stops (and turned into a launch error there).
            Step::Contain => PtraceError::Spawn {
                command,
                backend: "ptrace",
                source: phoebe_sys::launch::LaunchError::Contain(source).into(),
            }
            .into(),
        });
    }
    let duration = tracer.started.map(|t| t.elapsed()).unwrap_or_default();
    Ok(Outcome {
        exit,
        duration,
        warnings: Vec::new(),
    })
}

/// The `SECCOMP_RET_DATA` of phoebe's own `RET_TRACE` filter ("ph"): a seccomp stop whose event message is
/// anything else comes from a filter the target installed itself, and is answered as the kernel would answer it
/// without a tracer ([`Tracer::on_foreign_trace`]).
pub const OWN_TRACE_DATA: u16 = 0x7068;

/// The RET_TRACE filter: stop only at the syscalls the job needs — for a syscall only injected, whose rules all
/// have shape predicates on registers, only at the calls they can match (the seccomp backend routes the same calls,
/// so call indices mean the same on both).
fn build_filter(job: &Job<'_>) -> Result<Vec<libc::sock_filter>, BackendError> {
    let mut policy = filter::Policy::new(filter::Action::Allow);
    let recorded: HashSet<Syscall> = job.record_only.cloned().unwrap_or_default();
    for sc in &recorded {
        policy.set(sc.number(), filter::Action::Trace(OWN_TRACE_DATA));
    }
    if let Some(decider) = &job.decider {
        for sc in decider.targets().filter(|sc| !recorded.contains(sc)) {
            match decider.register_guard(sc) {
                Some(guard) => policy.set_guarded(
                    sc.number(),
                    filter::Action::Trace(OWN_TRACE_DATA),
                    guard,
                    filter::Action::Allow,
                ),
                None => policy.set(sc.number(), filter::Action::Trace(OWN_TRACE_DATA)),
            };
        }
        // Every handler installed, when a rule asks whether a caught signal would interrupt a call (`caught=`).
        let rt_sigaction = Syscall::from_number(libc::SYS_rt_sigaction as u64);
        if decider.needs_handlers()
            && rt_sigaction.is_none_or(|sc| !recorded.contains(&sc) && !decider.is_targeted(sc))
        {
            policy.set_guarded(
                libc::SYS_rt_sigaction as u32,
                filter::Action::Trace(OWN_TRACE_DATA),
                vec![vec![ArgTest::NonZero { arg: 1 }]],
                filter::Action::Allow,
            );
        }
    }
    filter::compile(&policy).map_err(BackendError::FilterBuild)
}

/// A call in progress in one task, between its entry and exit stops.
struct InFlight {
    syscall: Option<Syscall>,
    entered: Instant,
    /// The error this call returns because phoebe injected it (at entry or at exit).
    injected: Option<Errno>,
    /// The signal an injection at the exit raises with its errno there (`Decision::signal`), and the thread group
    /// it goes to.
    signal_at_exit: Option<(i32, i32)>,
    /// A partial transfer (`short=`): the call runs with a lowered count, and this is the count it asked for,
    /// restored into its register at the exit.
    restore_count: Option<u64>,
    /// The call's shape, computed at entry (a descriptor may be gone at exit) when the observer records shapes.
    shape: Option<Shape>,
    /// The rules that matched the call and let it run: a natural failure at its exit counts for them
    /// (`Decider::watch_result`).
    watch: Vec<usize>,
}

#[derive(Default)]
struct Task {
    in_flight: Option<InFlight>,
    /// The task's thread group, read from /proc once (it changes only when a thread execs, which moves it).
    tgid: Option<i32>,
}

struct Tracer<'a, K, P> {
    /// The kernel, or the unit tests' fake (`fake.rs`).
    kernel: K,
    /// The tracees' `/proc` entries and memory (`facts::Procfs`), or the unit tests' recorded ones.
    facts: P,
    root: Pid,
    /// Every syscall stops (PTRACE_SYSCALL); otherwise only filtered ones (seccomp stops).
    full: bool,
    tasks: HashMap<Pid, Task>,
    /// When the target exec'd: recording and injection run from then on.
    started: Option<Instant>,
    root_exit: Option<TargetExit>,
    /// Tracees held at a stop by `delay=`, with when to resume them.
    delayed: Vec<(Instant, Pid, Resume)>,
    observer: Option<&'a mut phoebe_core::model::ObservationBuilder>,
    record_only: Option<&'a HashSet<Syscall>>,
    decider: Option<&'a mut phoebe_core::decide::Decider>,
    control: &'a Control,
    /// Facts of earlier calls (socket kinds, loaders), for call shapes.
    cache: FactCache,
    /// Each task's key, numbered at its parent's clone event (`backend::lineage`).
    lineage: Lineage,
    /// Stops of new tasks reported before their parent's clone event (waitpid reports tracees in no particular
    /// order): held, the task stopped, until the event numbers the task, so that its calls are keyed right.
    early: Vec<(Instant, Status)>,
}

/// How long a new task's stop waits for its parent's clone event before the task is numbered as one whose creator
/// is unknown (its parent was killed before the event was reported, say).
const EARLY_GRACE: Duration = Duration::from_millis(200);

impl<'a, K: Kernel, P: Source> Tracer<'a, K, P> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        kernel: K,
        facts: P,
        root: Pid,
        full: bool,
        observer: Option<&'a mut phoebe_core::model::ObservationBuilder>,
        record_only: Option<&'a HashSet<Syscall>>,
        decider: Option<&'a mut phoebe_core::decide::Decider>,
        control: &'a Control,
    ) -> Self {
        Tracer {
            kernel,
            facts,
            root,
            full,
            tasks: HashMap::new(),
            started: None,
            root_exit: None,
            delayed: Vec::new(),
            observer,
            record_only,
            decider,
            control,
            cache: FactCache::default(),
            lineage: Lineage::new(root.as_raw()),
            early: Vec::new(),
        }
    }

    fn trace(&mut self) -> Result<(), BackendError> {
        self.tasks.insert(self.root, Task::default());
        loop {
            let status = match self.wait()? {
                Some(status) => status,
                None => return Ok(()),
            };
            tracing::trace!(?status, "tracee stop");
            if let Some(exit) = status.exit() {
                self.early.retain(|(_, s)| s.pid() != status.pid());
                self.on_exit(status.pid(), exit);
                continue;
            }
            if !self.tasks.contains_key(&status.pid()) {
                // A new task, stopped before its parent's clone event came: held until the event numbers it.
                self.early.push((Instant::now(), status));
                continue;
            }
            self.dispatch(status)?;
            // Release the held stops of the tasks the event just numbered.
            while let Some(at) = self
                .early
                .iter()
                .position(|(_, s)| self.tasks.contains_key(&s.pid()))
            {
                let (_, held) = self.early.remove(at);
                self.dispatch(held)?;
            }
        }
    }

    /// Handles a stop of a known task.
    fn dispatch(&mut self, status: Status) -> Result<(), BackendError> {
        match status {
            Status::Syscall { pid } => self.on_syscall_stop(pid),
            Status::Event { pid, signal, event } => self.on_event(pid, signal, event),
            Status::Stopped { pid, signal } => {
                // Signal-delivery-stop: deliver the signal the target was meant to get (real-time ones too).
                self.tasks.entry(pid).or_default();
                self.resume(pid, self.default_resume(pid), Some(signal))
            }
            Status::Exited { .. } | Status::Signaled { .. } | Status::Continued { .. } => Ok(()),
        }
    }

    /// A held stop (see `early`) whose clone event has not come within [`EARLY_GRACE`]: its task is numbered as
    /// one whose creator phoebe missed (`0.xN`), and the stop handled.
    fn overdue_early(&mut self) -> Option<Status> {
        let (at, status) = *self.early.first()?;
        if at.elapsed() < EARLY_GRACE {
            return None;
        }
        self.early.remove(0);
        let pid = status.pid();
        tracing::debug!(
            pid = pid.as_raw(),
            "no clone event for a new task: its creator is unknown"
        );
        self.lineage.key_or_unknown(pid.as_raw());
        self.tasks.entry(pid).or_default();
        Some(status)
    }

    /// The next wait status, or `None` when no tracee is left. Honours pending `delay=` resumes.
    fn wait(&mut self) -> Result<Option<Status>, BackendError> {
        loop {
            self.resume_due()?;
            let flags = WaitPidFlag::__WALL
                | if self.delayed.is_empty() && self.early.is_empty() {
                    WaitPidFlag::empty()
                } else {
                    WaitPidFlag::WNOHANG
                };
            match self.kernel.wait(flags) {
                Ok(None) => {
                    if let Some(status) = self.overdue_early() {
                        return Ok(Some(status));
                    }
                    let next = self
                        .delayed
                        .iter()
                        .map(|d| d.0)
                        .min()
                        .unwrap_or_else(|| Instant::now() + Duration::from_millis(1));
                    std::thread::sleep(
                        next.saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(1)),
                    );
                }
                Ok(Some(status)) => return Ok(Some(status)),
                Err(NixErrno::EINTR) => {}
                Err(NixErrno::ECHILD) if self.delayed.is_empty() && self.early.is_empty() => return Ok(None),
                Err(NixErrno::ECHILD) if self.delayed.is_empty() => self.early.clear(),
                Err(NixErrno::ECHILD) => self.delayed.clear(),
                Err(source) => return Err(BackendError::Wait { source }),
            }
        }
    }

    fn resume_due(&mut self) -> Result<(), BackendError> {
        if self.delayed.is_empty() {
            // The common case, on every stop: no clock read, no allocation.
            return Ok(());
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|d| d.0 <= now);
        self.delayed = later;
        for (_, pid, how) in due {
            self.resume(pid, how, None)?;
        }
        Ok(())
    }

    /// How to restart `pid` when nothing special is needed: with PTRACE_SYSCALL when every call stops or when
    /// the task is inside a call whose exit we must see (fork, clone and exec events arrive mid-call),
    /// otherwise with PTRACE_CONT so that only the filter's calls stop.
    fn default_resume(&self, pid: Pid) -> Resume {
        if self.full || self.tasks.get(&pid).is_some_and(|t| t.in_flight.is_some()) {
            Resume::Syscall
        } else {
            Resume::Cont
        }
    }

    /// Restarts a tracee, delivering `sig` (a number: real-time signals too). ESRCH means it was killed meanwhile
    /// (its exit is reported next): not an error.
    fn resume(&mut self, pid: Pid, how: Resume, sig: Option<i32>) -> Result<(), BackendError> {
        unless_gone(pid, self.kernel.restart(pid, how, sig.unwrap_or(0))).map(drop)
    }

    fn on_exit(&mut self, pid: Pid, how: TargetExit) {
        self.tasks.remove(&pid);
        self.lineage.on_exit(pid.as_raw());
        self.control.remove_task(pid.as_raw());
        if pid == self.root {
            self.root_exit = Some(how);
        }
        if self.control.interrupted() && self.root_exit.is_some() {
            // The user asked to stop and the target is gone: take its leftover children with it.
            self.kill_all();
        }
    }

    fn kill_all(&mut self) {
        for pid in self.tasks.keys() {
            self.kernel.kill(*pid);
        }
    }

    fn on_event(&mut self, pid: Pid, sig: i32, event: i32) -> Result<(), BackendError> {
        self.tasks.entry(pid).or_default();
        const STOP: i32 = wait::EVENT_STOP;
        match event {
            e if e == Event::PTRACE_EVENT_SECCOMP as i32 => {
                // The event message is the winning filter's SECCOMP_RET_DATA. Of two RET_TRACE filters the most
                // recently installed one wins, so a target's own filter shows its own data even on a call that
                // phoebe's filter traces too. Full mode installs no filter: every seccomp stop is the target's.
                return match self.kernel.event_msg(pid) {
                    Ok(data) if !self.full && data == libc::c_long::from(OWN_TRACE_DATA) => {
                        self.on_syscall_stop(pid)
                    }
                    Ok(_) => self.on_foreign_trace(pid),
                    Err(NixErrno::ESRCH) => Ok(()),
                    Err(source) => Err(PtraceError::Trace {
                        pid: pid.as_raw(),
                        source,
                    }
                    .into()),
                };
            }
            e if e == Event::PTRACE_EVENT_FORK as i32
                || e == Event::PTRACE_EVENT_VFORK as i32
                || e == Event::PTRACE_EVENT_CLONE as i32 =>
            {
                if let Ok(child) = self.kernel.event_msg(pid) {
                    let child = Pid::from_raw(child as i32);
                    self.lineage.on_clone(pid.as_raw(), child.as_raw());
                    self.tasks.entry(child).or_default();
                    self.control.add_task(child.as_raw());
                }
            }
            e if e == Event::PTRACE_EVENT_EXEC as i32 => {
                // A non-leader thread that execs takes over the leader's pid: move its state.
                if let Ok(former) = self.kernel.event_msg(pid) {
                    let former = Pid::from_raw(former as i32);
                    self.lineage.on_exec(former.as_raw(), pid.as_raw());
                    if former != pid
                        && let Some(mut task) = self.tasks.remove(&former)
                    {
                        task.tgid = Some(pid.as_raw());
                        self.tasks.insert(pid, task);
                    }
                }
                if self.started.is_none() && pid == self.root {
                    self.started = Some(Instant::now());
                    // The exec that started the target is not one of its calls.
                    if let Some(task) = self.tasks.get_mut(&pid) {
                        task.in_flight = None;
                    }
                }
            }
            STOP if is_group_stop(sig) => {
                // Group-stop: stay stopped like an untraced process would, until SIGCONT.
                return unless_gone(pid, self.kernel.listen(pid)).map(drop);
            }
            _ => {}
        }
        self.resume(pid, self.default_resume(pid), None)
    }

    fn on_syscall_stop(&mut self, pid: Pid) -> Result<(), BackendError> {
        let Some(stop) = self.syscall_info(pid)? else {
            return Ok(()); // the task is gone
        };
        tracing::trace!(?stop, "syscall stop");
        let resume = match stop {
            SyscallStop::Entry { nr, args, native, ip } => self.on_entry(pid, nr, args, native, ip)?,
            SyscallStop::Exit { rval, is_error } => self.on_exit_stop(pid, rval, is_error)?,
            SyscallStop::Other => Some(self.default_resume(pid)),
        };
        match resume {
            Some(how) => self.resume(pid, how, None),
            None => Ok(()),
        }
    }

    /// A seccomp stop from a `RET_TRACE` filter the target installed itself. Without a tracer the kernel fails such a
    /// call with `ENOSYS` and never runs it (seccomp(2)); phoebe, the tracer the target did not ask for, does the
    /// same, so the target sees what it sees natively. The call is neither decided nor counted for injection (it
    /// never runs); when it is recorded, its exit stop records the `ENOSYS`.
    fn on_foreign_trace(&mut self, pid: Pid) -> Result<(), BackendError> {
        let Some(stop) = self.syscall_info(pid)? else {
            return Ok(()); // the task is gone
        };
        tracing::trace!(?stop, "seccomp stop of the target's own filter");
        match self.kernel.skip_syscall(pid, libc::ENOSYS) {
            Ok(()) => {}
            Err(NixErrno::ESRCH) => return Ok(()),
            Err(source) => {
                return Err(PtraceError::Trace {
                    pid: pid.as_raw(),
                    source,
                }
                .into());
            }
        }
        // Full mode: the entry stop came first and its in-flight call records the result at the exit stop.
        if !self.full
            && self.started.is_some()
            && let SyscallStop::Entry {
                nr,
                args,
                native: true,
                ip,
            } = stop
            && let Some(sc) = Syscall::from_number(nr)
            && self.records(sc)
        {
            let shape = self
                .observer
                .as_deref()
                .is_some_and(|o| o.records_shapes(sc))
                .then(|| {
                    let task = self.tasks.entry(pid).or_default();
                    let tgid = *task.tgid.get_or_insert_with(|| tgid_of(&mut self.facts, pid));
                    let mut probe =
                        ProcProbe::with_source(&mut self.facts, pid, tgid, &mut self.cache).with_ip(ip);
                    shape_of(sc, &args, &mut probe)
                });
            self.tasks.entry(pid).or_default().in_flight = Some(InFlight {
                syscall: Some(sc),
                entered: Instant::now(),
                injected: None,
                signal_at_exit: None,
                restore_count: None,
                shape,
                watch: Vec::new(),
            });
        }
        self.resume(pid, self.default_resume(pid), None)
    }

    /// Returns how to resume, or `None` when the tracee is held for a `delay=`.
    fn on_entry(
        &mut self,
        pid: Pid,
        nr: u64,
        args: [u64; 6],
        native: bool,
        ip: u64,
    ) -> Result<Option<Resume>, BackendError> {
        let Some(started) = self.started else {
            return Ok(Some(self.default_resume(pid)));
        };
        let syscall = if native { Syscall::from_number(nr) } else { None };
        let mut flight = InFlight {
            syscall,
            entered: Instant::now(),
            injected: None,
            signal_at_exit: None,
            restore_count: None,
            shape: None,
            watch: Vec::new(),
        };
        let mut need_exit = self.full || syscall.is_some_and(|sc| self.records(sc));
        let mut delay = None;
        // The handler an `rt_sigaction` installs, for `caught=` (its SA_RESTART is in the call's memory only).
        if native
            && nr == libc::SYS_rt_sigaction as u64
            && self.decider.as_deref().is_some_and(Decider::needs_handlers)
        {
            let tgid = *self
                .tasks
                .entry(pid)
                .or_default()
                .tgid
                .get_or_insert_with(|| tgid_of(&mut self.facts, pid));
            if let Some(handler) = read_sigaction(&mut self.facts, pid, &args) {
                self.cache.record_handler(tgid, handler);
            }
        }
        if let (Some(sc), Some(decider)) = (syscall, self.decider.as_deref_mut())
            && decider.is_targeted(sc)
        {
            let path = decider
                .needs_path(sc)
                .then(|| resolve_path(&mut self.facts, pid, sc, &args));
            let task = self.tasks.entry(pid).or_default();
            let tgid = *task.tgid.get_or_insert_with(|| tgid_of(&mut self.facts, pid));
            let call = Call {
                syscall: sc,
                pid: tgid,
                tid: pid.as_raw(),
                thread: self.lineage.key(pid.as_raw()),
                t_ns: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
                path: path.as_ref().and_then(Option::as_deref),
                args,
            };
            let mut probe = ProcProbe::with_source(&mut self.facts, pid, tgid, &mut self.cache).with_ip(ip);
            // A path read for a `path=` rule is not read again; otherwise the probe reads it if the log needs it.
            if let Some(path) = &path {
                probe = probe.with_path(path.clone());
            }
            if let Some(decision) = decider.decide(&call, &mut probe) {
                delay = decision.delay;
                match (decision.effect, decision.when) {
                    (Effect::Errno(errno), When::Entry) => {
                        // The signal the kernel raises with this errno is pending when the call returns, and its
                        // delivery comes back to this tracer as a signal stop like any other.
                        if unless_gone(pid, self.kernel.skip_syscall(pid, errno.code()))?
                            && let Some(signal) = decision.signal
                        {
                            unless_gone(pid, self.kernel.tgkill(Pid::from_raw(tgid), pid, signal))?;
                        }
                    }
                    (Effect::Errno(_), When::Exit) => {
                        flight.signal_at_exit = decision.signal.map(|signal| (signal, tgid));
                        need_exit = true;
                    }
                    // The call runs with the lower count; its exit restores the register. Its result is the
                    // transfer phoebe shortened, not a natural failure: nothing is watched.
                    (Effect::Short(count), _) => {
                        if unless_gone(pid, self.kernel.set_arg(pid, SHORT_COUNT_ARG, count))? {
                            flight.restore_count = Some(args[SHORT_COUNT_ARG]);
                        }
                        need_exit = true;
                    }
                    // A latency fault: the call is only held (below), then runs for real.
                    (Effect::Run, _) => {}
                }
                flight.injected = decision.effect.errno();
            } else {
                // Let run: the exit stop shows whether it failed by itself with a matching rule's errno, so the
                // achieved rate counts natural failures too.
                flight.watch = decider.watch_result();
                need_exit |= !flight.watch.is_empty();
            }
        }
        if let Some(sc) = syscall
            && need_exit
            && self.records(sc)
            && self.observer.as_deref().is_some_and(|o| o.records_shapes(sc))
        {
            let tgid = *self
                .tasks
                .entry(pid)
                .or_default()
                .tgid
                .get_or_insert_with(|| tgid_of(&mut self.facts, pid));
            let mut probe = ProcProbe::with_source(&mut self.facts, pid, tgid, &mut self.cache).with_ip(ip);
            flight.shape = Some(shape_of(sc, &args, &mut probe));
        }
        let how = if need_exit { Resume::Syscall } else { Resume::Cont };
        if need_exit {
            self.tasks.entry(pid).or_default().in_flight = Some(flight);
        }
        if let Some(delay) = delay {
            self.delayed
                .push((phoebe_core::time::deadline(Instant::now(), delay), pid, how));
            return Ok(None);
        }
        Ok(Some(how))
    }

    fn on_exit_stop(&mut self, pid: Pid, rval: i64, is_error: bool) -> Result<Option<Resume>, BackendError> {
        let flight = self.tasks.entry(pid).or_default().in_flight.take();
        let Some(flight) = flight else {
            return Ok(Some(self.default_resume(pid)));
        };
        if let Some(count) = flight.restore_count {
            unless_gone(pid, self.kernel.set_arg(pid, SHORT_COUNT_ARG, count))?;
        }
        let result = match flight.injected {
            Some(errno) => {
                let want = -i64::from(errno.code());
                if rval != want {
                    unless_gone(pid, self.kernel.set_return(pid, want))?;
                }
                if let Some((signal, tgid)) = flight.signal_at_exit {
                    unless_gone(pid, self.kernel.tgkill(Pid::from_raw(tgid), pid, signal))?;
                }
                Err(errno)
            }
            None if is_error => match i32::try_from(-rval).ok().and_then(Errno::new) {
                Some(errno) => {
                    if let Some(decider) = self.decider.as_deref_mut()
                        && !flight.watch.is_empty()
                    {
                        decider.natural_failure(&flight.watch, errno);
                    }
                    Err(errno)
                }
                None => Ok(()),
            },
            None => Ok(()),
        };
        if let (Some(sc), Some(started)) = (flight.syscall, self.started)
            && self.records(sc)
            && let Some(observer) = self.observer.as_deref_mut()
        {
            let now = Instant::now();
            observer.record(
                now - started,
                sc,
                flight.shape.as_ref(),
                result,
                now - flight.entered,
            );
        }
        Ok(Some(self.default_resume(pid)))
    }

    fn records(&self, sc: Syscall) -> bool {
        self.observer.is_some() && self.record_only.is_none_or(|only| only.contains(&sc))
    }

    /// `PTRACE_GET_SYSCALL_INFO` of a stopped task; `None` when the task is gone (ESRCH).
    fn syscall_info(&mut self, pid: Pid) -> Result<Option<SyscallStop>, BackendError> {
        match self.kernel.syscall_info(pid) {
            Ok(stop) => Ok(Some(stop)),
            Err(NixErrno::ESRCH) => Ok(None),
            Err(source) => Err(PtraceError::Trace {
                pid: pid.as_raw(),
                source,
            }
            .into()),
        }
    }
}

/// The signals whose `PTRACE_EVENT_STOP` is a group-stop (the others are `PTRACE_INTERRUPT` stops).
pub(crate) fn is_group_stop(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// The result of a request to tracee `pid`: done (`true`), or not because the tracee was killed meanwhile (ESRCH:
/// its exit is reported next, so `false` and no error); any other failure is the tracer's.
fn unless_gone(pid: Pid, done: Result<(), NixErrno>) -> Result<bool, BackendError> {
    match done {
        Ok(()) => Ok(true),
        Err(NixErrno::ESRCH) => Ok(false),
        Err(source) => Err(PtraceError::Trace {
            pid: pid.as_raw(),
            source,
        }
        .into()),
    }
}
