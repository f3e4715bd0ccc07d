//! Which register bits make a call's shape (DESIGN §6), for the eBPF observer: per syscall number, at most two
//! register arguments, each masked to the bits `phoebe::model::shape::shape_of` reads. The observer counts a
//! shaped call under those masked values ([`ShapeKey`]); user space rebuilds the registers and calls `shape_of`
//! itself, so shapes have one definition. Path syscalls are counted by the hash of their absolute path argument
//! ([`PathKey`], [`fnv1a`]) with each path's text stored once ([`PathText`]); descriptor components are not in
//! registers: the observer learns them from the kernel's structures and counts them as a [`ShapeKey`]'s second
//! value (`crate::fd`).

/// One register argument of a shape: its index (0–5) and the bits kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeReg {
    /// Argument index, or [`ShapeReg::NONE`].
    pub arg: u8,
    /// Bits kept; [`ShapeReg::PRESENT`] keeps only whether the register is non-zero (stored as 1).
    pub mask: u64,
}

impl ShapeReg {
    pub const NONE: u8 = 0xff;
    /// A mask of 0 would keep nothing: it stands for "non-zero or not" (futex's timeout pointer).
    pub const PRESENT: u64 = 0;
    const UNUSED: ShapeReg = ShapeReg {
        arg: Self::NONE,
        mask: 0,
    };

    /// The stored value of a register under this rule.
    #[inline(always)]
    pub fn keep(self, value: u64) -> u64 {
        if self.mask == Self::PRESENT {
            u64::from(value != 0)
        } else {
            value & self.mask
        }
    }
}

const fn reg(arg: u8, mask: u64) -> ShapeReg {
    ShapeReg { arg, mask }
}

const LOW32: u64 = 0xffff_ffff;
const ALL: u64 = u64::MAX;
// MAP_SHARED | MAP_ANONYMOUS.
const MMAP_CLASS: u64 = 0x01 | 0x20;
const CLONE_THREAD: u64 = 0x0001_0000;
const WNOHANG: u64 = 1;

/// The registers of a shape family.
const fn by_name(name: Family) -> [ShapeReg; 2] {
    match name {
        // The operation (an int) and whether a timeout pointer was given.
        Family::Futex => [reg(1, LOW32), reg(3, ShapeReg::PRESENT)],
        Family::Socket => [reg(0, ALL), reg(1, ALL)],
        Family::Mmap => [reg(3, MMAP_CLASS), ShapeReg::UNUSED],
        Family::Arg2 => [reg(2, ALL), ShapeReg::UNUSED],
        Family::Clone => [reg(0, CLONE_THREAD), ShapeReg::UNUSED],
        Family::Wait4 => [reg(2, WNOHANG), ShapeReg::UNUSED],
        Family::Waitid => [reg(3, WNOHANG), ShapeReg::UNUSED],
        Family::Prctl => [reg(0, ALL), ShapeReg::UNUSED],
        // The request; the descriptor's kind is not in a register.
        Family::Ioctl => [reg(1, ALL), ShapeReg::UNUSED],
        // The operation (an int); the target descriptor's kind is not in a register.
        Family::EpollCtl => [reg(1, LOW32), ShapeReg::UNUSED],
        // The timeout (an int): 0 never sleeps.
        Family::EpollWait => [reg(3, LOW32), ShapeReg::UNUSED],
        Family::Poll => [reg(2, LOW32), ShapeReg::UNUSED],
    }
}

#[derive(Clone, Copy)]
enum Family {
    Futex,
    Socket,
    Mmap,
    /// mprotect, pkey_mprotect (prot), madvise (advice): the third argument.
    Arg2,
    Clone,
    Wait4,
    Waitid,
    Prctl,
    Ioctl,
    EpollCtl,
    /// epoll_wait, epoll_pwait: the timeout, the fourth argument.
    EpollWait,
    /// poll: the timeout, the third argument.
    Poll,
}

