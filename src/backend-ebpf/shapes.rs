//! Call shapes on eBPF (DESIGN §6): the observer counts the calls of shaped syscalls by the kept bits of their
//! shape registers (`phoebe_common::shape`); here they become [`Shape`]s through the one definition,
//! [`shape_of`], with a probe that knows nothing beyond registers. Path syscalls are counted by the hash of their
//! path argument, read in the kernel at `sys_exit`, and the kernel stores each path once: their `path=`
//! comes from the same [`shape_of`] and the same normalisation as ptrace's. Calls on a descriptor are counted
//! with what the kernel learned about the descriptor (`phoebe_common::fd`), named here by ptrace's own functions
//! ([`fd_facts`]). Relative paths, joined in the kernel to their base (the cwd or the dirfd's directory, walked
//! by the tail-called walk program), and the paths of regular files and directories behind descriptors (walked
//! the same way, counted in the path counters with the descriptor's code: [`shape_of_file`]) become `path=`
//! through the same normalisation; what the walk cannot give whole (a deleted file, over 254 bytes or 32
//! components), close's descriptor (and clone3's flags, which are in memory) are `unknown` on eBPF.

use std::{collections::BTreeMap, time::Duration};

use aya::maps::{HashMap, MapData, PerCpuHashMap};
use phoebe_common::{
    CountValue, fd, maps,
    shape::{self, PathKey, PathText, ShapeKey, ShapeReg, UNKNOWN_PATH, walk, within},
};

use super::{EbpfError, Observer};
use phoebe_backend_common::{counts::decode_result, facts::normalize_absolute};
use phoebe_core::model::{
    Errno, ObservationBuilder, Syscall,
    shape::{
        Clock, FdFacts, Key, Name, OpenMode, Probe, Shape, UNKNOWN, Waits, chr_kind, cwd_deleted_from_result,
        empty_from_result, exists_from_result, fd_kind_of_link, has_child_from_result, held_from_result,
        readers_from_result, ready_from_result, registered_from_result, shape_of, socket_kind,
    },
};

/// Cumulative calls per shape key, summed over CPUs.
pub(super) type ShapeSnapshot = BTreeMap<ShapeKey, u64>;

/// The shape registers of syscall `nr` on this machine's architecture (the eBPF programs use the same table).
pub fn registers_of(nr: u64) -> Option<[ShapeReg; 2]> {
    #[cfg(target_arch = "aarch64")]
    return shape::aarch64(nr);
    #[cfg(not(target_arch = "aarch64"))]
    return shape::x86_64(nr);
}

/// Cumulative calls per path key, summed over CPUs.
pub(super) type PathSnapshot = BTreeMap<PathKey, u64>;

/// The paths read by the kernel, by hash, normalised; kept across ticks (the kernel stores each one once).
pub(super) type PathTexts = std::collections::HashMap<u64, String>;

/// The index of syscall `nr`'s path argument, for the path syscalls the eBPF observer reads paths of.
pub fn path_arg_of(nr: u64) -> Option<u8> {
    #[cfg(target_arch = "aarch64")]
    return shape::aarch64_path(nr);
    #[cfg(not(target_arch = "aarch64"))]
    return shape::x86_64_path(nr);
}

/// A probe that knows one path, the one the kernel read (already normalised), and the call's result, and nothing
/// else: whether a name existed, or the cwd was removed, is what the result says of it
/// ([`exists_from_result`], [`cwd_deleted_from_result`]), since the kernel programs see results, not the file
/// system.
struct KernelPath {
    path: Option<String>,
    result: Result<(), Errno>,
    /// An open's flags, as the kernel kept them in the key.
    open: Option<OpenMode>,
    /// Whether an open asked for a directory (`O_DIRECTORY`), as the kernel kept it.
    directory: Option<bool>,
    /// A timed futex wait's timeout register and what was left of its timeout as it started, as its class's
    /// bound (the entry program's `within` class, [`within_left`]).
    timeout: Option<(u64, Duration)>,
}

impl Probe for KernelPath {
    fn path(&mut self, _: Syscall, _: &[u64; 6]) -> Option<String> {
        self.path.clone()
    }
    fn exists(&mut self, sc: Syscall, _: &[u64; 6], name: Name) -> Option<bool> {
        // An open that did not ask for a directory says ENOTDIR only when a directory of its path is something
        // else: its name does not exist.
        if name == Name::Path
            && self.directory == Some(false)
            && self.result.err().map(Errno::code) == Some(libc::ENOTDIR)
        {
            return Some(false);
        }
        exists_from_result(sc, name, self.result, self.open)
    }
    fn cwd_deleted(&mut self) -> Option<bool> {
        cwd_deleted_from_result(self.result)
    }
    fn has_child(&mut self, _: Waits) -> Option<bool> {
        has_child_from_result(self.result)
    }
    // The path counters keep no unlinkat flags: only a directory's removal says ENOTEMPTY (or EEXIST).
    fn removes_directory(&mut self, sc: Syscall, _: &[u64; 6]) -> Option<bool> {
        match (sc.name(), self.result.err().map(Errno::code)) {
            ("rmdir", _) | (_, Some(libc::ENOTEMPTY | libc::EEXIST)) => Some(true),
            _ => None,
        }
    }
    fn dir_empty(&mut self, _: Syscall, _: &[u64; 6]) -> Option<bool> {
        empty_from_result(self.result)
    }
    // The path counters keep an open's flags (`phoebe_common::shape::open`), no other register.
    fn creates(&mut self, _: Syscall, _: &[u64; 6]) -> Option<bool> {
        self.open.map(|mode| mode != OpenMode::Plain)
    }
    fn directory(&mut self, _: Syscall, _: &[u64; 6]) -> Option<bool> {
        self.directory
    }
    // The timeout's `struct timespec` as what was left of it at the entry, on a clock that reads zero: relative
    // or absolute, `shape_of` computes that same time left from them.
    fn read_u64(&mut self, addr: u64) -> Option<u64> {
        let (at, left) = self.timeout?;
        if addr == at {
            Some(left.as_secs())
        } else if Some(addr) == at.checked_add(8) {
            Some(u64::from(left.subsec_nanos()))
        } else {
            None
        }
    }
    fn clock_now(&mut self, _: Clock) -> Option<Duration> {
        self.timeout.map(|_| Duration::ZERO)
    }
}

/// `CLOCK_TAI` less `CLOCK_REALTIME`, in nanoseconds: the kernel's TAI offset (whole seconds, 37 since 2017 where
/// an NTP daemon set it, often 0), which the futex entry program takes from `bpf_ktime_get_tai_ns` to read the
/// realtime clock a `CLOCK_REALTIME` deadline is on. `None` when a clock cannot be read.
pub(super) fn tai_offset_ns() -> Option<u64> {
    use nix::time::{ClockId, clock_gettime};
    let realtime = clock_gettime(ClockId::CLOCK_REALTIME).ok()?;
    let tai = clock_gettime(ClockId::CLOCK_TAI).ok()?;
    let ns = |t: nix::sys::time::TimeSpec| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec());
    // Read an instant apart: rounded to the whole seconds the offset is made of.
    let seconds = ((ns(tai) - ns(realtime)) as f64 / 1e9).round();
    (seconds >= 0.0).then(|| seconds as u64 * 1_000_000_000)
}

