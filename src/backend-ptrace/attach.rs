//! Attaching to processes that are already running, for `phoebe monitor --backend ptrace` (and its fallback where
//! eBPF is unavailable): seize every thread, count each syscall's exit by (process, syscall, errno) with its
//! latency from entry, follow new threads and children, and detach from every task so the processes run on
//! untouched.
//!
//! Owns: the attaching tracer thread (every ptrace request must come from the thread that seized), its task table
//! and the cumulative counters it publishes in the eBPF observer's [`Snapshot`] shape (`backend::counts`), so that one renderer serves
//! both. Does not own the rendering (`crate::monitor`) nor raw calls (`sys.rs`). Unlike `ptrace::run` it never
//! sets `PTRACE_O_EXITKILL`: if phoebe dies, the kernel detaches and the processes live on.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno as NixErrno,
    sys::{
        ptrace::{self, Event, Options},
        wait::WaitPidFlag,
    },
    unistd::Pid,
};
use phoebe_common::{CountKey, CountValue, latency_bucket};

use phoebe_backend_common::{
    counts::{Histograms, Snapshot},
    facts::{Procfs, Source},
};
use phoebe_sys::{
    procfs,
    wait::{self, Status},
};

use crate::sys::{self, Kernel, Real, Resume, SyscallStop};

/// How long the detach may take before the tracer gives up waiting for stops (the kernel detaches what is left
/// when phoebe exits anyway).
const DETACH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("cannot attach to pid {pid} with ptrace")]
    Seize {
        pid: u32,
        #[source]
        source: NixErrno,
    },
    #[error("cannot start the ptrace thread")]
    Thread(#[source] std::io::Error),
    #[error("cannot install the handler of the signal that wakes the ptrace thread")]
    Wake(#[source] NixErrno),
}

impl phoebe_core::hint::Hinted for AttachError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            AttachError::Seize { .. } => Some(
                "ptrace needs the same uid or CAP_SYS_PTRACE, kernel.yama.ptrace_scope 0 (or CAP_SYS_PTRACE), and no \
                 other tracer (strace, gdb) on the process"
                    .into(),
            ),
            AttachError::Thread(_) | AttachError::Wake(_) => None,
        }
    }
}