/// x86_64: the shape registers of syscall `nr`, `None` for a syscall whose shape has no register component.
#[inline(always)]
pub fn x86_64(nr: u64) -> Option<[ShapeReg; 2]> {
    let family = match nr {
        202 => Family::Futex,
        41 | 53 => Family::Socket,
        9 => Family::Mmap,
        10 | 28 | 329 => Family::Arg2,
        56 => Family::Clone,
        61 => Family::Wait4,
        247 => Family::Waitid,
        157 => Family::Prctl,
        16 => Family::Ioctl,
        233 => Family::EpollCtl,
        232 | 281 => Family::EpollWait,
        7 => Family::Poll,
        _ => return None,
    };
    Some(by_name(family))
}

/// aarch64 (the generic table): as [`x86_64`].
#[inline(always)]
pub fn aarch64(nr: u64) -> Option<[ShapeReg; 2]> {
    let family = match nr {
        98 => Family::Futex,
        198 | 199 => Family::Socket,
        222 => Family::Mmap,
        226 | 233 | 288 => Family::Arg2,
        220 => Family::Clone,
        260 => Family::Wait4,
        95 => Family::Waitid,
        167 => Family::Prctl,
        29 => Family::Ioctl,
        21 => Family::EpollCtl,
        22 => Family::EpollWait,
        _ => return None,
    };
    Some(by_name(family))
}

/// Key of the observer's shape counter map: a syscall, its errno and its shape registers' kept values
/// ([`ShapeReg::keep`], 0 for an unused one). Shaped calls are counted here in addition to the per-syscall maps.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeKey {
    pub nr: u32,
    pub errno: u32,
    pub values: [u64; 2],
}

/// Capacity of the shape counter map: distinct (syscall, errno, shape registers) triples.
pub const SHAPES_CAPACITY: u32 = 8192;

/// The register arguments `shape_of` needs, rebuilt from a key: kept values at their indexes, zero elsewhere.
pub fn registers(regs: &[ShapeReg; 2], values: &[u64; 2]) -> [u64; 6] {
    let mut args = [0u64; 6];
    for (reg, value) in regs.iter().zip(values) {
        if let Some(slot) = args.get_mut(usize::from(reg.arg)) {
            *slot = *value;
        }
    }
    args
}

/// Bytes of a path argument the observer reads (with the NUL): a longer path is recorded as unknown.
pub const PATH_BYTES: usize = 256;

/// Capacity of the path counter map: distinct (syscall, errno, path hash) triples; also of the path text map.
pub const PATHS_CAPACITY: u32 = 16384;

/// The hash of an unknown path (unreadable, truncated, or not walked whole): [`fnv1a`] never returns it.
pub const UNKNOWN_PATH: u64 = 0;

/// The x86_64 index of syscall `nr`'s path argument, for the path syscalls `phoebe::model::names::path_arg`
/// lists that programs commonly call (the others keep an unknown path on eBPF).
#[inline(always)]
pub fn x86_64_path(nr: u64) -> Option<u8> {
    match nr {
        // open, stat, lstat, access, truncate, chdir, rename, mkdir, rmdir, creat, link, unlink, readlink, chmod,
        // chown, lchown, statfs, execve.
        2 | 4 | 6 | 21 | 76 | 80 | 82 | 83 | 84 | 85 | 86 | 87 | 89 | 90 | 92 | 94 | 137 | 59 => Some(0),
        // openat, mkdirat, mknodat, fchownat, newfstatat, unlinkat, renameat, linkat, readlinkat, fchmodat,
        // faccessat, utimensat, renameat2, execveat, statx, openat2, faccessat2.
        257 | 258 | 259 | 260 | 262 | 263 | 264 | 265 | 267 | 268 | 269 | 280 | 316 | 322 | 332 | 437
        | 439 => Some(1),
        _ => None,
    }
}