/// The time a timed futex wait had left as it started, as far as its `within` class (carried in the timeout
/// register's kept value, `phoebe_common::shape::within`) tells it: the class's bound, or just above the last
/// bound for `long`. `None` when the kernel learned no class.
fn within_left(kept: u64) -> Option<Duration> {
    let class = within::carried(kept)?;
    let bounds = within::BOUNDS_NS;
    let ns = match bounds.get(class as usize) {
        Some(bound) => *bound,
        None => bounds[bounds.len() - 1] + 1_000_000,
    };
    Some(Duration::from_nanos(ns))
}

/// The shape of a path syscall `nr` whose path argument was `path` as the kernel read it (absolute, or relative
/// joined to its walked base; `None`: unknown), whose result was `result` and, for an open, whose flags' code the
/// kernel kept (`open`), through the same [`shape_of`] and normalisation as ptrace's.
pub fn shape_of_path(
    nr: u64,
    path: Option<&[u8]>,
    result: Result<(), Errno>,
    open: u64,
) -> Option<(Syscall, Shape)> {
    let syscall = Syscall::from_number(nr)?;
    path_arg_of(nr)?;
    let path = path.map(|raw| normalize_absolute(&String::from_utf8_lossy(raw)));
    let (open, directory) = open_flags(open);
    Some((
        syscall,
        shape_of(
            syscall,
            &[0; 6],
            &mut KernelPath {
                path,
                result,
                open,
                directory,
                timeout: None,
            },
        ),
    ))
}

/// What the kernel's open code (`phoebe_common::shape::open`) says of an open's flags: how it creates, and
/// whether it asks for a directory (both unknown when the code is).
fn open_flags(code: u64) -> (Option<OpenMode>, Option<bool>) {
    let mode = match code & shape::open::MODE {
        shape::open::PLAIN => Some(OpenMode::Plain),
        shape::open::CREATES => Some(OpenMode::Creates),
        shape::open::EXCLUSIVE => Some(OpenMode::Exclusive),
        _ => None,
    };
    (mode, mode.map(|_| code & shape::open::DIRECTORY != 0))
}

/// The syscall and shape a key stands for: its registers' components, and for a call on a descriptor the facts
/// the kernel learned about it (the key's second value).
pub fn shape_of_key(key: &ShapeKey) -> Option<(Syscall, Shape)> {
    let nr = u64::from(key.nr);
    let syscall = Syscall::from_number(nr)?;
    let regs = registers_of(nr);
    if regs.is_none() && fd_arg_of(nr).is_none() {
        return None;
    }
    let mut args = regs.map_or([0; 6], |regs| shape::registers(&regs, &key.values));
    if fd_arg_of(nr).is_none() {
        // A wait's children are what its result says of them.
        // A timed futex wait: what was left of its timeout, as its entry learned it.
        let timeout = (syscall.name() == "futex")
            .then(|| within_left(key.values[1]).map(|left| (args[3], left)))
            .flatten();
        let mut probe = KernelPath {
            path: None,
            result: decode_result(key.errno)?,
            open: None,
            directory: None,
            timeout,
        };
        return Some((syscall, shape_of(syscall, &args, &mut probe)));
    }
    let (code, carried) = with_op(syscall, &mut args, key.values[1]);
    let mut facts = fd_facts(code);
    // FIONBIO sets or clears O_NONBLOCK: at the exit, where the kernel read the flags, they may not be the ones
    // the call saw (ptrace reads them at the entry).
    if syscall.name() == "ioctl"
        && args[1] as u32 == libc::FIONBIO as u32
        && let Some(facts) = facts.as_mut()
        && facts.kind != "closed"
    {
        facts.nonblock = None;
    }
    let result = decode_result(key.errno);
    let shape = shape_of(syscall, &args, &mut KernelFd(facts, result, args[1]));
    Some((syscall, op_unknown(syscall, &args, carried, shape)))
}

/// The shape of a call `nr` on a regular file or directory whose descriptor's code is `code` and whose path the
/// kernel walked (`path`, normalised; `None`: not known whole), through the same [`shape_of`] as ptrace's.
pub fn shape_of_file(
    nr: u64,
    code: u64,
    path: Option<String>,
    result: Option<Result<(), Errno>>,
) -> Option<(Syscall, Shape)> {
    let syscall = Syscall::from_number(nr)?;
    fd_arg_of(nr)?;
    let mut args = [0; 6];
    let (code, carried) = with_op(syscall, &mut args, code);
    let mut facts = fd_facts(code)?;
    facts.path = path;
    // A file's or directory's: no pipe; a `LOCK_NB` flock's result says whether the lock was held.
    let shape = shape_of(syscall, &args, &mut KernelFd(Some(facts), result, args[1]));
    Some((syscall, op_unknown(syscall, &args, carried, shape)))
}

/// A descriptor's code without what the kernel carried in it for `syscall` (`phoebe_common::fd::op`: flock's
/// operation, fcntl's command), which goes to the call's second register in `args`, and whether it carried one
/// ([`op_unknown`] says so when not).
fn with_op(syscall: Syscall, args: &mut [u64; 6], code: u64) -> (u64, bool) {
    let (code, carried) = fd::op::split(code);
    let value = match syscall.name() {
        "flock" => carried,
        "fcntl" => carried.and_then(fd::op::fcntl_cmd),
        _ => None,
    };
    if let Some(value) = value {
        args[1] = u64::from(value);
    }
    (code, value.is_some())
}

/// A flock or fcntl whose operation the kernel did not carry has `lock=unknown`, `cmd=unknown`, not the name of
/// the zero in `args`; an `F_SETFL` may have changed `O_NONBLOCK` by the exit, where the kernel read it.
fn op_unknown(syscall: Syscall, args: &[u64; 6], carried: bool, mut shape: Shape) -> Shape {
    let key = match syscall.name() {
        "flock" => Key::Lock,
        "fcntl" => Key::Cmd,
        _ => return shape,
    };
    if !carried {
        shape.set(key, UNKNOWN);
    } else if syscall.name() == "fcntl"
        && args[1] == libc::F_SETFL as u64
        && shape.get(Key::Nonblock).is_some()
    {
        shape.set(Key::Nonblock, UNKNOWN);
    }
    shape
}

/// The index of syscall `nr`'s descriptor argument, for the calls whose descriptor the eBPF observer reads: at
/// their exit, and close's at its entry (`fd::CLOSE_X86_64`).
pub fn fd_arg_of(nr: u64) -> Option<u8> {
    #[cfg(target_arch = "aarch64")]
    let close = fd::CLOSE_AARCH64;
    #[cfg(not(target_arch = "aarch64"))]
    let close = fd::CLOSE_X86_64;
    if nr == close {
        return Some(0);
    }
    #[cfg(target_arch = "aarch64")]
    return fd::aarch64_fd(nr);
    #[cfg(not(target_arch = "aarch64"))]
    return fd::x86_64_fd(nr);
}

