//! What a descriptor of the current task refers to, learned at `sys_exit` for the observer's call shapes
//! (`fd=`, `nonblock=`): `current->files->fdt->fd[fd]` (bounds-checked against `max_fds`), its `f_flags`, its
//! inode's type and file system, and for a socket its family and type, for an anonymous inode its name. Offsets
//! come from the kernel's BTF through the global `PHOEBE_FD_OFFSETS` (`phoebe_common::fd::off`), set by user
//! space; while its `ENABLED` slot is 0 every descriptor is unknown. Each read goes through
//! `bpf_probe_read_kernel`: a pointer that went stale under a concurrent `close` only fails a read (the
//! descriptor is then unknown), it never faults.
//!
//! Each helper call costs about 20–25 ns, most of a call's observation on a socket: members that lie near each
//! other are read in one call into this CPU's [`PHOEBE_FACTBUF`] — the fdtable's `max_fds` and `fd`, the file's
//! flags, inode, private data and path (which the walk program takes from there, [`file_word`]), the socket's type
//! and sock — and a member outside its window (another kernel's layout) is read on its own.

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_kernel_buf},
    macros::map,
    maps::PerCpuArray,
};
use phoebe_common::fd::{
    self, O_NONBLOCK, Offsets, anon_name, encode, kind, kind_of_mode, needs_magic, off, socket_detail,
};

/// Bytes of the file's window: members within this many bytes of its start are read with it.
const WINDOW: usize = 64;
/// Bytes of the socket's window (`struct socket` is small; its `type` and `sk` are in its first 32 bytes).
const SOCKET_WINDOW: usize = 32;
/// Bytes of the fdtable's window (`max_fds` and `fd`, its first members).
const FDT_WINDOW: usize = 16;

/// This CPU's windows, and the file whose window `file` holds. Used by `sys_exit` and the walk program it
/// tail-calls, in the same run, on this CPU (programs do not migrate between CPUs and a tracepoint program does not
/// nest on one). `sys_exit` hands a file's walk over only when the call's descriptor is a regular file or a
/// directory, which `lookup` learns from the window it has just read: the walk reads this call's file. (No reset
/// at each call: the null check of one more lookup there doubled what the verifier walks.)
#[repr(C)]
pub struct FactBuf {
    /// `WINDOW` bytes of the `struct file`, and slack that a masked offset may reach.
    file: [u64; WINDOW / 8 + 1],
    /// Where the file window starts in the `struct file`.
    file_base: u64,
    /// The `struct file` the file window was read from (0: none yet on this CPU).
    file_at: u64,
    /// `WINDOW` bytes of the `struct socket` (or of the fdtable, before), and slack.
    other: [u64; WINDOW / 8 + 1],
}

#[map]
static PHOEBE_FACTBUF: PerCpuArray<FactBuf> = PerCpuArray::with_max_entries(1, 0);

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
    let buf = PHOEBE_FACTBUF.get_ptr_mut(0)?;
    let Some(file) = slot_in(buf, fd)? else {
        return Some(closed);
    };
    // The file's window starts at the lowest member the observer reads (8-byte aligned).
    let base = offset(off::FILE_FLAGS)
        .min(offset(off::FILE_INODE))
        .min(offset(off::FILE_PRIVATE))
        & !7;
    // SAFETY: `buf` is this CPU's buffer (see `FactBuf`).
    let window = read_window(unsafe { &raw mut (*buf).file }, file, base, WINDOW)?;
    // SAFETY: as above.
    unsafe {
        (*buf).file_base = base as u64;
        (*buf).file_at = file;
    }
    let flags: u32 = field(window, (base, WINDOW), file, off::FILE_FLAGS)?;
    let nonblock = Some(flags & O_NONBLOCK != 0);
    let inode: u64 = field(window, (base, WINDOW), file, off::FILE_INODE)?;
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
        let socket: u64 = field(window, (base, WINDOW), file, off::FILE_PRIVATE)?;
        let base = offset(off::SOCKET_TYPE).min(offset(off::SOCKET_SK)) & !7;
        // SAFETY: as above.
        let other = read_window(unsafe { &raw mut (*buf).other }, socket, base, SOCKET_WINDOW)?;
        let ty: u16 = field(other, (base, SOCKET_WINDOW), socket, off::SOCKET_TYPE)?;
        let sk: u64 = field(other, (base, SOCKET_WINDOW), socket, off::SOCKET_SK)?;
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

