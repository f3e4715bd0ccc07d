//! Containment: every process phoebe launches, and every descendant of it, ends when phoebe ends — however phoebe
//! ends, SIGKILL included — and no call of theirs is ever answered ENOSYS by a seccomp listener that died with it.
//!
//! **How.** Once per phoebe process, the first launch makes a cgroup v2 child of phoebe's own cgroup,
//! `phoebe-<pid>`, and starts a *watchdog*. Every launched child joins that cgroup before its exec (it writes `0`
//! to the cgroup's `cgroup.procs`: [`join`]), so the target's whole tree stays in it, daemonized descendants
//! included (a process cannot leave a cgroup without write access to cgroup files). The watchdog is a copy of
//! phoebe (double `clone`, so it is not phoebe's child and no reaper of phoebe's waits for it) that
//! - **shares phoebe's descriptor table** (`CLONE_FILES`): whatever phoebe had open stays open until the watchdog
//!   is done. A target call waiting for phoebe's seccomp supervisor keeps waiting for it instead of failing with
//!   ENOSYS from a closed listener, until the SIGKILL below ends it;
//! - waits on a pidfd of phoebe, in its own session with every signal blocked (a Ctrl-C or a kill of phoebe's
//!   process group does not reach it);
//! - once phoebe is gone, writes `1` to `cgroup.kill` (the kernel SIGKILLs every process in the cgroup and in
//!   cgroups nested in it: an inner `phoebe inject` of `phoebe exec` nests its own), waits until `cgroup.events`
//!   says `populated 0` (at most [`EMPTY_WAIT_MS`]), removes the cgroup and the ones nested in it, and exits.
//!
//! The watchdog only makes raw system calls on data prepared before the clone, as a child of a multi-threaded
//! process must. It lives as long as phoebe, plus the few milliseconds the kill takes. In `ps` it is
//! `phb-watchdog for pid <phoebe's pid>` (name and command line both rewritten): a name without "phoebe", so that
//! `pkill phoebe` or `pkill -f 'phoebe inject'` — the way people kill phoebe — cannot kill the watchdog with it.
//! Until it has renamed itself it does have phoebe's command line, so phoebe makes the cgroup only once the
//! watchdog says (one byte on a pipe) that it runs under its own name: a pkill in between kills both before
//! anything exists to be left behind.
//!
//! **What it needs.** A cgroup v2 hierarchy (unified or hybrid mount) in which phoebe may create a child of its own
//! cgroup and move processes: root, or a delegated cgroup (a systemd user session's, `systemd-run --user --scope`),
//! and Linux ≥ 5.14 for `cgroup.kill`. Without it, phoebe warns once and runs uncontained: the target itself still
//! dies with phoebe (`PR_SET_PDEATHSIG`), ptrace's tracees still die with their tracer (`PTRACE_O_EXITKILL`), but a
//! seccomp or eBPF target's descendants may outlive a SIGKILLed phoebe (and seccomp's then get ENOSYS for the calls
//! phoebe's filter sent to it). `phoebe doctor` says which applies.

