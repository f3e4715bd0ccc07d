//! What a descriptor refers to, as the eBPF observer learns it in the kernel (DESIGN §6, `fd=` and `nonblock=`):
//! which calls it learns it for ([`x86_64_fd`], [`aarch64_fd`]), the kernel offsets it needs
//! ([`Offsets`], set by user space from the kernel's BTF), how it classifies an inode ([`kind_of_mode`],
//! [`anon_name`]) and the compact code it counts the call under ([`encode`], [`decode`]): the second value of the
//! call's [`crate::shape::ShapeKey`], whose shape registers never use it for these syscalls.
//!
//! The kernel sends raw facts (a socket's family and type, a character device's major number, an anonymous
//! inode's name): user space names them with the functions ptrace's probe uses (`socket_kind`,
//! `fd_kind_of_link`, the terminal majors), so the two backends give the same shape by one definition.

/// The facts of an unknown descriptor (not learned, or a call whose descriptor the observer does not read).
pub const UNKNOWN: u64 = 0;

/// Kinds of descriptor the kernel tells apart (bits 0–7 of a code). 0 is [`UNKNOWN`].
pub mod kind {
    /// Not open (a negative number, beyond the table, or an empty slot).
    pub const CLOSED: u8 = 1;
    pub const FILE: u8 = 2;
    pub const DIR: u8 = 3;
    pub const PIPE: u8 = 4;
    /// A character device; the detail is its major number.
    pub const CHR: u8 = 5;
    pub const BLK: u8 = 6;
    /// A socket; the detail is its family (bits 16–31) and type (bits 32–47).
    pub const SOCKET: u8 = 7;
    /// An inode of the anonymous-inode file system; the detail is its name's index in [`super::ANON_NAMES`]
    /// ([`super::ANON_OTHER`] for a name not listed there).
    pub const ANON: u8 = 8;
    /// A pidfd on pidfs (Linux ≥ 6.9).
    pub const PIDFS: u8 = 9;
    /// Anything else (a symlink, an inode without a type).
    pub const OTHER: u8 = 10;
}

/// `nonblock` states (bits 8–9 of a code).
const NONBLOCK_UNKNOWN: u64 = 0;
const NONBLOCK_NO: u64 = 1;
const NONBLOCK_YES: u64 = 2;

/// The names the anonymous-inode file system gives the descriptors that ptrace tells apart in their
/// `/proc/PID/fd` link (`anon_inode:[eventfd]`): the dentry's name, brackets included.
pub const ANON_NAMES: [&str; 6] = [
    "[eventfd]",
    "[timerfd]",
    "[signalfd]",
    "[eventpoll]",
    "inotify",
    "[pidfd]",
];
/// [`ANON_NAMES`] as the observer compares them: NUL-padded to [`ANON_NAME_BYTES`], in little-endian words (no
/// pointers: an eBPF program's data cannot hold any), and the bytes each comparison looks at (the name and its
/// NUL: what follows it in the kernel's buffer is anything).
const ANON_WORDS: [[u64; 2]; 6] = [
    pack(ANON_NAMES[0].as_bytes()),
    pack(ANON_NAMES[1].as_bytes()),
    pack(ANON_NAMES[2].as_bytes()),
    pack(ANON_NAMES[3].as_bytes()),
    pack(ANON_NAMES[4].as_bytes()),
    pack(ANON_NAMES[5].as_bytes()),
];
const ANON_MASKS: [[u64; 2]; 6] = [
    mask(ANON_NAMES[0].len() + 1),
    mask(ANON_NAMES[1].len() + 1),
    mask(ANON_NAMES[2].len() + 1),
    mask(ANON_NAMES[3].len() + 1),
    mask(ANON_NAMES[4].len() + 1),
    mask(ANON_NAMES[5].len() + 1),
];

/// The words that keep the first `bytes` bytes of a packed name.
const fn mask(bytes: usize) -> [u64; 2] {
    pack([0xff; ANON_NAME_BYTES].split_at(bytes).0)
}
/// The detail of an anonymous inode whose name is none of [`ANON_NAMES`] (`[io_uring]`, `[userfaultfd]`, …).
pub const ANON_OTHER: u64 = 0xff;
/// Bytes of an anonymous inode's name the observer reads (with the NUL): longer names are none of [`ANON_NAMES`].
pub const ANON_NAME_BYTES: usize = 16;

/// `s_magic` of the anonymous-inode file system (`ANON_INODE_FS_MAGIC`).
pub const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;
/// `s_magic` of pidfs (`PID_FS_MAGIC`, Linux ≥ 6.9).
pub const PID_FS_MAGIC: u64 = 0x5049_4446;