/// aarch64 (the generic table): as [`x86_64_path`].
#[inline(always)]
pub fn aarch64_path(nr: u64) -> Option<u8> {
    match nr {
        // execve.
        221 => Some(0),
        // mknodat, mkdirat, unlinkat, linkat, faccessat, fchmodat, fchownat, openat, readlinkat, newfstatat,
        // utimensat, renameat2, execveat, statx, openat2, faccessat2.
        33 | 34 | 35 | 37 | 48 | 53 | 54 | 56 | 78 | 79 | 88 | 276 | 281 | 291 | 437 | 439 => Some(1),
        _ => None,
    }
}

/// A timed futex wait's `within=` (DESIGN §6): the class of what is left of its timeout as it starts, which only
/// the call's entry can tell (an absolute deadline minus the time then). The `syscalls:sys_enter_futex` program
/// computes it and `sys_exit` carries it in the timeout register's kept value ([`within::carry`]).
pub mod within {
    /// Name of the `u64` global: `CLOCK_TAI` less `CLOCK_REALTIME`, in nanoseconds (whole seconds: the kernel's
    /// TAI offset), for a `CLOCK_REALTIME` deadline (`bpf_ktime_get_tai_ns` less it is the realtime clock).
    pub const TAI_OFFSET_GLOBAL: &str = "PHOEBE_TAI_OFFSET";
    /// Name of the `u32` global: 1 when user space set [`TAI_OFFSET_GLOBAL`] (0 is an offset too).
    pub const REALTIME_GLOBAL: &str = "PHOEBE_REALTIME";

    /// The upper bounds of the classes but the last (`long`), in nanoseconds: `1ms`, `10ms`, `100ms`, `1s`,
    /// `10s` (`phoebe::model::shape::WITHIN_CLASSES`).
    pub const BOUNDS_NS: [u64; 5] = [1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000];
    /// Index of the last class, `long`.
    pub const LONG: u64 = 5;
    /// `FUTEX_PRIVATE_FLAG`, `FUTEX_CLOCK_REALTIME`.
    pub const PRIVATE: u64 = 128;
    pub const CLOCK_REALTIME: u64 = 256;

    /// The class of `left_ns`: the first bound at or above it, [`LONG`] above them all.
    #[inline(always)]
    pub fn class(left_ns: u64) -> u64 {
        let mut i = 0;
        while i < BOUNDS_NS.len() {
            if left_ns <= BOUNDS_NS[i] {
                return i as u64;
            }
            i += 1;
        }
        LONG
    }

    /// How a futex operation's timeout is read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Timeout {
        /// A time from now (`FUTEX_WAIT`).
        Relative,
        /// An absolute `CLOCK_MONOTONIC` deadline (`FUTEX_WAIT_BITSET`, `FUTEX_WAIT_REQUEUE_PI`, `FUTEX_LOCK_PI2`).
        Monotonic,
        /// An absolute `CLOCK_REALTIME` deadline (those with `FUTEX_CLOCK_REALTIME`, and `FUTEX_LOCK_PI`).
        Realtime,
    }

    /// How operation `op`'s timeout is read, `None` for an operation without one (as
    /// `phoebe::model::shape::timed_out_after` reads it).
    #[inline(always)]
    pub fn timeout(op: u64) -> Option<Timeout> {
        let cmd = op & !(PRIVATE | CLOCK_REALTIME);
        match cmd {
            0 => Some(Timeout::Relative),
            6 => Some(Timeout::Realtime),
            9 | 11 | 13 if op & CLOCK_REALTIME != 0 => Some(Timeout::Realtime),
            9 | 11 | 13 => Some(Timeout::Monotonic),
            _ => None,
        }
    }

    /// A timeout register's kept value (1: a timeout was given) carrying class `class`: above bit 0, the class
    /// plus one (0: not known).
    #[inline(always)]
    pub fn carry(kept: u64, class: u64) -> u64 {
        kept | ((class + 1) << 1)
    }

    /// The class a timeout register's kept value carries, `None` when it carries none.
    pub fn carried(kept: u64) -> Option<u64> {
        (kept >> 1).checked_sub(1).filter(|class| *class <= LONG)
    }

    /// What the entry program leaves for the exit: the timeout pointer it read (the exit checks it is the same
    /// call's) and the class.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Entry {
        pub timeout: u64,
        pub class: u64,
    }

    /// x86_64's and the generic table's futex.
    pub const FUTEX_X86_64: u64 = 202;
    pub const FUTEX_AARCH64: u64 = 98;

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn classes_and_their_carrying() {
            assert_eq!(class(0), 0);
            assert_eq!(class(1_000_000), 0);
            assert_eq!(class(1_000_001), 1);
            assert_eq!(class(10_000_000_001), LONG);
            assert_eq!(carried(1), None);
            assert_eq!(carried(0), None);
            for c in 0..=LONG {
                assert_eq!(carried(carry(1, c)), Some(c));
                assert_eq!(carry(1, c) & 1, 1);
            }
            assert_eq!(timeout(128), Some(Timeout::Relative));
            assert_eq!(timeout(256), Some(Timeout::Relative));
            assert_eq!(timeout(9 | 128), Some(Timeout::Monotonic));
            assert_eq!(timeout(9 | 128 | 256), Some(Timeout::Realtime));
            assert_eq!(timeout(1 | 128), None);
            assert_eq!(timeout(6), Some(Timeout::Realtime));
        }
    }
}

