//! Process supervision, shared by plain and service mode: every run, check, reset, readiness probe and round
//! is a child in a process group of its own, contained (it ends with this phoebe), with its output in files;
//! waited for with a deadline (what its processes wait in read into `<base>.hung`, then SIGTERM, then again, then
//! SIGKILL); its group killed afterwards.

use std::{
    fs,
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use super::ExperimentError;
use crate::{control::Control, model::TargetExit, sys::host};

/// glibc writes its fatal messages ("The futex facility returned an unexpected error code", "double free
/// detected", …) to the terminal (`/dev/tty`) unless this is set, and then to stderr.
pub(crate) const LIBC_FATAL_STDERR: &str = "LIBC_FATAL_STDERR_";

/// What happened to one process run with a timeout.
pub(super) struct Ran {
    pub(super) status: Option<ExitStatus>,
    pub(super) timed_out: bool,
    pub(super) wall: Duration,
}

/// A started child: in its own process group (`pgid` is its pid).
pub(super) struct Started {
    pub(super) child: Child,
    pub(super) pgid: i32,
}

/// `<base>.<ext>`: `ext` appended to the whole name, so `run-1.check` gives `run-1.check.out` (never
/// `Path::with_extension`, which made it `run-1.out`, the run's own output).
pub(super) fn output_path(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// A fresh output file opened for appending: a process group may write it from several processes (each at the
/// end, never at a stale offset), and nothing truncates it under a writer, so it can hold no NUL hole.
fn output_file(path: PathBuf) -> Result<fs::File, ExperimentError> {
    match fs::remove_file(&path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            return Err(ExperimentError::Dir { path, source });
        }
        _ => {}
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| ExperimentError::Dir { path, source })
}

/// Starts `cmd` in its own process group, contained (it ends with this phoebe, however that ends), with stdin
/// from `/dev/null` and stdout/stderr appended to `<base>.out` / `<base>.err` ([`output_path`]), and
/// `LIBC_FATAL_STDERR_=1` (unless set already) so that glibc's fatal messages land in `<base>.err`, not on the
/// terminal.
pub(super) fn start(mut cmd: Command, base: &Path, what: &str) -> Result<Started, ExperimentError> {
    cmd.stdin(Stdio::null())
        .stdout(output_file(output_path(base, "out"))?)
        .stderr(output_file(output_path(base, "err"))?)
        .process_group(0);
    if std::env::var_os(LIBC_FATAL_STDERR).is_none() {
        cmd.env(LIBC_FATAL_STDERR, "1");
    }
    // Inner phoebes, checks, resets and services end with this phoebe, however it ends.
    crate::sys::contain::command(&mut cmd);
    let child = cmd.spawn().map_err(|source| ExperimentError::Spawn {
        what: what.into(),
        source,
    })?;
    let pgid = child.id() as i32;
    Ok(Started { child, pgid })
}

/// Runs `cmd` ([`start`]) and waits for it, killing the group at `timeout`. Signals to phoebe meanwhile go to
/// the whole group (`control`).
pub(super) fn run(
    cmd: Command,
    base: &Path,
    timeout: Option<Duration>,
    what: &str,
    control: &Control,
) -> Result<Ran, ExperimentError> {
    let started = Instant::now();
    let Started { mut child, pgid } = start(cmd, base, what)?;
    control.set_group(pgid);
    let mut timed_out = false;
    let mut escalation: Option<(Instant, u8)> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(source) => {
                control.clear_group();
                return Err(ExperimentError::Spawn {
                    what: what.into(),
                    source,
                });
            }
        }
        let now = Instant::now();
        if let Some(limit) = timeout
            && escalation.is_none()
            && now.duration_since(started) >= limit
        {
            timed_out = true;
            // What the run's processes were waiting in, before anything is signalled (`<base>.hung`).
            super::hung::write(&output_path(base, "hung"), &super::hung::snapshot(pgid as u32));
            // SIGTERM first: an inner phoebe forwards it and still writes its log.
            kill_group(pgid, libc::SIGTERM);
            escalation = Some((now, 1));
        }
        // Each step gets a grace period long enough for a loaded machine: an inner phoebe killed before it
        // wrote its log would leave the run without its injection counts.
        if let Some((since, step)) = escalation
            && now.duration_since(since) >= Duration::from_secs(5)
        {
            kill_group(pgid, if step == 1 { libc::SIGTERM } else { libc::SIGKILL });
            escalation = Some((now, step + 1));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Anything the run left behind in its group goes with it.
    kill_group(pgid, libc::SIGKILL);
    control.clear_group();
    Ok(Ran {
        status,
        timed_out,
        wall: started.elapsed(),
    })
}

/// How long each step of [`stop`] waits for the started phoebe to end: long enough for a loaded machine (an inner
/// phoebe killed before it wrote its log would leave the run without its injection counts).
const GRACE: Duration = Duration::from_secs(5);

/// Asks the started phoebe process to end, the way [`run`] does at a timeout, each step with [`GRACE`]: SIGTERM
/// (it forwards it to its target, which may shut down cleanly, and writes its file); SIGTERM again (it kills the
/// target with SIGKILL and still writes its file: a server slow to shut down, such as PostgreSQL in crash
/// recovery, no longer costs the run its injection log); once more (it kills what the target left behind); then
/// SIGKILL to the group. Then [`settle`]s.
pub(super) fn stop(started: &mut Started) {
    let pid = nix::unistd::Pid::from_raw(started.pgid);
    'steps: for _ in 0..3 {
        // ESRCH: it already ended.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = started.child.try_wait() {
                break 'steps;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    kill_group(started.pgid, libc::SIGKILL);
    let _ = started.child.wait();
    settle();
}

/// Waits until no process this phoebe launched is left ([`contain`](crate::sys::contain)'s cgroup is empty), at
/// most a little longer than a watchdog takes to empty its own: the processes of a run that was just ended, its
/// group killed, take a moment to exit, and those that left the group (a server's workers, each in a session of
/// its own) go only when the inner phoebe's watchdog ends them. Without it the next run could meet the last one's
/// processes: PostgreSQL refused to start beside a postmaster still dying ("lock file \"postmaster.pid\" already
/// exists"), and the campaign blamed the fault before it. Only when nothing else launched runs (between runs).
/// Uncontained, there is nothing to wait on.
pub(super) fn settle() {
    let Some(containment) = crate::sys::contain::get() else {
        return;
    };
    let timeout = Duration::from_millis(crate::sys::contain::EMPTY_WAIT_MS) + GRACE;
    if !containment.wait_empty(timeout) {
        tracing::warn!(
            cgroup = %containment.path().display(),
            "processes of the last run are still running {} s after it was ended",
            timeout.as_secs()
        );
    }
}

pub(super) fn shell(cmd: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    c
}

pub(super) fn plain(command: &[String]) -> Command {
    let mut c = Command::new(&command[0]);
    c.args(&command[1..]);
    c
}

/// How a child process ended: `sys::wait`'s one conversion of a wait status (`ExitStatus` holds the raw one).
pub(super) fn exit_of(status: ExitStatus) -> TargetExit {
    crate::sys::wait::exit_of_raw(status.into_raw()).unwrap_or(TargetExit::Code(-1))
}

pub(super) fn kill_group(pgid: i32, sig: i32) {
    // ESRCH: the group is already gone, which is what we want.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::try_from(sig).ok(),
    );
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The last lines of a run's stderr, for error messages.
pub(super) fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
    if tail.is_empty() {
        // A full disk takes the run's error message with it: say so.
        match host::full_file_system(path) {
            Some(full) => format!("no output (see {}); {full}", path.display()),
            None => format!("no output (see {})", path.display()),
        }
    } else {
        tail
    }
}