/// Reads `len` bytes (at most `WINDOW`) of the kernel structure at `at` from byte `base` into `into`, a window of
/// this CPU's buffer; returns the window's start. `None` when the read fails.
#[inline(always)]
fn read_window(into: *mut [u64; WINDOW / 8 + 1], at: u64, base: usize, len: usize) -> Option<*const u8> {
    let len = len.min(WINDOW);
    // SAFETY: `into` is a window of this CPU's buffer (see `FactBuf`), `WINDOW + 8` bytes, of which `len` are
    // written; the helper checks the read of the kernel address.
    unsafe {
        bpf_probe_read_kernel_buf(
            (at as *const u8).wrapping_add(base),
            core::slice::from_raw_parts_mut(into.cast::<u8>(), len),
        )
        .ok()?;
    }
    Some(into.cast::<u8>().cast_const())
}

/// The `T` of member `i` of the structure at `at`, from `window` (`len` bytes of it read from `at + base`)
/// when the member lies within it, naturally aligned; otherwise read on its own.
#[inline(always)]
fn field<T: Copy>(window: *const u8, (base, len): (usize, usize), at: u64, i: usize) -> Option<T> {
    in_window(window, (base, len), offset(i)).or_else(|| read(at, i))
}

/// The `T` at `member` of a structure whose window (`len` bytes from `base`, `len` at most `WINDOW`) is
/// `window`, `None` when the member is not within it or not naturally aligned there.
#[inline(always)]
fn in_window<T: Copy>(window: *const u8, (base, len): (usize, usize), member: usize) -> Option<T> {
    let rel = member.checked_sub(base)?;
    if rel + core::mem::size_of::<T>() > len || rel % core::mem::align_of::<T>() != 0 {
        return None;
    }
    // The mask is for the verifier, which may not follow the comparison: the buffer's slack covers
    // `WINDOW - 1 + size_of::<T>()`.
    let rel = (crate::opaque(rel as u64) as usize) & (WINDOW - 1);
    // SAFETY: `window` is a map buffer of at least `WINDOW + 8` bytes, 8-byte aligned; `rel` is within it and
    // a multiple of `T`'s alignment (checked above), and `T` is plain data (integers and addresses).
    Some(unsafe { core::ptr::read(window.wrapping_add(rel).cast::<T>()) })
}

/// The 8-byte word at byte `member` of the `struct file` of this call's descriptor, for the walk program (tail
/// called in the same run, on this CPU, for a regular file or directory `facts` learned: see [`FactBuf`]): from the
/// window `facts` read, or read on its own; with the file's address. `None` before any file on this CPU.
#[inline(always)]
pub(crate) fn file_word(member: u64) -> Option<(u64, u64)> {
    let buf = PHOEBE_FACTBUF.get_ptr(0)?;
    // SAFETY: this CPU's buffer, written by `facts` earlier in this run (see there).
    let (file, base, window) = unsafe {
        (
            (*buf).file_at,
            (*buf).file_base,
            (&raw const (*buf).file).cast::<u8>(),
        )
    };
    if file == 0 {
        return None;
    }
    let word = match in_window(window, (base as usize, WINDOW), member as usize) {
        Some(word) => word,
        // SAFETY: bpf_probe_read_kernel checks the address; a bad one only fails the read.
        None => unsafe {
            bpf_probe_read_kernel((file as *const u8).wrapping_add(member as usize).cast::<u64>()).ok()?
        },
    };
    Some((file, word))
}

/// The address of the `struct file` in descriptor slot `fd` of the current task: `Some(None)` for a descriptor
/// that is not open (beyond the table or an empty slot), `None` when a read failed.
#[inline(always)]
fn slot(fd: i32) -> Option<Option<u64>> {
    let buf = PHOEBE_FACTBUF.get_ptr_mut(0)?;
    slot_in(buf, fd)
}

/// [`slot`], with this CPU's buffer (whose `other` window it uses for the fdtable).
#[inline(always)]
fn slot_in(buf: *mut FactBuf, fd: i32) -> Option<Option<u64>> {
    // SAFETY: takes no arguments; returns the current task's address, only ever read through the helper.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task, off::TASK_FILES)?;
    let fdt: u64 = read(files, off::FILES_FDT)?;
    // `max_fds` and `fd` are next to each other (the fdtable's first two members): one read.
    let base = offset(off::FDT_MAX_FDS).min(offset(off::FDT_FD)) & !7;
    // SAFETY: this CPU's buffer (see `FactBuf`).
    let window = read_window(unsafe { &raw mut (*buf).other }, fdt, base, FDT_WINDOW)?;
    let max_fds: u32 = field(window, (base, FDT_WINDOW), fdt, off::FDT_MAX_FDS)?;
    if fd as u32 >= max_fds {
        return Some(None);
    }
    let table: u64 = field(window, (base, FDT_WINDOW), fdt, off::FDT_FD)?;
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