use std::{
    ffi::CString,
    fs,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use nix::{errno::Errno, sys::wait::WaitPidFlag, unistd::Pid};

use super::wait;

/// How long the watchdog waits for the killed cgroup to empty before it gives up removing it (a process stuck in
/// uninterruptible sleep can delay its death).
pub const EMPTY_WAIT_MS: u64 = 5_000;
/// How long phoebe waits for the watchdog to say it runs under its own name before it makes the cgroup anyway.
const READY_WAIT_MS: i32 = 2_000;

/// The deepest cgroup nesting the watchdog removes (a campaign's `exec`, its inner phoebe, and room to spare).
const MAX_DEPTH: usize = 8;

/// phoebe's cgroup for everything it launches, watched over by the watchdog.
#[derive(Debug)]
pub struct Containment {
    /// The cgroup's directory, for messages and `doctor`.
    path: PathBuf,
    /// Its `cgroup.procs`, open for writing: a child writes `0` there to join.
    procs: OwnedFd,
    /// The cgroup's parent directory (phoebe's own cgroup) and the pidfd of phoebe: the watchdog uses them by number
    /// in the descriptor table it shares with phoebe, so they stay open for phoebe's whole life (the watchdog has
    /// its own copy of the cgroup's name).
    _parent: OwnedFd,
    _pidfd: OwnedFd,
}

/// Why phoebe cannot contain what it launches.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error("phoebe is in no cgroup v2 hierarchy (/proc/self/cgroup has no `0::` line)")]
    NoUnified,
    #[error("no cgroup2 file system is mounted (/proc/self/mountinfo)")]
    NotMounted,
    /// Not a failure: the kernel ends every process of a PID namespace with its init.
    #[error("phoebe is the init of its PID namespace: the kernel ends every process in it when phoebe ends")]
    Init,
    #[error("cannot create the cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{step} failed")]
    Sys {
        step: &'static str,
        #[source]
        source: Errno,
    },
}

/// What would make containment work, for the warning and `doctor`.
impl crate::hint::Hinted for ContainError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            ContainError::Init => None,
            ContainError::NoUnified | ContainError::NotMounted => {
                Some("mount a cgroup v2 hierarchy (a unified or hybrid cgroup layout), with Linux >= 5.14".into())
            }
            ContainError::Create { .. } | ContainError::Open { .. } | ContainError::Sys { .. } => Some(
                "run phoebe as root, or in a delegated cgroup (e.g. `systemd-run --user --scope -p Delegate=yes \
                 phoebe ...`)"
                    .into(),
            ),
        }
    }
}

static CONTAINMENT: OnceLock<Result<Containment, ContainError>> = OnceLock::new();

/// phoebe's containment, made at the first call (the watchdog starts then). On failure, warns once (with the
/// reason and a hint) and returns `None`: launches then run uncontained.
///
/// Call it before becoming a subreaper (`sys::subreaper`): the watchdog's parent exits at once, and the watchdog
/// must be reparented to the machine's reaper, not to phoebe.
pub fn get() -> Option<&'static Containment> {
    let mut first = false;
    let made = CONTAINMENT.get_or_init(|| {
        first = true;
        Containment::new()
    });
    match made {
        Ok(c) => Some(c),
        Err(e) => {
            if first && !matches!(e, ContainError::Init) {
                let chain = super::error::Chain::asking(e, super::error::hints_of);
                tracing::warn!(
                    "phoebe cannot contain the processes it launches ({}): if phoebe is killed, the target's \
                     descendants may keep running{}",
                    chain.message(),
                    chain
                        .hints()
                        .iter()
                        .map(|h| format!("\nhint: {h}"))
                        .collect::<String>()
                );
            }
            None
        }
    }
}

/// The containment, or why there is none, for `doctor` (made now if it was not).
pub fn status() -> Result<&'static Containment, &'static ContainError> {
    CONTAINMENT.get_or_init(Containment::new).as_ref()
}