/// The attached processes, traced by a thread of their own until [`Attached::detach`] (or drop).
pub struct Attached {
    counts: Arc<Mutex<Snapshot>>,
    histograms: Arc<Mutex<Histograms>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Attached {
    /// Seizes every thread of `pids[0]` (failing if it cannot) and, best effort, of the other `pids` (its existing
    /// descendants), then starts tracing their syscalls.
    pub fn start(pids: &[u32]) -> Result<Self, AttachError> {
        sys::install_wake_handler().map_err(AttachError::Wake)?;
        let counts = Arc::new(Mutex::new(Snapshot::new()));
        let histograms = Arc::new(Mutex::new(Histograms::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let pids = pids.to_vec();
        let (c, h, s) = (counts.clone(), histograms.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("phoebe-ptrace".into())
            .spawn(move || {
                let mut tracer = Tracer {
                    kernel: Real,
                    facts: Procfs,
                    tasks: HashMap::new(),
                    counts: c,
                    histograms: h,
                    stop: s,
                };
                let seized = tracer.seize_all(&pids);
                let ok = seized.is_ok();
                let _ = ready_tx.send(seized);
                if ok {
                    tracer.trace();
                }
            })
            .map_err(AttachError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Attached {
                counts,
                histograms,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AttachError::Thread(std::io::Error::other(
                    "the ptrace thread ended before attaching",
                )))
            }
        }
    }

    /// The cumulative counters so far.
    pub fn snapshot(&self) -> Snapshot {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The cumulative latency histograms so far (every call is timed).
    pub fn histograms(&self) -> Histograms {
        self.histograms.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Drops the counters and histograms of `keys` (processes that ended, once their last counts were read): a
    /// long watch of a server that forks a process per job keeps only what runs now.
    pub fn forget(&self, keys: &[CountKey]) {
        if let Ok(mut counts) = self.counts.lock() {
            for key in keys {
                counts.remove(key);
            }
        }
        if let Ok(mut histograms) = self.histograms.lock() {
            for key in keys {
                histograms.remove(key);
            }
        }
    }

    /// Have all the traced tasks ended?
    pub fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Detaches from every task still traced and waits for the tracer thread to finish.
    pub fn detach(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // The tracer checks `stop` before each `waitpid`; a wake sent just before it blocks would be lost, so keep
        // waking it until it is done.
        let pthread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&thread);
        while !thread.is_finished() {
            let _ = sys::wake(pthread);
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = thread.join();
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.detach();
    }
}

/// A call in progress in one task: its number (when native) and when it entered.
type InFlight = (Option<u32>, Instant);

#[derive(Default)]
struct Task {
    in_flight: Option<InFlight>,
    tgid: Option<u32>,
}

/// The attaching tracer; it asks the kernel through `K` (`sys::Real`, or the unit tests' fake) and reads a task's
/// thread group through `P` (`facts::Procfs`, or the tests' recorded `/proc`).
struct Tracer<K, P> {
    kernel: K,
    facts: P,
    tasks: HashMap<Pid, Task>,
    counts: Arc<Mutex<Snapshot>>,
    histograms: Arc<Mutex<Histograms>>,
    stop: Arc<AtomicBool>,
}

fn options() -> Options {
    Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACEEXEC
}

impl<P: Source> Tracer<Real, P> {
    fn seize_all(&mut self, pids: &[u32]) -> Result<(), AttachError> {
        for (i, pid) in pids.iter().enumerate() {
            if let Err(e) = self.seize_process(*pid) {
                if i == 0 {
                    self.detach_all();
                    return Err(e);
                }
                tracing::warn!(pid, error = %e, "cannot attach to a child of the watched process; not watching it");
            }
        }
        // Only now that every thread is seized: stop each once (PTRACE_EVENT_STOP), where tracing starts.
        for pid in self.tasks.keys() {
            let _ = self.kernel.interrupt(*pid);
        }
        Ok(())
    }

    /// Seizes every thread of `pid`, listing them again until no new one appeared meanwhile (a thread started
    /// by one not yet seized is not followed by the kernel).
    fn seize_process(&mut self, pid: u32) -> Result<(), AttachError> {
        let mut first = true;
        loop {
            let new: Vec<Pid> = procfs::threads(pid)
                .into_iter()
                .filter(|t| !self.tasks.contains_key(t))
                .collect();
            if new.is_empty() {
                return if first {
                    Err(AttachError::Seize {
                        pid,
                        source: NixErrno::ESRCH,
                    })
                } else {
                    Ok(())
                };
            }
            for tid in new {
                match ptrace::seize(tid, options()) {
                    Ok(()) => {
                        self.tasks.insert(tid, Task::default());
                        first = false;
                    }
                    // The thread ended between the listing and the seize.
                    Err(NixErrno::ESRCH) => {}
                    Err(source) => return Err(AttachError::Seize { pid, source }),
                }
            }
        }
    }
}

impl<K: Kernel, P: Source> Tracer<K, P> {
    fn trace(&mut self) {
        while !self.tasks.is_empty() {
            if self.stop.load(Ordering::SeqCst) {
                self.detach_all();
                return;
            }
            match self.kernel.wait(WaitPidFlag::__WALL) {
                Ok(Some(status)) => self.on_status(status),
                Ok(None) | Err(NixErrno::EINTR) => {}
                Err(NixErrno::ECHILD) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed; detaching");
                    self.detach_all();
                    return;
                }
            }
        }
    }

    /// Restarts a task with PTRACE_SYSCALL, delivering `sig` (a number: real-time signals too).
    fn resume(&mut self, pid: Pid, sig: Option<i32>) {
        // ESRCH: killed meanwhile, its exit is reported next.
        if let Err(e) = self.kernel.restart(pid, Resume::Syscall, sig.unwrap_or(0))
            && e != NixErrno::ESRCH
        {
            tracing::warn!(%pid, error = %e, "cannot resume a traced task");
        }
    }

    fn on_status(&mut self, status: Status) {
        tracing::trace!(?status, "attached tracee stop");
        match status {
            Status::Exited { pid, .. } | Status::Signaled { pid, .. } => {
                self.tasks.remove(&pid);
            }
            Status::Syscall { pid } => {
                self.on_syscall_stop(pid);
                self.resume(pid, None);
            }
            Status::Event { pid, signal, event } => {
                self.tasks.entry(pid).or_default();
                if event == wait::EVENT_STOP && crate::is_group_stop(signal) {
                    // Group-stop: stay stopped like an untraced process would, until SIGCONT.
                    let _ = self.kernel.listen(pid);
                    return;
                }
                self.on_event(pid, event);
                self.resume(pid, None);
            }
            Status::Stopped { pid, signal } => {
                // Signal-delivery-stop: deliver the signal the process was meant to get (real-time ones too).
                self.tasks.entry(pid).or_default();
                self.resume(pid, Some(signal));
            }
            Status::Continued { .. } => {}
        }
    }

    fn on_event(&mut self, pid: Pid, event: i32) {
        if event == Event::PTRACE_EVENT_FORK as i32
            || event == Event::PTRACE_EVENT_VFORK as i32
            || event == Event::PTRACE_EVENT_CLONE as i32
        {
            if let Ok(child) = self.kernel.event_msg(pid) {
                self.tasks.entry(Pid::from_raw(child as i32)).or_default();
            }
        } else if event == Event::PTRACE_EVENT_EXEC as i32 {
            // A non-leader thread that execs takes over the leader's pid: move its state.
            if let Ok(former) = self.kernel.event_msg(pid) {
                let former = Pid::from_raw(former as i32);
                if former != pid
                    && let Some(task) = self.tasks.remove(&former)
                {
                    self.tasks.insert(pid, task);
                }
            }
            if let Some(task) = self.tasks.get_mut(&pid) {
                task.tgid = Some(pid.as_raw() as u32);
            }
        }
    }

    fn on_syscall_stop(&mut self, pid: Pid) {
        let Ok(stop) = self.kernel.syscall_info(pid) else {
            return;
        };
        let task = self.tasks.entry(pid).or_default();
        match stop {
            SyscallStop::Entry { nr, native, .. } => {
                let nr = if native { u32::try_from(nr).ok() } else { None };
                task.in_flight = Some((nr, Instant::now()));
            }
            SyscallStop::Exit { rval, is_error } => {
                // The first exit after attaching may have no entry: the call was under way when we seized.
                let Some((Some(nr), entered)) = task.in_flight.take() else {
                    return;
                };
                let latency = u64::try_from(entered.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let tgid = *task
                    .tgid
                    .get_or_insert_with(|| crate::tgid_of(&mut self.facts, pid) as u32);
                let errno = if is_error {
                    u32::try_from(-rval).unwrap_or(0)
                } else {
                    0
                };
                let key = CountKey {
                    tgid,
                    nr,
                    errno,
                    pad: 0,
                };
                if let Ok(mut counts) = self.counts.lock() {
                    let value: &mut CountValue = counts.entry(key).or_default();
                    value.calls += 1;
                    value.latency_ns_sum += latency;
                    value.latency_ns_max = value.latency_ns_max.max(latency);
                }
                if let Ok(mut histograms) = self.histograms.lock() {
                    let buckets = histograms.entry(key).or_default();
                    buckets.counts[latency_bucket(latency)] += 1;
                    buckets.sum_ns += latency;
                }
            }
            SyscallStop::Other => {}
        }
    }

    /// Detaches from every task: each is interrupted (a no-op for one already stopped), and at its next stop
    /// detached, re-delivering the signal of a signal-delivery-stop; a group-stopped task stays stopped (the
    /// kernel reinstates the group stop). Children forked meanwhile are detached at their first stop.
    fn detach_all(&mut self) {
        for pid in self.tasks.keys() {
            let _ = self.kernel.interrupt(*pid);
        }
        let mut detached: HashSet<Pid> = HashSet::new();
        let deadline = Instant::now() + DETACH_TIMEOUT;
        while !self.tasks.is_empty() && Instant::now() < deadline {
            let status = match self.kernel.wait(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG) {
                Ok(None) | Err(NixErrno::EINTR) => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Ok(Some(status)) => status,
                Err(_) => break,
            };
            let (pid, signal) = match status {
                Status::Exited { pid, .. } | Status::Signaled { pid, .. } => {
                    self.tasks.remove(&pid);
                    continue;
                }
                Status::Stopped { pid, signal } => (pid, signal),
                Status::Syscall { pid } => (pid, 0),
                Status::Event { pid, event, .. } => {
                    if (event == Event::PTRACE_EVENT_FORK as i32
                        || event == Event::PTRACE_EVENT_VFORK as i32
                        || event == Event::PTRACE_EVENT_CLONE as i32)
                        && let Ok(child) = self.kernel.event_msg(pid)
                    {
                        let child = Pid::from_raw(child as i32);
                        if !detached.contains(&child) {
                            self.tasks.entry(child).or_default();
                        }
                    }
                    (pid, 0)
                }
                Status::Continued { .. } => continue,
            };
            if let Err(e) = self.kernel.restart(pid, Resume::Detach, signal)
                && e != NixErrno::ESRCH
            {
                tracing::warn!(%pid, error = %e, "cannot detach");
            }
            self.tasks.remove(&pid);
            detached.insert(pid);
        }
        if !self.tasks.is_empty() {
            tracing::warn!(
                left = self.tasks.len(),
                "some tasks never stopped to be detached; the kernel detaches them when phoebe exits"
            );
        }
        self.tasks.clear();
    }
}

/// The attach tracer's logic on recorded stops, through the fake kernel (`super::fake`) and a recorded `/proc`: what
/// it counts, how it passes signals on, how it detaches. `harness/monitor.rs` proves the wiring to real processes.
#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_backend_common::facts::fake::Recorded;

    use crate::fake::{Fake, Request, event, exited, stopped};

    // Above PID_MAX_LIMIT (4194304): no real task has these ids.
    const LEADER: Pid = Pid::from_raw(5_000_300);
    const THREAD: Pid = Pid::from_raw(5_000_301);
    const CHILD: Pid = Pid::from_raw(5_000_302);

    /// A tracer that has seized `tasks` (threads of LEADER's process), with `stop` already asked for or not.
    fn tracer(fake: Fake, tasks: &[Pid], stop: bool) -> Tracer<Fake, Recorded> {
        let proc = tasks
            .iter()
            .fold(Recorded::new(), |proc, &tid| proc.thread(tid, LEADER.as_raw()));
        Tracer {
            kernel: fake,
            facts: proc,
            tasks: tasks.iter().map(|&t| (t, Task::default())).collect(),
            counts: Arc::default(),
            histograms: Arc::default(),
            stop: Arc::new(AtomicBool::new(stop)),
        }
    }

    fn restarts(tracer: &Tracer<Fake, Recorded>, of: Pid) -> Vec<(Resume, i32)> {
        tracer.kernel.restarts(of)
    }

    fn entry(nr: i64) -> SyscallStop {
        SyscallStop::Entry {
            nr: nr as u64,
            args: [0; 6],
            native: true,
            ip: 0,
        }
    }

    fn exit(rval: i64) -> SyscallStop {
        SyscallStop::Exit {
            rval,
            is_error: rval < 0,
        }
    }

    /// Each counted key as (tgid, nr, errno, calls).
    fn counted(tracer: &Tracer<Fake, Recorded>) -> Vec<(u32, u32, u32, u64)> {
        let counts = tracer.counts.lock().unwrap();
        counts
            .iter()
            .map(|(k, v)| (k.tgid, k.nr, k.errno, v.calls))
            .collect()
    }

    /// The "a ptrace monitor survives 40 real-time signals": each signal-delivery-stop is restarted with
    /// its own signal, and counting goes on.
    #[test]
    fn forty_realtime_signals_are_each_passed_on_and_counting_goes_on() {
        let signals: Vec<i32> = (0..40).map(|i| libc::SIGRTMIN() + i % 31).collect();
        let fake = signals
            .iter()
            .fold(Fake::new(), |fake, &signal| fake.stop(LEADER, stopped(signal)))
            .syscall(LEADER, entry(libc::SYS_read))
            .syscall(LEADER, exit(3))
            .stop(LEADER, exited(0));
        let mut tracer = tracer(fake, &[LEADER], false);
        tracer.trace();
        let expected: Vec<(Resume, i32)> = signals
            .iter()
            .map(|&s| (Resume::Syscall, s))
            .chain([(Resume::Syscall, 0); 2])
            .collect();
        assert_eq!(restarts(&tracer, LEADER), expected);
        assert_eq!(
            counted(&tracer),
            vec![(LEADER.as_raw() as u32, libc::SYS_read as u32, 0, 1)]
        );
        assert!(tracer.tasks.is_empty());
    }

    /// Exits are counted by (process, syscall, errno), the process read from `/proc` for a thread; the first exit
    /// after seizing, whose entry came before, is not counted.
    #[test]
    fn exits_are_counted_by_process_syscall_and_errno_but_not_a_call_under_way_at_the_seize() {
        let fake = Fake::new()
            .syscall(THREAD, exit(0))
            .syscall(THREAD, entry(libc::SYS_read))
            .syscall(THREAD, exit(-i64::from(libc::EAGAIN)))
            .syscall(THREAD, entry(libc::SYS_read))
            .syscall(THREAD, exit(-i64::from(libc::EAGAIN)))
            .stop(THREAD, exited(0));
        let mut tracer = tracer(fake, &[THREAD], false);
        tracer.trace();
        assert_eq!(
            counted(&tracer),
            vec![(
                LEADER.as_raw() as u32,
                libc::SYS_read as u32,
                libc::EAGAIN as u32,
                2
            )]
        );
        assert_eq!(restarts(&tracer, THREAD), vec![(Resume::Syscall, 0); 5]);
        let histograms = tracer.histograms.lock().unwrap();
        let buckets: u64 = histograms.values().flat_map(|b| b.counts.iter()).sum();
        assert_eq!(buckets, 2, "every counted call is timed");
    }

    /// A group stop leaves the task stopped as an untraced one would be (`PTRACE_LISTEN`), not resumed.
    #[test]
    fn a_group_stop_is_listened_not_resumed() {
        let fake = Fake::new()
            .stop(LEADER, event(wait::EVENT_STOP, libc::SIGTSTP))
            .stop(LEADER, exited(0));
        let mut tracer = tracer(fake, &[LEADER], false);
        tracer.trace();
        assert_eq!(tracer.kernel.requests, vec![Request::Listen { pid: LEADER }]);
    }

    /// Detaching: every task is interrupted, and each is detached at its next stop with the signal that stop was
    /// delivering (a real-time one too), so no signal is lost.
    #[test]
    fn detaching_passes_on_the_signal_a_task_was_stopped_with() {
        let rt = libc::SIGRTMIN() + 2;
        let fake = Fake::new()
            .stop(LEADER, stopped(rt))
            .stop(THREAD, event(wait::EVENT_STOP, libc::SIGTRAP));
        let mut tracer = tracer(fake, &[LEADER, THREAD], true);
        tracer.trace();
        let mut interrupts = tracer.kernel.requests[..2].to_vec();
        interrupts.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            interrupts,
            vec![
                Request::Interrupt { pid: LEADER },
                Request::Interrupt { pid: THREAD }
            ]
        );
        assert_eq!(restarts(&tracer, LEADER), vec![(Resume::Detach, rt)]);
        assert_eq!(restarts(&tracer, THREAD), vec![(Resume::Detach, 0)]);
        assert!(tracer.tasks.is_empty());
    }

    /// A task that exits while the others are detached is dropped from the table without a request; a child cloned
    /// meanwhile is detached at its first stop.
    #[test]
    fn a_task_exiting_mid_detach_is_dropped_and_a_new_child_is_detached_too() {
        let fake = Fake::new()
            .stop(THREAD, exited(0))
            .event(LEADER, libc::PTRACE_EVENT_CLONE, CHILD.as_raw().into())
            .stop(CHILD, event(wait::EVENT_STOP, libc::SIGTRAP));
        let mut tracer = tracer(fake, &[LEADER, THREAD], true);
        tracer.trace();
        assert_eq!(restarts(&tracer, THREAD), vec![]);
        assert_eq!(restarts(&tracer, LEADER), vec![(Resume::Detach, 0)]);
        assert_eq!(restarts(&tracer, CHILD), vec![(Resume::Detach, 0)]);
        assert!(tracer.tasks.is_empty());
    }

    /// A non-leader thread's exec moves its call in flight to the leader's pid, whose exit then counts.
    #[test]
    fn an_exec_by_a_thread_moves_its_call_to_the_leaders_pid() {
        let fake = Fake::new()
            .syscall(THREAD, entry(libc::SYS_execve))
            .event(LEADER, libc::PTRACE_EVENT_EXEC, THREAD.as_raw().into())
            .syscall(LEADER, exit(0))
            .stop(LEADER, exited(0));
        let mut tracer = tracer(fake, &[LEADER, THREAD], false);
        tracer.trace();
        assert_eq!(
            counted(&tracer),
            vec![(LEADER.as_raw() as u32, libc::SYS_execve as u32, 0, 1)]
        );
        assert!(tracer.tasks.is_empty(), "{:?}", tracer.tasks.keys());
    }
}
