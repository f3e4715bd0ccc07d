//! What a descriptor of the current task refers to, learned at `sys_exit` for the observer's call shapes
//! (`fd=`, `nonblock=`): `current->files->fdt->fd[fd]` (bounds-checked against `max_fds`), its `f_flags`, its
//! inode's type and file system, and for a socket its family and type, for an anonymous inode its name. Offsets
//! come from the kernel's BTF through the global `PHOEBE_FD_OFFSETS` (`phoebe_common::fd::off`), set by user
//! space; while its `ENABLED` slot is 0 every descriptor is unknown. Each read goes through
//! `bpf_probe_read_kernel`: a pointer that went stale under a concurrent `close` only fails a read (the
//! descriptor is then unknown), it never faults.

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use phoebe_common::fd::{
    self, O_NONBLOCK, Offsets, anon_name, encode, kind, kind_of_mode, needs_magic, off, socket_detail,
};

#[unsafe(no_mangle)]
static PHOEBE_FD_OFFSETS: Offsets = [0; 17];

/// Offset `i` of [`PHOEBE_FD_OFFSETS`] (`i` is one of `off`'s constants).
#[inline(always)]
fn offset(i: usize) -> usize {
    let Some(slot) = PHOEBE_FD_OFFSETS.get(i) else {
        return 0;
    };
    // SAFETY: `slot` is an element of a valid, aligned static; the volatile read only keeps the compiler from
    // folding the default that user space overrides at load.
    unsafe { core::ptr::read_volatile(slot) as usize }
}

/// The `T` at kernel address `at + offset(i)`, `None` when the read fails.
#[inline(always)]
fn read<T>(at: u64, i: usize) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one only fails the read.
    unsafe { bpf_probe_read_kernel((at as *const u8).wrapping_add(offset(i)).cast::<T>()).ok() }
}

/// The code (`phoebe_common::fd::encode`) of descriptor `reg` (the raw argument register) of the current task:
/// `UNKNOWN` when something could not be read. Inlined, called once from `sys_exit`, and calling no BPF
/// subprogram itself: that program's frame is about 496 of the 512 stack bytes, and a subprogram's frame (at least
/// 32 bytes on Linux 6.1) would be added to it — the verifier refuses the sum ("combined stack size").
#[inline(always)]
pub(crate) fn facts(reg: u64) -> u64 {
    if offset(off::ENABLED) == 0 {
        return fd::UNKNOWN;
    }
    lookup(reg as i32).unwrap_or(fd::UNKNOWN)
}

#[inline(always)]
fn lookup(fd: i32) -> Option<u64> {
    let closed = encode(kind::CLOSED, None, 0);
    if fd < 0 {
        return Some(closed);
    }
    let Some(file) = slot(fd)? else {
        return Some(closed);
    };
    let flags: u32 = read(file, off::FILE_FLAGS)?;
    let nonblock = Some(flags & O_NONBLOCK != 0);
    let inode: u64 = read(file, off::FILE_INODE)?;
    let mode: u16 = read(inode, off::INODE_MODE)?;
    let magic = if needs_magic(mode) {
        let sb: u64 = read(inode, off::INODE_SB)?;
        read::<u64>(sb, off::SB_MAGIC)?
    } else {
        0
    };
    let k = kind_of_mode(mode, magic);
    let detail = if k == kind::CHR {
        // The kernel's dev_t: the major number above 20 minor bits.
        u64::from(read::<u32>(inode, off::INODE_RDEV)? >> 20)
    } else if k == kind::SOCKET {
        let socket: u64 = read(file, off::FILE_PRIVATE)?;
        let ty: u16 = read(socket, off::SOCKET_TYPE)?;
        let sk: u64 = read(socket, off::SOCKET_SK)?;
        let family: u16 = read(sk, off::SK_FAMILY)?;
        socket_detail(family, ty)
    } else if k == kind::ANON {
        let dentry: u64 = read(file, off::FILE_DENTRY)?;
        let name: u64 = read(dentry, off::DENTRY_NAME)?;
        // 16 bytes as they are (the comparison stops at each known name's NUL): a zeroed buffer would be a call to
        // `memset`, a BPF subprogram, whose frame 6.1's verifier adds (at least 32 bytes) to `sys_exit`'s. The
        // anonymous-inode names are short, inline in the dentry (`d_iname`, 32 bytes or more).
        // SAFETY: bpf_probe_read_kernel checks the address; a bad one only fails the read.
        let words: [u64; 2] = unsafe { bpf_probe_read_kernel(name as *const [u64; 2]).ok()? };
        anon_name(words)
    } else {
        0
    };
    Some(encode(k, nonblock, detail))
}

/// The address of the `struct file` in descriptor slot `fd` of the current task: `Some(None)` for a descriptor
/// that is not open (beyond the table or an empty slot), `None` when a read failed.
#[inline(always)]
fn slot(fd: i32) -> Option<Option<u64>> {
    // SAFETY: takes no arguments; returns the current task's address, only ever read through the helper.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task, off::TASK_FILES)?;
    let fdt: u64 = read(files, off::FILES_FDT)?;
    let max_fds: u32 = read(fdt, off::FDT_MAX_FDS)?;
    if fd as u32 >= max_fds {
        return Some(None);
    }
    let table: u64 = read(fdt, off::FDT_FD)?;
    // The slot's address is a scalar passed to the helper: no bounds for the verifier to track.
    // SAFETY: bpf_probe_read_kernel checks the address.
    let file: u64 = unsafe { bpf_probe_read_kernel((table as *const u64).wrapping_add(fd as usize)).ok()? };
    Some((file != 0).then_some(file))
}

/// The address of the `struct file` open as `fd` in the current task (read only through the helper), for the
/// path walk; `None` when it is not open or something could not be read.
#[inline(always)]
pub(crate) fn file_of(fd: i32) -> Option<u64> {
    if fd < 0 || offset(off::ENABLED) == 0 {
        return None;
    }
    slot(fd)?
}
