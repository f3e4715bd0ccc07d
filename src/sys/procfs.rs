//! Every read of `/proc` phoebe makes about a process: a task's thread group, a process's threads, state and
//! parent, its name, its descriptors' and working directory's paths, where its dynamic loader's code is mapped, the
//! processes of the machine, and the `/proc/self/status` fields and `/proc/sys` settings doctor and the eBPF
//! backend need.
//!
//! Reads are best effort: a process can end between two reads, so each function returns `None` (or an empty
//! list) rather than an error, and its caller decides what a vanished process means.

use std::path::PathBuf;

use nix::unistd::Pid;

/// The thread group (process) of task `tid`, from `/proc/TID/status`; `None` when the task is gone.
pub fn tgid_of(tid: Pid) -> Option<i32> {
    status_field(&format!("/proc/{tid}/status"), "Tgid:")?
        .parse()
        .ok()
}

/// The signals task `tid`'s process catches that can interrupt a call (a handler is installed: `SigCgt:` of
/// `/proc/TID/status`, the handlers its threads share, bit `n - 1` for signal `n`), not counting the signals of a
/// thread's own faults ([`FAULT_SIGNALS`]); `None` when the task is gone.
pub fn caught_signals(tid: Pid) -> Option<u64> {
    let mask = status_field(&format!("/proc/{tid}/status"), "SigCgt:")?;
    u64::from_str_radix(&mask, 16)
        .ok()
        .map(|mask| mask & !FAULT_SIGNALS)
}

/// SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV and SIGSYS, as a `SigCgt` mask (bit `n - 1` for signal `n`): the kernel
/// raises them on the faulting thread itself, never while it sleeps in a call, and runtimes catch them for their
/// own ends (Rust's stack-overflow report, the JVM's null checks, CPython's faulthandler), so a handler for them
/// says nothing about EINTR.
pub const FAULT_SIGNALS: u64 = 1 << (libc::SIGILL - 1)
    | 1 << (libc::SIGTRAP - 1)
    | 1 << (libc::SIGBUS - 1)
    | 1 << (libc::SIGFPE - 1)
    | 1 << (libc::SIGSEGV - 1)
    | 1 << (libc::SIGSYS - 1);

/// The threads of process `pid` now (`/proc/PID/task`); empty when it is gone.
pub fn threads(pid: u32) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .collect()
}

/// The state letter and the parent of a process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    pub ppid: u32,
}