/// What the path counters keep of an open's flags, in [`PathKey::fd`] (a path syscall has no descriptor code):
/// whether it creates its file (`O_CREAT`), and only when it is absent (`O_EXCL`), in the low two bits; whether
/// it asks for a directory (`O_DIRECTORY`), in [`DIRECTORY`].
pub mod open {
    /// Not an open, or one whose flags are not a register (openat2's are in memory).
    pub const UNKNOWN: u64 = 0;
    /// Without `O_CREAT`.
    pub const PLAIN: u64 = 1;
    /// With `O_CREAT`, without `O_EXCL`.
    pub const CREATES: u64 = 2;
    /// With `O_CREAT | O_EXCL`.
    pub const EXCLUSIVE: u64 = 3;
    /// The low bits that say how it creates: [`PLAIN`], [`CREATES`] or [`EXCLUSIVE`] (0: unknown).
    pub const MODE: u64 = 3;
    /// Set beside the mode: with `O_DIRECTORY`.
    pub const DIRECTORY: u64 = 4;
    /// `O_DIRECTORY` of x86_64 (and most of the kernel's architectures).
    pub const X86_64_O_DIRECTORY: u64 = 0o200000;
    /// `O_DIRECTORY` of aarch64 (the arm family's own value).
    pub const AARCH64_O_DIRECTORY: u64 = 0o40000;
    /// The flags argument of [`x86_64`]'s and [`aarch64`]'s opens that is no register: creat, which always creates.
    pub const CREAT: u8 = 0xff;
    const O_CREAT: u64 = 0o100;
    const O_EXCL: u64 = 0o200;

    /// The code of an open with these flags, on an architecture whose `O_DIRECTORY` is `o_directory`.
    #[inline(always)]
    pub fn code(flags: u64, o_directory: u64) -> u64 {
        let mode = if flags & O_CREAT == 0 {
            PLAIN
        } else if flags & O_EXCL != 0 {
            EXCLUSIVE
        } else {
            CREATES
        };
        if flags & o_directory != 0 {
            mode | DIRECTORY
        } else {
            mode
        }
    }

    /// x86_64: the argument holding the flags of open (1) and openat (2), [`CREAT`] for creat.
    #[inline(always)]
    pub fn x86_64(nr: u64) -> Option<u8> {
        match nr {
            2 => Some(1),
            257 => Some(2),
            85 => Some(CREAT),
            _ => None,
        }
    }

    /// aarch64 (the generic table): openat's flags (argument 2); it has no open or creat.
    #[inline(always)]
    pub fn aarch64(nr: u64) -> Option<u8> {
        match nr {
            56 => Some(2),
            _ => None,
        }
    }
}