impl Containment {
    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor a child writes `0` to in order to join (see [`join`]).
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Waits until no process phoebe launched, nor any descendant of one, is left (`cgroup.events` says
    /// `populated 0`), at most `timeout`: a process killed with its group (or by an inner phoebe's watchdog) takes a
    /// moment to exit, and one that a session of its own kept out of its group's kill (a server's workers) goes
    /// when its watchdog ends it. `true` once empty; `false` at the timeout or when the file cannot be read.
    pub fn wait_empty(&self, timeout: std::time::Duration) -> bool {
        let events = self.path.join("cgroup.events");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match fs::read(&events) {
                Ok(text) if !events_populated(&text) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn new() -> Result<Containment, ContainError> {
        // The watchdog would be reparented to phoebe itself, and nothing needs it.
        if std::process::id() == 1 {
            return Err(ContainError::Init);
        }
        let parent_path = own_cgroup_dir()?;
        let pid = std::process::id();
        // The cgroup is made only once the watchdog runs under its own name: a `pkill -9 -f phoebe` in between
        // would otherwise kill the watchdog (which has phoebe's command line until it renames itself) with phoebe,
        // and leave the cgroup behind.
        let (name, path) = cgroup_name(&parent_path, pid)?;
        let open = |path: &Path, write: bool| {
            fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open(path)
                .map(OwnedFd::from)
                .map_err(|e| ContainError::Open {
                    path: path.to_path_buf(),
                    source: errno(&e),
                })
        };
        let undo = |e: ContainError| {
            let _ = fs::remove_dir(&path);
            e
        };
        let parent = fs::File::open(&parent_path)
            .map(OwnedFd::from)
            .map_err(|e| ContainError::Open {
                path: parent_path.clone(),
                source: errno(&e),
            })
            .map_err(undo)?;
        let name_c = CString::new(name.clone()).map_err(|_| {
            undo(ContainError::Sys {
                step: "cgroup name",
                source: Errno::EINVAL,
            })
        })?;
        let pidfd = pidfd_open(pid).map_err(|source| {
            undo(ContainError::Sys {
                step: "pidfd_open(phoebe)",
                source,
            })
        })?;
        let title = Title::new(pid);
        let watchdog =
            start_watchdog(pidfd.as_raw_fd(), parent.as_raw_fd(), &name_c, &title).map_err(|source| {
                undo(ContainError::Sys {
                    step: "clone(the watchdog)",
                    source,
                })
            })?;
        fs::create_dir(&path).map_err(|e| ContainError::Create {
            path: path.clone(),
            source: errno(&e),
        })?;
        let procs = open(&path.join("cgroup.procs"), true).map_err(undo)?;
        // Linux < 5.14 has no cgroup.kill: without it the watchdog could not end the tree.
        let kill_file = open(&path.join("cgroup.kill"), true).map_err(undo)?;
        drop(kill_file);
        tracing::debug!(cgroup = %path.display(), watchdog, "launched processes are contained");
        Ok(Containment {
            path,
            procs,
            _parent: parent,
            _pidfd: pidfd,
        })
    }
}

/// The directory of phoebe's own cgroup in its cgroup v2 hierarchy (where `phoebe-<pid>` is made).
pub fn own_cgroup_dir() -> Result<PathBuf, ContainError> {
    let own = own_cgroup(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
        .ok_or(ContainError::NoUnified)?;
    let (mount, root) = cgroup2_mount(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .ok_or(ContainError::NotMounted)?;
    Ok(join_under(&mount, &root, &own))
}

/// Joins the calling process to the cgroup whose `cgroup.procs` is open as `procs_fd` — for a child between `fork`
/// and `exec` (one `write`, async-signal-safe). Its descendants are then born in it.
pub fn join(procs_fd: RawFd) -> Result<(), Errno> {
    // SAFETY: writes one byte from a static buffer to a descriptor; no memory of ours is written.
    let n = unsafe { libc::write(procs_fd, b"0".as_ptr().cast(), 1) };
    Errno::result(n).map(drop)
}

/// Makes a `std::process::Command` (the processes `phoebe exec` starts: inner phoebes, checks, workloads) join the
/// containment before its exec, when there is one.
pub fn command(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    if let Some(c) = get() {
        let fd = c.procs_fd();
        // SAFETY: the closure runs in the forked child before exec and makes one write(2) (async-signal-safe) on a
        // descriptor the static containment keeps open for phoebe's whole life; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || join(fd).map_err(std::io::Error::from));
        }
    }
}

/// phoebe's path in its cgroup v2 hierarchy: the `0::PATH` line of `/proc/self/cgroup`.
fn own_cgroup(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

/// The mount point and the root of the first cgroup2 mount in `/proc/self/mountinfo` (octal escapes decoded).
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        if rest.split(' ').next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = fields.split(' ').collect();
        Some((PathBuf::from(unescape(fields.get(4)?)), unescape(fields.get(3)?)))
    })
}

/// mountinfo's `\ooo` escapes (space, tab, newline, backslash) decoded.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 4).unwrap_or(""), 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of cgroup `own` (a path in the hierarchy) under a mount of the hierarchy's `root` at `mount`.
fn join_under(mount: &Path, root: &str, own: &str) -> PathBuf {
    let rel = own.strip_prefix(root.trim_end_matches('/')).unwrap_or(own);
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(rel)
    }
}

/// The cgroup to make under `parent`: `phoebe-<pid>`, or `phoebe-<pid>-<n>` when a dead process of the same pid
/// left one that cannot be removed (an empty leftover is removed). Returns its name and path; it does not exist.
fn cgroup_name(parent: &Path, pid: u32) -> Result<(String, PathBuf), ContainError> {
    let mut last = None;
    for n in 0..16 {
        let name = if n == 0 {
            format!("phoebe-{pid}")
        } else {
            format!("phoebe-{pid}-{n}")
        };
        let path = parent.join(&name);
        match fs::remove_dir(&path) {
            // Not there, or a leftover of a process that had our pid, empty and now removed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((name, path)),
            Ok(()) => return Ok((name, path)),
            Err(e) => {
                last = Some(ContainError::Create {
                    path,
                    source: errno(&e),
                })
            }
        }
    }
    Err(last.unwrap_or(ContainError::NotMounted))
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (close-on-exec), which we own.
    let fd =
        Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) })?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The watchdog's command line, prepared before the clone: the bytes to write over the argv strings the kernel