impl Stat {
    /// The first two fields after the parenthesised command name of a `/proc/PID/stat` line (the name may hold
    /// spaces and parentheses, so the fields start after the last `)`).
    pub fn parse(stat: &str) -> Option<Stat> {
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let mut fields = rest.split(' ');
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Stat { state, ppid })
    }

    /// A zombie or dead process: its last thread has exited and only its status is left.
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// The state and parent of process `pid`; `None` when it is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Process `root`'s descendants now (children, their children, …), by the parents `/proc` gives; `root` itself
/// is not among them.
pub fn descendants(root: u32) -> Vec<u32> {
    let all = processes();
    let mut found = vec![root];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        found.extend(all.iter().filter(|(_, s)| s.ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// What a task is doing, as `/proc/PID/task/TID/syscall` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCall {
    /// On a CPU: no call to name.
    Running,
    /// Stopped outside any system call (`-1`: a signal stop, a page fault).
    Outside,
    /// In system call `nr` with these arguments.
    In { nr: u64, args: [u64; 6] },
}

impl TaskCall {
    /// A `/proc/PID/task/TID/syscall` line: `running`, `-1 SP PC`, or `NR A1 … A6 SP PC` in hexadecimal (the
    /// number in decimal).
    pub fn parse(text: &str) -> Option<TaskCall> {
        let mut fields = text.split_whitespace();
        match fields.next()? {
            "running" => Some(TaskCall::Running),
            "-1" => Some(TaskCall::Outside),
            nr => {
                let nr = nr.parse().ok()?;
                let mut args = [0u64; 6];
                for arg in &mut args {
                    *arg = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
                }
                Some(TaskCall::In { nr, args })
            }
        }
    }
}

/// What task `tid` of process `pid` is doing ([`TaskCall`]); `None` when it is gone or cannot be read (reading
/// another's needs the right to ptrace it).
pub fn task_call(pid: u32, tid: i32) -> Option<TaskCall> {
    TaskCall::parse(&std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?)
}

/// What descriptor `fd` of process `pid` refers to, as `/proc/PID/fd/FD` names it (`pipe:[123]`,
/// `socket:[456]`, `anon_inode:[eventpoll]`, a path).
pub fn fd_target(pid: u32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Does `/proc/PID` exist (a live or zombie process)?
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The command name of process `pid` (`/proc/PID/comm`, at most 15 bytes).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Every process of the machine now, with its state and parent (zombies included).
pub fn processes() -> Vec<(u32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// The children of process `ppid` now, zombies included.
pub fn children_of(ppid: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, s)| s.ppid == ppid)
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether process `tgid` has a child: any (`pid` `None`), or the one with that pid (zombies included: a wait
/// still reaps them); `None` when the caller is gone. Any child is read from the threads' `children` files
/// (`CONFIG_PROC_CHILDREN`), or from the whole process list where the kernel has none.
pub fn has_child(tgid: u32, pid: Option<u32>) -> Option<bool> {
    if let Some(pid) = pid {
        return Some(stat(pid).is_some_and(|s| s.ppid == tgid)).filter(|_| exists(tgid));
    }
    let tasks = std::fs::read_dir(format!("/proc/{tgid}/task")).ok()?;
    let mut read_any = false;
    for task in tasks.filter_map(Result::ok) {
        if let Ok(children) = std::fs::read_to_string(task.path().join("children")) {
            read_any = true;
            if !children.trim().is_empty() {
                return Some(true);
            }
        }
    }
    Some(if read_any {
        false
    } else {
        !children_of(tgid).is_empty()
    })
}

/// What descriptor `fd` of task `tid` refers to (`/proc/TID/fd/FD`; sockets and pipes read `socket:[N]`,
/// `pipe:[N]`); `NotFound` means the descriptor is not open (or the task is gone).
pub fn fd_link(tid: Pid, fd: i32) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}"))
}

/// The descriptors task `tid` has open (the entries of `/proc/TID/fd`); `None` when that cannot be read.
pub fn fds(tid: Pid) -> Option<Vec<i32>> {
    let entries = std::fs::read_dir(format!("/proc/{tid}/fd")).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// What descriptor `fd` of task `tid` refers to, `stat`ed through its magic link (the inode it holds).
pub fn fd_metadata(tid: Pid, fd: i32) -> Option<std::fs::Metadata> {
    std::fs::metadata(format!("/proc/{tid}/fd/{fd}")).ok()
}

/// The open file description's flags of descriptor `fd` of task `tid` (`flags:` of `/proc/TID/fdinfo/FD`, octal).
pub fn fd_flags(tid: Pid, fd: i32) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 8).ok())
}

/// The type of the file system that holds the file behind descriptor `fd` of process `tgid`, as
/// `/proc/PID/mountinfo` names it (`ext4`, `nfs4`, `fuse.sshfs`): the descriptor's `mnt_id:` in
/// `/proc/PID/fdinfo/FD`, found among the process's mounts. `None` when either cannot be read or the mount is not
/// there.
pub fn fd_fs_type(tgid: i32, fd: i32) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}")).ok()?;
    let mnt_id = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))?
        .trim()
        .parse::<u64>()
        .ok()?;
    let mounts = std::fs::read_to_string(format!("/proc/{tgid}/mountinfo")).ok()?;
    mount_fs_type(&mounts, mnt_id).map(str::to_owned)
}

/// The file system type of mount `mnt_id` in a `mountinfo` text: the field after the ` - ` separator of the line
/// whose first field is the id (proc(5)). Pure.
pub fn mount_fs_type(mountinfo: &str, mnt_id: u64) -> Option<&str> {
    mountinfo.lines().find_map(|line| {
        let (id, _) = line.split_once(' ')?;
        if id.parse::<u64>().ok()? != mnt_id {
            return None;
        }
        let (_, after) = line.split_once(" - ")?;
        after.split(' ').next().filter(|t| !t.is_empty())
    })
}

/// The descriptors registered in epoll instance `epfd` of task `tid` (the `tfd:` lines of its
/// `/proc/TID/fdinfo/EPFD`); `None` when that cannot be read (not open, not an epoll instance, gone).
pub fn epoll_targets(tid: Pid, epfd: i32) -> Option<Vec<i32>> {
    if epfd < 0 {
        return None;
    }
    let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{epfd}")).ok()?;
    parse_epoll_targets(&info)
}

