//! The tracer's logic on recorded stops, through the fake kernel (`fake.rs`): what it counts, what it edits and how
//! it resumes each tracee. The harness proves the wiring to real processes.

use std::{collections::HashSet, time::Duration};

use nix::unistd::Pid;

use phoebe_backend_common::BackendError;

use super::{
    OWN_TRACE_DATA, Tracer,
    fake::{Fake, Request, exited, stopped},
    sys::{Resume, SyscallStop},
};
use phoebe_backend_common::{control::Control, facts::fake::Recorded};
use phoebe_core::{
    decide::Decider,
    model::{
        Errno, FaultSpec, Syscall, TargetExit,
        observation::{ObservationBuilder, ObservationMeta, SyscallStats},
    },
};
use phoebe_sys::wait::EVENT_STOP;

// Above PID_MAX_LIMIT (4194304): no real task has these ids (the tracer's /proc is recorded: `facts::fake`).
const ROOT: Pid = Pid::from_raw(5_000_100);
const THREAD: Pid = Pid::from_raw(5_000_101);

const ENOENT: i64 = libc::ENOENT as i64;

fn sc(name: &str) -> Syscall {
    Syscall::parse(name).unwrap()
}

fn decider(rule: &str) -> Decider {
    let mut decider = Decider::new(vec![FaultSpec::parse(rule).unwrap()], 1);
    // As `run` does: the exit stops show the results of the calls let run.
    decider.sees_results();
    decider
}

fn recorder() -> ObservationBuilder {
    ObservationBuilder::new(Duration::from_secs(3600)).without_shapes()
}

/// The target's exec, which starts recording and injection.
fn exec() -> Fake {
    Fake::new().event(ROOT, libc::PTRACE_EVENT_EXEC, ROOT.as_raw().into())
}

