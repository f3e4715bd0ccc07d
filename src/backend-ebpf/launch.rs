//! Running a target under eBPF programs: launch it stopped, put it in the programs' target set, let it exec,
//! and wait for its whole process tree while the caller reads the maps at a fixed period. Shared by the observer
//! and the injector, which differ only in what they do at each tick.
//!
//! Whatever ends the run — the tree's end, or a tick that fails — the tree is gone, the reaper thread joined, the
//! control ended and the subreaper flag cleared before [`supervise`] returns.

use std::{
    sync::mpsc,
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

use super::EbpfError;
use phoebe_backend_common::{BackendError, Target, control::Control};
use phoebe_core::model::TargetExit;
use phoebe_sys::{launch::Command, subreaper::Subreaper, wait};

/// What the supervisor needs from the loaded programs.
pub(super) trait Programs {
    /// Adds the launched process (stopped before its exec) to the target set.
    fn follow(&mut self, tgid: u32) -> Result<(), EbpfError>;
    /// The processes in the target set now.
    fn followed(&mut self) -> Vec<u32>;
    /// Called at every period's end (`tick` counts from 1, `at` is the time since the exec) and once more when
    /// the tree has ended (`last`).
    fn tick(&mut self, tick: u32, at: Duration, last: bool) -> Result<(), BackendError>;
    /// The period the programs want from now on, when it changed since the start (an observation whose
    /// `--interval auto` doubled): the next tick is at the next multiple of it, so that ticks stay on the
    /// boundaries of its intervals.
    fn period(&self) -> Option<Duration> {
        None
    }
}

/// How the supervised run ended.
pub(super) struct Ended {
    pub exit: TargetExit,
    /// From the exec to the end of the tree.
    pub duration: Duration,
}

/// Runs `target` under `programs` until its whole process tree has ended.
pub(super) fn supervise(
    target: &Target,
    control: &Control,
    programs: &mut impl Programs,
    period: Duration,
) -> Result<Ended, BackendError> {
    let command = target.display.join(" ");
    // Orphans of the tree are reparented to phoebe, which then waits for them as the ptrace backend does.
    let subreaper = Subreaper::set()
        .inspect_err(|e| {
            tracing::warn!(error = %e, "cannot become the subreaper: orphaned descendants are not waited for");
        })
        .ok();
    let child = Command::exec(&target.program_c, &target.argv)
        .stop_before_exec()
        .spawn()
        .map_err(|source| super::RunError::Launch {
            command: command.clone(),
            source,
        })?;
    let root = child.pid;
    if let Err(e) = programs.follow(root.as_raw() as u32) {
        child.kill();
        return Err(super::RunError::Ebpf(e).into());
    }
    control.begin(root.as_raw());
    let exec = child
        .cont()
        .and_then(|()| child.wait_exec().map_err(|failure| failure.errno));
    if let Err(source) = exec {
        // The child exits 127 after a failed exec; a SIGCONT that failed left it stopped.
        child.kill();
        control.end();
        return Err(BackendError::Exec { command, source });
    }
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let result = std::thread::scope(|scope| {
        let reaper = std::thread::Builder::new()
            .name("phoebe-reaper".into())
            .spawn_scoped(scope, move || reap_tree(&tx));
        if let Err(source) = reaper {
            end_tree(root, programs, subreaper.as_ref(), None);
            return Err(BackendError::Thread {
                what: "the reaper of the target's tree",
                source,
            });
        }
        let result = tick_until_done(root, control, programs, period, started, &rx);
        if result.is_err() {
            // A failed tick ends the run: the tree goes with it, and the reaper (joined by the scope) with the tree.
            end_tree(root, programs, subreaper.as_ref(), Some(&rx));
        }
        result
    });
    control.end();
    drop(subreaper);
    result
}

/// The first multiple of `period` after `after`.
fn next_multiple(after: Duration, period: Duration) -> Duration {
    let p = period.as_nanos().max(1);
    Duration::from_nanos(u64::try_from((after.as_nanos() / p + 1) * p).unwrap_or(u64::MAX))
}

/// Reads the reaper's reports and ticks until the tree has ended, then ticks a last time.
fn tick_until_done(
    root: Pid,
    control: &Control,
    programs: &mut impl Programs,
    period: Duration,
    started: Instant,
    rx: &mpsc::Receiver<(Pid, TargetExit)>,
) -> Result<Ended, BackendError> {
    let mut tick: u32 = 1;
    // The next tick, from the start: a multiple of the programs' period.
    let mut next = period;
    let mut root_exit = None;
    loop {
        let deadline = started + next;
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((pid, exit)) => {
                control.remove_task(pid.as_raw());
                if pid == root {
                    root_exit = Some(exit);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                programs.tick(tick, next, false)?;
                tick += 1;
                next = next_multiple(next, programs.period().unwrap_or(period));
            }
        }
        if root_exit.is_some() {
            // Leftovers of the tree: let the signal thread see them, and end them if the user asked to stop.
            for tgid in programs.followed() {
                control.add_task(tgid as i32);
                if control.interrupted() {
                    let _ = kill(Pid::from_raw(tgid as i32), Signal::SIGKILL);
                }
            }
        }
    }
    let duration = started.elapsed();
    programs.tick(tick, duration, true)?;
    Ok(Ended {
        exit: root_exit.unwrap_or(TargetExit::Signal(libc::SIGKILL)),
        duration,
    })
}

/// Waits for every process of the tree (children and adopted orphans) until none is left, reporting each end.
/// Reaps on even when nobody listens any more, so that the tree never stays as zombies.
fn reap_tree(tx: &mpsc::Sender<(Pid, TargetExit)>) {
    loop {
        match wait::waitpid(None, WaitPidFlag::__WALL) {
            Ok(Some(status)) => {
                if let Some(exit) = status.exit() {
                    let _ = tx.send((status.pid(), exit));
                }
            }
            Ok(None) | Err(NixErrno::EINTR) => {}
            // ECHILD: the whole tree is gone.
            Err(_) => return,
        }
    }
}

/// Kills the target's tree until it is gone: the root, every process in the target set, and (as its subreaper)
/// every child of phoebe. With a reaper thread (`reaped`), until it has seen the last one; without, reaping here.
fn end_tree(
    root: Pid,
    programs: &mut impl Programs,
    subreaper: Option<&Subreaper>,
    reaped: Option<&mpsc::Receiver<(Pid, TargetExit)>>,
) {
    loop {
        let _ = kill(root, Signal::SIGKILL);
        for tgid in programs.followed() {
            let _ = kill(Pid::from_raw(tgid as i32), Signal::SIGKILL);
        }
        if let Some(subreaper) = subreaper {
            subreaper.kill_children();
        }
        let gone = match reaped {
            Some(rx) => matches!(
                rx.recv_timeout(Duration::from_millis(10)),
                Err(mpsc::RecvTimeoutError::Disconnected)
            ),
            None => {
                std::thread::sleep(Duration::from_millis(10));
                loop {
                    match wait::waitpid(None, WaitPidFlag::__WALL | WaitPidFlag::WNOHANG) {
                        Ok(Some(_)) | Err(NixErrno::EINTR) => {}
                        Ok(None) => break false,
                        Err(_) => break true,
                    }
                }
            }
        };
        if gone {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_stay_on_the_boundaries_of_a_doubled_period() {
        let ms = Duration::from_millis;
        assert_eq!(next_multiple(ms(320), ms(8)), ms(328));
        // The period doubled after the tick at 328 ms: the next is at 336, on a 16 ms boundary, not at 344.
        assert_eq!(next_multiple(ms(328), ms(16)), ms(336));
        assert_eq!(next_multiple(ms(336), ms(16)), ms(352));
    }

    use std::ffi::OsString;

    use super::*;
    use phoebe_sys::subreaper;

    /// Programs whose every tick fails.
    struct FailingTick {
        ticks: u32,
    }

    impl Programs for FailingTick {
        fn follow(&mut self, _tgid: u32) -> Result<(), EbpfError> {
            Ok(())
        }

        fn followed(&mut self) -> Vec<u32> {
            Vec::new()
        }

        fn tick(&mut self, _tick: u32, _at: Duration, _last: bool) -> Result<(), BackendError> {
            self.ticks += 1;
            Err(BackendError::Wait {
                source: NixErrno::EIO,
            })
        }
    }

    /// A failed tick returned at once: the tree ran on (and its orphans stayed phoebe's), the control stayed
    /// active, phoebe stayed a subreaper and the reaper thread was never joined.
    #[test]
    fn regression_a_failed_ebpf_tick_ends_the_tree_and_clears_the_subreaper() {
        let _children = phoebe_core::testing::children_lock();
        // sh and two sleeps: one a child of sh, orphaned (to phoebe, the subreaper) when sh is killed.
        let command: Vec<OsString> = ["sh", "-c", "sleep 30 & sleep 30"].map(OsString::from).into();
        let target = Target::resolve(&command).expect("sh");
        let control = Control::default();
        let mut programs = FailingTick { ticks: 0 };
        let started = Instant::now();
        let result = supervise(&target, &control, &mut programs, Duration::from_millis(20));
        assert!(
            matches!(result, Err(BackendError::Wait { .. })),
            "the tick's error is returned"
        );
        assert_eq!(programs.ticks, 1, "no tick after the failed one");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the tree was killed, not waited for"
        );
        assert_eq!(
            wait::waitpid(None, WaitPidFlag::__WALL | WaitPidFlag::WNOHANG),
            Err(NixErrno::ECHILD),
            "every process of the tree was reaped"
        );
        assert!(!subreaper::is_set().unwrap(), "the subreaper flag is cleared");
    }
}