/// [`epoll_targets`] of an fdinfo text; `None` for a `tfd:` line it cannot read. Any other file's fdinfo has no
/// `tfd:` line, like an instance with nothing registered: the caller checks that `epfd` is an epoll instance.
fn parse_epoll_targets(info: &str) -> Option<Vec<i32>> {
    Some(parse_epoll_watches(info)?.iter().map(|w| w.fd).collect())
}

/// One registration of an epoll instance (a `tfd:` line of its fdinfo): the descriptor number it was added as,
/// the events asked for (`EPOLLET` among them), and the inode it watches (number and the kernel's device number
/// of its file system, as fs/eventpoll.c prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpollWatch {
    pub fd: i32,
    pub events: u32,
    pub ino: u64,
    pub sdev: u32,
}

/// The registrations of an epoll instance's fdinfo text, in order; `None` for a `tfd:` line it cannot read.
fn parse_epoll_watches(info: &str) -> Option<Vec<EpollWatch>> {
    let mut watches = Vec::new();
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("tfd:") else {
            continue;
        };
        // `tfd: %8d events: %8x data: %16llx pos:%lli ino:%lx sdev:%x`
        let mut words = rest.split_whitespace();
        let fd = words.next()?.parse().ok()?;
        let mut events = None;
        let mut ino = None;
        let mut sdev = None;
        while let Some(word) = words.next() {
            match word {
                "events:" => events = u32::from_str_radix(words.next()?, 16).ok(),
                _ => {
                    if let Some(v) = word.strip_prefix("ino:") {
                        ino = u64::from_str_radix(v, 16).ok();
                    } else if let Some(v) = word.strip_prefix("sdev:") {
                        sdev = u32::from_str_radix(v, 16).ok();
                    }
                }
            }
        }
        watches.push(EpollWatch {
            fd,
            events: events?,
            ino: ino?,
            sdev: sdev?,
        });
    }
    Some(watches)
}

/// Whether an epoll instance that process `tgid` holds watches the file of its descriptor `fd` edge-triggered
/// (`EPOLLET`): the registrations of every `anon_inode:[eventpoll]` descriptor of the process, matched by inode
/// (so a registration under another, duplicated, descriptor counts too). `None` when `/proc` cannot be read.
pub fn watched_edge_triggered(tgid: i32, fd: i32) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let pid = Pid::from_raw(tgid);
    let target = fd_metadata(pid, fd)?;
    let mut edge = false;
    for other in fds(pid)? {
        if fd_link(pid, other)
            .ok()
            .is_none_or(|l| l.as_os_str() != "anon_inode:[eventpoll]")
        {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{other}")) else {
            // Closed between the listing and the read.
            continue;
        };
        edge |= parse_epoll_watches(&info)?
            .iter()
            .any(|w| w.events & libc::EPOLLET as u32 != 0 && watches_inode(w, target.ino(), target.dev()));
    }
    Some(edge)
}

/// Whether `watch` is of the inode `ino` on the device `st_dev` (stat's encoding; the fdinfo's `sdev` is the
/// kernel's, its major number above 20 minor bits).
fn watches_inode(watch: &EpollWatch, ino: u64, st_dev: u64) -> bool {
    let (major, minor) = (watch.sdev >> 20, watch.sdev & 0xf_ffff);
    watch.ino == ino && libc::makedev(major, minor) == st_dev
}

/// Whether another open file description holds a flock lock on the file behind descriptor `fd` of process `tgid`
/// that conflicts with a shared request (`exclusive`: an exclusive one), the state in which `LOCK_NB` fails with
/// EWOULDBLOCK: the granted flock locks on its inode in `/proc/locks`, less the one the descriptor's own open file
/// description holds (its `lock:` line in `/proc/PID/fdinfo/FD`), which a request through it converts instead of
/// meeting. Read-only: phoebe never takes a lock to find out. `None` when either cannot be read.
pub fn flock_held(tgid: i32, fd: i32, exclusive: bool) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let pid = Pid::from_raw(tgid);
    let file = fd_metadata(pid, fd)?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let own = info.lines().filter_map(|l| l.strip_prefix("lock:"));
    let on_file = |line: &str| flock_of(line, file.dev(), file.ino());
    let conflicts = |write: bool| exclusive || write;
    let held = locks
        .lines()
        .filter_map(on_file)
        .filter(|w| conflicts(*w))
        .count();
    let mine = own.filter_map(on_file).filter(|w| conflicts(*w)).count();
    Some(held > mine)
}

