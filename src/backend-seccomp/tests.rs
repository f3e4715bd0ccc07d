//! The supervisor's logic on recorded notifications, through the fake listener (`fake.rs`): how it answers each
//! call, what it counts, how its loop ends. The harness (`harness/seccomp.rs`, the conformance suite) proves the
//! wiring to real processes.

use std::{collections::HashMap, time::Instant};

use nix::errno::Errno as NixErrno;

use super::{
    Supervisor,
    fake::{Fake, Request},
};
use phoebe_backend_common::{
    BackendError,
    facts::{FactCache, fake::Recorded},
    lineage::Lineage,
};
use phoebe_core::{
    decide::Decider,
    model::{Effect, FaultSpec, InjectionLog, Syscall},
};

// Above PID_MAX_LIMIT (4194304): no real task has this id (the /proc the tests give the supervisor is recorded).
const ROOT: i32 = 5_000_200;

const EACCES: Option<i32> = Some(libc::EACCES);
const CONTINUE: Option<i32> = None;

fn decider(rules: &[&str]) -> Decider {
    let faults = rules.iter().map(|r| FaultSpec::parse(r).unwrap()).collect();
    Decider::new(faults, 1)
}

struct Supervised {
    result: Result<(), BackendError>,
    fake: Fake,
    warnings: Vec<String>,
}

/// Runs the supervisor's loop on `fake`'s script as `run` sets it up; `sync` as when SYNC_WAKE_UP was accepted
/// (no `poll` before each RECV unless a rule has `delay=`).
fn supervise(fake: Fake, decider: &mut Decider, sync: bool) -> Supervised {
    supervise_with(fake, Recorded::new(), decider, sync)
}

/// [`supervise`] with `proc` answering the supervisor's `/proc` and memory reads.
fn supervise_with(fake: Fake, proc: Recorded, decider: &mut Decider, sync: bool) -> Supervised {
    let execve = Syscall::parse("execve").unwrap();
    let mut supervisor = Supervisor {
        listener: fake,
        facts: proc,
        root: ROOT,
        launcher_exec: decider.is_targeted(execve),
        poll: !sync || decider.faults().any(|f| f.delay.is_some()),
        decider,
        started: Instant::now(),
        tgids: HashMap::new(),
        lineage: Lineage::new(ROOT),
        delayed: Vec::new(),
        warnings: Vec::new(),
        cache: FactCache::default(),
        killable: true,
    };
    let result = supervisor.supervise();
    Supervised {
        result,
        fake: supervisor.listener,
        warnings: supervisor.warnings,
    }
}

fn log(decider: Decider) -> InjectionLog {
    decider.finish(vec![], "seccomp", None, false)
}

/// Each rule's (matched, injected).
fn counts(log: &InjectionLog) -> Vec<(u64, u64)> {
    log.rules.iter().map(|r| (r.matched, r.injected)).collect()
}

#[test]
fn a_matching_rule_is_answered_with_its_errno_and_other_calls_continue() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_openat, [0; 6])
        .call(2, ROOT, libc::SYS_getpid, [0; 6])
        .call(3, ROOT, libc::SYS_read, [0; 6]);
    let mut decider = decider(&["openat:EACCES:p=1", "read:EIO:p=0"]);
    let run = supervise(fake, &mut decider, false);
    run.result.expect("the loop ends at POLLHUP");
    assert_eq!(
        run.fake.requests,
        vec![
            // The caller's thread group was read from /proc (then cached): ID_VALID vouches for it.
            Request::IdValid { id: 1 },
            Request::Send { id: 1, errno: EACCES },
            Request::Send {
                id: 2,
                errno: CONTINUE
            },
            Request::Send {
                id: 3,
                errno: CONTINUE
            },
        ]
    );
    let log = log(decider);
    assert_eq!(
        counts(&log),
        vec![(1, 1), (1, 0)],
        "getpid is not targeted: never counted"
    );
    assert_eq!(log.injections.len(), 1);
    assert_eq!(
        log.injections[0].effect,
        Effect::Errno(phoebe_core::model::Errno::new(libc::EACCES).unwrap())
    );
    assert_eq!((log.injections[0].pid, log.injections[0].tid), (ROOT, ROOT));
}