fn entry(nr: i64, args: [u64; 6]) -> SyscallStop {
    SyscallStop::Entry {
        nr: nr as u64,
        args,
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

struct Traced {
    fake: Fake,
    root_exit: Option<TargetExit>,
    tasks: Vec<Pid>,
}

/// Runs the tracer on `fake`'s script; `full` as when every syscall stops (no filter).
fn trace(
    fake: Fake,
    full: bool,
    observer: Option<&mut ObservationBuilder>,
    record_only: Option<&HashSet<Syscall>>,
    decider: Option<&mut Decider>,
) -> Traced {
    try_trace(fake, full, observer, record_only, decider).expect("the tracer ends without an error")
}

/// [`trace`] with nothing recorded in `/proc`: every tracee is unknown there.
fn try_trace(
    fake: Fake,
    full: bool,
    observer: Option<&mut ObservationBuilder>,
    record_only: Option<&HashSet<Syscall>>,
    decider: Option<&mut Decider>,
) -> Result<Traced, BackendError> {
    let (traced, _) = try_trace_with(fake, Recorded::new(), full, observer, record_only, decider)?;
    Ok(traced)
}

/// [`try_trace`] with `proc` answering the tracer's `/proc` and memory reads; returns them too.
fn try_trace_with(
    fake: Fake,
    proc: Recorded,
    full: bool,
    observer: Option<&mut ObservationBuilder>,
    record_only: Option<&HashSet<Syscall>>,
    decider: Option<&mut Decider>,
) -> Result<(Traced, Recorded), BackendError> {
    let control = Control::new();
    let mut tracer = Tracer::new(fake, proc, ROOT, full, observer, record_only, decider, &control);
    tracer.trace()?;
    let proc = std::mem::take(&mut tracer.facts);
    Ok((
        Traced {
            root_exit: tracer.root_exit,
            tasks: tracer.tasks.keys().copied().collect(),
            fake: std::mem::take(&mut tracer.kernel),
        },
        proc,
    ))
}

/// Each recorded syscall's counters, summed over the intervals.
fn recorded(observer: ObservationBuilder) -> Vec<(Syscall, SyscallStats)> {
    let observation = observer.finish(Duration::ZERO, ObservationMeta::default());
    let mut out: Vec<(Syscall, SyscallStats)> = Vec::new();
    for interval in observation.intervals {
        for (syscall, stats) in interval.syscalls {
            match out.iter_mut().find(|(s, _)| *s == syscall) {
                Some((_, sum)) => {
                    sum.calls += stats.calls;
                    for (errno, n) in stats.errors {
                        *sum.errors.entry(errno).or_default() += n;
                    }
                }
                None => out.push((syscall, stats)),
            }
        }
    }
    out
}

/// Per recorded syscall: its calls and its failures by errno.
type Counts = Vec<(Syscall, u64, Vec<(Errno, u64)>)>;

fn counts(observer: ObservationBuilder) -> Counts {
    recorded(observer)
        .into_iter()
        .map(|(sc, stats)| (sc, stats.calls, stats.errors.into_iter().collect()))
        .collect()
}

fn errno(code: i32) -> Errno {
    Errno::new(code).unwrap()
}

#[test]
fn an_entry_then_exit_is_recorded_once_with_its_result() {
    let fake = exec()
        .syscall(ROOT, entry(libc::SYS_read, [3, 0x1000, 4096, 0, 0, 0]))
        .syscall(ROOT, exit(5))
        .syscall(ROOT, entry(libc::SYS_openat, [0; 6]))
        .syscall(ROOT, exit(-ENOENT))
        .stop(ROOT, exited(3));
    let mut observer = recorder();
    let run = trace(fake, true, Some(&mut observer), None, None);
    assert_eq!(run.root_exit, Some(TargetExit::Code(3)));
    assert_eq!(
        counts(observer),
        vec![
            (sc("read"), 1, vec![]),
            (sc("openat"), 1, vec![(errno(libc::ENOENT), 1)])
        ]
    );
    // Full mode: every stop is resumed with PTRACE_SYSCALL, no signal, and nothing is edited.
    assert_eq!(run.fake.restarts(ROOT), vec![(Resume::Syscall, 0); 5]);
    assert_eq!(run.fake.edits(), vec![]);
    assert!(run.tasks.is_empty(), "{:?}", run.tasks);
}

#[test]
fn an_errno_injected_at_entry_skips_the_call_and_its_exit_records_the_errno() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, [0; 6])
        .syscall(ROOT, exit(-ENOENT))
        .stop(ROOT, exited(0));
    let only = HashSet::from([sc("openat")]);
    let mut observer = recorder();
    let mut decider = decider("openat:ENOENT:p=1");
    let run = trace(fake, false, Some(&mut observer), Some(&only), Some(&mut decider));
    assert_eq!(
        run.fake.edits(),
        vec![Request::Skip {
            pid: ROOT,
            errno: libc::ENOENT
        }],
        "the exit already returns -ENOENT: no set_return"
    );
    // Exec: PTRACE_CONT (only the filter's calls stop); the injected call: PTRACE_SYSCALL to see its exit.
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![(Resume::Cont, 0), (Resume::Syscall, 0), (Resume::Cont, 0)]
    );
    assert_eq!(
        counts(observer),
        vec![(sc("openat"), 1, vec![(errno(libc::ENOENT), 1)])]
    );
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1));
    assert_eq!(log.rules[0].natural, Some(0));
}

/// Regression (an injected EPIPE never came with its SIGPIPE): the tracer raises SIGPIPE in the thread whose write
/// it fails with EPIPE, while the thread is stopped; its delivery comes back as a signal stop the tracer passes on,
/// and the program dies of it as it would for real (raw status: killed by signal 13).
#[test]
fn regression_an_epipe_injected_by_ptrace_raises_sigpipe_in_the_writer() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_write, [1, 0, 4, 0, 0, 0])
        .syscall(ROOT, exit(-i64::from(libc::EPIPE)))
        .stop(ROOT, stopped(libc::SIGPIPE))
        .stop(ROOT, libc::SIGPIPE);
    let mut decider = decider("write:EPIPE:p=1");
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert_eq!(
        run.fake.edits(),
        vec![
            Request::Skip {
                pid: ROOT,
                errno: libc::EPIPE
            },
            Request::Signal {
                tgid: ROOT,
                tid: ROOT,
                signal: libc::SIGPIPE
            }
        ]
    );
    assert_eq!(
        run.fake.restarts(ROOT).last(),
        Some(&(Resume::Cont, libc::SIGPIPE)),
        "the signal stop delivers SIGPIPE"
    );
    assert_eq!(run.root_exit, Some(TargetExit::Signal(libc::SIGPIPE)));
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(log.injections[0].signal, Some(libc::SIGPIPE));
}

#[test]
fn an_errno_injected_at_exit_replaces_the_result() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, [0; 6])
        .syscall(ROOT, exit(7))
        .stop(ROOT, exited(0));
    let mut decider = decider("openat:EACCES:p=1:when=exit");
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert_eq!(
        run.fake.edits(),
        vec![Request::SetReturn {
            pid: ROOT,
            value: -i64::from(libc::EACCES)
        }]
    );
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![(Resume::Cont, 0), (Resume::Syscall, 0), (Resume::Cont, 0)]
    );
}