/// A granted flock lock of a `/proc/locks` line (`1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`; a waiter's
/// has `->` after the number) on inode `ino` of device `st_dev`: `Some(write)`; `None` for any other line.
fn flock_of(line: &str, st_dev: u64, ino: u64) -> Option<bool> {
    let mut words = line.split_whitespace();
    words.next()?;
    if words.next()? != "FLOCK" {
        // A waiter (`->`), or a POSIX, OFD or lease lock: none of them meets a flock request.
        return None;
    }
    words.next()?;
    let write = match words.next()? {
        "WRITE" => true,
        "READ" => false,
        _ => return None,
    };
    words.next()?;
    // `%02x:%02x:%lu`: the device's major and minor numbers in hexadecimal, the inode in decimal.
    let mut id = words.next()?.split(':');
    let major = u32::from_str_radix(id.next()?, 16).ok()?;
    let minor = u32::from_str_radix(id.next()?, 16).ok()?;
    let inode: u64 = id.next()?.parse().ok()?;
    (libc::makedev(major, minor) == st_dev && inode == ino).then_some(write)
}

/// The working directory of task `tid`.
pub fn cwd(tid: Pid) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{tid}/cwd")).ok()
}

/// Whether the working directory of task `tid` has been removed (a removed directory has no links left);
/// `None` when the task is gone.
pub fn cwd_deleted(tid: Pid) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{tid}/cwd"))
        .ok()
        .map(|m| m.nlink() == 0)
}

/// Whether the directory absolute `path` names in task `tid`'s file system has no entry but `.` and `..`
/// (looked up through `/proc/TID/root`, as [`name_exists`]); `None` when that cannot be told (no such directory,
/// something else than a directory, the task gone, a permission). A removal's `Key::Empty` (rmdir's ENOTEMPTY):
/// only the first entry is read.
pub fn dir_empty(tid: Pid, path: &str) -> Option<bool> {
    let mut entries = std::fs::read_dir(format!("/proc/{tid}/root{path}")).ok()?;
    match entries.next() {
        None => Some(true),
        Some(Ok(_)) => Some(false),
        Some(Err(_)) => None,
    }
}

/// Whether absolute `path` names something in task `tid`'s file system, as `lstat` sees it (the name, not what a
/// symlink points to), looked up through the task's root (`/proc/TID/root`), so that a task in a chroot or
/// another mount namespace is answered for its own tree. `None` when that cannot be told (the task is gone, a
/// permission).
pub fn name_exists(tid: Pid, path: &str) -> Option<bool> {
    let root = format!("/proc/{tid}/root");
    match std::fs::symlink_metadata(format!("{root}{path}")) {
        Ok(_) => Some(true),
        // ENOENT also when the task is gone: told apart by its root.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            std::fs::symlink_metadata(&root).ok().map(|_| false)
        }
        Err(_) => None,
    }
}

/// Where the dynamic loader (`PT_INTERP`, `ld-linux-x86-64.so.2`) of process `pid` was loaded: `AT_BASE` of its
/// auxiliary vector (`/proc/PID/auxv`); `Some(0)` for a static program, which has none. Changes at each exec
/// (address space layout randomisation).
pub fn loader_base(pid: i32) -> Option<u64> {
    parse_auxv_base(&std::fs::read(format!("/proc/{pid}/auxv")).ok()?)
}

/// `AT_BASE` of an auxiliary vector: native-endian (type, value) word pairs up to `AT_NULL`.
fn parse_auxv_base(auxv: &[u8]) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<u64>();
    for pair in auxv.chunks_exact(2 * WORD) {
        let word = |i: usize| u64::from_ne_bytes(pair[i * WORD..(i + 1) * WORD].try_into().expect("a word"));
        match word(0) {
            libc::AT_NULL => return None,
            libc::AT_BASE => return Some(word(1)),
            _ => {}
        }
    }
    None
}

/// The dynamic loader of a process: the file mapped at its `AT_BASE` and the ranges of its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderText {
    /// The loader's file, as `/proc/PID/maps` names it.
    pub file: String,
    /// Its executable mappings, `[start, end)`.
    pub text: Vec<(u64, u64)>,
}

/// [`LoaderText`] of process `pid`, whose loader is mapped at `base` ([`loader_base`]), from `/proc/PID/maps`.
pub fn loader_text(pid: i32, base: u64) -> Option<LoaderText> {
    parse_loader_text(&std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?, base)
}