/// `O_NONBLOCK` in `file.f_flags` (x86_64 and arm64 alike).
pub const O_NONBLOCK: u32 = 0o4000;

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const S_IFREG: u16 = 0o100000;
const S_IFBLK: u16 = 0o060000;
const S_IFDIR: u16 = 0o040000;
const S_IFCHR: u16 = 0o020000;
const S_IFIFO: u16 = 0o010000;

/// Whether an inode of mode `mode` needs its superblock's magic to be classified: regular files and inodes
/// without a type may be anonymous inodes (their mode is `S_IFREG` since Linux 6.15, 0 before) or pidfds.
#[inline(always)]
pub fn needs_magic(mode: u16) -> bool {
    !matches!(mode & S_IFMT, S_IFSOCK | S_IFBLK | S_IFDIR | S_IFCHR | S_IFIFO)
}

/// The kind of an inode of mode `mode` on a file system of magic `magic` (read only when [`needs_magic`]).
#[inline(always)]
pub fn kind_of_mode(mode: u16, magic: u64) -> u8 {
    match mode & S_IFMT {
        S_IFSOCK => kind::SOCKET,
        S_IFBLK => kind::BLK,
        S_IFDIR => kind::DIR,
        S_IFCHR => kind::CHR,
        S_IFIFO => kind::PIPE,
        _ if magic == ANON_INODE_FS_MAGIC => kind::ANON,
        _ if magic == PID_FS_MAGIC => kind::PIDFS,
        S_IFREG => kind::FILE,
        _ => kind::OTHER,
    }
}

/// The first [`ANON_NAME_BYTES`] bytes of `name`, NUL-padded, as two little-endian words: how the observer reads
/// a name (into a zeroed buffer) and compares it.
pub const fn pack(name: &[u8]) -> [u64; 2] {
    let mut words = [0u64; 2];
    let mut i = 0;
    while i < name.len() && i < ANON_NAME_BYTES {
        words[i / 8] |= (name[i] as u64) << (8 * (i % 8));
        i += 1;
    }
    words
}

/// The detail of an anonymous inode whose name starts the [`ANON_NAME_BYTES`] bytes `words` (read as they are:
/// the bytes after the name's NUL are anything): the index in [`ANON_NAMES`] of the name that matches up to and
/// including its NUL, or [`ANON_OTHER`].
#[inline(always)]
pub fn anon_name(words: [u64; 2]) -> u64 {
    for (index, (known, mask)) in ANON_WORDS.into_iter().zip(ANON_MASKS).enumerate() {
        if words[0] & mask[0] == known[0] && words[1] & mask[1] == known[1] {
            return index as u64;
        }
    }
    ANON_OTHER
}

/// The code of a descriptor: its kind, `O_NONBLOCK` (`None`: unknown) and the kind's detail (see [`kind`]).
#[inline(always)]
pub fn encode(kind: u8, nonblock: Option<bool>, detail: u64) -> u64 {
    let nb = match nonblock {
        None => NONBLOCK_UNKNOWN,
        Some(false) => NONBLOCK_NO,
        Some(true) => NONBLOCK_YES,
    };
    u64::from(kind) | (nb << 8) | (detail << 16)
}

/// The detail of a socket of `family` and `ty` (`struct socket.type`).
#[inline(always)]
pub fn socket_detail(family: u16, ty: u16) -> u64 {
    u64::from(family) | (u64::from(ty) << 16)
}

/// A code taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// One of [`kind`]'s, or 0 (unknown).
    pub kind: u8,
    pub nonblock: Option<bool>,
    pub detail: u64,
}

impl Decoded {
    /// A socket's family and type.
    pub fn socket(&self) -> (u16, u16) {
        (self.detail as u16, (self.detail >> 16) as u16)
    }
}

/// The inverse of [`encode`].
pub fn decode(code: u64) -> Decoded {
    Decoded {
        kind: code as u8,
        nonblock: match (code >> 8) & 3 {
            NONBLOCK_NO => Some(false),
            NONBLOCK_YES => Some(true),
            _ => None,
        },
        detail: code >> 16,
    }
}

/// The one register component of the descriptor calls whose path the observer walks — flock's operation, fcntl's
/// command — travels in the descriptor's code: bits 56–63 hold it (seven bits) with bit 63 set; 0 there: not such a
/// call, or a value that does not fit, which phoebe names `unknown`. No kind's detail reaches bit 56.
pub mod op {
    const SHIFT: u32 = 56;
    const PRESENT: u64 = 0x80;