#[test]
fn a_short_decision_lowers_the_count_at_entry_and_restores_it_at_exit() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_read, [3, 0x1000, 4096, 0, 0, 0])
        .syscall(ROOT, exit(16))
        .stop(ROOT, exited(0));
    let only = HashSet::from([sc("read")]);
    let mut observer = recorder();
    let mut decider = decider("read:short=16");
    let run = trace(fake, false, Some(&mut observer), Some(&only), Some(&mut decider));
    assert_eq!(
        run.fake.edits(),
        vec![
            Request::SetArg {
                pid: ROOT,
                index: 2,
                value: 16
            },
            Request::SetArg {
                pid: ROOT,
                index: 2,
                value: 4096
            },
        ]
    );
    assert_eq!(counts(observer), vec![(sc("read"), 1, vec![])]);
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(log.rules[0].injected, 1);
    assert_eq!(
        log.rules[0].natural, None,
        "a short= rule has no errno a failure could count for"
    );
}

#[test]
fn a_natural_failure_of_a_watched_call_counts_for_its_rule() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, [0; 6])
        .syscall(ROOT, exit(-ENOENT))
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, [0; 6])
        .syscall(ROOT, exit(-i64::from(libc::EACCES)))
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, [0; 6])
        .syscall(ROOT, exit(4))
        .stop(ROOT, exited(0));
    let mut decider = decider("openat:ENOENT:p=0");
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert_eq!(run.fake.edits(), vec![]);
    // Each matched call is resumed with PTRACE_SYSCALL so that its exit shows the result.
    assert_eq!(
        run.fake.restarts(ROOT),
        [
            vec![(Resume::Cont, 0)],
            [(Resume::Syscall, 0), (Resume::Cont, 0)].repeat(3)
        ]
        .concat()
    );
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(
        (log.rules[0].matched, log.rules[0].injected, log.rules[0].natural),
        (3, 0, Some(1)),
        "EACCES is not the rule's errno, success is no failure"
    );
}

#[test]
fn a_group_stop_is_left_in_place_with_listen_and_not_counted() {
    let fake = exec()
        .stop(ROOT, super::fake::event(EVENT_STOP, libc::SIGTSTP))
        .stop(ROOT, exited(0));
    let mut observer = recorder();
    let run = trace(fake, true, Some(&mut observer), None, None);
    assert_eq!(run.fake.edits(), vec![Request::Listen { pid: ROOT }]);
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![(Resume::Syscall, 0)],
        "the exec only"
    );
    assert_eq!(counts(observer), vec![]);
}

#[test]
fn a_ptrace_interrupt_stop_is_resumed_not_listened() {
    let fake = exec()
        .stop(ROOT, super::fake::event(EVENT_STOP, libc::SIGTRAP))
        .stop(ROOT, exited(0));
    let run = trace(fake, false, None, None, None);
    assert_eq!(run.fake.edits(), vec![]);
    assert_eq!(run.fake.restarts(ROOT), vec![(Resume::Cont, 0); 2]);
}

#[test]
fn a_signal_delivery_stop_passes_the_signal_on_realtime_ones_too() {
    let fake = exec()
        .stop(ROOT, stopped(libc::SIGUSR1))
        .stop(ROOT, stopped(33))
        .stop(ROOT, exited(0));
    let run = trace(fake, false, None, None, None);
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![
            (Resume::Cont, 0),
            (Resume::Cont, libc::SIGUSR1),
            (Resume::Cont, 33)
        ]
    );
}

/// A thread that is not the leader execs: the kernel reports the exec as the leader's pid, with the thread's old
/// tid in the event message. Its in-flight execve moves with it, so the exit stop is recorded and the task is
/// resumed to reach that exit even though only filtered calls stop.
#[test]
fn an_exec_by_a_non_leader_thread_swaps_the_leader_and_keeps_the_call_in_flight() {
    let fake = exec()
        .event(ROOT, libc::PTRACE_EVENT_CLONE, THREAD.as_raw().into())
        .seccomp(THREAD, OWN_TRACE_DATA, libc::SYS_execve, [0; 6])
        .event(ROOT, libc::PTRACE_EVENT_EXEC, THREAD.as_raw().into())
        .syscall(ROOT, exit(0))
        .stop(ROOT, exited(0));
    let only = HashSet::from([sc("execve")]);
    let mut observer = recorder();
    let run = trace(fake, false, Some(&mut observer), Some(&only), None);
    assert_eq!(run.fake.restarts(THREAD), vec![(Resume::Syscall, 0)]);
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![
            (Resume::Cont, 0),    // the target's exec
            (Resume::Cont, 0),    // the clone event
            (Resume::Syscall, 0), // the thread's exec, its execve still in flight
            (Resume::Cont, 0),    // the execve's exit
        ]
    );
    assert_eq!(counts(observer), vec![(sc("execve"), 1, vec![])]);
    assert!(
        run.tasks.is_empty(),
        "the old tid is gone from the table: {:?}",
        run.tasks
    );
}