/// [`LoaderText`] of a `/proc/PID/maps` text: the file of the mapping that starts at `base`, and every
/// executable mapping of that file.
fn parse_loader_text(maps: &str, base: u64) -> Option<LoaderText> {
    // `start-end perms offset dev inode path`; the path may hold spaces, and is absent for anonymous memory.
    let lines = maps.lines().filter_map(|line| {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let range = (
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
        );
        let perms = fields.next()?;
        let path = fields.nth(3)?.trim_start();
        Some((range, perms.contains('x'), path))
    });
    let file = lines.clone().find(|((start, _), _, _)| *start == base)?.2;
    if !file.starts_with('/') {
        return None;
    }
    let text = lines
        .filter(|(_, exec, path)| *exec && *path == file)
        .map(|(range, _, _)| range)
        .collect();
    Some(LoaderText {
        file: file.to_owned(),
        text,
    })
}

/// A field of phoebe's own `/proc/self/status` (`"Uid:"`, `"CapEff:"`), trimmed.
pub fn self_status(field: &str) -> Option<String> {
    status_field("/proc/self/status", field)
}

/// A kernel setting, `/proc/sys/<name>` (`"kernel/pid_max"`), trimmed; `None` where the kernel has no such file.
pub fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The kernel's `pid_max` (`/proc/sys/kernel/pid_max`).
pub fn pid_max() -> Option<u32> {
    sysctl("kernel/pid_max")?.parse().ok()
}