/// What the kernel's code of a descriptor (`phoebe_common::fd::encode`) says, named by the functions ptrace's
/// probe names its facts with ([`socket_kind`], [`fd_kind_of_link`], [`chr_kind`]); `None` when unknown. The
/// path of a file or directory is not in the code: [`shape_of_file`] adds the one the kernel walked.
pub fn fd_facts(code: u64) -> Option<FdFacts> {
    let facts = fd::decode(code);
    let kind = match facts.kind {
        fd::kind::CLOSED => {
            return Some(FdFacts {
                kind: "closed",
                nonblock: None,
                path: None,
            });
        }
        fd::kind::FILE => "file",
        fd::kind::DIR => "dir",
        fd::kind::PIPE => "pipe",
        fd::kind::CHR => chr_kind(facts.detail),
        fd::kind::BLK => "blk",
        fd::kind::SOCKET => {
            let (family, ty) = facts.socket();
            socket_kind(i32::from(family), i32::from(ty))
        }
        fd::kind::ANON => {
            let name = usize::try_from(facts.detail)
                .ok()
                .and_then(|i| fd::ANON_NAMES.get(i))
                .copied()
                .unwrap_or("[?]");
            fd_kind_of_link(&format!("anon_inode:{name}"))?
        }
        fd::kind::PIDFS => fd_kind_of_link("pidfd:")?,
        fd::kind::OTHER => "other",
        _ => return None,
    };
    Some(FdFacts {
        kind,
        nonblock: facts.nonblock,
        path: None,
    })
}

/// A probe that knows one descriptor's facts, the ones the kernel learned, what the call returned (`None`: not
/// known), and the call's second register (epoll_ctl's operation).
struct KernelFd(Option<FdFacts>, Option<Result<(), Errno>>, u64);

impl Probe for KernelFd {
    fn fd(&mut self, _: i32) -> Option<FdFacts> {
        self.0.clone()
    }

    /// The counters keep no count register: how much a write asked for is not known.
    fn write_count(&mut self, _: Syscall, _: &[u64; 6]) -> Option<u64> {
        None
    }

    /// A call's result says whether its descriptor was ready ([`ready_from_result`]).
    fn ready(&mut self, _: i32, _: i16) -> Option<bool> {
        self.1.and_then(ready_from_result)
    }

    /// A write's result says whether its pipe had a reader ([`readers_from_result`]).
    fn pipe_readers(&mut self, _: i32) -> Option<bool> {
        self.1.and_then(readers_from_result)
    }

    /// A `LOCK_NB` flock's result says whether another held the lock ([`held_from_result`]).
    fn lock_held(&mut self, _: i32, _: bool) -> Option<bool> {
        self.1.and_then(held_from_result)
    }

    /// epoll_ctl's result, with its operation, says whether the descriptor was registered
    /// ([`registered_from_result`]).
    fn epoll_registered(&mut self, _: i32, _: i32) -> Option<bool> {
        self.1.and_then(|result| registered_from_result(self.2, result))
    }
}

/// A member reached through nested structs: (struct, member) pairs whose offsets add up.
type MemberPath = &'static [(&'static str, &'static str)];

/// The kernel offsets the observer follows to a descriptor's facts (`phoebe_common::fd::off`), from the kernel's
/// BTF; all zero (learning nothing: every descriptor unknown) when one is missing, with the member's name.
pub(super) fn fd_offsets(btf: &super::btf::Btf) -> Result<fd::Offsets, &'static str> {
    use fd::off;
    let member = |name: &'static str, path: &[(&str, &str)]| -> Result<u32, &'static str> {
        path.iter().try_fold(0u32, |acc, (ty, m)| {
            btf.member_offset(ty, m).map(|o| acc + o).ok_or(name)
        })
    };
    let mut out: fd::Offsets = [0; 17];
    let wanted: [(usize, &'static str, MemberPath); 16] = [
        (off::TASK_FILES, "task_struct.files", &[("task_struct", "files")]),
        (off::FILES_FDT, "files_struct.fdt", &[("files_struct", "fdt")]),
        (off::FDT_MAX_FDS, "fdtable.max_fds", &[("fdtable", "max_fds")]),
        (off::FDT_FD, "fdtable.fd", &[("fdtable", "fd")]),
        (off::FILE_FLAGS, "file.f_flags", &[("file", "f_flags")]),
        (off::FILE_INODE, "file.f_inode", &[("file", "f_inode")]),
        (
            off::FILE_PRIVATE,
            "file.private_data",
            &[("file", "private_data")],
        ),
        (
            off::FILE_DENTRY,
            "file.f_path.dentry",
            &[("file", "f_path"), ("path", "dentry")],
        ),
        (
            off::DENTRY_NAME,
            "dentry.d_name.name",
            &[("dentry", "d_name"), ("qstr", "name")],
        ),
        (off::INODE_MODE, "inode.i_mode", &[("inode", "i_mode")]),
        (off::INODE_RDEV, "inode.i_rdev", &[("inode", "i_rdev")]),
        (off::INODE_SB, "inode.i_sb", &[("inode", "i_sb")]),
        (
            off::SB_MAGIC,
            "super_block.s_magic",
            &[("super_block", "s_magic")],
        ),
        (off::SOCKET_TYPE, "socket.type", &[("socket", "type")]),
        (off::SOCKET_SK, "socket.sk", &[("socket", "sk")]),
        (
            off::SK_FAMILY,
            "sock.__sk_common.skc_family",
            &[("sock", "__sk_common"), ("sock_common", "skc_family")],
        ),
    ];
    for (index, name, path) in wanted {
        if let Some(slot) = out.get_mut(index) {
            *slot = member(name, path)?;
        }
    }
    if let Some(enabled) = out.get_mut(off::ENABLED) {
        *enabled = 1;
    }
    Ok(out)
}