#[test]
fn a_new_tasks_stop_before_its_clone_event_is_held_until_the_event() {
    let fake = exec()
        .stop(THREAD, super::fake::event(EVENT_STOP, libc::SIGTRAP))
        .event(ROOT, libc::PTRACE_EVENT_CLONE, THREAD.as_raw().into())
        .stop(THREAD, exited(0))
        .stop(ROOT, exited(0));
    let run = trace(fake, false, None, None, None);
    let order: Vec<_> = run
        .fake
        .requests
        .iter()
        .map(|r| match *r {
            Request::Restart { pid, .. } => pid,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        order,
        vec![ROOT, ROOT, THREAD],
        "the held stop is resumed after the clone event"
    );
    assert_eq!(run.root_exit, Some(TargetExit::Code(0)));
}

#[test]
fn a_delayed_call_is_resumed_once_after_its_delay() {
    let fake = exec().seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_read, [0; 6]);
    let mut decider = decider("read:delay=20ms");
    let started = std::time::Instant::now();
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert!(
        started.elapsed() >= Duration::from_millis(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.fake.restarts(ROOT), vec![(Resume::Cont, 0); 2]);
    assert_eq!(run.fake.edits(), vec![]);
}

#[test]
fn a_foreign_seccomp_trace_fails_the_call_with_enosys() {
    let fake = exec()
        .seccomp(ROOT, 0x1234, libc::SYS_openat, [0; 6])
        .stop(ROOT, exited(0));
    let mut decider = decider("openat:ENOENT:p=1");
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert_eq!(
        run.fake.edits(),
        vec![Request::Skip {
            pid: ROOT,
            errno: libc::ENOSYS
        }]
    );
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(
        log.rules[0].matched, 0,
        "a call the kernel never runs is not decided"
    );
}

#[test]
fn a_realtime_signal_death_ends_the_run_as_that_signal() {
    let fake = exec().stop(ROOT, 34);
    let run = trace(fake, true, None, None, None);
    assert_eq!(run.root_exit, Some(TargetExit::Signal(34)));
    assert!(run.tasks.is_empty());
}

/// The launcher's own calls, up to and including the execve that starts the target, are never recorded.
#[test]
fn calls_before_the_targets_exec_and_the_exec_itself_are_not_recorded() {
    let fake = Fake::new()
        .syscall(ROOT, entry(libc::SYS_execve, [0; 6]))
        .event(ROOT, libc::PTRACE_EVENT_EXEC, ROOT.as_raw().into())
        .syscall(ROOT, exit(0))
        .syscall(ROOT, entry(libc::SYS_read, [0; 6]))
        .syscall(ROOT, exit(-i64::from(libc::EAGAIN)))
        .stop(ROOT, exited(0));
    let mut observer = recorder();
    let run = trace(fake, true, Some(&mut observer), None, None);
    assert_eq!(
        counts(observer),
        vec![(sc("read"), 1, vec![(errno(libc::EAGAIN), 1)])]
    );
    assert_eq!(run.fake.restarts(ROOT), vec![(Resume::Syscall, 0); 5]);
}

/// A task killed while stopped (`PTRACE_GET_SYSCALL_INFO` fails with ESRCH) is not an error and not resumed: its
/// exit is reported next.
#[test]
fn a_task_gone_at_its_syscall_stop_is_left_alone() {
    let fake = exec()
        .stop(ROOT, super::fake::SYSCALL_STOP)
        .stop(ROOT, libc::SIGKILL);
    let mut observer = recorder();
    let run = trace(fake, true, Some(&mut observer), None, None);
    assert_eq!(
        run.fake.restarts(ROOT),
        vec![(Resume::Syscall, 0)],
        "the exec only"
    );
    assert_eq!(run.root_exit, Some(TargetExit::Signal(libc::SIGKILL)));
    assert_eq!(counts(observer), vec![]);
}

/// A request that fails with ESRCH means the task was killed meanwhile (its exit comes next): the run goes on.
#[test]
fn requests_failing_with_esrch_do_not_end_the_run() {
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_read, [3, 0x1000, 4096, 0, 0, 0])
        .syscall(ROOT, exit(16))
        .stop(ROOT, exited(2))
        .failing(nix::errno::Errno::ESRCH);
    let mut decider = decider("read:short=16");
    let run = trace(fake, false, None, None, Some(&mut decider));
    assert_eq!(run.root_exit, Some(TargetExit::Code(2)));
    assert_eq!(
        run.fake.edits(),
        vec![Request::SetArg {
            pid: ROOT,
            index: 2,
            value: 16
        }],
        "the lowered count was not set, so there is nothing to restore"
    );
}