fn status_field(path: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor's file system type, from its mount's line of `mountinfo` (optional fields before ` - `
    /// included), and for a descriptor of this process: the test binary, on whatever disk holds it.
    #[test]
    fn a_descriptors_file_system_is_its_mounts() {
        let mountinfo = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                         45 22 0:40 / /mnt/nfs rw,relatime shared:20 master:3 - nfs4 srv:/export rw,vers=4.2\n\
                         46 22 0:41 / /mnt/ssh rw - fuse.sshfs u@h: rw\n\
                         47 22 0:42 / /tmp\\040dir rw - tmpfs tmpfs rw\n";
        assert_eq!(mount_fs_type(mountinfo, 22), Some("ext4"));
        assert_eq!(mount_fs_type(mountinfo, 45), Some("nfs4"));
        assert_eq!(mount_fs_type(mountinfo, 46), Some("fuse.sshfs"));
        assert_eq!(mount_fs_type(mountinfo, 47), Some("tmpfs"));
        assert_eq!(mount_fs_type(mountinfo, 4), None);
        assert_eq!(mount_fs_type("garbage\n", 1), None);
        let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&exe);
        let fs = fd_fs_type(std::process::id() as i32, fd).expect("this process's own descriptor");
        let statfs = nix::sys::statfs::fstatfs(&exe).unwrap();
        // The names the kernel gives the magic numbers this machine's disks may have.
        let expected = match statfs.filesystem_type() {
            nix::sys::statfs::EXT4_SUPER_MAGIC => &["ext4", "ext3", "ext2"][..],
            nix::sys::statfs::TMPFS_MAGIC => &["tmpfs"],
            nix::sys::statfs::OVERLAYFS_SUPER_MAGIC => &["overlay"],
            nix::sys::statfs::XFS_SUPER_MAGIC => &["xfs"],
            nix::sys::statfs::BTRFS_SUPER_MAGIC => &["btrfs"],
            _ => &[fs.as_str()][..],
        };
        assert!(
            expected.contains(&fs.as_str()),
            "{fs} for {:?}",
            statfs.filesystem_type()
        );
        assert_eq!(fd_fs_type(std::process::id() as i32, 999_999), None);
    }

    #[test]
    fn a_tasks_call_is_read_from_proc() {
        assert_eq!(TaskCall::parse("running\n"), Some(TaskCall::Running));
        assert_eq!(TaskCall::parse("-1 0x7ffc 0x4011\n"), Some(TaskCall::Outside));
        assert_eq!(
            TaskCall::parse("202 0x7f00 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x4011\n"),
            Some(TaskCall::In {
                nr: 202,
                args: [0x7f00, 0x80, 0, 0, 0, 0]
            })
        );
        assert_eq!(TaskCall::parse("7 0x1\n"), None, "cut short");
        assert_eq!(TaskCall::parse(""), None);
        // A sleeping child, found below this process, in its wait.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let call = loop {
            match task_call(pid, pid as i32) {
                Some(TaskCall::In { nr, .. }) => break Some(nr),
                _ if std::time::Instant::now() > deadline => break None,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        assert!(descendants(me).contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            call,
            Some(libc::SYS_clock_nanosleep as u64),
            "sleep waits in clock_nanosleep"
        );
        assert_eq!(fd_target(me, 999_999), None);
    }

    #[test]
    fn dir_empty_reads_the_directory_in_the_tasks_tree() {
        let me = Pid::this();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        assert_eq!(dir_empty(me, &path), Some(true));
        std::fs::write(dir.path().join("x"), b"").unwrap();
        assert_eq!(dir_empty(me, &path), Some(false));
        assert_eq!(
            dir_empty(me, &format!("{path}/x")),
            None,
            "a file is no directory"
        );
        assert_eq!(dir_empty(me, &format!("{path}/absent")), None);
    }

    /// Issue 12: whether a `LOCK_NB` flock meets another's lock, read from /proc without taking any: another open
    /// file description's lock counts, the descriptor's own does not (a request through it converts it), a
    /// shared lock conflicts only with an exclusive request.
    #[test]
    fn flock_held_sees_other_open_file_descriptions_locks_not_its_own() {
        use std::os::fd::AsRawFd;
        let file = tempfile::NamedTempFile::new().unwrap();
        let a = std::fs::File::open(file.path()).unwrap();
        let b = std::fs::File::open(file.path()).unwrap();
        let lock = |f: &std::fs::File, op| {
            // SAFETY: flock takes a descriptor this test holds open and an operation; no memory is passed.
            assert_eq!(unsafe { libc::flock(f.as_raw_fd(), op) }, 0);
        };
        let me = std::process::id() as i32;
        let held = |f: &std::fs::File, exclusive| flock_held(me, f.as_raw_fd(), exclusive);
        assert_eq!(held(&b, true), Some(false), "nobody holds a lock yet");
        lock(&a, libc::LOCK_EX);
        assert_eq!(held(&b, true), Some(true));
        assert_eq!(
            held(&b, false),
            Some(true),
            "an exclusive lock conflicts with a shared request too"
        );
        assert_eq!(
            held(&a, true),
            Some(false),
            "its own lock is converted, never met"
        );
        lock(&a, libc::LOCK_SH);
        assert_eq!(held(&b, false), Some(false), "shared locks do not conflict");
        assert_eq!(held(&b, true), Some(true));
        lock(&a, libc::LOCK_UN);
        assert_eq!(held(&b, true), Some(false));
        assert_eq!(flock_held(me, 9999, true), None, "a descriptor that is not open");
    }

    #[test]
    fn flock_lines_of_proc_locks() {
        let dev = libc::makedev(0xfd, 0x01);
        assert_eq!(
            flock_of("1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF", dev, 5678),
            Some(true)
        );
        assert_eq!(
            flock_of("2: FLOCK  ADVISORY  READ 1234 fd:01:5678 0 EOF", dev, 5678),
            Some(false)
        );
        assert_eq!(
            flock_of("2: FLOCK  ADVISORY  READ 1234 fd:01:5678 0 EOF", dev, 5679),
            None,
            "another inode"
        );
        assert_eq!(
            flock_of("3: -> FLOCK  ADVISORY  WRITE 99 fd:01:5678 0 EOF", dev, 5678),
            None,
            "a waiter"
        );
        assert_eq!(
            flock_of("4: POSIX  ADVISORY  WRITE 99 fd:01:5678 0 EOF", dev, 5678),
            None
        );
        assert_eq!(
            flock_of("5: OFDLCK ADVISORY  WRITE -1 fd:01:5678 0 EOF", dev, 5678),
            None
        );
        assert_eq!(flock_of("", dev, 5678), None);
    }

    #[test]
    fn a_process_catches_signals_once_it_installs_a_handler() {
        // The test harness's process: libtest installs no handler, but this process may have others' (a
        // runtime's): only a child that installs one proves the read. `sh -c 'trap … INT'` catches SIGINT.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap 'exit 0' INT; read _"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let sigint = 1 << (libc::SIGINT - 1);
        while caught_signals(pid).is_none_or(|m| m & sigint == 0) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(caught_signals(pid).is_some_and(|m| m & sigint != 0));
        drop(child.stdin.take());
        child.wait().unwrap();
        // A handler for a thread's own faults only (Rust's runtime installs SIGSEGV's and SIGBUS's) is none.
        assert_eq!(FAULT_SIGNALS & (1 << (libc::SIGSEGV - 1)), 1 << 10);
        assert_eq!(FAULT_SIGNALS & (1 << (libc::SIGINT - 1)), 0);
        let mut plain = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(
            caught_signals(Pid::from_raw(plain.id() as i32)),
            Some(0),
            "sleep catches nothing"
        );
        plain.kill().unwrap();
        plain.wait().unwrap();
        assert_eq!(caught_signals(Pid::from_raw(plain.id() as i32)), None, "gone");
    }

    #[test]
    fn the_loaders_base_is_at_base_of_the_auxiliary_vector() {
        let words = |pairs: &[(u64, u64)]| -> Vec<u8> {
            pairs
                .iter()
                .flat_map(|(k, v)| [k.to_ne_bytes(), v.to_ne_bytes()])
                .flatten()
                .collect()
        };
        let auxv = words(&[
            (libc::AT_PHDR, 0x40),
            (libc::AT_BASE, 0x7f00_1000),
            (libc::AT_NULL, 0),
        ]);
        assert_eq!(parse_auxv_base(&auxv), Some(0x7f00_1000));
        // A static program's AT_BASE is 0; a vector without one (or cut short) says nothing.
        assert_eq!(
            parse_auxv_base(&words(&[(libc::AT_BASE, 0), (libc::AT_NULL, 0)])),
            Some(0)
        );
        assert_eq!(
            parse_auxv_base(&words(&[(libc::AT_NULL, 0), (libc::AT_BASE, 9)])),
            None
        );
        assert_eq!(parse_auxv_base(&auxv[..20]), None);
    }

    #[test]
    fn the_loaders_code_is_its_files_executable_mappings() {
        let maps = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1234 /usr/bin/true
55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1234 /usr/bin/true
7f3a00000000-7f3a00028000 r--p 00000000 fe:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
7f3a00028000-7f3a0019d000 r-xp 00028000 fe:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
7f3a001f0000-7f3a001f2000 rw-p 00000000 00:00 0 
7f3a001f2000-7f3a001f3000 r--p 00000000 fe:01 888 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f3a001f3000-7f3a00218000 r-xp 00001000 fe:01 888 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f3a00218000-7f3a00222000 r--p 00026000 fe:01 888 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
";
        assert_eq!(
            parse_loader_text(maps, 0x7f3a_001f_2000),
            Some(LoaderText {
                file: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into(),
                text: vec![(0x7f3a_001f_3000, 0x7f3a_0021_8000)],
            })
        );
        assert_eq!(parse_loader_text(maps, 0x1000), None, "nothing mapped there");
        assert_eq!(
            parse_loader_text(maps, 0x7f3a_001f_0000),
            None,
            "anonymous memory is no loader"
        );
    }

    #[test]
    fn phoebes_own_loader_is_found() {
        let me = std::process::id() as i32;
        let base = loader_base(me).expect("a live process has an auxiliary vector");
        assert_ne!(base, 0, "the test binary is linked dynamically");
        let loader = loader_text(me, base).expect("its loader is mapped at AT_BASE");
        assert!(loader.file.contains("ld-linux"), "{loader:?}");
        assert!(!loader.text.is_empty(), "{loader:?}");
    }

    #[test]
    fn a_process_has_the_child_it_started_until_it_reaps_it() {
        let _children = phoebe_core::testing::children_lock();
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(has_child(me, Some(child.id())), Some(true));
        assert_eq!(has_child(me, None), Some(true));
        // Not its child: its own parent.
        assert_eq!(
            has_child(me, Some(std::os::unix::process::parent_id())),
            Some(false)
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(has_child(me, Some(child.id())), Some(false));
    }

    #[test]
    fn stat_lines_give_state_and_ppid_even_with_odd_command_names() {
        let s = |state, ppid| Some(Stat { state, ppid });
        assert_eq!(Stat::parse("42 (sh) S 1 42 42 0 -1"), s('S', 1));
        assert_eq!(Stat::parse("43 (a) b (c)) Z 42 43 43 0 -1"), s('Z', 42));
        assert_eq!(Stat::parse("44 (x y) R 7"), s('R', 7));
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn this_process_reads_back() {
        let me = std::process::id();
        assert_eq!(tgid_of(Pid::from_raw(me as i32)), Some(me as i32));
        assert!(threads(me).contains(&Pid::from_raw(me as i32)));
        assert_eq!(
            stat(me).map(|s| s.ppid),
            Some(std::os::unix::process::parent_id())
        );
        assert!(children_of(std::os::unix::process::parent_id()).contains(&me));
        assert!(exists(me));
        assert!(self_status("Uid:").is_some());
        assert_eq!(cwd(Pid::from_raw(me as i32)), std::env::current_dir().ok());
        assert!(pid_max().is_some_and(|m| m > me));
        assert_eq!(sysctl("kernel/pid_max"), pid_max().map(|m| m.to_string()));
        assert_eq!(sysctl("no/such/setting"), None);
    }

    #[test]
    fn epoll_fdinfo_lists_the_registered_descriptors() {
        let info = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\n\
                    tfd:        5 events:       19 data:                5  pos:0 ino:61d sdev:7\n\
                    tfd:       12 events:        1 data:     7f0000000001  pos:0 ino:2a4f sdev:9\n";
        assert_eq!(parse_epoll_targets(info), Some(vec![5, 12]));
        assert_eq!(parse_epoll_targets("pos:\t0\nflags:\t02\n"), Some(vec![]));
        assert_eq!(parse_epoll_targets("tfd: x events: 1\n"), None);
    }

    /// An nginx worker's epoll instance, as its fdinfo said: the eventfd edge-triggered (`80000019`), the listening
    /// socket with `EPOLLEXCLUSIVE` and the channel socket level-triggered.
    #[test]
    fn epoll_fdinfo_gives_each_registration_s_events_and_inode() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
                    tfd:        9 events: 80000019 data:     55f9032a0340  pos:0 ino:40e sdev:10\n\
                    tfd:        7 events:     2019 data:     55f906639e40  pos:0 ino:b5ff5b sdev:9\n\
                    tfd:        5 events: 10000019 data:     55f906639d50  pos:0 ino:b5ff59 sdev:9\n";
        let watches = parse_epoll_watches(info).unwrap();
        assert_eq!(
            watches[0],
            EpollWatch {
                fd: 9,
                events: 0x8000_0019,
                ino: 0x40e,
                sdev: 0x10
            }
        );
        let edge: Vec<i32> = watches
            .iter()
            .filter(|w| w.events & libc::EPOLLET as u32 != 0)
            .map(|w| w.fd)
            .collect();
        assert_eq!(edge, [9]);
        assert_eq!(watches[1].ino, 11_927_387, "socket:[11927387]");
        // A device number with a major: the kernel's encoding (major << 20 | minor) against stat's.
        let disk = EpollWatch {
            fd: 3,
            events: 1,
            ino: 42,
            sdev: (8 << 20) | 1,
        };
        assert!(watches_inode(&disk, 42, libc::makedev(8, 1)));
        assert!(!watches_inode(&disk, 42, libc::makedev(1, 8)));
        assert!(!watches_inode(&disk, 43, libc::makedev(8, 1)));
    }

    /// This process's own epoll instance: one pipe watched edge-triggered, another level-triggered, a third not
    /// at all; a duplicate of the first descriptor is watched too (the same file).
    #[test]
    fn an_edge_triggered_watch_is_found_by_the_file_it_watches() {
        use std::os::fd::AsRawFd;
        let me = std::process::id() as i32;
        let (edge_r, _edge_w) = nix::unistd::pipe().unwrap();
        let (level_r, _level_w) = nix::unistd::pipe().unwrap();
        let (none_r, _none_w) = nix::unistd::pipe().unwrap();
        let epoll = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
        let flags = nix::sys::epoll::EpollFlags::EPOLLIN;
        epoll
            .add(
                &edge_r,
                nix::sys::epoll::EpollEvent::new(flags | nix::sys::epoll::EpollFlags::EPOLLET, 1),
            )
            .unwrap();
        epoll
            .add(&level_r, nix::sys::epoll::EpollEvent::new(flags, 2))
            .unwrap();
        let dup = nix::unistd::dup(&edge_r).unwrap();
        assert_eq!(watched_edge_triggered(me, edge_r.as_raw_fd()), Some(true));
        assert_eq!(watched_edge_triggered(me, dup.as_raw_fd()), Some(true));
        assert_eq!(watched_edge_triggered(me, level_r.as_raw_fd()), Some(false));
        assert_eq!(watched_edge_triggered(me, none_r.as_raw_fd()), Some(false));
        assert_eq!(watched_edge_triggered(me, 1 << 20), None, "not open");
    }
}