/// The 64-bit FNV-1a hash of the NUL-terminated string in `bytes` (all of it without a NUL), in a loop bounded
/// by the buffer's length that the verifier accepts; 0 is mapped to 1, so that it stays [`UNKNOWN_PATH`].
#[inline(always)]
pub fn fnv1a(bytes: &[u8; PATH_BYTES]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..PATH_BYTES {
        let Some(&b) = bytes.get(i) else { break };
        if b == 0 {
            break;
        }
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if hash == UNKNOWN_PATH { 1 } else { hash }
}

/// Key of the observer's path counter map: a path syscall, its errno, its path's [`fnv1a`] hash
/// ([`UNKNOWN_PATH`] when the path is not absolute or could not be read whole) and for an open its flags'
/// [`open`] code (in `fd`, [`open::UNKNOWN`] for other path syscalls); or a call on a regular file or directory,
/// its errno, the hash of the file's path (walked in the kernel, [`walk`]) and the descriptor's code
/// (`crate::fd::encode`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey {
    pub nr: u32,
    pub errno: u32,
    pub hash: u64,
    pub fd: u64,
}

/// The walk from a file's `struct path` to its absolute path text, done in the kernel by a program of its own
/// (reached by a tail call from `sys_exit`, so that its stack is not added to `sys_exit`'s): the `d_name` of each
/// dentry up `d_parent`, crossing each mount at its root to its mount point in the parent mount, until the root
/// mount (its own parent). Components are written right to left, ending at [`walk::END`], into a per-CPU buffer
/// of [`walk::BUF_BYTES`]; more than [`walk::DEPTH`] dentries, a text of [`PATH_BYTES`] bytes or more (with
/// its NUL), a deleted file or a failed read give [`UNKNOWN_PATH`], never a partial path.
pub mod walk {
    /// Dentries (and mount crossings) walked at most.
    pub const DEPTH: u32 = 32;
    /// Where the text ends in the walk buffer: it fills `start..END`, `start >= 1`, so it is at most
    /// `PATH_BYTES - 2` bytes long and fits a [`super::PathText`] with its NUL.
    pub const END: u32 = (super::PATH_BYTES - 1) as u32;
    /// The walk buffer: twice a path, so that every write at an offset masked to `PATH_BYTES - 1` with a length
    /// masked the same is inside it, as the verifier must see.
    pub const BUF_BYTES: usize = 2 * super::PATH_BYTES;
    /// Name of the `Offsets` global.
    pub const OFFSETS_GLOBAL: &str = "PHOEBE_WALK_OFFSETS";
    /// Name of the program array holding the walk program, and the walk program.
    pub const PROGRAMS: &str = "PHOEBE_TAIL";
    pub const PROGRAM: &str = "phoebe_sc_path";
    /// Dentries whose walked path is kept (least recently used first out).
    pub const WALKED_CAPACITY: u32 = 4096;

