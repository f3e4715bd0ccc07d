//! Running a target under eBPF programs: launch it stopped, put it in the programs' target set, let it exec,
//! and wait for its whole process tree while the caller reads the maps at a fixed period. Shared by the observer
//! and the injector, which differ only in what they do at each tick.

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

use super::{EbpfError, sys};
use crate::{
    backend::{BackendError, Target},
    control::Control,
    model::TargetExit,
    sys::wait,
};

/// What the supervisor needs from the loaded programs.
pub(super) trait Programs {
    /// Adds the launched process (stopped before its exec) to the target set.
    fn follow(&mut self, tgid: u32) -> Result<(), EbpfError>;
    /// The processes in the target set now.
    fn followed(&mut self) -> Vec<u32>;
    /// Called at every period's end (`tick` counts from 1, `at` is the time since the exec) and once more when
    /// the tree has ended (`last`).
    fn tick(&mut self, tick: u32, at: Duration, last: bool) -> Result<(), BackendError>;
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
    if let Err(e) = sys::set_subreaper(true) {
        tracing::warn!(error = %e, "cannot become the subreaper: orphaned descendants are not waited for");
    }
    let stopped =
        sys::spawn_stopped(&target.program_c, &target.argv).map_err(|source| BackendError::EbpfLaunch {
            command: command.clone(),
            source,
        })?;
    let root = stopped.pid;
    if let Err(e) = programs.follow(root.as_raw() as u32) {
        stopped.kill();
        return Err(BackendError::Ebpf(e));
    }
    control.begin(root.as_raw());
    let root = match stopped.resume() {
        Ok(pid) => pid,
        Err(source) => {
            wait::reap(root);
            control.end();
            return Err(BackendError::Exec { command, source });
        }
    };
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    // Waits for every process of the tree (children and adopted orphans) until none is left.
    std::thread::Builder::new()
        .name("phoebe-reaper".into())
        .spawn(move || {
            loop {
                let status = match wait::waitpid(None, WaitPidFlag::__WALL) {
                    Ok(Some(status)) => status.exit().map(|exit| (status.pid(), exit)),
                    Ok(None) | Err(NixErrno::EINTR) => None,
                    Err(_) => break,
                };
                if let Some(status) = status
                    && tx.send(status).is_err()
                {
                    break;
                }
            }
        })
        .map_err(|e| BackendError::Trace {
            pid: root.as_raw(),
            source: NixErrno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
        })?;
    let mut tick: u32 = 1;
    let mut root_exit = None;
    loop {
        let deadline = started + period * tick;
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((pid, exit)) => {
                control.remove_task(pid.as_raw());
                if pid == root {
                    root_exit = Some(exit);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                programs.tick(tick, period * tick, false)?;
                tick += 1;
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
    control.end();
    let _ = sys::set_subreaper(false);
    Ok(Ended {
        exit: root_exit.unwrap_or(TargetExit::Signal(libc::SIGKILL)),
        duration,
    })
}