/// A rule with `path=` makes the supervisor read the path: ID_VALID is asked before the answer. A path that cannot
/// be read (the task is gone from /proc here) matches no glob: the call runs.
#[test]
fn a_call_whose_path_was_read_is_checked_with_id_valid_then_answered() {
    let fake = Fake::new().call(
        1,
        ROOT,
        libc::SYS_openat,
        [libc::AT_FDCWD as u64, 0x1000, 0, 0, 0, 0],
    );
    let mut decider = decider(&["openat:ENOENT:p=1:path=/etc/*"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(
        run.fake.requests,
        vec![
            Request::IdValid { id: 1 },
            Request::Send {
                id: 1,
                errno: CONTINUE
            }
        ]
    );
    assert_eq!(counts(&log(decider)), vec![(0, 0)]);
}

/// What was read about a call whose task no longer waits may belong to a recycled tid: the call is neither decided
/// (counted) nor answered.
#[test]
fn a_call_whose_task_is_gone_at_id_valid_is_neither_counted_nor_answered() {
    let fake =
        Fake::new()
            .call(1, ROOT, libc::SYS_openat, [0; 6])
            .gone(1)
            .call(2, ROOT, libc::SYS_openat, [0; 6]);
    let mut decider = decider(&["openat:ENOENT:p=1:path=/**"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(
        run.fake.requests,
        vec![
            Request::IdValid { id: 1 },
            Request::IdValid { id: 2 },
            Request::Send {
                id: 2,
                errno: CONTINUE
            }
        ]
    );
    assert_eq!(
        counts(&log(decider)),
        vec![(0, 0)],
        "the unread path of call 2 matches no glob"
    );
}

/// A `delay=` answer is held while later calls are answered, then given once due; a latency fault (no errno) is
/// answered with CONTINUE.
#[test]
fn a_delayed_call_is_held_while_others_are_answered_then_answered_once() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_read, [0; 6])
        .call(2, ROOT, libc::SYS_getpid, [0; 6])
        .call(3, ROOT, libc::SYS_write, [0; 6])
        .call(4, ROOT, libc::SYS_getpid, [0; 6]);
    let mut decider = decider(&["read:EAGAIN:p=1:delay=300ms", "write:delay=100ms"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    let answers = run.fake.answers();
    assert_eq!(answers.len(), 4, "each call answered exactly once: {answers:?}");
    assert_eq!(
        &answers[..2],
        &[(2, CONTINUE), (4, CONTINUE)],
        "the held calls wait: {answers:?}"
    );
    assert!(answers.contains(&(1, Some(libc::EAGAIN))), "{answers:?}");
    assert!(answers.contains(&(3, CONTINUE)), "{answers:?}");
    let log = log(decider);
    assert_eq!(counts(&log), vec![(1, 1), (1, 1)]);
    assert_eq!(log.injections[1].effect, Effect::Run);
    assert_eq!(log.injections[1].delay_ns, Some(100_000_000));
}

/// A call signalled while it waited (before Linux 5.19's WAIT_KILLABLE_RECV) is no longer waiting: SEND says
/// ENOENT, which is not an error. The call restarts and comes back as a new notification, which the supervisor
/// decides again as a new call (DESIGN: a second roll): its call index and its thread's index move on. The first
/// errno never reached the program, so only the second is in the ledger and the log.
#[test]
fn a_send_failing_with_enoent_is_tolerated_and_the_call_coming_back_is_decided_again() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_openat, [0; 6])
        .send_fails(1, NixErrno::ENOENT)
        .call(2, ROOT, libc::SYS_openat, [0; 6]);
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise(fake, &mut decider, true);
    run.result.expect("ENOENT on SEND does not end the supervisor");
    assert_eq!(run.fake.answers(), vec![(1, EACCES), (2, EACCES)]);
    let log = log(decider);
    assert_eq!(counts(&log), vec![(2, 1)], "matched twice, delivered once");
    let keys: Vec<_> = log
        .injections
        .iter()
        .map(|i| (i.index, i.thread.clone(), i.thread_index))
        .collect();
    assert_eq!(
        keys,
        vec![(2, Some("0".into()), Some(2))],
        "the retried call is the thread's next call, with a roll of its own"
    );
}

/// An errno whose SEND said ENOENT was counted and logged as injected although it never reached the program (the
/// caller was killed or signalled meanwhile): the report claimed an injection the program never saw. A held
/// (`delay=`) errno is taken back the same way.
#[test]
fn regression_an_errno_that_never_reached_the_program_was_counted_as_injected() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_openat, [0; 6])
        .send_fails(1, NixErrno::ENOENT)
        .call(2, ROOT, libc::SYS_read, [0; 6])
        .send_fails(2, NixErrno::ENOENT);
    let mut decider = decider(&["openat:EACCES:p=1", "read:EAGAIN:p=1:delay=10ms"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, EACCES), (2, Some(libc::EAGAIN))]);
    let log = log(decider);
    assert_eq!(counts(&log), vec![(1, 0), (1, 0)]);
    assert!(log.injections.is_empty(), "{:?}", log.injections);
}