    /// What the walk found for a file, kept by the address of its dentry so that the next call on the file (the
    /// same open file or another open of it) is not walked again: the mount it was reached through, the dentry,
    /// the dentry's parent and `d_name.hash_len` as they were, and the path's hash. It stands only while the
    /// call's file has that mount and dentry, the dentry that parent and name, and the dentry is not deleted (the
    /// walk program checks them at each call): a rename of the file changes its dentry's name or parent, an
    /// unlink unhashes it, and a dentry freed and reused for another name has another name or parent. A rename of
    /// a directory above it is not seen: its calls keep the path it had when first walked.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Walked {
        pub mnt: u64,
        pub dentry: u64,
        pub parent: u64,
        pub hash_len: u64,
        pub hash: u64,
    }

    /// Indexes of the kernel offsets in [`Offsets`], each a byte offset read from the kernel's BTF.
    pub mod off {
        /// `file.f_path` + `path.mnt`.
        pub const FILE_MNT: usize = 0;
        /// `file.f_path` + `path.dentry`.
        pub const FILE_DENTRY: usize = 1;
        /// `dentry.d_parent`, directly followed by `d_name` (`hash_len`, then `name`: checked by user space,
        /// the walk reads the three in one go).
        pub const DENTRY_PARENT: usize = 2;
        /// `dentry.d_name` + `qstr.name`.
        pub const DENTRY_NAME: usize = 3;
        /// `dentry.d_name` + `qstr.len`.
        pub const DENTRY_LEN: usize = 4;
        /// `dentry.d_hash` + `hlist_bl_node.pprev`: null when the dentry is unhashed (deleted).
        pub const DENTRY_PPREV: usize = 5;
        pub const VFSMOUNT_ROOT: usize = 6;
        /// `mount.mnt`: where a `struct vfsmount` sits in its `struct mount`.
        pub const MOUNT_MNT: usize = 7;
        pub const MOUNT_PARENT: usize = 8;
        pub const MOUNT_MOUNTPOINT: usize = 9;
        pub const TASK_FS: usize = 10;
        /// `fs_struct.pwd` + `path.mnt`: the working directory's mount.
        pub const FS_PWD_MNT: usize = 11;
        /// `fs_struct.pwd` + `path.dentry`.
        pub const FS_PWD_DENTRY: usize = 12;
        /// Not an offset: 1 when user space found every offset above.
        pub const ENABLED: usize = 13;
    }

    /// The kernel offsets of the walk, indexed by [`off`]'s constants.
    pub type Offsets = [u32; 14];

    /// What the walk program walks ([`Pending::what`]).
    pub mod what {
        /// The file behind the call's descriptor.
        pub const FILE: u32 = 1;
        /// The base of the call's relative path (the working directory, or its dirfd's directory), then the
        /// relative path (in the path buffer, [`super::Pending::len`] bytes) is appended after a `/`.
        pub const RELATIVE: u32 = 2;
    }

    /// Where a relative path is appended in the walk buffer: after the base, which ends at [`END`], and its `/`.
    pub const RELATIVE_AT: u32 = END + 1;

    /// What `sys_exit` hands the walk program, in a per-CPU slot (no pointers: the program takes the file from
    /// what `sys_exit` read of it in the same run, a dirfd from the call's registers).
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Pending {
        pub nr: u32,
        pub errno: u32,
        pub latency: u64,
        /// The descriptor's code (`crate::fd::encode`); for a relative path, its open code (`super::open`).
        pub fd: u64,
        /// One of [`what`]'s constants.
        pub what: u32,
        /// The relative path's length in the path buffer (without its NUL).
        pub len: u32,
        /// The file's `f_path` (mount and dentry) when `sys_exit` has it from the call's entry (a close: the
        /// descriptor is gone by its exit); 0: the walk takes it from the file `sys_exit` read.
        pub mnt: u64,
        pub dentry: u64,
    }

    /// Where the text of a path made of a base (`start..END` in the walk buffer) and a relative path of `len`
    /// bytes appended at [`RELATIVE_AT`] ends, `None` when the whole, with its NUL, would not fit a
    /// [`super::PathText`].
    #[inline(always)]
    pub fn joined_end(start: u32, len: u32) -> Option<u32> {
        let end = RELATIVE_AT.checked_add(len)?;
        let total = end.checked_sub(start)?;
        ((total as usize) < super::PATH_BYTES - 1).then_some(end)
    }

    /// The start of a component of `len` bytes (and its `/`) written before `start`, `None` when it does not
    /// fit: the text must keep at least one byte before it.
    #[inline(always)]
    pub fn prepend(start: u32, len: u32) -> Option<u32> {
        let need = len.checked_add(1)?;
        if len == 0 || need >= start {
            return None;
        }
        Some(start - need)
    }
}

/// A path as the observer read it: NUL-terminated, the bytes after the NUL meaningless.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PathText {
    pub bytes: [u8; PATH_BYTES],
}