/// The kernel offsets of the path walk (`phoebe_common::shape::walk::off`), from the kernel's BTF; all zero (no
/// walk: files' paths unknown) when one is missing, with the member's name.
pub(super) fn walk_offsets(btf: &super::btf::Btf) -> Result<walk::Offsets, &'static str> {
    use walk::off;
    let member = |name: &'static str, path: &[(&str, &str)]| -> Result<u32, &'static str> {
        path.iter().try_fold(0u32, |acc, (ty, m)| {
            btf.member_offset(ty, m).map(|o| acc + o).ok_or(name)
        })
    };
    let mut out: walk::Offsets = [0; 14];
    let wanted: [(usize, &'static str, MemberPath); 13] = [
        (
            off::FILE_MNT,
            "file.f_path.mnt",
            &[("file", "f_path"), ("path", "mnt")],
        ),
        (
            off::FILE_DENTRY,
            "file.f_path.dentry",
            &[("file", "f_path"), ("path", "dentry")],
        ),
        (off::DENTRY_PARENT, "dentry.d_parent", &[("dentry", "d_parent")]),
        (
            off::DENTRY_NAME,
            "dentry.d_name.name",
            &[("dentry", "d_name"), ("qstr", "name")],
        ),
        (
            off::DENTRY_LEN,
            "dentry.d_name.len",
            &[("dentry", "d_name"), ("qstr", "len")],
        ),
        (
            off::DENTRY_PPREV,
            "dentry.d_hash.pprev",
            &[("dentry", "d_hash"), ("hlist_bl_node", "pprev")],
        ),
        (
            off::VFSMOUNT_ROOT,
            "vfsmount.mnt_root",
            &[("vfsmount", "mnt_root")],
        ),
        (off::MOUNT_MNT, "mount.mnt", &[("mount", "mnt")]),
        (off::MOUNT_PARENT, "mount.mnt_parent", &[("mount", "mnt_parent")]),
        (
            off::MOUNT_MOUNTPOINT,
            "mount.mnt_mountpoint",
            &[("mount", "mnt_mountpoint")],
        ),
        (off::TASK_FS, "task_struct.fs", &[("task_struct", "fs")]),
        (
            off::FS_PWD_MNT,
            "fs_struct.pwd.mnt",
            &[("fs_struct", "pwd"), ("path", "mnt")],
        ),
        (
            off::FS_PWD_DENTRY,
            "fs_struct.pwd.dentry",
            &[("fs_struct", "pwd"), ("path", "dentry")],
        ),
    ];
    for (index, name, path) in wanted {
        if let Some(slot) = out.get_mut(index) {
            *slot = member(name, path)?;
        }
    }
    // The walk reads `d_parent`, `d_name.hash_len` and `d_name.name` in one 24-byte read.
    let parent = out[off::DENTRY_PARENT];
    if out[off::DENTRY_LEN] != parent + 12 || out[off::DENTRY_NAME] != parent + 16 {
        return Err("dentry.d_name right after dentry.d_parent");
    }
    if let Some(enabled) = out.get_mut(off::ENABLED) {
        *enabled = 1;
    }
    Ok(out)
}

impl Observer {
    /// Reads the shape counters, summed over CPUs.
    pub(super) fn shape_snapshot(&self) -> Result<ShapeSnapshot, EbpfError> {
        let name = maps::SHAPES;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.maps.get(name)?;
        let counts: PerCpuHashMap<&MapData, ShapeKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut out = ShapeSnapshot::new();
        for entry in counts.iter() {
            let (key, per_cpu) = entry.map_err(map_err)?;
            out.insert(key, per_cpu.iter().map(|v| v.calls).sum());
        }
        Ok(out)
    }
}

impl Observer {
    /// Reads the path counters, summed over CPUs, and the text of every hash not in `texts` yet.
    pub(super) fn path_snapshot(&self, texts: &mut PathTexts) -> Result<PathSnapshot, EbpfError> {
        let name = maps::PATHS;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.maps.get(name)?;
        let counts: PerCpuHashMap<&MapData, PathKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut out = PathSnapshot::new();
        for entry in counts.iter() {
            let (key, per_cpu) = entry.map_err(map_err)?;
            out.insert(key, per_cpu.iter().map(|v| v.calls).sum());
        }
        let name = maps::PATH_TEXT;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.maps.get(name)?;
        let stored: HashMap<&MapData, u64, PathText> = HashMap::try_from(map).map_err(map_err)?;
        for key in out.keys() {
            if key.hash == UNKNOWN_PATH || texts.contains_key(&key.hash) {
                continue;
            }
            // Absent only when the text map was full at the path's first call: the path stays unknown.
            if let Ok(text) = stored.get(&key.hash, 0) {
                texts.insert(
                    key.hash,
                    normalize_absolute(&String::from_utf8_lossy(text.text())),
                );
            }
        }
        Ok(out)
    }
}

/// Records the path calls added between two reads into the interval that contains `at`.
pub(super) fn record_paths(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &PathSnapshot,
    now: &PathSnapshot,
    texts: &PathTexts,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    record_counted(builder, at, before, now, only, |key| {
        let path = texts.get(&key.hash);
        let nr = u64::from(key.nr);
        // A path syscall's key carries an open's flags where a file's carries its descriptor's code.
        if path_arg_of(nr).is_none() && key.fd != fd::UNKNOWN {
            return shape_of_file(nr, key.fd, path.cloned(), decode_result(key.errno))
                .map(|(sc, shape)| (sc, shape, key.errno));
        }
        let result = decode_result(key.errno)?;
        shape_of_path(nr, path.map(String::as_bytes), result, key.fd)
            .map(|(sc, shape)| (sc, shape, key.errno))
    });
}

/// Records the shaped calls added between two reads into the interval that contains `at`.
pub(super) fn record(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &ShapeSnapshot,
    now: &ShapeSnapshot,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    record_counted(builder, at, before, now, only, |key| {
        shape_of_key(key).map(|(sc, shape)| (sc, shape, key.errno))
    });
}

/// The calls each key of a counter map gained between two reads, recorded with the syscall, shape and errno
/// `decode` gives the key (keys it cannot decode, syscalls left out by `only`, and unshaped recordings skipped).
fn record_counted<K: Ord>(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &BTreeMap<K, u64>,
    now: &BTreeMap<K, u64>,
    only: Option<&std::collections::HashSet<Syscall>>,
    decode: impl Fn(&K) -> Option<(Syscall, Shape, u32)>,
) {
    for (key, calls) in now {
        let calls = calls.saturating_sub(before.get(key).copied().unwrap_or(0));
        if calls == 0 {
            continue;
        }
        let Some((syscall, shape, errno)) = decode(key) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&syscall)) || !builder.records_shapes(syscall) {
            continue;
        }
        let Some(result) = decode_result(errno) else {
            continue;
        };
        builder.record_shape_many(at, syscall, &shape, result, calls);
    }
}