/// placed at exec (`/proc/self/stat`'s `arg_start`..`arg_end`), which `/proc/PID/cmdline` shows.
struct Title {
    text: Vec<u8>,
    /// `[arg_start, arg_end)`, when `/proc/self/stat` gave them.
    args: Option<(usize, usize)>,
}

impl Title {
    fn new(pid: u32) -> Title {
        let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
        Title {
            text: format!("phb-watchdog for pid {pid}").into_bytes(),
            args: arg_range(&stat),
        }
    }

    /// Overwrites the argv strings (in the watchdog's own copy of memory) with the title, NUL-padded.
    fn write(&self) {
        let Some((start, end)) = self.args else {
            return;
        };
        let len = end.saturating_sub(start);
        if len == 0 {
            return;
        }
        let n = self.text.len().min(len - 1);
        // SAFETY: `[start, end)` is where the kernel put this process's argv strings at exec, in its initial stack
        // mapping, which stays mapped and writable for the process's life; this runs in the watchdog, whose memory
        // is a private copy of phoebe's, and nothing in it reads those bytes afterwards.
        unsafe {
            std::ptr::write_bytes(start as *mut u8, 0, len);
            std::ptr::copy_nonoverlapping(self.text.as_ptr(), start as *mut u8, n);
        }
    }
}

