//! The seccomp user-notification backend: injects at entry without ptrace and without root. Untargeted calls run at
//! native speed; a targeted call costs one round trip to phoebe (≈ 5 µs); a rule that fails every call with one errno
//! costs nothing at all, because the filter returns the errno itself (`SECCOMP_RET_ERRNO`).
//!
//! The filter (built by `backend::filter`) sends each targeted syscall to phoebe's listener (`RET_USER_NOTIF`); the
//! supervisor thread receives the call, asks the decider (the same one as ptrace: same call indices, same rolls,
//! same log) and answers with the error or lets the call run (`FLAG_CONTINUE`). The main thread reaps the tree:
//! phoebe is a child subreaper, so orphans of the target come back to it, and the run ends when no process is left.
//!
//! It cannot observe (a continued call's result never comes back) and cannot inject at exit (`when=exit`): both
//! are refused with a sentence naming the ptrace backend. Owns: the supervisor and the reaper; what seccomp can do
//! on this machine is `probe.rs`'s. Raw calls live in `sys.rs`.

#[cfg(test)]
mod fake;
mod probe;
pub mod sys;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno as NixErrno,
    sys::{
        signal::{Signal, kill},
        wait::WaitPidFlag,
    },
    unistd::Pid,
};

use self::sys::{Listener, Notification, Notifier, Ready};
use phoebe_backend_common::{
    BackendError, Mode, Outcome, Target,
    control::Control,
    facts::{FactCache, ProcProbe, Procfs, Source, read_sigaction, resolve_path, tgid_of},
    lineage::Lineage,
};
use phoebe_core::{
    decide::{Call, Decider, Decision},
    hint::Hint,
    model::{Effect, FaultSpec, Syscall, TargetExit, When, shape::ArgTest},
};
use phoebe_filter as filter;
use phoebe_sys::{subreaper::Subreaper, wait};

const BACKEND: &str = "seccomp";

/// How long phoebe looks for the task a clone created before it takes the clone for a failed one.
const CLONE_WAIT: Duration = Duration::from_millis(10);

/// The syscalls that create tasks (threads or processes): the filter sends phoebe every call of them, so that it
/// numbers the tasks they create (`backend::lineage`).
#[cfg(target_arch = "x86_64")]
const CREATE_TASKS: &[i64] = &[libc::SYS_clone, libc::SYS_clone3, libc::SYS_fork, libc::SYS_vfork];
/// (No fork or vfork syscall on this architecture: libc makes them with clone.)
#[cfg(not(target_arch = "x86_64"))]
const CREATE_TASKS: &[i64] = &[libc::SYS_clone, libc::SYS_clone3];

/// The syscalls that end tasks: the filter sends phoebe every call of them too, so that a task that ends at once
/// waits, alive, in its `exit` until phoebe has found it after its creator's clone; and so that phoebe forgets the
/// key of a tid that may be reused.
const END_TASKS: &[i64] = &[libc::SYS_exit, libc::SYS_exit_group];

/// Does syscall `nr` (native) create tasks?
fn creates_tasks(nr: i32) -> bool {
    CREATE_TASKS.contains(&i64::from(nr))
}

/// More tasks than this in the tgid cache and it starts over (tids are recycled; the cache must not grow forever).
const TGID_CACHE_MAX: usize = 1 << 16;

/// The seccomp user-notification backend: injects at entry; cannot observe.
pub struct SeccompBackend;

/// What only the seccomp backend fails at (a [`BackendError`] wraps it).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("cannot start '{command}' under seccomp")]
    Launch {
        command: String,
        #[source]
        source: sys::SpawnError,
    },
    #[error("{step} failed on the seccomp listener: {source}")]
    Notify {
        step: &'static str,
        #[source]
        source: NixErrno,
    },
}

impl From<SeccompError> for BackendError {
    fn from(e: SeccompError) -> Self {
        BackendError::own_unhinted(e)
    }
}

impl phoebe_backend_common::Backend for SeccompBackend {
    fn kind(&self) -> phoebe_backend_common::BackendKind {
        phoebe_backend_common::BackendKind::Seccomp
    }