/// Any other failure of a request ends the run with an error naming the task.
#[test]
fn a_request_failing_otherwise_ends_the_run_with_the_task_named() {
    let fake = exec().stop(ROOT, exited(0)).failing(nix::errno::Errno::EIO);
    let Err(error) = try_trace(fake, false, None, None, None) else {
        panic!("a failed PTRACE_CONT must end the run");
    };
    assert!(
        error
            .to_string()
            .starts_with("ptrace failed while tracing pid 5000100: EIO"),
        "{error}"
    );
}

const SOCKET: i32 = 3;
const FILE: i32 = 4;

/// A tracee's `/proc` as the tests record it: fd 3 a non-blocking TCP socket, fd 4 a file, cwd `/srv`, and a
/// relative and an absolute path in its memory.
fn proc() -> Recorded {
    Recorded::new()
        .thread(ROOT, ROOT.as_raw())
        .socket(
            ROOT,
            SOCKET,
            4242,
            (libc::AF_INET, libc::SOCK_STREAM),
            libc::O_RDWR | libc::O_NONBLOCK,
        )
        .ready(ROOT, SOCKET, false)
        .file(ROOT, FILE, "/srv/data/input", libc::O_RDONLY)
        .cwd(ROOT, "/srv")
        .string(ROOT, 0x2000, "data/x")
        .string(ROOT, 0x3000, "/etc/hosts")
}

/// Each recorded syscall's shapes, as (shape, calls).
fn shapes(observer: ObservationBuilder, of: Syscall) -> Vec<(String, u64)> {
    recorded_shapes(observer)
        .into_iter()
        .filter(|(sc, _, _)| *sc == of)
        .map(|(_, shape, calls)| (shape, calls))
        .collect()
}

fn recorded_shapes(observer: ObservationBuilder) -> Vec<(Syscall, String, u64)> {
    let observation = observer.finish(Duration::ZERO, ObservationMeta::default());
    observation
        .totals()
        .into_iter()
        .flat_map(|(sc, stats)| {
            stats
                .shapes
                .into_iter()
                .map(move |(shape, s)| (sc, shape, s.calls))
        })
        .collect()
}

fn read_of(fd: i32) -> SyscallStop {
    entry(libc::SYS_read, [fd as u64, 0x1000, 64, 0, 0, 0])
}

/// The shape of a recorded call comes from the tracee's descriptors as `/proc` shows them: a socket's kind from its
/// family and type, `O_NONBLOCK` from its fdinfo, a file's kind and path from its link; an fd that is not open is
/// `closed`.
#[test]
fn a_recorded_calls_shape_reads_the_tracees_descriptors() {
    let fake = exec()
        .syscall(ROOT, read_of(SOCKET))
        .syscall(ROOT, exit(-i64::from(libc::EAGAIN)))
        .syscall(ROOT, read_of(FILE))
        .syscall(ROOT, exit(10))
        .syscall(ROOT, read_of(9))
        .syscall(ROOT, exit(-i64::from(libc::EBADF)))
        .stop(ROOT, exited(0));
    let mut observer = ObservationBuilder::new(Duration::from_secs(3600));
    let (_, proc) = try_trace_with(fake, proc(), true, Some(&mut observer), None, None).unwrap();
    assert_eq!(
        shapes(observer, sc("read")),
        vec![
            ("fd=closed".to_owned(), 1),
            ("fd=file:nonblock=no:path=/srv/data/input".to_owned(), 1),
            ("fd=tcp:nonblock=yes:ready=no".to_owned(), 1),
        ]
    );
    assert!(
        proc.reads
            .contains(&format!("socket_family_type {ROOT} {SOCKET}")),
        "{:?}",
        proc.reads
    );
}

