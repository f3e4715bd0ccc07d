//! The absolute path of the regular file or directory behind a call's descriptor (`fd=file:path=…`), and of a
//! relative path argument (its base, the cwd or the dirfd's directory, with the relative text appended), for the
//! observer's call shapes, walked in the kernel (`phoebe_common::shape::walk`): `sys_exit` hands the call over in a
//! per-CPU slot ([`PHOEBE_PENDING`]) and tail-calls [`phoebe_sc_path`], which starts with a fresh 512-byte stack
//! (a BPF subprogram's frame would be added to `sys_exit`'s). The program takes the file's `f_path` from what
//! `sys_exit` read of the file in the same run (`fdfacts::file_word`; a close's from its entry, in the pending
//! call; a dirfd's file from the call's registers; no pointer outlives the run), walks it into a per-CPU buffer, and
//! counts the call by the text's hash in the path counters, as `sys_exit` counts absolute path arguments. Offsets
//! come from the kernel's BTF through the global `PHOEBE_WALK_OFFSETS`; each read goes through
//! `bpf_probe_read_kernel`, so a structure that changed under a concurrent rename or unmount only fails a read
//! (the path is then unknown) — or, at worst, gives the path the file had an instant before or after.

use aya_ebpf::{
    helpers::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_kernel_buf},
    macros::{map, raw_tracepoint},
    maps::{LruHashMap, PerCpuArray, ProgramArray},
    programs::RawTracePointContext,
};
use phoebe_common::shape::{
    PATH_BYTES, PathKey, PathText, UNKNOWN_PATH, fnv1a,
    walk::{self, BUF_BYTES, DEPTH, END, Offsets, Pending, RELATIVE_AT, WALKED_CAPACITY, Walked, off, what},
};

use crate::observe::{ARG_OFFSETS, count_existing_path_key, count_path_key, path_arg};
use crate::opaque;

#[unsafe(no_mangle)]
static PHOEBE_WALK_OFFSETS: Offsets = [0; 14];

/// The walk program, in slot 0.
#[map]
pub(crate) static PHOEBE_TAIL: ProgramArray = ProgramArray::with_max_entries(1, 0);
/// The call `sys_exit` hands over, one per CPU (a tail call keeps the CPU).
#[map]
static PHOEBE_PENDING: PerCpuArray<Pending> = PerCpuArray::with_max_entries(1, 0);

/// The walk's buffer: the text is written right to left, ending at `walk::END`.
#[repr(C)]
pub struct WalkBuf {
    pub bytes: [u8; BUF_BYTES],
    /// Where the text starts.
    pub start: u32,
}

#[map]
static PHOEBE_WALKBUF: PerCpuArray<WalkBuf> = PerCpuArray::with_max_entries(1, 0);
/// The paths walked, by the address of the file's dentry ([`Walked`]): a server opening and reading the same
/// files over and over pays the walk once per file, not once per call (kv-server: 0.6–0.8 µs less BPF time per
/// request on this machine; the check of a kept path reads four words).
#[map]
static PHOEBE_WALKED: LruHashMap<u64, Walked> = LruHashMap::with_max_entries(WALKED_CAPACITY, 0);

/// The byte offsets of a `struct file`'s `f_path.mnt` and `f_path.dentry`.
#[inline(always)]
pub(crate) fn path_members() -> (u64, u64) {
    (offset(off::FILE_MNT), offset(off::FILE_DENTRY))
}

/// Whether the walk program is there: set by user space with the offsets.
#[inline(always)]
pub(crate) fn enabled() -> bool {
    offset(off::ENABLED) != 0
}

/// Offset `i` of [`PHOEBE_WALK_OFFSETS`].
#[inline(always)]
fn offset(i: usize) -> u64 {
    let Some(slot) = PHOEBE_WALK_OFFSETS.get(i) else {
        return 0;
    };
    // SAFETY: `slot` is an element of a valid, aligned static; the volatile read only keeps the compiler from
    // folding the default that user space overrides at load.
    u64::from(unsafe { core::ptr::read_volatile(slot) })
}

/// The `T` at kernel address `at + offset(i)`, `None` when the read fails.
#[inline(always)]
fn read<T>(at: u64, i: usize) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one only fails the read.
    unsafe { bpf_probe_read_kernel(at.wrapping_add(offset(i)) as *const T).ok() }
}