    fn check(&self, mode: &Mode<'_>) -> Result<(), BackendError> {
        let Mode::Inject { decider, .. } = mode else {
            return Err(BackendError::CannotObserve {
                backend: BACKEND,
                reason: "a call it lets run returns to the target without phoebe seeing the result",
            });
        };
        self.check_rules(&decider.faults().collect::<Vec<_>>())
    }

    fn check_rules(&self, faults: &[&FaultSpec]) -> Result<(), BackendError> {
        phoebe_backend_common::refuse_short(
            faults,
            BACKEND,
            "a call it lets run continues with the arguments it had, so it cannot shorten a transfer",
        )?;
        refuse_exit_rules(faults)
    }

    fn probe(&self) -> phoebe_backend_common::Probe {
        probe::probe()
    }

    fn run(&self, target: &Target, mode: Mode<'_>, control: &Control) -> Result<Outcome, BackendError> {
        self.check(&mode)?;
        let Mode::Inject { decider, .. } = mode else {
            unreachable!("check refuses to observe")
        };
        run(target, decider, control)
    }
}

/// Runs `target` under a seccomp listener, asking `decider` about every call it targets, until the target's whole
/// process tree has ended.
fn run(target: &Target, decider: &mut Decider, control: &Control) -> Result<Outcome, BackendError> {
    let prog = build_filter(decider)?;
    let command = target.display.join(" ");
    let notify = |step| move |source| SeccompError::Notify { step, source };
    let sizes = sys::notif_sizes().map_err(notify("seccomp(SECCOMP_GET_NOTIF_SIZES)"))?;
    // Cleared when the run is over (the guard is dropped on every return).
    let subreaper = Subreaper::set().map_err(notify("prctl(PR_SET_CHILD_SUBREAPER)"))?;
    let spawned = sys::spawn_notified(&target.program_c, &target.argv, &prog).map_err(|source| {
        SeccompError::Launch {
            command: command.clone(),
            source,
        }
    })?;
    let started = Instant::now();
    let root = spawned.pid;
    control.begin(root.as_raw());
    let listener = Listener::new(spawned.listener, &sizes);
    // Since Linux 6.6 the target and phoebe can hand the CPU to each other: a steadier, shorter round trip. Before
    // that (or when a call may be held, `delay=` or ETIMEDOUT, which need timeouts) phoebe polls the listener
    // before each receive.
    let sync = listener.set_sync_wake_up().is_ok();
    let poll = !sync || decider.may_hold();
    tracing::debug!(sync, poll, killable = spawned.killable, "seccomp listener ready");
    let execve = Syscall::from_number(libc::SYS_execve as u64);
    let mut supervisor = Supervisor {
        listener,
        facts: Procfs,
        root: root.as_raw(),
        launcher_exec: execve.is_some_and(|sc| decider.is_targeted(sc)),
        decider,
        started,
        poll,
        tgids: HashMap::new(),
        lineage: Lineage::new(root.as_raw()),
        delayed: Vec::new(),
        warnings: Vec::new(),
        cache: FactCache::default(),
        killable: spawned.killable,
    };
    let failed = AtomicBool::new(false);
    let (root_exit, supervised) = thread::scope(|scope| {
        let handle = thread::Builder::new()
            .name("phoebe-seccomp".into())
            .spawn_scoped(scope, || {
                let result = supervisor.supervise();
                if result.is_err() {
                    // Without a supervisor the targeted calls would wait forever: end the target.
                    failed.store(true, Ordering::SeqCst);
                    let _ = kill(root, Signal::SIGKILL);
                }
                result
            });
        let handle = match handle {
            Ok(handle) => handle,
            Err(source) => {
                failed.store(true, Ordering::SeqCst);
                let _ = kill(root, Signal::SIGKILL);
                let exit = reap(root, control, &failed, &subreaper);
                return (
                    exit,
                    Err(BackendError::Thread {
                        what: "the seccomp supervisor",
                        source,
                    }),
                );
            }
        };
        let exit = reap(root, control, &failed, &subreaper);
        let supervised = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (exit, supervised)
    });
    control.end();
    supervised?;
    if let Some(source) = spawned.report.exec_error() {
        return Err(BackendError::Exec { command, source });
    }
    Ok(Outcome {
        exit: root_exit.unwrap_or(TargetExit::Signal(libc::SIGKILL)),
        duration: started.elapsed(),
        warnings: supervisor.warnings,
    })
}