/// `arg_start` and `arg_end` (fields 48 and 49) of a `/proc/PID/stat` line.
fn arg_range(stat: &str) -> Option<(usize, usize)> {
    // The fields after the parenthesised name start with field 3 (state).
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let start = fields.nth(48 - 3)?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// Starts the watchdog: phoebe clones a short-lived middle process, which clones the watchdog and exits, so that
/// the watchdog is reparented away from phoebe. Both clones share phoebe's descriptor table. Returns the
/// watchdog's pid.
fn start_watchdog(pidfd: RawFd, parent: RawFd, name: &CString, title: &Title) -> Result<i32, Errno> {
    // The middle process reports the watchdog's pid through a pipe: the only way out of its copied memory. The
    // watchdog says it is ready through another: it may well write before the middle does.
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let flags = (libc::CLONE_FILES | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: without CLONE_VM this is a fork whose child shares the descriptor table. The child only makes raw
    // system calls on data prepared before the clone (descriptors, `name`'s bytes) and never returns, so it cannot
    // deadlock on a lock another thread of phoebe held; it closes no descriptor (the table is phoebe's). A null
    // stack means "the caller's stack, copied", as fork.
    let middle =
        Errno::result(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })?;
    if middle == 0 {
        // SAFETY: as above: the grandchild is another copy that shares the table and never returns.
        let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
        if pid == 0 {
            watch(pidfd, parent, name, title, ready_write.as_raw_fd())
        }
        let report = if pid < 0 { -Errno::last_raw() } else { pid as i32 };
        let bytes = report.to_ne_bytes();
        // SAFETY: writes 4 bytes from a live local to the pipe, then ends the middle process without running any
        // of phoebe's atexit handlers or flushing its buffers, as a forked child must.
        unsafe {
            libc::write(write_end.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0)
        }
    }
    let middle = Pid::from_raw(middle as i32);
    // Read before closing our write end: the table is shared with the middle process, so closing it first would
    // close the middle's too. The middle writes before it exits, so this read does not wait for long.
    let (read, bytes) = read_report(&read_end);
    // ECHILD: another thread of phoebe reaped the middle process already (it waits for any child): fine.
    while let Err(Errno::EINTR) = wait::waitpid(Some(middle), WaitPidFlag::__WALL) {}
    drop(write_end);
    // Then the watchdog's byte once it has renamed itself (at most READY_WAIT_MS: past that it is only slow).
    let ready =
        matches!(read, Ok(4)) && i32::from_ne_bytes(bytes) > 0 && wait_ready(&ready_read, READY_WAIT_MS);
    if ready {
        drop(ready_write);
    } else {
        // The watchdog may still write its byte to this descriptor number, in the table it shares with phoebe:
        // kept open, the number cannot be reused for another file meanwhile (its write then fails with EPIPE,
        // SIGPIPE blocked).
        std::mem::forget(ready_write);
    }
    let pid = i32::from_ne_bytes(bytes);
    if read? != 4 || pid <= 0 {
        return Err(if pid < 0 {
            Errno::from_raw(-pid)
        } else {
            Errno::ECHILD
        });
    }
    Ok(pid)
}

/// The middle process's report: the watchdog's pid, or minus the clone's errno.
fn read_report(report: &OwnedFd) -> (Result<usize, Errno>, [u8; 4]) {
    let mut bytes = [0u8; 4];
    let read = loop {
        match nix::unistd::read(report, &mut bytes) {
            Err(Errno::EINTR) => {}
            other => break other,
        }
    };
    (read, bytes)
}

/// Whether the watchdog's byte comes on `ready` within `timeout_ms`.
fn wait_ready(ready: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: ready.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one live local pollfd on a descriptor the caller owns.
    while unsafe { libc::poll(&mut pfd, 1, timeout_ms) } < 0 && Errno::last_raw() == libc::EINTR {}
    let mut byte = [0u8; 1];
    pfd.revents & libc::POLLIN != 0 && matches!(nix::unistd::read(ready, &mut byte), Ok(1))
}

/// The watchdog's life: wait for phoebe to end, then end its tree and remove its cgroup. Raw system calls only.
fn watch(pidfd: RawFd, parent: RawFd, name: &CString, title: &Title, ready: RawFd) -> ! {
    // SAFETY: each call takes integers or pointers to live locals and statics; none allocates or takes a lock.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"phb-watchdog".as_ptr());
        title.write();
        // Renamed: phoebe may make the cgroup now (`start_watchdog`).
        libc::write(ready, b"r".as_ptr().cast(), 1);
        libc::chdir(c"/".as_ptr());
        let mut pfd = libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Readable once phoebe's whole thread group has exited.
        while libc::poll(&mut pfd, 1, -1) < 0 && Errno::last_raw() == libc::EINTR {}
    }
    kill_and_wait(parent, name);
    remove_tree(parent, name, MAX_DEPTH);
    // SAFETY: ends the watchdog without atexit handlers or buffer flushes; its last reference to the shared
    // descriptor table goes with it.
    unsafe { libc::_exit(0) }
}