impl PathText {
    /// The bytes up to the NUL.
    pub fn text(&self) -> &[u8] {
        let end = self.bytes.iter().position(|b| *b == 0).unwrap_or(PATH_BYTES);
        self.bytes.get(..end).unwrap_or(&[])
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `PathKey` is `repr(C)`, `Copy`, two `u32`s then two `u64`s (8-aligned at offset 8): every bit
    // pattern is valid and there is no implicit padding.
    unsafe impl aya::Pod for super::PathKey {}
    // SAFETY: `PathText` is `repr(C)`, `Copy`, a byte array: every bit pattern is valid, no padding.
    unsafe impl aya::Pod for super::PathText {}
    // SAFETY: `ShapeKey` is `repr(C)`, `Copy`, two `u32`s then two `u64`s (8-aligned right after 8 bytes): every
    // bit pattern is valid and there is no implicit padding.
    unsafe impl aya::Pod for super::ShapeKey {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(s: &[u8]) -> [u8; PATH_BYTES] {
        let mut out = [0u8; PATH_BYTES];
        out[..s.len()].copy_from_slice(s);
        out
    }

    /// The published FNV-1a 64 test vectors, and the hash stops at the NUL (stale bytes after it do not count).
    #[test]
    fn fnv1a_matches_the_reference_and_stops_at_the_nul() {
        assert_eq!(fnv1a(&buf(b"")), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&buf(b"a")), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(&buf(b"foobar")), 0x8594_4171_f739_67e8);
        let mut stale = buf(b"/etc/passwd\0/proc/self/exe");
        stale[11] = 0;
        assert_eq!(fnv1a(&stale), fnv1a(&buf(b"/etc/passwd")));
        assert_ne!(fnv1a(&buf(b"/etc/passwd")), fnv1a(&buf(b"/etc/password")));
        // A full buffer without a NUL hashes all of it, and never to the unknown hash.
        assert_ne!(fnv1a(&[b'a'; PATH_BYTES]), UNKNOWN_PATH);
    }

    #[test]
    fn path_text_ends_at_the_nul() {
        let text = PathText {
            bytes: buf(b"/etc\0junk"),
        };
        assert_eq!(text.text(), b"/etc");
        assert_eq!(
            PathText {
                bytes: [b'x'; PATH_BYTES]
            }
            .text()
            .len(),
            PATH_BYTES
        );
    }

    /// A base and a relative path fit a path text with its NUL, or are unknown.
    #[test]
    fn joined_paths_fit_the_path_text_or_are_unknown() {
        // The root as base ("" before the `/`): "/x".
        assert_eq!(walk::joined_end(walk::END, 1), Some(walk::RELATIVE_AT + 1));
        let start = walk::END - 10;
        assert_eq!(walk::joined_end(start, 5), Some(walk::RELATIVE_AT + 5));
        // 10 + 1 + len bytes: at most PATH_BYTES - 2 of them.
        let longest = (PATH_BYTES - 2 - 11) as u32;
        assert!(walk::joined_end(start, longest).is_some());
        assert_eq!(walk::joined_end(start, longest + 1), None);
        assert_eq!(walk::joined_end(start, u32::MAX), None);
    }

    /// A component fits only with a byte left before it; an empty name (never a dentry's) does not.
    #[test]
    fn prepend_keeps_a_byte_before_the_text() {
        assert_eq!(walk::prepend(walk::END, 3), Some(walk::END - 4));
        assert_eq!(walk::prepend(5, 3), Some(1));
        assert_eq!(walk::prepend(4, 3), None);
        assert_eq!(walk::prepend(walk::END, 0), None);
        assert_eq!(walk::prepend(walk::END, u32::MAX), None);
        // The longest text that fits: END - 1 bytes, which leaves room for its NUL in a PathText.
        let mut start = walk::END;
        while let Some(next) = walk::prepend(start, 1) {
            start = next;
        }
        assert_eq!(start, 1 + (walk::END - 1) % 2);
        assert!(((walk::END - start) as usize) < PATH_BYTES - 1);
    }

    #[test]
    fn openat_and_execve_have_their_path_argument() {
        assert_eq!(x86_64_path(257), Some(1));
        assert_eq!(x86_64_path(59), Some(0));
        assert_eq!(x86_64_path(39), None);
        assert_eq!(aarch64_path(56), Some(1));
        assert_eq!(aarch64_path(221), Some(0));
    }
}