/// Without SYNC_WAKE_UP the supervisor polls before each RECV: POLLHUP (no task uses the filter any more) ends the
/// loop without an error.
#[test]
fn pollhup_ends_the_loop_cleanly() {
    let fake = Fake::new().call(1, ROOT, libc::SYS_getpid, [0; 6]);
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise(fake, &mut decider, false);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, CONTINUE)]);
}

/// With SYNC_WAKE_UP the supervisor receives without polling: RECV's ENOENT is either a caller gone before its call
/// was received (the loop goes on) or, with POLLHUP, the end of the tree (the loop ends).
#[test]
fn recv_enoent_goes_on_while_tasks_are_left_and_ends_the_loop_at_pollhup() {
    let fake = Fake::new()
        .recv_fails(NixErrno::ENOENT)
        .recv_fails(NixErrno::EINTR)
        .call(1, ROOT, libc::SYS_openat, [0; 6]);
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, EACCES)]);
    assert_eq!(counts(&log(decider)), vec![(1, 1)]);
}

/// Any other failure of the listener ends the supervisor with an error naming the step and the errno (the run then
/// kills the target, whose targeted calls would otherwise wait forever).
#[test]
fn an_unexpected_listener_error_is_fatal_and_names_the_step() {
    let message = |fake: Fake, sync: bool| {
        let mut decider = decider(&["openat:EACCES:p=1"]);
        match supervise(fake, &mut decider, sync).result {
            Err(e) => e.to_string(),
            Ok(()) => panic!("the supervisor must fail"),
        }
    };
    assert_eq!(
        message(Fake::new().recv_fails(NixErrno::EBADF), true),
        format!(
            "SECCOMP_IOCTL_NOTIF_RECV failed on the seccomp listener: {}",
            NixErrno::EBADF
        )
    );
    assert_eq!(
        message(
            Fake::new()
                .call(1, ROOT, libc::SYS_openat, [0; 6])
                .send_fails(1, NixErrno::EINVAL),
            true
        ),
        format!(
            "SECCOMP_IOCTL_NOTIF_SEND failed on the seccomp listener: {}",
            NixErrno::EINVAL
        )
    );
    assert_eq!(
        message(Fake::new().poll_fails(NixErrno::ENOMEM), false),
        format!("poll failed on the seccomp listener: {}", NixErrno::ENOMEM)
    );
}

/// The launcher's own execve, when targeted, is let through and not counted; the target's later ones are decided.
#[test]
fn the_launchers_execve_continues_uncounted_and_later_ones_are_decided() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_execve, [0; 6])
        .call(2, ROOT, libc::SYS_execve, [0; 6]);
    let mut decider = decider(&["execve:EACCES:p=1"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, CONTINUE), (2, EACCES)]);
    assert_eq!(counts(&log(decider)), vec![(1, 1)]);
}