/// A tracee killed at its stop has no `/proc` entries left: its descriptor is unknown, not `closed` (which would
/// say the call was about to fail with EBADF).
#[test]
fn regression_a_dead_tasks_missing_fd_link_gives_unknown_not_closed() {
    let fake = exec()
        .syscall(ROOT, read_of(SOCKET))
        .syscall(ROOT, exit(-i64::from(libc::EAGAIN)))
        .stop(ROOT, exited(0));
    let mut observer = ObservationBuilder::new(Duration::from_secs(3600));
    try_trace_with(fake, Recorded::new(), true, Some(&mut observer), None, None).unwrap();
    assert_eq!(
        shapes(observer, sc("read")),
        vec![("fd=unknown:nonblock=unknown".to_owned(), 1)]
    );
}

/// A rule with a shape predicate injects on the calls whose descriptor `/proc` shows to match it, and the log names
/// the shape.
#[test]
fn a_shape_predicate_matches_the_descriptor_proc_shows() {
    let fake = exec()
        .seccomp(
            ROOT,
            OWN_TRACE_DATA,
            libc::SYS_read,
            [FILE as u64, 0x1000, 64, 0, 0, 0],
        )
        .seccomp(
            ROOT,
            OWN_TRACE_DATA,
            libc::SYS_read,
            [SOCKET as u64, 0x1000, 64, 0, 0, 0],
        )
        .syscall(ROOT, exit(-i64::from(libc::EAGAIN)))
        .stop(ROOT, exited(0));
    let mut decider = decider("read:EAGAIN:p=1:fd=tcp");
    let (run, _) = try_trace_with(fake, proc(), false, None, None, Some(&mut decider)).unwrap();
    assert_eq!(
        run.fake.edits(),
        vec![Request::Skip {
            pid: ROOT,
            errno: libc::EAGAIN
        }]
    );
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!((log.rules[0].matched, log.rules[0].injected), (1, 1));
    assert_eq!(
        log.injections[0].shape.as_ref().map(ToString::to_string),
        Some("fd=tcp:nonblock=yes:ready=no".to_owned())
    );
}

/// A `path=` rule reads the path argument from the tracee's memory and resolves a relative one against its cwd.
#[test]
fn a_path_rule_resolves_the_path_argument_against_the_cwd() {
    let at = |addr: u64| [libc::AT_FDCWD as i64 as u64, addr, 0, 0, 0, 0];
    let fake = exec()
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, at(0x3000))
        .seccomp(ROOT, OWN_TRACE_DATA, libc::SYS_openat, at(0x2000))
        .syscall(ROOT, exit(-ENOENT))
        .stop(ROOT, exited(0));
    let mut decider = decider("openat:ENOENT:p=1:path=/srv/**");
    let (run, _) = try_trace_with(fake, proc(), false, None, None, Some(&mut decider)).unwrap();
    assert_eq!(
        run.fake.edits(),
        vec![Request::Skip {
            pid: ROOT,
            errno: libc::ENOENT
        }]
    );
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(log.injections.len(), 1);
    assert_eq!(log.injections[0].path.as_deref(), Some("/srv/data/x"));
}

/// Without a `path=` rule the path is read only for the log, when the call is injected: through the probe (it was
/// pre-filled as unknown, so such a log said `path=unknown` and no path).
#[test]
fn regression_an_injected_calls_log_names_its_path_without_a_path_rule() {
    let fake = exec()
        .seccomp(
            ROOT,
            OWN_TRACE_DATA,
            libc::SYS_openat,
            [libc::AT_FDCWD as i64 as u64, 0x2000, 0, 0, 0, 0],
        )
        .syscall(ROOT, exit(-ENOENT))
        .stop(ROOT, exited(0));
    let mut decider = decider("openat:ENOENT:p=1");
    let (_, proc) = try_trace_with(fake, proc(), false, None, None, Some(&mut decider)).unwrap();
    let log = decider.finish(vec![], "ptrace", None, false);
    assert_eq!(log.injections[0].path.as_deref(), Some("/srv/data/x"));
    assert_eq!(
        proc.reads,
        vec![
            format!("tgid {ROOT} "),
            format!("read_c_string {ROOT} 0x2000"),
            format!("cwd {ROOT} "),
            format!("name_exists {ROOT} /srv/data/x"),
        ],
        "the thread group once, then the path and whether it exists (for the log's shape): nothing else"
    );
}