/// Writes `1` to `cgroup.kill` of cgroup `name` in directory `parent` and polls `cgroup.events` until the cgroup
/// is empty (at most [`EMPTY_WAIT_MS`]). Raw system calls only (the watchdog uses it). `true` once empty.
fn kill_and_wait(parent: RawFd, name: &CString) -> bool {
    // SAFETY: openat/write/pread/close/nanosleep on descriptors we open here and on live local buffers; the paths
    // are NUL-terminated literals or `name`.
    unsafe {
        let dir = libc::openat(
            parent,
            name.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return true; // already removed
        }
        let kill = libc::openat(dir, c"cgroup.kill".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if kill >= 0 {
            libc::write(kill, b"1".as_ptr().cast(), 1);
            libc::close(kill);
        }
        let events = libc::openat(dir, c"cgroup.events".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        let mut empty = false;
        if events >= 0 {
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 2_000_000,
            };
            for _ in 0..EMPTY_WAIT_MS / 2 {
                let mut buf = [0u8; 128];
                let n = libc::pread(events, buf.as_mut_ptr().cast(), buf.len(), 0);
                if n > 0 && !events_populated(&buf[..n as usize]) {
                    empty = true;
                    break;
                }
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
            libc::close(events);
        }
        libc::close(dir);
        empty
    }
}

/// `cgroup.events` says `populated 1`. No allocation (the watchdog parses with it).
fn events_populated(events: &[u8]) -> bool {
    const KEY: &[u8] = b"populated ";
    events
        .windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] == b'1')
}

/// Removes cgroup `name` in directory `parent` and, first, every cgroup nested in it (down to `depth` levels).
/// Raw system calls only. Best effort: a cgroup that still holds a process stays.
fn remove_tree(parent: RawFd, name: &CString, depth: usize) {
    // SAFETY: as in `remove_dir`, whose contract this shares.
    unsafe { remove_dir(parent, name.as_ptr(), depth) }
}