/// The ledger at the end: `max=` stops injecting but every matched call is counted, for every rule it matches (the
/// first rule that injects decides; the later ones still count the call).
#[test]
fn the_ledger_counts_every_matched_call_and_max_caps_the_injections() {
    let mut fake = Fake::new();
    for id in 1..=4 {
        fake = fake.call(id, ROOT, libc::SYS_openat, [0; 6]);
    }
    let fake = fake.call(5, ROOT, libc::SYS_close, [3, 0, 0, 0, 0, 0]);
    let mut decider = decider(&["openat:EACCES:p=1:max=2", "openat,close:EIO:p=0"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(
        run.fake.answers(),
        vec![
            (1, EACCES),
            (2, EACCES),
            (3, CONTINUE),
            (4, CONTINUE),
            (5, CONTINUE)
        ]
    );
    let log = log(decider);
    assert_eq!(counts(&log), vec![(4, 2), (5, 0)]);
    let indices: Vec<(Syscall, u64)> = log.injections.iter().map(|i| (i.syscall, i.index)).collect();
    let openat = Syscall::parse("openat").unwrap();
    assert_eq!(indices, vec![(openat, 1), (openat, 2)]);
}

/// A target asking for a listener of its own is told once why the kernel refuses it; the call itself runs.
#[test]
fn a_target_asking_for_its_own_listener_gets_one_warning() {
    let new_listener = [
        u64::from(libc::SECCOMP_SET_MODE_FILTER),
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        0,
        0,
        0,
        0,
    ];
    let fake = Fake::new().call(1, ROOT, libc::SYS_seccomp, new_listener).call(
        2,
        ROOT,
        libc::SYS_seccomp,
        new_listener,
    );
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise(fake, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, CONTINUE), (2, CONTINUE)]);
    assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
    assert!(
        run.warnings[0].contains("--backend ptrace"),
        "{}",
        run.warnings[0]
    );
}

/// The caller's `/proc` as the tests record it: fd 3 a TCP socket, fd 4 a file, a path in its memory.
fn proc() -> Recorded {
    let root = nix::unistd::Pid::from_raw(ROOT);
    Recorded::new()
        .thread(root, ROOT)
        .socket(root, 3, 4242, (libc::AF_INET, libc::SOCK_STREAM), libc::O_RDWR)
        .file(root, 4, "/srv/data/input", libc::O_RDONLY)
        .string(root, 0x3000, "/etc/passwd")
        .name("/etc/passwd", true)
}

/// A shape predicate is decided on what `/proc` shows of the caller's descriptor, read before ID_VALID vouches
/// for it; the log names the shape.
#[test]
fn a_shape_predicate_is_decided_on_the_callers_descriptor() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_read, [4, 0x1000, 64, 0, 0, 0])
        .call(2, ROOT, libc::SYS_read, [3, 0x1000, 64, 0, 0, 0]);
    let mut decider = decider(&["read:EAGAIN:p=1:fd=tcp"]);
    let run = supervise_with(fake, proc(), &mut decider, true);
    run.result.unwrap();
    assert_eq!(
        run.fake.requests,
        vec![
            Request::IdValid { id: 1 },
            Request::Send {
                id: 1,
                errno: CONTINUE
            },
            Request::IdValid { id: 2 },
            Request::Send {
                id: 2,
                errno: Some(libc::EAGAIN)
            },
        ]
    );
    let log = log(decider);
    assert_eq!(counts(&log), vec![(1, 1)]);
    assert_eq!(
        log.injections[0].shape.as_ref().map(ToString::to_string),
        Some("fd=tcp:nonblock=no".to_owned())
    );
}

/// A `path=` rule is decided on the path argument read from the caller's memory.
#[test]
fn a_path_rule_is_decided_on_the_path_in_the_callers_memory() {
    let fake = Fake::new()
        .call(
            1,
            ROOT,
            libc::SYS_openat,
            [libc::AT_FDCWD as i64 as u64, 0x3000, 0, 0, 0, 0],
        )
        .call(
            2,
            ROOT,
            libc::SYS_openat,
            [libc::AT_FDCWD as i64 as u64, 0x4000, 0, 0, 0, 0],
        );
    let mut decider = decider(&["openat:ENOENT:p=1:path=/etc/*"]);
    let run = supervise_with(fake, proc(), &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, Some(libc::ENOENT)), (2, CONTINUE)]);
    let log = log(decider);
    assert_eq!(counts(&log), vec![(1, 1)], "an unreadable path matches no glob");
    assert_eq!(log.injections[0].path.as_deref(), Some("/etc/passwd"));
}

/// Without a `path=` rule the path is read only for the log of an injected call (it was pre-filled as unknown, so
/// such a log said `path=unknown` and no path).
#[test]
fn regression_an_injected_calls_log_names_its_path_without_a_path_rule() {
    let fake = Fake::new().call(
        1,
        ROOT,
        libc::SYS_openat,
        [libc::AT_FDCWD as i64 as u64, 0x3000, 0, 0, 0, 0],
    );
    let mut decider = decider(&["openat:ENOENT:p=1"]);
    let run = supervise_with(fake, proc(), &mut decider, true);
    run.result.unwrap();
    let log = log(decider);
    assert_eq!(log.injections[0].path.as_deref(), Some("/etc/passwd"));
    assert_eq!(
        log.injections[0].shape.as_ref().map(ToString::to_string),
        Some("creates=no:directory=no:exists=yes:path=/etc/passwd".to_owned())
    );
}