/// `when=exit` needs the call's result, which a continued call never shows phoebe.
fn refuse_exit_rules(faults: &[&FaultSpec]) -> Result<(), BackendError> {
    match faults.iter().find(|f| f.when == When::Exit) {
        Some(fault) => Err(BackendError::Unsupported {
            fault: fault.to_string(),
            backend: BACKEND,
            reason: format!(
                "it injects at entry only (a call it lets run never comes back to phoebe), and when=exit needs the \
                 call to run first; {}",
                Hint::UsePtrace
            ),
            hint: None,
        }),
        None => Ok(()),
    }
}

/// The listener filter: `RET_ERRNO` for the syscalls a rule fails on every call, `RET_USER_NOTIF` for the other
/// targeted ones — only for the calls whose registers some rule's shape predicates accept, when every rule of the
/// syscall has such predicates (`Decider::register_guard`) — and for `seccomp` itself (to explain a target's own
/// listener), `ALLOW` for everything else.
fn build_filter(decider: &mut Decider) -> Result<Vec<libc::sock_filter>, BackendError> {
    let mut policy = filter::Policy::new(filter::Action::Allow);
    let targets: Vec<Syscall> = decider.targets().collect();
    for sc in targets {
        let in_kernel = decider
            .unconditional_errno(sc)
            // The launcher's own execve passes through the filter: it must reach phoebe to be let through.
            .filter(|_| i64::from(sc.number()) != libc::SYS_execve)
            .and_then(|errno| u16::try_from(errno.code()).ok());
        let action = match in_kernel {
            Some(errno) => {
                decider.failed_unasked(sc);
                filter::Action::Errno(errno)
            }
            None => filter::Action::UserNotif,
        };
        match decider
            .register_guard(sc)
            .filter(|_| action == filter::Action::UserNotif)
        {
            Some(guard) => policy.set_guarded(sc.number(), action, guard, filter::Action::Allow),
            None => policy.set(sc.number(), action),
        };
    }
    if Syscall::from_number(libc::SYS_seccomp as u64).is_none_or(|sc| !decider.is_targeted(sc)) {
        policy.set(libc::SYS_seccomp as u32, filter::Action::UserNotif);
    }
    // Every handler installed, when a rule asks whether a caught signal would interrupt a call (`caught=`): its
    // `SA_RESTART` is in the call's memory only.
    if decider.needs_handlers()
        && Syscall::from_number(libc::SYS_rt_sigaction as u64).is_none_or(|sc| !decider.is_targeted(sc))
    {
        policy.set_guarded(
            libc::SYS_rt_sigaction as u32,
            filter::Action::UserNotif,
            vec![vec![ArgTest::NonZero { arg: 1 }]],
            filter::Action::Allow,
        );
    }
    // Every clone, to number the tasks it creates, and every exit (a targeted one keeps its rule's action: a guard
    // lets some clones run unseen, whose tasks are then numbered as of unknown creator).
    for &nr in CREATE_TASKS.iter().chain(END_TASKS) {
        if Syscall::from_number(nr as u64).is_none_or(|sc| !decider.is_targeted(sc)) {
            policy.set(nr as u32, filter::Action::UserNotif);
        }
    }
    filter::compile(&policy).map_err(BackendError::FilterBuild)
}

/// The supervisor's state; it asks the kernel through `L` (`sys::Listener`, or the unit tests' fake) and reads the
/// callers' `/proc` entries and memory through `P` (`facts::Procfs`, or the unit tests' recorded ones).
struct Supervisor<'a, L, P> {
    listener: L,
    facts: P,
    decider: &'a mut Decider,
    root: i32,
    /// The launcher's own `execve` (targeted) has yet to come by: it is let through, neither counted nor decided.
    launcher_exec: bool,
    started: Instant,
    /// Wait with `poll` before each receive (no SYNC_WAKE_UP, or `delay=` answers are pending).
    poll: bool,
    /// Thread group of each task seen, read from /proc once.
    tgids: HashMap<i32, i32>,
    /// Each task's key, numbered when its creator's clone is let run (`backend::lineage`).
    lineage: Lineage,
    /// Calls held by `delay=`, answered when due.
    delayed: Vec<Held>,
    warnings: Vec<String>,
    /// Facts of earlier calls (socket kinds, loaders), for call shapes.
    cache: FactCache,
    /// The filter went on with `WAIT_KILLABLE_RECV`: a received call waits through a signal that is not fatal.
    killable: bool,
}