    /// x86_64's flock and fcntl.
    pub const FLOCK_X86_64: u64 = 73;
    pub const FCNTL_X86_64: u64 = 72;
    /// aarch64's (the generic table).
    pub const FLOCK_AARCH64: u64 = 32;
    pub const FCNTL_AARCH64: u64 = 25;

    /// fcntl's commands the observer carries, by their number; a command is carried as its index here plus one
    /// (0: not one of these).
    pub const FCNTL_CMDS: [u32; 23] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 36, 37, 38, 1024, 1025, 1026, 1030, 1031, 1032, 1033, 1034,
    ];

    /// What the code of a flock call carries: its operation (a value above seven bits is not carried).
    #[inline(always)]
    pub fn flock(op: u64) -> u64 {
        if op > 0x7f { 0 } else { op | PRESENT }
    }

    /// What the code of an fcntl call carries: its command's index in [`FCNTL_CMDS`] plus one (not carried when
    /// it is none of them).
    #[inline(always)]
    pub fn fcntl(cmd: u64) -> u64 {
        // FCNTL_CMDS's runs, without a loop for the verifier to walk.
        let index = match cmd {
            0..=11 => cmd,
            36..=38 => cmd - 36 + 12,
            1024..=1026 => cmd - 1024 + 15,
            1030..=1034 => cmd - 1030 + 18,
            _ => return 0,
        };
        (index + 1) | PRESENT
    }

    /// `code` carrying `carried` ([`flock`], [`fcntl`]).
    #[inline(always)]
    pub fn with(code: u64, carried: u64) -> u64 {
        code | (carried << SHIFT)
    }

    /// A code taken apart: the descriptor's own code, and the value it carries, if any.
    pub fn split(code: u64) -> (u64, Option<u32>) {
        let mask = 0xffu64 << SHIFT;
        let value = (code & mask) >> SHIFT;
        (
            code & !mask,
            (value & PRESENT != 0).then_some((value & !PRESENT) as u32),
        )
    }

    /// fcntl's command from what its code carried.
    pub fn fcntl_cmd(carried: u32) -> Option<u32> {
        FCNTL_CMDS.get((carried as usize).checked_sub(1)?).copied()
    }
}

/// Indexes of the kernel offsets in [`Offsets`] (the global `globals::FD_OFFSETS`), each a byte offset of a
/// member read from the kernel's BTF.
pub mod off {
    pub const TASK_FILES: usize = 0;
    pub const FILES_FDT: usize = 1;
    pub const FDT_MAX_FDS: usize = 2;
    pub const FDT_FD: usize = 3;
    pub const FILE_FLAGS: usize = 4;
    pub const FILE_INODE: usize = 5;
    pub const FILE_PRIVATE: usize = 6;
    /// `file.f_path` + `path.dentry`.
    pub const FILE_DENTRY: usize = 7;
    /// `dentry.d_name` + `qstr.name`.
    pub const DENTRY_NAME: usize = 8;
    pub const INODE_MODE: usize = 9;
    pub const INODE_RDEV: usize = 10;
    pub const INODE_SB: usize = 11;
    pub const SB_MAGIC: usize = 12;
    pub const SOCKET_TYPE: usize = 13;
    pub const SOCKET_SK: usize = 14;
    /// `sock.__sk_common` + `sock_common.skc_family`.
    pub const SK_FAMILY: usize = 15;
    /// Not an offset: 1 when user space found every offset above, 0 (the default) to learn nothing.
    pub const ENABLED: usize = 16;
}

/// The kernel offsets the observer follows, indexed by [`off`]'s constants.
pub type Offsets = [u32; 17];

/// Name of the `Offsets` global.
pub const OFFSETS_GLOBAL: &str = "PHOEBE_FD_OFFSETS";

/// close's number (x86_64, and the generic table's): its descriptor is learned at its entry, where it is still
/// open (`syscalls:sys_enter_close`), and handed to its exit ([`Closing`]).
pub const CLOSE_X86_64: u64 = 3;
pub const CLOSE_AARCH64: u64 = 57;

/// What close's entry program leaves for its exit: the thread, the descriptor, its code, and for a regular file
/// or directory its `f_path` (mount and dentry, for the path walk; 0 otherwise).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closing {
    pub tid: u64,
    pub fd: u64,
    pub code: u64,
    pub mnt: u64,
    pub dentry: u64,
}