/// Hands the call over to the walk program (`sys_exit`'s last step: a successful tail call does not return):
/// `what` says what to walk (`walk::what`), `len` is a relative path's length in the path buffer. Returns when
/// the walk could not start (no program, no slot); the caller then counts the call without its path.
#[inline(always)]
pub(crate) fn hand_over(ctx: &RawTracePointContext, pending: Pending) {
    let Some(slot) = PHOEBE_PENDING.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: index 0 exists (length 1); this CPU's slot, which the walk program reads in the same run, on the
    // same CPU, before anything else on this CPU can write it (tracepoint programs do not nest on a CPU).
    unsafe { *slot = pending };
    // SAFETY: a tail call into a program of the same type, with the same context; on failure it returns here.
    unsafe { PHOEBE_TAIL.tail_call(ctx, 0) };
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn phoebe_sc_path(ctx: RawTracePointContext) -> i32 {
    let Some(slot) = PHOEBE_PENDING.get_ptr(0) else {
        return 0;
    };
    // SAFETY: index 0 exists; this CPU's slot, written by `hand_over` just before the tail call.
    let pending = unsafe { *slot };
    let hash = if pending.what == what::RELATIVE {
        relative_path(&ctx, pending.nr, pending.len)
    } else {
        match file_path(&pending) {
            FilePath::Counted => return 0,
            FilePath::Hash(hash) => hash,
        }
    };
    let key = PathKey {
        nr: pending.nr,
        errno: pending.errno,
        hash: hash.unwrap_or(UNKNOWN_PATH),
        fd: pending.fd,
    };
    count_path_key(&key, pending.latency);
    0
}

/// Register `arg` of the call.
#[inline(always)]
fn register(ctx: &RawTracePointContext, arg: u8) -> Option<u64> {
    let regs: *const u8 = ctx.arg(0);
    let at = ARG_OFFSETS.get(usize::from(arg))?;
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    unsafe { bpf_probe_read_kernel(regs.wrapping_add(*at).cast::<u64>()).ok() }
}

/// What [`file_path`] did with the call.
enum FilePath {
    /// The path kept for the open file was counted: the call is done.
    Counted,
    /// The hash of the walked path (`None` when not known whole), its text in the path buffer, to count.
    Hash(Option<u64>),
}

/// The path of the call's descriptor's file: counted at once when kept for its dentry ([`PHOEBE_WALKED`], still
/// true of it) and its counters exist; otherwise walked, kept, and its hash returned, its text left in the path
/// buffer (`PHOEBE_PATHBUF`, for `count_path_key` to store).
#[inline(always)]
fn file_path(pending: &Pending) -> FilePath {
    match walk_file(pending) {
        Some(Kept::Counted) => FilePath::Counted,
        Some(Kept::Walked(hash)) => FilePath::Hash(Some(hash)),
        None => FilePath::Hash(None),
    }
}

/// [`file_path`]'s steps, `None` when something could not be read or the path is not known whole.
enum Kept {
    Counted,
    Walked(u64),
}

#[inline(always)]
fn walk_file(pending: &Pending) -> Option<Kept> {
    // A close's, from its entry; otherwise the file `sys_exit` learned the descriptor's kind from, in this run:
    // its path from the window read then.
    let (mnt, dentry) = if pending.dentry != 0 {
        (pending.mnt, pending.dentry)
    } else {
        let (_, mnt) = crate::fdfacts::file_word(offset(off::FILE_MNT))?;
        let (_, dentry) = crate::fdfacts::file_word(offset(off::FILE_DENTRY))?;
        (mnt, dentry)
    };
    // `d_parent` and `d_name.hash_len`, and whether the dentry is hashed (not deleted), as the walk checks.
    let (pprev, parent, hash_len) = dentry_words(dentry)?;
    if pprev == 0 && parent != dentry {
        return None;
    }
    // SAFETY: a plain-data value of a successful lookup, copied out at once (an LRU element can be replaced by
    // another CPU's insert; RCU keeps the memory valid while this program runs).
    if let Some(kept) = unsafe { PHOEBE_WALKED.get(dentry) }.copied()
        && kept.mnt == mnt
        && kept.dentry == dentry
        && kept.parent == parent
        && kept.hash_len == hash_len
    {
        let key = PathKey {
            nr: pending.nr,
            errno: pending.errno,
            hash: kept.hash,
            fd: pending.fd,
        };
        // The text of a kept hash was stored when its counters were made; without them (the maps were cleared
        // for the next run), the walk below leaves the text for `count_path_key` again.
        if count_existing_path_key(&key, pending.latency) {
            return Some(Kept::Counted);
        }
    }
    let start = walk_path(mnt, dentry)?;
    let hash = copy_out(start, END)?;
    let walked = Walked {
        mnt,
        dentry,
        parent,
        hash_len,
        hash,
    };
    // A full map drops its least recently used path.
    let _ = PHOEBE_WALKED.insert(dentry, walked, 0);
    Some(Kept::Walked(hash))
}

/// The kernel's `AT_FDCWD`.
const AT_FDCWD: i32 = -100;

/// The hash of a relative path argument joined to its base: the working directory, or for a `*at` call (path in
/// the second argument) its dirfd's directory unless `AT_FDCWD`. The relative text (`len` bytes) is in the path
/// buffer, where `sys_exit` read it; the joined text is left there. `None` when not known whole.
#[inline(always)]
fn relative_path(ctx: &RawTracePointContext, nr: u32, len: u32) -> Option<u64> {
    let dirfd = if path_arg(u64::from(nr))? == 1 {
        register(ctx, 0)? as i32
    } else {
        AT_FDCWD
    };
    let (mnt, dentry) = if dirfd == AT_FDCWD {
        // SAFETY: takes no arguments; returns the current task's address, only ever read through the helper.
        let task = unsafe { bpf_get_current_task() };
        let fs: u64 = read(task, off::TASK_FS)?;
        (read(fs, off::FS_PWD_MNT)?, read(fs, off::FS_PWD_DENTRY)?)
    } else {
        let file = crate::fdfacts::file_of(dirfd)?;
        (read(file, off::FILE_MNT)?, read(file, off::FILE_DENTRY)?)
    };
    let start = walk_path(mnt, dentry)?;
    let end = walk::joined_end(start, len)?;
    let buf = PHOEBE_WALKBUF.get_ptr_mut(0)?;
    let text = crate::observe::path_buf()?;
    let len = (opaque(u64::from(len)) as usize) & (PATH_BYTES - 1);
    // SAFETY: this CPU's buffers (index 0 exists), used by this program only while it runs; `RELATIVE_AT + len`
    // is below BUF_BYTES by the mask, and the path buffer holds at least `len` bytes.
    unsafe {
        let bytes = &mut (*buf).bytes;
        *bytes.get_mut(END as usize)? = b'/';
        let src = (*text).bytes.get(..len)?;
        let dst = bytes.get_mut(RELATIVE_AT as usize..RELATIVE_AT as usize + len)?;
        bpf_probe_read_kernel_buf(src.as_ptr(), dst).ok()?;
    }
    copy_out(start, end)
}

/// A dentry's `d_hash.pprev` (0: unhashed), `d_parent` and `d_name.hash_len`: one read where `pprev` comes just
/// before `d_parent` (Linux's layout; user space checked that `d_name` follows `d_parent`), two otherwise.
#[inline(always)]
fn dentry_words(dentry: u64) -> Option<(u64, u64, u64)> {
    if offset(off::DENTRY_PARENT) == offset(off::DENTRY_PPREV) + 8 {
        let [pprev, parent, hash_len]: [u64; 3] = read(dentry, off::DENTRY_PPREV)?;
        Some((pprev, parent, hash_len))
    } else {
        let [parent, hash_len]: [u64; 2] = read(dentry, off::DENTRY_PARENT)?;
        let pprev: u64 = read(dentry, off::DENTRY_PPREV)?;
        Some((pprev, parent, hash_len))
    }
}

/// Writes the path of (`mnt`, `dentry`) right to left into the walk buffer, ending at `END`; returns where it
/// starts. `None` when it is deleted, deeper than `DEPTH`, does not fit, or a read failed.
#[inline(always)]
fn walk_path(mnt: u64, dentry: u64) -> Option<u32> {
    // A deleted file or directory: its dentry is unhashed (and not a root, its own parent). `/proc` shows
    // " (deleted)" after its old path.
    let (pprev, parent, _) = dentry_words(dentry)?;
    if pprev == 0 && parent != dentry {
        return None;
    }
    let buf = PHOEBE_WALKBUF.get_ptr_mut(0)?;
    let mut mount = mnt.wrapping_sub(offset(off::MOUNT_MNT));
    let mut mnt_root: u64 = read(mnt, off::VFSMOUNT_ROOT)?;
    let mut dentry = dentry;
    // The text's start lives in the buffer's map memory, not in a register: loaded back at each step, it is a
    // number the verifier knows nothing about, so the states of the walk's steps do not differ by its range
    // (each would be explored on its own: too many for the verifier).
    // SAFETY: `buf` is this CPU's walk buffer (index 0 exists), used by this program only while it runs.
    unsafe { core::ptr::write_volatile(&raw mut (*buf).start, END) };
    for _ in 0..DEPTH {
        // SAFETY: as above.
        let start = unsafe { core::ptr::read_volatile(&raw const (*buf).start) };
        if dentry == mnt_root {
            let parent: u64 = read(mount, off::MOUNT_PARENT)?;
            if parent == mount {
                return Some(start);
            }
            dentry = read(mount, off::MOUNT_MOUNTPOINT)?;
            mount = parent;
            mnt_root = read(mount.wrapping_add(offset(off::MOUNT_MNT)), off::VFSMOUNT_ROOT)?;
            continue;
        }
        // `d_parent` and `d_name` (`hash_len`, `name`) in one read: user space checked they are adjacent.
        let [parent, hash_len, name]: [u64; 3] = read(dentry, off::DENTRY_PARENT)?;
        if parent == dentry {
            // The root of a file system that is not its mount's root (a mount of a subtree whose own root this
            // walk cannot name): not a path of the mount tree.
            return None;
        }
        // `qstr.len` is the high half of `hash_len` on a little-endian machine (BPF here is `bpfel`).
        let len = (hash_len >> 32) as u32;
        let start = walk::prepend(start, len)?;
        // Masks the verifier can follow: both below PATH_BYTES, so the writes end inside the buffer of twice that.
        let at = (opaque(u64::from(start)) as usize) & (PATH_BYTES - 1);
        let len = (opaque(u64::from(len)) as usize) & (PATH_BYTES - 1);
        // SAFETY: `buf` is this CPU's walk buffer (index 0 exists), used by this program only while it runs;
        // `at + 1 + len < BUF_BYTES` by the masks. The helper checks the read of the name.
        unsafe {
            let bytes = &mut (*buf).bytes;
            if let Some(slash) = bytes.get_mut(at) {
                *slash = b'/';
            }
            let dst = bytes.get_mut(at + 1..at + 1 + len)?;
            bpf_probe_read_kernel_buf(name as *const u8, dst).ok()?;
            core::ptr::write_volatile(&raw mut (*buf).start, start);
        }
        dentry = parent;
    }
    None
}

/// Copies the text `start..end` of the walk buffer (`/` when empty) into the path buffer with its NUL, and
/// returns its hash. `end - start` is below `PATH_BYTES - 1` (`walk::prepend`, `walk::joined_end`).
#[inline(always)]
fn copy_out(start: u32, end: u32) -> Option<u64> {
    let walked = PHOEBE_WALKBUF.get_ptr(0)?;
    let out = crate::observe::path_buf()?;
    let len = end.checked_sub(start)?;
    let start = (opaque(u64::from(start)) as usize) & (PATH_BYTES - 1);
    let len = (opaque(u64::from(len)) as usize) & (PATH_BYTES - 1);
    // SAFETY: both are this CPU's buffers (index 0 exists), used by this program only while it runs; the masks
    // keep `start + len` below BUF_BYTES and `len` below PATH_BYTES, the copy within both.
    unsafe {
        let text: &mut PathText = &mut *out;
        if len == 0 {
            *text.bytes.get_mut(0)? = b'/';
            *text.bytes.get_mut(1)? = 0;
        } else {
            let src = (*walked).bytes.get(start..start + len)?;
            let dst = text.bytes.get_mut(..len)?;
            bpf_probe_read_kernel_buf(src.as_ptr(), dst).ok()?;
            *text.bytes.get_mut(len)? = 0;
        }
        Some(fnv1a(&text.bytes))
    }
}