/// Records the calls of syscalls whose shape has no register component, no path and no descriptor read by the
/// kernel (close, fcntl, clone3, the rarer path syscalls)
/// added between two reads of the per-syscall counters: their shape is all `unknown` on eBPF, recorded as such so
/// that synthesis knows it cannot tell their shapes apart (and excludes them) rather than taking them as shapeless.
pub(super) fn record_unknown(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &super::Snapshot,
    now: &super::Snapshot,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    for (key, value) in super::delta(before, now) {
        let nr = u64::from(key.nr);
        if registers_of(nr).is_some() || path_arg_of(nr).is_some() || fd_arg_of(nr).is_some() {
            continue;
        }
        let Some((syscall, result)) = super::decode(&key) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&syscall)) || !builder.records_shapes(syscall) {
            continue;
        }
        let shape = shape_of(
            syscall,
            &[0; 6],
            &mut KernelPath {
                path: None,
                result,
                open: None,
                directory: None,
                timeout: None,
            },
        );
        builder.record_shape_many(at, syscall, &shape, result, value.calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::shape::RegistersOnly;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Mostly small values (the ones programs pass), sometimes any.
        fn arg(&mut self) -> u64 {
            match self.next() % 4 {
                0 => self.next(),
                1 => self.next() % 1024,
                2 => self.next() & 0x1_ffff,
                _ => self.next() % 16,
            }
        }
    }

    /// The kernel keeps only the bits `shape_of` reads: for any registers, the shape rebuilt from the kept bits is
    /// the shape of the full registers (with a probe that knows nothing beyond registers, as on eBPF).
    #[test]
    fn kept_registers_give_the_shape_of_the_full_registers() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut shaped = 0;
        for sc in Syscall::all() {
            let nr = u64::from(sc.number());
            let Some(regs) = registers_of(nr) else {
                // flock's operation and fcntl's command travel in the descriptor's code instead
                // (`descriptor_codes_carry_flock_and_fcntl_operations`).
                if matches!(sc.name(), "flock" | "fcntl") {
                    continue;
                }
                // No register component: the shape is the same for all registers.
                let a = shape_of(sc, &[1, 2, 3, 4, 5, 6], &mut RegistersOnly);
                let b = shape_of(sc, &[7, 0, 9, 0, 11, 0], &mut RegistersOnly);
                assert_eq!(a, b, "{}", sc.name());
                continue;
            };
            shaped += 1;
            for _ in 0..2000 {
                let args: [u64; 6] = std::array::from_fn(|_| rng.arg());
                let values = regs.map(|r| match args.get(usize::from(r.arg)) {
                    Some(v) => r.keep(*v),
                    None => 0,
                });
                let key = ShapeKey {
                    nr: nr as u32,
                    errno: 0,
                    values,
                };
                let (_, from_key) = shape_of_key(&key).expect("a known syscall");
                // What the kernel's probe knows beyond registers: the result (a success here); for epoll_ctl, with
                // its operation, whether the descriptor was registered.
                let expected = if sc.name() == "epoll_ctl" {
                    shape_of(sc, &args, &mut KernelFd(None, Some(Ok(())), args[1]))
                } else {
                    let mut kernel = KernelPath {
                        path: None,
                        result: Ok(()),
                        open: None,
                        directory: None,
                        timeout: None,
                    };
                    shape_of(sc, &args, &mut kernel)
                };
                assert_eq!(
                    from_key.to_string(),
                    expected.to_string(),
                    "{} {args:x?}",
                    sc.name()
                );
            }
        }
        assert_eq!(shaped, 16, "shaped syscalls");
    }

    /// The kernel's path table names the same argument as `path_arg`, the one definition of path syscalls.
    #[test]
    fn the_kernel_reads_the_path_argument_path_arg_names() {
        let mut paths = 0;
        for sc in Syscall::all() {
            let Some(arg) = path_arg_of(u64::from(sc.number())) else {
                continue;
            };
            paths += 1;
            let (index, _) = phoebe_core::model::names::path_arg(sc)
                .unwrap_or_else(|| panic!("{} has no path argument", sc.name()));
            assert_eq!(usize::from(arg), index, "{}", sc.name());
        }
        assert!(paths >= 16, "{paths} path syscalls");
    }

    /// A path read by the kernel gives ptrace's shape: templated, lexically normalised; none gives `unknown`.
    #[test]
    fn kernel_paths_give_the_shapes_ptrace_gives() {
        use phoebe_common::shape::open;
        let nr = u64::from(Syscall::parse("openat").unwrap().number());
        let enoent = Err(Errno::new(libc::ENOENT).unwrap());
        let text =
            |path: Option<&[u8]>, result, code| shape_of_path(nr, path, result, code).unwrap().1.to_string();
        assert_eq!(
            text(Some(b"/proc/1234/stat"), enoent, open::PLAIN),
            "creates=no:directory=no:exists=no:path=/proc/*/stat"
        );
        assert_eq!(
            text(Some(b"/etc/./x/..//passwd"), enoent, open::CREATES),
            "creates=yes:directory=no:exists=no:parent=no:path=/etc/passwd"
        );
        assert_eq!(
            text(None, enoent, open::UNKNOWN),
            "creates=unknown:directory=unknown:exists=unknown:parent=unknown:path=unknown"
        );
        // A plain open's success found its name, an exclusive one's did not; one that may create says nothing
        // (O_CREAT). A stat's success says the name was there.
        assert_eq!(
            text(Some(b"/etc/passwd"), Ok(()), open::PLAIN),
            "creates=no:directory=no:exists=yes:path=/etc/passwd"
        );
        assert_eq!(
            text(Some(b"/etc/passwd"), Ok(()), open::EXCLUSIVE),
            "creates=yes:directory=no:exists=no:parent=yes:path=/etc/passwd"
        );
        assert_eq!(
            text(Some(b"/etc/passwd"), Ok(()), open::CREATES),
            "creates=yes:directory=no:exists=unknown:parent=yes:path=/etc/passwd"
        );
        let stat = u64::from(Syscall::parse("newfstatat").unwrap().number());
        assert_eq!(
            shape_of_path(stat, Some(b"/etc/passwd"), Ok(()), open::UNKNOWN)
                .unwrap()
                .1
                .to_string(),
            "exists=yes:path=/etc/passwd"
        );
        // rsync's probe of a file (O_DIRECTORY: the name is there, and is no directory), and an open through a
        // file (no O_DIRECTORY: the name is absent).
        let enotdir = Err(Errno::new(libc::ENOTDIR).unwrap());
        assert_eq!(
            text(Some(b"/src/cli.rs"), enotdir, open::PLAIN | open::DIRECTORY),
            "creates=no:directory=yes:exists=unknown:path=/src/cli.rs"
        );
        assert_eq!(
            text(Some(b"/src/cli.rs/x"), enotdir, open::PLAIN),
            "creates=no:directory=no:exists=no:path=/src/cli.rs/x"
        );
        // Not a path syscall: no shape from a path key.
        let getppid = u64::from(Syscall::parse("getppid").unwrap().number());
        assert!(shape_of_path(getppid, None, Ok(()), open::UNKNOWN).is_none());
    }

    /// The kernel keeps an open's flags the way `shape_of` reads them from the registers (`creates=`), on
    /// every architecture's table.
    #[test]
    fn the_kernel_keeps_the_open_flags_shape_of_reads() {
        use phoebe_common::shape::open;
        let flags = |f: i32| f as u64;
        let code = |f: i32| open::code(flags(f), open::X86_64_O_DIRECTORY);
        assert_eq!(code(libc::O_RDONLY), open::PLAIN);
        assert_eq!(code(libc::O_CREAT | libc::O_WRONLY), open::CREATES);
        assert_eq!(code(libc::O_CREAT | libc::O_EXCL), open::EXCLUSIVE);
        assert_eq!(
            code(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW),
            open::PLAIN | open::DIRECTORY
        );
        // The host's O_DIRECTORY is the one the kernel programs use for it.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(libc::O_DIRECTORY as u64, open::X86_64_O_DIRECTORY);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(libc::O_DIRECTORY as u64, open::AARCH64_O_DIRECTORY);
        for name in ["open", "openat", "creat"] {
            let sc = Syscall::parse(name).unwrap();
            let arg = open::x86_64(u64::from(sc.number()));
            assert!(arg.is_some(), "{name}");
            let mut args = [0u64; 6];
            if let Some(a) = arg.filter(|a| *a != open::CREAT) {
                args[usize::from(a)] = flags(libc::O_CREAT);
            }
            assert_eq!(
                shape_of(sc, &args, &mut RegistersOnly).get(phoebe_core::model::shape::Key::Creates),
                Some("yes"),
                "{name}"
            );
        }
        assert_eq!(
            open::x86_64(u64::from(Syscall::parse("openat2").unwrap().number())),
            None
        );
        // aarch64's openat is 56.
        assert_eq!(open::aarch64(56), Some(2));
    }

    /// The kernel reads the descriptor argument `fd_arg` names, for every call on a descriptor but mmap, which has
    /// no descriptor component (close's at its entry, where the descriptor is still open).
    #[test]
    fn the_kernel_reads_the_descriptor_argument_fd_arg_names() {
        let mut fds = 0;
        for sc in Syscall::all() {
            let nr = u64::from(sc.number());
            let expected = match sc.name() {
                "mmap" => None,
                _ => phoebe_core::model::names::fd_arg(sc),
            };
            assert_eq!(fd_arg_of(nr).map(usize::from), expected, "{}", sc.name());
            if let Some(regs) = registers_of(nr)
                && fd_arg_of(nr).is_some()
            {
                // The descriptor's code takes the second value of the key.
                assert_eq!(regs[1].arg, ShapeReg::NONE, "{}", sc.name());
            }
            fds += usize::from(fd_arg_of(nr).is_some());
        }
        assert!(fds >= 40, "{fds} calls on a descriptor");
    }

    /// The aarch64 table, which no host test runs the programs with, names the same arguments by name.
    #[test]
    fn the_aarch64_descriptor_table_names_fd_arg_s_arguments() {
        use std::str::FromStr;
        let mut checked = 0;
        for sc in Syscall::all() {
            let expected = match sc.name() {
                "close" | "mmap" => None,
                _ => phoebe_core::model::names::fd_arg(sc),
            };
            let Ok(sysno) = syscalls::aarch64::Sysno::from_str(sc.name()) else {
                continue;
            };
            let nr = u64::try_from(sysno.id()).unwrap();
            assert_eq!(fd::aarch64_fd(nr).map(usize::from), expected, "{}", sc.name());
            checked += usize::from(expected.is_some());
        }
        assert!(checked >= 40, "{checked}");
    }

    fn kind(code: u64) -> Option<&'static str> {
        fd_facts(code).map(|f| f.kind)
    }

    /// The kernel's raw facts are named as ptrace names them: sockets by `socket_kind`, anonymous inodes by their
    /// `/proc` link, character devices by their major.
    #[test]
    fn kernel_descriptor_codes_name_the_kinds_ptrace_names() {
        use fd::{encode, kind::*, socket_detail};
        assert_eq!(fd_facts(fd::UNKNOWN), None);
        assert_eq!(
            fd_facts(encode(CLOSED, None, 0)),
            Some(FdFacts {
                kind: "closed",
                nonblock: None,
                path: None
            })
        );
        let sock = |family: i32, ty: i32| encode(SOCKET, Some(true), socket_detail(family as u16, ty as u16));
        assert_eq!(kind(sock(libc::AF_INET, libc::SOCK_STREAM)), Some("tcp"));
        assert_eq!(kind(sock(libc::AF_INET6, libc::SOCK_DGRAM)), Some("udp6"));
        assert_eq!(
            kind(sock(libc::AF_UNIX, libc::SOCK_SEQPACKET)),
            Some("unix-seqpacket")
        );
        assert_eq!(kind(sock(libc::AF_NETLINK, libc::SOCK_RAW)), Some("netlink"));
        assert_eq!(kind(sock(libc::AF_PACKET, libc::SOCK_RAW)), Some("socket"));
        assert_eq!(kind(encode(CHR, None, 136)), Some("tty"));
        assert_eq!(kind(encode(CHR, None, 1)), Some("chr"));
        let anon = |name: &str| {
            let index = fd::ANON_NAMES
                .iter()
                .position(|n| *n == name)
                .map_or(fd::ANON_OTHER, |i| i as u64);
            kind(encode(ANON, Some(false), index))
        };
        for (name, expected) in [
            ("[eventfd]", "eventfd"),
            ("[timerfd]", "timerfd"),
            ("[signalfd]", "signalfd"),
            ("[eventpoll]", "epoll"),
            ("inotify", "inotify"),
            ("[pidfd]", "pidfd"),
            ("[io_uring]", "anon"),
        ] {
            assert_eq!(anon(name), Some(expected), "{name}");
            assert_eq!(
                fd_kind_of_link(&format!("anon_inode:{name}")),
                Some(expected),
                "ptrace's reading of {name}"
            );
        }
        assert_eq!(kind(encode(PIDFS, Some(false), 0)), Some("pidfd"));
        assert_eq!(kind(encode(FILE, Some(false), 0)), Some("file"));
        assert_eq!(kind(encode(DIR, Some(false), 0)), Some("dir"));
        assert_eq!(kind(encode(PIPE, Some(true), 0)), Some("pipe"));
        assert_eq!(kind(encode(BLK, None, 0)), Some("blk"));
        assert_eq!(kind(encode(OTHER, None, 0)), Some("other"));
        assert_eq!(
            fd_facts(encode(PIPE, Some(true), 0)).unwrap().nonblock,
            Some(true)
        );
    }

    /// A key of a call on a descriptor gives ptrace's shape string; a file's path is unknown in a shape key (the
    /// walked one comes in a path key, `shape_of_file`); FIONBIO's flags are the ones after the call, so unknown.
    #[test]
    fn descriptor_keys_decode_to_fd_and_nonblock() {
        use fd::{encode, kind::*, socket_detail};
        let key = |name: &str, values: [u64; 2]| {
            let nr = Syscall::parse(name).unwrap().number();
            shape_of_key(&ShapeKey { nr, errno: 0, values })
                .unwrap()
                .1
                .to_string()
        };
        let tcp = encode(
            SOCKET,
            Some(true),
            socket_detail(libc::AF_INET as u16, libc::SOCK_STREAM as u16),
        );
        // A read that went through had something to read: the socket was ready.
        assert_eq!(key("read", [0, tcp]), "fd=tcp:nonblock=yes:ready=yes");
        assert_eq!(key("read", [0, encode(CLOSED, None, 0)]), "fd=closed");
        assert_eq!(
            key("read", [0, encode(FILE, Some(false), 0)]),
            "fd=file:nonblock=no:path=unknown"
        );
        assert_eq!(key("read", [0, fd::UNKNOWN]), "fd=unknown:nonblock=unknown");
        assert_eq!(key("ioctl", [0x541b, tcp]), "fd=tcp:nonblock=yes:req=FIONREAD");
        assert_eq!(key("ioctl", [0x5421, tcp]), "fd=tcp:nonblock=unknown:req=FIONBIO");
        let epoll = encode(ANON, Some(false), 3);
        assert_eq!(key("epoll_wait", [1, epoll]), "sleeps=yes:fd=epoll:nonblock=no");
        assert_eq!(
            key("epoll_ctl", [1, encode(PIPE, Some(false), 0)]),
            "ctl=add:registered=no:fd=pipe:nonblock=no"
        );
    }

    /// Every member the path walk follows is in this kernel's BTF: `struct mount` embeds its `vfsmount` past its
    /// list heads, and `qstr.len` sits in the anonymous struct of its union, 4 bytes after the hash.
    #[test]
    fn this_kernels_btf_has_the_walk_offsets() {
        let Ok(btf) = crate::btf::Btf::from_sys_fs() else {
            return;
        };
        let offsets = walk_offsets(&btf).expect("every member");
        assert_eq!(offsets[walk::off::ENABLED], 1);
        assert!(offsets[walk::off::MOUNT_MNT] > 0, "{offsets:?}");
        assert_eq!(
            offsets[walk::off::DENTRY_LEN] + 4,
            offsets[walk::off::DENTRY_NAME],
            "{offsets:?}"
        );
        assert_eq!(
            offsets[walk::off::FILE_MNT] + 8,
            offsets[walk::off::FILE_DENTRY],
            "{offsets:?}"
        );
    }

    /// A call on a file counted with its walked path has the shape ptrace gives it with the same facts; without
    /// the path, `path=unknown`.
    #[test]
    fn file_keys_decode_to_ptraces_shape_with_the_walked_path() {
        let read = Syscall::parse("read").unwrap();
        let code = fd::encode(fd::kind::FILE, Some(false), 0);
        let facts = FdFacts {
            kind: "file",
            nonblock: Some(false),
            path: Some("/var/log/app.log".into()),
        };
        let ptrace = shape_of(read, &[3, 0, 0, 0, 0, 0], &mut KernelFd(Some(facts), None, 0));
        let (sc, shape) = shape_of_file(
            u64::from(read.number()),
            code,
            Some("/var/log/app.log".into()),
            None,
        )
        .unwrap();
        assert_eq!((sc, shape.to_string()), (read, ptrace.to_string()));
        assert!(shape.to_string().contains(":path=/var/log/"), "{shape}");
        let (_, unknown) = shape_of_file(u64::from(read.number()), code, None, None).unwrap();
        assert_eq!(unknown.to_string(), "fd=file:nonblock=no:path=unknown");
        // A syscall without a descriptor argument has no such key.
        assert!(
            shape_of_file(
                u64::from(Syscall::parse("getppid").unwrap().number()),
                code,
                None,
                None
            )
            .is_none()
        );
    }

    /// flock's operation comes in its descriptor's code, on the shape key and on the walked file's path key alike,
    /// and decodes to ptrace's `lock=`; one the kernel could not carry is `unknown`, and a character device's code
    /// keeps its major number.
    #[test]
    fn descriptor_codes_carry_flock_and_fcntl_operations() {
        let flock = Syscall::parse("flock").unwrap();
        let nr = u64::from(flock.number());
        let file = fd::encode(fd::kind::FILE, Some(false), 0);
        let ok = Some(Ok(()));
        let ewouldblock = Some(Err(Errno::new(libc::EAGAIN).unwrap()));
        // A `LOCK_NB` request's result says whether the lock was held (`held=`); the others have no such part.
        for (op, name, result, held) in [
            (6, "ex-nb", ok, ":held=no"),
            (6, "ex-nb", ewouldblock, ":held=yes"),
            (5, "sh-nb", None, ":held=unknown"),
            (8, "un", ok, ""),
            (1, "sh", ok, ""),
        ] {
            let code = fd::op::with(file, fd::op::flock(op));
            let (_, walked) = shape_of_file(nr, code, Some("/tmp/a.lock".into()), result).unwrap();
            assert_eq!(
                walked.to_string(),
                format!("fd=file:nonblock=no:lock={name}{held}:path=/tmp/a.lock")
            );
            let (_, counted) = shape_of_key(&ShapeKey {
                nr: flock.number(),
                errno: 0,
                values: [0, code],
            })
            .unwrap();
            assert_eq!(counted.get(Key::Lock), Some(name));
        }
        let (_, unknown) = shape_of_file(nr, file, None, None).unwrap();
        assert_eq!(
            unknown.to_string(),
            "fd=file:nonblock=no:lock=unknown:path=unknown"
        );
        let tty = fd::encode(fd::kind::CHR, Some(false), 136);
        let (_, shape) = shape_of_key(&ShapeKey {
            nr: flock.number(),
            errno: 0,
            values: [0, fd::op::with(tty, fd::op::flock(2))],
        })
        .unwrap();
        assert_eq!(shape.to_string(), "fd=tty:nonblock=no:lock=ex");
        // fcntl: its command; F_SETFL's O_NONBLOCK may have changed by the exit; a command not carried: unknown.
        let fcntl = Syscall::parse("fcntl").unwrap();
        let nr = u64::from(fcntl.number());
        let code = fd::op::with(file, fd::op::fcntl(libc::F_SETLK as u64));
        let (_, walked) = shape_of_file(nr, code, Some("/srv/app.db".into()), None).unwrap();
        assert_eq!(
            walked.to_string(),
            "fd=file:nonblock=no:cmd=F_SETLK:path=/srv/app.db"
        );
        let code = fd::op::with(file, fd::op::fcntl(libc::F_SETFL as u64));
        let (_, setfl) = shape_of_file(nr, code, Some("/srv/app.db".into()), None).unwrap();
        assert_eq!(
            setfl.to_string(),
            "fd=file:nonblock=unknown:cmd=F_SETFL:path=/srv/app.db"
        );
        let (_, unknown) = shape_of_file(nr, file, None, None).unwrap();
        assert_eq!(
            unknown.to_string(),
            "fd=file:nonblock=no:cmd=unknown:path=unknown"
        );
    }

    /// Every member the observer follows to a descriptor's facts is in this kernel's BTF (through anonymous
    /// unions where the kernel has them).
    #[test]
    fn this_kernels_btf_has_the_descriptor_offsets() {
        let Ok(btf) = crate::btf::Btf::from_sys_fs() else {
            return;
        };
        let offsets = fd_offsets(&btf).expect("every member");
        assert_eq!(offsets[fd::off::ENABLED], 1);
        // `struct sock` starts with its `sock_common`; `qstr.name` follows the 8-byte hash_len.
        assert!(offsets[fd::off::SK_FAMILY] < 64, "{offsets:?}");
        assert!(
            offsets[fd::off::FILE_DENTRY] > 0 && offsets[fd::off::DENTRY_NAME] > 8,
            "{offsets:?}"
        );
    }

    /// The first build of the descriptor facts zeroed a 16-byte buffer, which LLVM made a call to `memset`, a BPF
    /// subprogram: Linux 6.1's verifier adds at least 32 bytes for any called frame to `sys_exit`'s ~496 and
    /// refused the observer ("combined stack size of 2 calls is 544"), while 6.18 took it. `sys_exit` calls no
    /// subprogram, and its own frame fits the 512 bytes.
    #[test]
    fn regression_sys_exit_calls_no_subprogram_which_6_1_adds_to_its_stack() {
        let object = aya_obj::Object::parse(crate::OBJECT).unwrap();
        let program = &object.programs[phoebe_common::programs::SYS_EXIT];
        let function = &object.functions[&program.function_key()];
        // BPF_JMP | BPF_CALL with src_reg BPF_PSEUDO_CALL (1): a call of another function of the object.
        let calls = function
            .instructions
            .iter()
            .filter(|i| i.code == 0x85 && i.src_reg() == 1)
            .count();
        assert_eq!(calls, 0, "sys_exit calls {calls} subprograms");
        let deepest = frame_bytes(&function.instructions);
        assert!(deepest <= 512, "sys_exit's frame is {deepest} bytes");
    }

    /// The deepest stack byte a function's instructions reach: a store through r10 (dst) or a load from it (src)
    /// at a negative offset, or an address `r10 - N` made for a helper (`rX = r10; rX += -N`).
    fn frame_bytes(instructions: &[aya_obj::generated::bpf_insn]) -> i32 {
        let direct = instructions
            .iter()
            .filter(|i| (i.dst_reg() == 10 || i.src_reg() == 10) && i.off < 0)
            .map(|i| -i32::from(i.off));
        // BPF_ALU64 | BPF_MOV | BPF_X (0xbf) from r10, then BPF_ALU64 | BPF_ADD | BPF_K (0x07) on the same register.
        let addresses = instructions.windows(2).filter_map(|pair| {
            let (mov, add) = (&pair[0], &pair[1]);
            (mov.code == 0xbf
                && mov.src_reg() == 10
                && add.code == 0x07
                && add.dst_reg() == mov.dst_reg()
                && add.imm < 0)
                .then_some(-add.imm)
        });
        direct.chain(addresses).max().unwrap_or(0)
    }

    /// A histogram's first value was built on `sys_exit`'s stack (200 bytes of buckets), which left 8 of the 512
    /// bytes: reading a descriptor's members into a window (one read for several) did not fit beside it. The
    /// value comes from a static now; the frame keeps room for what the next call shape needs.
    #[test]
    fn regression_the_first_histogram_value_filled_sys_exits_stack() {
        let object = aya_obj::Object::parse(crate::OBJECT).unwrap();
        let program = &object.programs[phoebe_common::programs::SYS_EXIT];
        let function = &object.functions[&program.function_key()];
        let deepest = frame_bytes(&function.instructions);
        assert!(
            deepest <= 320,
            "sys_exit's frame is {deepest} bytes, 320 at most leaves room for more"
        );
    }

    /// The class the futex entry program carries in the timeout register's kept value is the `within=` ptrace
    /// gives the same wait, relative (`FUTEX_WAIT`) or absolute (`FUTEX_WAIT_BITSET`).
    #[test]
    fn futex_keys_carry_the_time_left_as_the_wait_started() {
        let nr = Syscall::parse("futex").unwrap().number();
        for (op, name) in [
            (128, "FUTEX_WAIT_PRIVATE"),
            (9 | 128, "FUTEX_WAIT_BITSET_PRIVATE"),
        ] {
            for (class, text) in ["1ms", "10ms", "100ms", "1s", "10s", "long"].iter().enumerate() {
                let key = ShapeKey {
                    nr,
                    errno: 110,
                    values: [op, within::carry(1, class as u64)],
                };
                let (_, shape) = shape_of_key(&key).unwrap();
                assert_eq!(shape.to_string(), format!("op={name}:timeout=yes:within={text}"));
            }
        }
    }

    #[test]
    fn futex_keys_decode_to_op_and_timeout() {
        let nr = Syscall::parse("futex").unwrap().number();
        let key = ShapeKey {
            nr,
            errno: 0,
            values: [128, 1],
        };
        let (_, shape) = shape_of_key(&key).unwrap();
        // The timeout's length is in the task's memory, which the observer does not read.
        assert_eq!(
            shape.to_string(),
            "op=FUTEX_WAIT_PRIVATE:timeout=yes:within=unknown"
        );
    }

    /// epoll_ctl's operation is in a register, its target descriptor's kind is not: `ctl=` is known on eBPF.
    /// Whether the descriptor was registered, the call's result says (`registered_from_result`): a Go server's
    /// eBPF baseline had `registered=unknown` on all its 72 epoll_ctl calls, and the plausible tier could write
    /// no `epoll_ctl-ENOSPC` rule (its class is `ctl=add:registered=no`).
    #[test]
    fn regression_epoll_ctls_registered_was_unknown_on_ebpf_though_its_result_says() {
        let nr = Syscall::parse("epoll_ctl").unwrap().number();
        let shape = |op: u64, errno: u32| {
            let key = ShapeKey {
                nr,
                errno,
                values: [op, 0],
            };
            shape_of_key(&key).unwrap().1.to_string()
        };
        let (enoent, eexist, enospc, ebadf) = (
            libc::ENOENT as u32,
            libc::EEXIST as u32,
            libc::ENOSPC as u32,
            libc::EBADF as u32,
        );
        assert_eq!(shape(2, 0), "ctl=del:registered=yes:fd=unknown:nonblock=unknown");
        assert_eq!(
            shape(2, enoent),
            "ctl=del:registered=no:fd=unknown:nonblock=unknown"
        );
        assert_eq!(shape(3, 0), "ctl=mod:registered=yes:fd=unknown:nonblock=unknown");
        assert_eq!(shape(1, 0), "ctl=add:registered=no:fd=unknown:nonblock=unknown");
        assert_eq!(
            shape(1, eexist),
            "ctl=add:registered=yes:fd=unknown:nonblock=unknown"
        );
        assert_eq!(
            shape(1, enospc),
            "ctl=add:registered=no:fd=unknown:nonblock=unknown"
        );
        // A descriptor that cannot be polled is in no instance.
        assert_eq!(
            shape(1, libc::EPERM as u32),
            "ctl=add:registered=no:fd=unknown:nonblock=unknown"
        );
        // Checked before the lookup: says nothing.
        assert_eq!(
            shape(1, ebadf),
            "ctl=add:registered=unknown:fd=unknown:nonblock=unknown"
        );
    }
}