/// x86_64: the index of syscall `nr`'s descriptor argument, for the calls on a descriptor
/// (`phoebe::model::names::fd_arg`) whose descriptor the observer reads at `sys_exit`. Left out: `close`
/// (at its exit the descriptor is gone: its entry program reads it, [`Closing`]) and `mmap` (no descriptor
/// component). `fcntl` is in:
/// its command travels in the code ([`op`]), and user space leaves `F_SETFL`'s `O_NONBLOCK` unknown (the call may
/// have changed it by its exit).
#[inline(always)]
pub fn x86_64_fd(nr: u64) -> Option<u8> {
    match nr {
        // read, write, fstat, lseek, ioctl, pread64, pwrite64, readv, writev, sendfile, connect, accept,
        // sendto, recvfrom, sendmsg, recvmsg, shutdown, bind, listen, fcntl, flock, fsync, fdatasync, ftruncate,
        // fchmod, fchown, fstatfs, readahead, fsetxattr, fgetxattr, getdents64, fadvise64, epoll_wait,
        // splice, tee, sync_file_range, epoll_pwait, fallocate, accept4, preadv, pwritev, copy_file_range,
        // preadv2, pwritev2, epoll_pwait2.
        0 | 1 | 5 | 8 | 16 | 17 | 18 | 19 | 20 | 40 | 42 | 43 | 44 | 45 | 46 | 47 | 48 | 49 | 50 | 72
        | 73 | 74 | 75 | 77 | 91 | 93 | 138 | 187 | 190 | 193 | 217 | 221 | 232 | 275 | 276 | 277 | 281
        | 285 | 288 | 295 | 296 | 326 | 327 | 328 | 441 => Some(0),
        // epoll_ctl: the descriptor added, modified or removed.
        233 => Some(2),
        _ => None,
    }
}