/// A call held by `delay=`.
struct Held {
    /// When to answer it.
    due: Instant,
    notification: Notification,
    /// The errno to fail it with, or `None` (a latency fault): it then runs, answered with CONTINUE.
    errno: Option<i32>,
    /// The decision and the call's syscall: taken back if the errno cannot be delivered.
    decision: Decision,
    syscall: Syscall,
    /// The call creates a task, whose key is numbered when it is let run (`Supervisor::let_run`).
    creates: bool,
}

impl<L: Notifier, P: Source> Supervisor<'_, L, P> {
    /// Answers notifications until no task of the target's tree is left.
    fn supervise(&mut self) -> Result<(), BackendError> {
        loop {
            if self.poll {
                self.answer_due()?;
                let timeout = self
                    .delayed
                    .iter()
                    .map(|d| d.due)
                    .min()
                    .map(|next| next.saturating_duration_since(Instant::now()));
                match self.listener.wait(timeout) {
                    Ok(Ready::Notification) => {}
                    Ok(Ready::HangUp) => return Ok(()),
                    Ok(Ready::Timeout) | Err(NixErrno::EINTR) => continue,
                    Err(source) => return Err(notify_error("poll", source)),
                }
            }
            match self.listener.recv() {
                Ok(notification) => self.on_notification(&notification)?,
                Err(NixErrno::EINTR) => {}
                // The caller went away before we received its call, or (Linux ≥ 6.6) no task is left at all.
                Err(NixErrno::ENOENT) => {
                    if self.listener.wait(Some(Duration::ZERO)) == Ok(Ready::HangUp) {
                        return Ok(());
                    }
                }
                Err(source) => return Err(notify_error("SECCOMP_IOCTL_NOTIF_RECV", source)),
            }
        }
    }

    fn on_notification(&mut self, n: &Notification) -> Result<(), BackendError> {
        tracing::trace!(?n, "notification");
        let nr = i64::from(n.nr);
        if self.launcher_exec && n.tid == self.root && nr == libc::SYS_execve {
            // phoebe's launcher exec'ing the target: not one of the target's calls.
            self.launcher_exec = false;
            return self.answer(n.id, None).map(drop);
        }
        if nr == libc::SYS_seccomp {
            self.watch_own_listener(n);
        }
        let native = n.arch == filter::NATIVE_AUDIT_ARCH;
        let creates = native && creates_tasks(n.nr);
        if native && END_TASKS.contains(&nr) {
            // The task makes no call after this one (exit_group ends its other threads without one).
            self.lineage.on_exit(n.tid);
            if nr == libc::SYS_exit_group
                && let Some(tgid) = self.tgids.get(&n.tid)
            {
                self.cache.forget_handlers(*tgid);
            }
            self.tgids.remove(&n.tid);
        }
        if native && nr == libc::SYS_rt_sigaction && self.decider.needs_handlers() {
            self.note_sigaction(n);
        }
        let syscall = native
            .then(|| u64::try_from(n.nr).ok().and_then(Syscall::from_number))
            .flatten()
            .filter(|sc| self.decider.is_targeted(*sc));
        let Some(syscall) = syscall else {
            return self.let_run(n, creates);
        };
        let tid = Pid::from_raw(n.tid);
        let mut read_target = false;
        let pid = match self.tgids.get(&n.tid) {
            Some(&pid) => pid,
            None => {
                read_target = true;
                if self.tgids.len() >= TGID_CACHE_MAX {
                    self.tgids.clear();
                }
                *self
                    .tgids
                    .entry(n.tid)
                    .or_insert_with(|| tgid_of(&mut self.facts, tid))
            }
        };
        let path = self.decider.needs_path(syscall).then(|| {
            read_target = true;
            resolve_path(&mut self.facts, tid, syscall, &n.args)
        });
        let mut probe = ProcProbe::with_source(&mut self.facts, tid, pid, &mut self.cache).with_ip(n.ip);
        // A path read for a `path=` rule is not read again; otherwise the probe reads it for the log of an injected
        // call only (after ID_VALID: a tid reused in between could only mislabel that log entry, never a decision).
        if let Some(path) = &path {
            probe = probe.with_path(path.clone());
        }
        // Read what the shape needs now, before ID_VALID vouches for it; deciding takes it and reads nothing more.
        let shape = self.decider.needs_shape(syscall).then(|| {
            read_target = true;
            self.decider.shape_for(syscall, &n.args, &mut probe)
        });
        // What we read belongs to the caller only if it still waits for this answer: a task that died meanwhile
        // may have had its tid reused. Such a call never runs, so it is neither counted nor answered.
        if read_target && !self.listener.id_valid(n.id) {
            self.tgids.remove(&n.tid);
            self.lineage.on_exit(n.tid);
            return Ok(());
        }
        let call = Call {
            syscall,
            pid,
            tid: n.tid,
            thread: Some(self.lineage.key_or_unknown(n.tid)),
            t_ns: u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            path: path.as_ref().and_then(Option::as_deref),
            args: n.args,
        };
        // `check` refused every short= rule, so a decision fails the call with an errno or (a latency fault) holds
        // it and lets it run.
        match self.decider.decide_with(&call, &mut probe, shape) {
            Some(decision) => match (decision.delay, decision.effect) {
                // Held: answered by `answer_due` once the delay has passed, with the errno or, for a latency
                // fault, with CONTINUE.
                (Some(delay), effect) => {
                    self.delayed.push(Held {
                        due: phoebe_core::time::deadline(Instant::now(), delay),
                        notification: *n,
                        errno: effect.errno().map(|e| e.code()),
                        decision,
                        syscall,
                        creates,
                    });
                    Ok(())
                }
                (None, Effect::Errno(errno)) => self.fail(n, pid, errno.code(), &decision, syscall),
                // The parser gives every latency fault a delay, and short= is refused before a run.
                (None, Effect::Run | Effect::Short(_)) => self.let_run(n, creates),
            },
            None => self.let_run(n, creates),
        }
    }

    /// Lets the call run. For a call that creates a task (`creates`), finds the task it created and numbers it
    /// (`backend::lineage`) before answering anything else: a clone runs in microseconds, and until the next
    /// notification is answered no other clone can have run, so the new task in the caller's family is this
    /// call's. A clone that failed creates none: after [`CLONE_WAIT`] phoebe stops looking.
    fn let_run(&mut self, n: &Notification, creates: bool) -> Result<(), BackendError> {
        if !creates {
            return self.answer(n.id, None).map(drop);
        }
        let tgid = *self
            .tgids
            .entry(n.tid)
            .or_insert_with(|| tgid_of(&mut self.facts, Pid::from_raw(n.tid)));
        let before = self.facts.family(tgid, n.tid);
        self.answer(n.id, None)?;
        let until = Instant::now() + CLONE_WAIT;
        loop {
            if let Some(&child) = self.facts.family(tgid, n.tid).difference(&before).next() {
                self.lineage.key_or_unknown(n.tid);
                let key = self.lineage.on_clone(n.tid, child);
                tracing::trace!(creator = n.tid, child, key, "clone numbered");
                return Ok(());
            }
            if Instant::now() >= until {
                tracing::debug!(
                    creator = n.tid,
                    "no new task after a clone: it failed, or its task ended"
                );
                return Ok(());
            }
            thread::sleep(Duration::from_micros(20));
        }
    }

    /// Records the handler an `rt_sigaction` call installs (`facts::read_sigaction`), if the caller still waits
    /// for the answer once it was read (a tid reused meanwhile would lend its handlers to another process).
    fn note_sigaction(&mut self, n: &Notification) {
        let tid = Pid::from_raw(n.tid);
        let tgid = *self
            .tgids
            .entry(n.tid)
            .or_insert_with(|| tgid_of(&mut self.facts, tid));
        if let Some(handler) = read_sigaction(&mut self.facts, tid, &n.args)
            && self.listener.id_valid(n.id)
        {
            self.cache.record_handler(tgid, handler);
        }
    }

    /// A target that asks for a listener of its own gets EBUSY from the kernel (one listener per tree): tell the user
    /// once why, and what works.
    fn watch_own_listener(&mut self, n: &Notification) {
        let new_listener = n.args[0] == u64::from(libc::SECCOMP_SET_MODE_FILTER)
            && n.args[1] & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0;
        if new_listener && self.warnings.is_empty() {
            self.warnings.push(format!(
                "process {} of the target asked for a seccomp listener of its own, which the kernel refuses (EBUSY) \
                 while phoebe's seccomp backend supervises the tree\nhint: run it with --backend ptrace",
                n.tid
            ));
        }
    }

    /// Answers the held calls whose `delay=` has passed.
    fn answer_due(&mut self) -> Result<(), BackendError> {
        if self.delayed.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|d| d.due <= now);
        self.delayed = later;
        for held in due {
            match held.errno {
                Some(errno) => {
                    let tid = held.notification.tid;
                    let pid = self.tgids.get(&tid).copied().unwrap_or(tid);
                    self.fail(&held.notification, pid, errno, &held.decision, held.syscall)?;
                }
                None => self.let_run(&held.notification, held.creates)?,
            }
        }
        Ok(())
    }

    /// Fails the call of `n` (made by a thread of `pid`) with `errno`, raising the signal the kernel raises with it
    /// (`Decision::signal`: SIGPIPE with a write's EPIPE) in the caller; takes the decision back when neither
    /// reached it.
    ///
    /// With `WAIT_KILLABLE_RECV` the signal goes first, as the kernel's does: one the program catches is pending
    /// when its call returns (the handler runs before the program sees the errno); one it neither catches nor
    /// ignores is fatal and ends it, as it would have for real, and the errno never reaches it. Without, a signal
    /// would interrupt the wait and the call would come back as a new one, so it goes right after the answer.
    fn fail(
        &mut self,
        n: &Notification,
        pid: i32,
        errno: i32,
        decision: &Decision,
        syscall: Syscall,
    ) -> Result<(), BackendError> {
        let raise = |listener: &mut L| {
            decision.signal.is_some_and(|signal| {
                listener
                    .tgkill(Pid::from_raw(pid), Pid::from_raw(n.tid), signal)
                    .is_ok()
            })
        };
        let raised_first = self.killable && raise(&mut self.listener);
        let delivered = self.answer(n.id, Some(errno))?;
        let raised = raised_first || (!self.killable && delivered && raise(&mut self.listener));
        if !delivered && !raised {
            self.decider.undelivered(decision, n.tid, syscall);
        }
        Ok(())
    }

    /// Fails the call with `errno`, or lets it run; `false` when the answer reached nobody. ENOENT means the caller
    /// no longer waits (it was killed, or signalled before WAIT_KILLABLE_RECV): not an error, but an errno sent
    /// then was never delivered.
    fn answer(&mut self, id: u64, errno: Option<i32>) -> Result<bool, BackendError> {
        match self.listener.send(id, errno) {
            Ok(()) => Ok(true),
            Err(NixErrno::ENOENT) => Ok(false),
            Err(source) => Err(notify_error("SECCOMP_IOCTL_NOTIF_SEND", source)),
        }
    }
}