const CHILD: i32 = 5_000_201;

/// A clone let run is answered, then the task it created is found among the caller's threads and children and
/// numbered after its creator (`backend::lineage`), before anything else is received: the new task's calls carry
/// the key `0.1`, as on ptrace.
#[test]
fn a_clone_let_run_numbers_the_task_it_created_after_its_creator() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_clone, [0; 6])
        .call(2, CHILD, libc::SYS_openat, [0; 6]);
    let proc =
        proc()
            .thread(nix::unistd::Pid::from_raw(CHILD), ROOT)
            .family(ROOT, ROOT, &[&[ROOT], &[ROOT, CHILD]]);
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise_with(fake, proc, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, CONTINUE), (2, EACCES)]);
    let log = log(decider);
    assert_eq!(
        (log.injections[0].pid, log.injections[0].thread.as_deref()),
        (ROOT, Some("0.1"))
    );
}

/// A clone after which no new task appears (it failed) gives up after `CLONE_WAIT`: the next task seen has an
/// unknown creator.
#[test]
fn a_clone_that_created_no_task_leaves_the_next_one_of_unknown_creator() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_clone, [0; 6])
        .call(2, CHILD, libc::SYS_openat, [0; 6]);
    let proc = proc().family(ROOT, ROOT, &[&[ROOT]]);
    let mut decider = decider(&["openat:EACCES:p=1"]);
    let run = supervise_with(fake, proc, &mut decider, true);
    run.result.unwrap();
    assert_eq!(run.fake.answers(), vec![(1, CONTINUE), (2, EACCES)]);
    let log = log(decider);
    let thread = log.injections[0].thread.clone().unwrap();
    assert_ne!(thread, "0.1");
    assert!(thread.starts_with("0.x"), "{thread}");
}

/// Regression (an injected EPIPE never came with its SIGPIPE): the kernel raises SIGPIPE in a thread whose write
/// fails with EPIPE, so the supervisor raises it in the caller before the answer (the filter waits killably: the
/// signal is pending when the call returns, or ends the program as it would for real). A send with
/// MSG_NOSIGNAL gets the errno alone. The log says which injection raised it.
#[test]
fn regression_an_injected_epipe_raises_sigpipe_in_the_caller_before_the_answer() {
    let nosignal = libc::MSG_NOSIGNAL as u64;
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_write, [1, 0, 4, 0, 0, 0])
        .call(2, ROOT, libc::SYS_sendto, [3, 0, 4, nosignal, 0, 0]);
    let mut decider = decider(&["write,sendto:EPIPE:p=1"]);
    let run = supervise(fake, &mut decider, false);
    run.result.unwrap();
    let epipe = Some(libc::EPIPE);
    assert_eq!(
        run.fake.requests,
        vec![
            Request::IdValid { id: 1 },
            Request::Signal {
                tgid: ROOT,
                tid: ROOT,
                signal: libc::SIGPIPE
            },
            Request::Send { id: 1, errno: epipe },
            Request::Send { id: 2, errno: epipe },
        ]
    );
    let log = log(decider);
    let signals: Vec<_> = log.injections.iter().map(|i| i.signal).collect();
    assert_eq!(signals, vec![Some(libc::SIGPIPE), None]);
}

/// A SIGPIPE the program does not catch ends it before the answer arrives (SEND says ENOENT): the injection did
/// what the kernel's error does, so it stays counted.
#[test]
fn an_epipe_whose_sigpipe_ended_the_caller_stays_counted() {
    let fake = Fake::new()
        .call(1, ROOT, libc::SYS_write, [1, 0, 4, 0, 0, 0])
        .send_fails(1, NixErrno::ENOENT);
    let mut decider = decider(&["write:EPIPE:p=1"]);
    supervise(fake, &mut decider, false).result.unwrap();
    let log = log(decider);
    assert_eq!(counts(&log), vec![(1, 1)]);
}