/// aarch64 (the generic table): as [`x86_64_fd`].
#[inline(always)]
pub fn aarch64_fd(nr: u64) -> Option<u8> {
    match nr {
        // fsetxattr, fgetxattr, epoll_pwait, fcntl, ioctl, flock, fstatfs, ftruncate, fallocate, fchmod, fchown,
        // getdents64, lseek, read, write, readv, writev, pread64, pwrite64, preadv, pwritev, sendfile, splice,
        // tee, fstat, fsync, fdatasync, sync_file_range, bind, listen, accept, connect, sendto, recvfrom,
        // shutdown, sendmsg, recvmsg, readahead, fadvise64, accept4, copy_file_range, preadv2, pwritev2,
        // epoll_pwait2.
        7 | 10 | 22 | 25 | 29 | 32 | 44 | 46 | 47 | 52 | 55 | 61 | 62 | 63 | 64 | 65 | 66 | 67 | 68 | 69
        | 70 | 71 | 76 | 77 | 80 | 82 | 83 | 84 | 200 | 201 | 202 | 203 | 206 | 207 | 210 | 211 | 212
        | 213 | 223 | 242 | 285 | 286 | 287 | 441 => Some(0),
        // epoll_ctl.
        21 => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &[u8]) -> [u64; 2] {
        pack(s)
    }

    /// flock's operation and fcntl's command ride in a descriptor's code and come out whole, leaving the code as
    /// it was; a value that does not fit (an operation above seven bits, a command not listed) is not carried.
    #[test]
    fn a_descriptor_code_carries_flock_s_operation_and_fcntl_s_command() {
        let code = encode(kind::SOCKET, Some(true), socket_detail(u16::MAX, u16::MAX));
        for op in [1, 2, 5, 6, 8, 12, 0, 0x7f] {
            assert_eq!(op::split(op::with(code, op::flock(op))), (code, Some(op as u32)));
        }
        assert_eq!(op::split(op::with(code, op::flock(0x80))), (code, None));
        assert_eq!(op::split(code), (code, None));
        assert_eq!(decode(op::split(op::with(code, op::flock(6))).0), decode(code));
        for cmd in op::FCNTL_CMDS {
            let (back, carried) = op::split(op::with(code, op::fcntl(u64::from(cmd))));
            assert_eq!(back, code);
            assert_eq!(carried.and_then(op::fcntl_cmd), Some(cmd));
        }
        assert_eq!(op::split(op::with(code, op::fcntl(99))), (code, None));
        assert!(op::FCNTL_CMDS.len() < 0x7f);
    }

    #[test]
    fn codes_round_trip() {
        for kind in 0..=kind::OTHER {
            for nonblock in [None, Some(false), Some(true)] {
                for detail in [
                    0,
                    1,
                    136,
                    ANON_OTHER,
                    socket_detail(10, 2),
                    socket_detail(u16::MAX, u16::MAX),
                ] {
                    let d = decode(encode(kind, nonblock, detail));
                    assert_eq!((d.kind, d.nonblock, d.detail), (kind, nonblock, detail));
                }
            }
        }
        assert_eq!(decode(UNKNOWN).kind, 0);
        assert_eq!(
            decode(encode(kind::SOCKET, None, socket_detail(2, 1))).socket(),
            (2, 1)
        );
    }

    #[test]
    fn names_pack_into_little_endian_words() {
        assert_eq!(pack(b"ab"), [0x6261, 0]);
        assert_eq!(
            pack(b"012345678"),
            [u64::from_le_bytes(*b"01234567"), u64::from(b'8')]
        );
        assert_eq!(pack(&[b'x'; 20]), pack(&[b'x'; ANON_NAME_BYTES]));
    }

    /// The observer reads 16 bytes as they are: what follows the name's NUL does not matter, the NUL does.
    #[test]
    fn anon_names_ignore_the_bytes_after_their_nul() {
        let mut raw = *b"[eventfd]\0garbage";
        assert_eq!(anon_name(pack(&raw)), 0);
        raw[9] = b'x';
        assert_eq!(anon_name(pack(&raw)), ANON_OTHER);
        assert_eq!(anon_name(pack(b"inotify\0\xff\xff\xff\xff\xff\xff\xff\xff")), 4);
        assert_eq!(mask(1), [0xff, 0]);
        assert_eq!(mask(9), [u64::MAX, 0xff]);
    }

    #[test]
    fn anon_names_are_matched_whole() {
        assert_eq!(anon_name(name(b"[eventfd]")), 0);
        assert_eq!(anon_name(name(b"[eventpoll]")), 3);
        assert_eq!(anon_name(name(b"inotify")), 4);
        assert_eq!(anon_name(name(b"[pidfd]")), 5);
        assert_eq!(anon_name(name(b"[eventfd")), ANON_OTHER);
        assert_eq!(anon_name(name(b"[eventfd]x")), ANON_OTHER);
        assert_eq!(anon_name(name(b"[io_uring]")), ANON_OTHER);
        assert_eq!(anon_name(name(&[b'x'; ANON_NAME_BYTES])), ANON_OTHER);
        // A name longer than the buffer is cut by the kernel's read: never a known one.
        assert_eq!(anon_name(name(b"[eventfd][eventfd]")), ANON_OTHER);
        assert_eq!(anon_name(name(b"")), ANON_OTHER);
    }

    /// Anonymous inodes are `S_IFREG` since Linux 6.15 and typeless before: the file system decides, not the mode.
    #[test]
    fn modes_and_magics_give_kinds() {
        let ext4 = 0xef53;
        assert_eq!(kind_of_mode(S_IFREG | 0o644, ext4), kind::FILE);
        assert_eq!(kind_of_mode(S_IFREG | 0o600, ANON_INODE_FS_MAGIC), kind::ANON);
        assert_eq!(kind_of_mode(0o600, ANON_INODE_FS_MAGIC), kind::ANON);
        assert_eq!(kind_of_mode(S_IFREG | 0o700, PID_FS_MAGIC), kind::PIDFS);
        assert_eq!(kind_of_mode(S_IFDIR | 0o755, ext4), kind::DIR);
        assert_eq!(kind_of_mode(S_IFIFO | 0o600, 0x5049_5045), kind::PIPE);
        assert_eq!(kind_of_mode(S_IFSOCK | 0o777, 0x534f_434b), kind::SOCKET);
        assert_eq!(kind_of_mode(S_IFCHR | 0o620, 0x1cd1), kind::CHR);
        assert_eq!(kind_of_mode(S_IFBLK | 0o660, 0x1cd1), kind::BLK);
        assert_eq!(kind_of_mode(0o120777, ext4), kind::OTHER);
        assert_eq!(kind_of_mode(0, ext4), kind::OTHER);
        assert!(needs_magic(S_IFREG) && needs_magic(0) && needs_magic(0o120777));
        assert!(!needs_magic(S_IFSOCK) && !needs_magic(S_IFIFO) && !needs_magic(S_IFCHR | 0o620));
    }

    #[test]
    fn read_and_epoll_ctl_have_their_descriptor_argument() {
        assert_eq!(x86_64_fd(0), Some(0));
        assert_eq!(x86_64_fd(233), Some(2));
        assert_eq!(x86_64_fd(3), None, "close");
        assert_eq!(x86_64_fd(72), Some(0), "fcntl");
        assert_eq!(x86_64_fd(9), None, "mmap");
        assert_eq!(aarch64_fd(63), Some(0));
        assert_eq!(aarch64_fd(21), Some(2));
        assert_eq!(aarch64_fd(57), None, "close");
        assert_eq!(aarch64_fd(25), Some(0), "fcntl");
    }
}