fn notify_error(step: &'static str, source: NixErrno) -> BackendError {
    SeccompError::Notify { step, source }.into()
}

/// Reaps the target and every orphan of its tree (phoebe is their subreaper) until no child is left; returns how the
/// target itself ended. Once the target is gone, an interruption (or a failed supervisor) kills the leftovers.
fn reap(root: Pid, control: &Control, failed: &AtomicBool, subreaper: &Subreaper) -> Option<TargetExit> {
    let mut root_exit = None;
    loop {
        let block = root_exit.is_none() && !failed.load(Ordering::SeqCst);
        let flags = WaitPidFlag::__WALL
            | if block {
                WaitPidFlag::empty()
            } else {
                WaitPidFlag::WNOHANG
            };
        let ended = match wait::waitpid(None, flags) {
            Ok(Some(status)) => status.exit().map(|exit| (status.pid(), exit)),
            Ok(None) => {
                if control.interrupted() || failed.load(Ordering::SeqCst) {
                    subreaper.kill_children();
                }
                thread::sleep(Duration::from_millis(10));
                None
            }
            Err(NixErrno::EINTR) => None,
            Err(_) => return root_exit, // ECHILD: the whole tree is gone
        };
        if let Some((pid, how)) = ended
            && pid == root
        {
            root_exit = Some(how);
            control.remove_task(root.as_raw());
        }
    }
}