/// # Safety
/// `name` points to a NUL-terminated string that stays alive during the call.
unsafe fn remove_dir(parent: RawFd, name: *const libc::c_char, depth: usize) {
    // SAFETY: the caller guarantees `name`; every other pointer is into this frame's buffer, whose entries are
    // parsed within the length getdents64 returned.
    unsafe {
        if depth > 0 {
            let dir = libc::openat(parent, name, libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC);
            if dir >= 0 {
                // Restart the listing after each removal: the directory changed under the cursor.
                'listing: loop {
                    libc::lseek(dir, 0, libc::SEEK_SET);
                    let mut buf = [0u8; 2048];
                    let n = libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len());
                    if n <= 0 {
                        break;
                    }
                    let mut at = 0usize;
                    while at + 19 < n as usize {
                        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, char name[]
                        let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                        let kind = buf[at + 18];
                        let entry = buf.as_ptr().add(at + 19).cast::<libc::c_char>();
                        let dot = *entry == b'.' as libc::c_char;
                        if kind == libc::DT_DIR && !dot {
                            remove_dir(dir, entry, depth - 1);
                            let gone = libc::faccessat(dir, entry, libc::F_OK, 0) != 0;
                            if gone {
                                continue 'listing;
                            }
                        }
                        if reclen == 0 {
                            break 'listing;
                        }
                        at += reclen;
                    }
                    break;
                }
                libc::close(dir);
            }
        }
        libc::unlinkat(parent, name, libc::AT_REMOVEDIR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cgroup was made before the watchdog had renamed itself, so a `pkill -9 -f phoebe` in between (CI, 8 ms
    /// after the start) left it behind. Choosing the name makes nothing (the directory is made once the watchdog
    /// is ready); an empty leftover of the same name is removed, one that cannot be removed gets a suffix.
    #[test]
    fn regression_the_cgroup_was_made_before_the_watchdog_was_ready() {
        let dir = tempfile::tempdir().unwrap();
        let (name, path) = cgroup_name(dir.path(), 42).unwrap();
        assert_eq!(name, "phoebe-42");
        assert!(!path.exists(), "choosing the name made the directory");
        fs::create_dir(&path).unwrap();
        let (again, path) = cgroup_name(dir.path(), 42).unwrap();
        assert_eq!(
            again, "phoebe-42",
            "an empty leftover is removed and its name reused"
        );
        assert!(!path.exists());
        fs::create_dir_all(path.join("busy")).unwrap();
        let (other, other_path) = cgroup_name(dir.path(), 42).unwrap();
        assert_eq!(
            other, "phoebe-42-1",
            "a leftover that cannot be removed is passed over"
        );
        assert!(!other_path.exists());
    }

    /// On one CPU (the 6.12 QEMU guest) the watchdog often wrote its ready byte before the middle process wrote
    /// the watchdog's pid, on the same pipe: phoebe read the byte as (part of) the pid, said "clone(the watchdog)
    /// failed: ECHILD" and ran uncontained. The two now have a pipe each: the byte written first changes nothing.
    #[test]
    fn regression_the_watchdogs_ready_byte_was_read_as_its_pid() {
        let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        nix::unistd::write(&ready_write, b"r").unwrap();
        nix::unistd::write(&report_write, &4242i32.to_ne_bytes()).unwrap();
        let (read, bytes) = read_report(&report_read);
        assert_eq!(read, Ok(4));
        assert_eq!(i32::from_ne_bytes(bytes), 4242);
        assert!(wait_ready(&ready_read, 1000));
        // A watchdog that never says it is ready is waited for `timeout_ms` only.
        assert!(!wait_ready(&ready_read, 10));
    }

    #[test]
    fn own_cgroup_is_the_unified_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/x/y\n0::/\n";
        assert_eq!(own_cgroup(hybrid).as_deref(), Some("/"));
        assert_eq!(
            own_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n").as_deref(),
            Some("/user.slice/user-1000.slice/session-3.scope")
        );
        assert_eq!(own_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn cgroup2_mount_point_is_found_in_hybrid_and_unified_layouts() {
        let hybrid = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_string()))
        );
        let spaced = "30 1 0:26 /a\\040b /mnt/cg\\040x rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(spaced),
            Some((PathBuf::from("/mnt/cg x"), "/a b".to_string()))
        );
        assert_eq!(cgroup2_mount("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn the_cgroup_path_is_relative_to_the_mount_root() {
        let mount = Path::new("/sys/fs/cgroup");
        assert_eq!(join_under(mount, "/", "/"), PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(
            join_under(mount, "/", "/user.slice/a.scope"),
            PathBuf::from("/sys/fs/cgroup/user.slice/a.scope")
        );
        // A cgroup namespace's mount: its root is the namespace's cgroup.
        assert_eq!(
            join_under(mount, "/ns", "/ns/inner"),
            PathBuf::from("/sys/fs/cgroup/inner")
        );
    }

    #[test]
    fn the_argv_range_is_read_from_proc_self_stat() {
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        let (start, end) = arg_range(&own).expect("arg_start and arg_end");
        assert!(end > start);
        // A name with spaces and parentheses does not shift the fields.
        let fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        let line = format!("42 (a b) c) {}", fields.join(" "));
        assert_eq!(arg_range(&line), Some((48, 49)));
    }

    #[test]
    fn populated_is_read_without_allocating() {
        assert!(events_populated(b"populated 1\nfrozen 0\n"));
        assert!(!events_populated(b"populated 0\nfrozen 0\n"));
        assert!(!events_populated(b""));
    }
}
