//! The observer: `sys_exit` counts each completed call of a target per (process, syscall, errno) in per-CPU
//! maps — successes of `observe` in an array indexed by syscall number, everything else in a hash; `sys_enter`
//! stamps entry times when latency is asked for.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::{bpf_probe_read_kernel, bpf_probe_read_user_str_bytes},
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::RawTracePointContext,
};
use phoebe_common::{
    COUNTS_CAPACITY, CountKey, CountValue, ErrorSlot, LatencyBuckets, SUCCESS_SLOTS, TARGETS_CAPACITY,
    fd::op,
    latency_bucket,
    shape::{
        PATH_BYTES, PATHS_CAPACITY, PathKey, PathText, SHAPES_CAPACITY, ShapeKey, ShapeReg, UNKNOWN_PATH,
        fnv1a, walk, within,
    },
    state,
};

use crate::{
    MAX_ERRNO, PT_REGS_SYSCALL_NR, current, global, now,
    targets::{set_state, state_of},
};

// Syscalls whose return of 0 in the new task is the child's side of a fork: not a call the child made (ptrace
// does not see it either). x86_64 numbers.
#[cfg(not(bpf_target_arch = "aarch64"))]
const FORK_LIKE: [i64; 4] = [
    56,  /* clone */
    57,  /* fork */
    58,  /* vfork */
    435, /* clone3 */
];
#[cfg(bpf_target_arch = "aarch64")]
const FORK_LIKE: [i64; 2] = [220 /* clone */, 435 /* clone3 */];

// Syscalls that replace the address space when they succeed: at their exit the path pointer points into the new
// image, so their path is read only when they failed.
#[cfg(not(bpf_target_arch = "aarch64"))]
const EXEC_LIKE: [u32; 2] = [59 /* execve */, 322 /* execveat */];
#[cfg(bpf_target_arch = "aarch64")]
const EXEC_LIKE: [u32; 2] = [221 /* execve */, 281 /* execveat */];

#[unsafe(no_mangle)]
static PHOEBE_PER_PROCESS: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static PHOEBE_LATENCY: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_HISTOGRAMS: u32 = 0;

// Not preallocated: an element is allocated at a key's first call (rare), and loading does not have to
// allocate and clear every possible element on every CPU.
#[map]
static PHOEBE_COUNTS: PerCpuHashMap<CountKey, CountValue> =
    PerCpuHashMap::with_max_entries(COUNTS_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static PHOEBE_SUCCESS: PerCpuArray<CountValue> = PerCpuArray::with_max_entries(SUCCESS_SLOTS, 0);
#[map]
static PHOEBE_ERRORS: PerCpuArray<ErrorSlot> = PerCpuArray::with_max_entries(SUCCESS_SLOTS, 0);
// Entry times by tid (0: none), with --latency: an array lookup, which the verifier inlines, on both syscall
// hooks. One element unless user space sizes it from pid_max; a tid beyond it uses the hash below, which is not
// preallocated: such a thread inserts its element once, at its first call.
#[map]
pub(crate) static PHOEBE_ENTTID: Array<u64> = Array::with_max_entries(1, 0);
#[map]
pub(crate) static PHOEBE_ENTERED: HashMap<u32, u64> =
    HashMap::with_max_entries(TARGETS_CAPACITY, BPF_F_NO_PREALLOC);
// A histogram's first value (`histogram`).
static EMPTY_HISTOGRAM: LatencyBuckets = LatencyBuckets::ZERO;
// Written only with PHOEBE_HISTOGRAMS (`monitor --latency`); not preallocated, like the counters.
#[map]
static PHOEBE_LATHIST: PerCpuHashMap<CountKey, LatencyBuckets> =
    PerCpuHashMap::with_max_entries(COUNTS_CAPACITY, BPF_F_NO_PREALLOC);
// Calls of syscalls whose shape has register components, by the registers' kept bits (`observe` only).
#[map]
static PHOEBE_SHAPES: PerCpuHashMap<ShapeKey, CountValue> =
    PerCpuHashMap::with_max_entries(SHAPES_CAPACITY, BPF_F_NO_PREALLOC);
// Calls of path syscalls by the hash of their absolute path (`observe` only), and each hash's path, written once.
#[map]
static PHOEBE_PATHS: PerCpuHashMap<PathKey, CountValue> =
    PerCpuHashMap::with_max_entries(PATHS_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static PHOEBE_PATHTXT: HashMap<u64, PathText> = HashMap::with_max_entries(PATHS_CAPACITY, BPF_F_NO_PREALLOC);
// One path buffer per CPU: 256 bytes do not fit the 512-byte stack beside the rest.
#[map]
static PHOEBE_PATHBUF: PerCpuArray<PathText> = PerCpuArray::with_max_entries(1, 0);
#[map]
static PHOEBE_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
// One slot per CPU that `forget` passes a value through.
#[map]
static PHOEBE_SCRATCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn phoebe_sc_exit(ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    let st = state_of(tgid);
    if st != state::COUNTING {
        if st == state::EXECED {
            // This is the return of the exec that started the target: not one of its calls; count from now on.
            // Only this process's own exit path moves it out of EXECED.
            set_state(tgid, state::COUNTING);
        }
        return 0;
    }
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    let nr: i64 = match unsafe { bpf_probe_read_kernel(regs.wrapping_add(PT_REGS_SYSCALL_NR).cast::<i64>()) }
    {
        Ok(nr) => nr,
        Err(_) => return 0,
    };
    if nr < 0 || (ret == 0 && FORK_LIKE.contains(&nr)) {
        return 0;
    }
    let errno = if (-MAX_ERRNO..0).contains(&ret) {
        (-ret) as u32
    } else {
        0
    };
    let per_process = global(&PHOEBE_PER_PROCESS) != 0;
    let mut latency = 0u64;
    if global(&PHOEBE_LATENCY) != 0
        && let Some(entered) = entered_at(tid)
    {
        latency = now().saturating_sub(entered);
        if global(&PHOEBE_HISTOGRAMS) != 0 {
            let key = CountKey {
                tgid: if per_process { tgid } else { 0 },
                nr: nr as u32,
                errno,
                pad: 0,
            };
            histogram(&key, latency);
        }
    }
    if !per_process {
        // Only the few shaped syscalls read registers: a getppid pays one comparison tree on `nr`.
        // A call on a descriptor: what the descriptor is, learned once here (see `fd_code`).
        let fd_arg = fd_arg(nr as u64);
        let mut fd = forget(fd_code(fd_arg, regs), phoebe_common::fd::UNKNOWN);
        // A close: its descriptor as its entry found it (gone from the table by now), and a file's path.
        let closes = nr as u64 == CLOSE;
        let (mut mnt, mut dentry) = (0, 0);
        if closes
            && let Some(closing) = crate::entry::take_closing(
                tid,
                shape_value(
                    regs,
                    ShapeReg {
                        arg: 0,
                        mask: u64::MAX,
                    },
                ),
            )
        {
            fd = forget(closing.code, phoebe_common::fd::UNKNOWN);
            (mnt, dentry) = (closing.mnt, closing.dentry);
        }
        // flock's operation and fcntl's command travel in the descriptor's code, which both the descriptor and
        // the walked path counters keep (`phoebe_common::fd::op`).
        if nr as u64 == FLOCK || nr as u64 == FCNTL {
            let arg = shape_value(
                regs,
                ShapeReg {
                    arg: 1,
                    mask: 0xffff_ffff,
                },
            );
            let carried = if nr as u64 == FLOCK {
                op::flock(arg)
            } else {
                op::fcntl(arg)
            };
            fd = op::with(fd, carried);
        }
        // A call on a regular file or directory, or with a relative path: the path is walked by another
        // program, tail-called last (`what`: `walk::what`, 0 for none).
        let mut what = 0;
        let mut len = 0;
        if let Some(shape) = shape_regs(nr as u64) {
            // A timed futex wait: the class of what was left of its timeout as it started, which its entry
            // learned, in the timeout register's kept value (`phoebe_common::shape::within`).
            if nr as u64 == FUTEX {
                let timeout = shape_value(
                    regs,
                    ShapeReg {
                        arg: 3,
                        mask: u64::MAX,
                    },
                );
                if timeout != 0
                    && let Some(class) = crate::entry::take_within(tid, timeout)
                {
                    fd = within::carry(0, class);
                }
            }
            count_shape(shape, regs, nr as u32, errno, latency, fd);
        } else if let Some(arg) = path_arg(nr as u64) {
            // A path syscall has no descriptor: its key carries an open's flags instead.
            fd = forget(open_code(nr as u64, regs), phoebe_common::shape::open::UNKNOWN);
            if let Some(relative) = count_path(arg, regs, nr as u32, errno, latency, fd) {
                what = walk::what::RELATIVE;
                len = relative;
            }
        } else if fd_arg.is_some() || closes {
            if walks(fd) {
                what = walk::what::FILE;
            } else {
                count_fd(nr as u32, errno, latency, fd);
            }
        }
        if !count_success_or_error(nr as u32, errno, latency) {
            count(
                &CountKey {
                    tgid: 0,
                    nr: nr as u32,
                    errno,
                    pad: 0,
                },
                latency,
            );
        }
        if what != 0 {
            let pending = walk::Pending {
                nr: nr as u32,
                errno,
                latency,
                fd,
                what,
                len,
                mnt,
                dentry,
            };
            crate::walk::hand_over(&ctx, pending);
            // The walk could not start: the call is counted without its path.
            if what == walk::what::FILE {
                count_fd(nr as u32, errno, latency, fd);
            } else {
                // Not a constant zero: LLVM could zero the bytes with a call to `memset`, a subprogram.
                let unknown = crate::opaque(UNKNOWN_PATH);
                let key = PathKey {
                    nr: nr as u32,
                    errno,
                    hash: unknown,
                    fd,
                };
                count_path_key(&key, latency);
            }
        }
        return 0;
    }
    let key = CountKey {
        tgid,
        nr: nr as u32,
        errno,
        pad: 0,
    };
    count(&key, latency);
    0
}

/// `value`, as a value the verifier knows nothing of: written to this CPU's scratch slot and read back (the
/// verifier does not track what a map holds); `otherwise` if the slot cannot be had. A descriptor's or an open's
/// code is one of a few dozen values the verifier knows apart (a kind, nonblock, a socket's family), and it
/// walked the rest of `sys_exit` once for each: 84 004 instructions for a program of 2 236, 143 ms of every
/// observer's start-up (261 before call shapes).
#[inline(always)]
fn forget(value: u64, otherwise: u64) -> u64 {
    match PHOEBE_SCRATCH.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); this CPU's slot, used by this program alone and only here, while it
        // runs (programs do not migrate between CPUs and a tracepoint program does not nest on one CPU). The
        // volatile accesses keep the compiler from forwarding the value past the map.
        Some(slot) => unsafe {
            slot.write_volatile(value);
            slot.read_volatile()
        },
        None => otherwise,
    }
}

/// Whether the descriptor of `code` is a regular file or a directory whose path the walk program can learn.
#[inline(always)]
fn walks(code: u64) -> bool {
    let kind = code as u8;
    (kind == phoebe_common::fd::kind::FILE || kind == phoebe_common::fd::kind::DIR) && crate::walk::enabled()
}

/// Adds one call to the per-syscall arrays: successes by syscall, errors in the syscall's errno slot; `false`
/// when the call belongs in the hash instead (a syscall number beyond the arrays, or another errno than the
/// slot's).
#[inline(always)]
fn count_success_or_error(nr: u32, errno: u32, latency: u64) -> bool {
    if errno == 0 {
        if let Some(value) = PHOEBE_SUCCESS.get_ptr_mut(nr) {
            // SAFETY: this CPU's slot of an array element, valid while the program runs; BPF programs do not
            // migrate between CPUs, so no other CPU writes it.
            unsafe { add(value, latency) };
            return true;
        }
    } else if let Some(slot) = PHOEBE_ERRORS.get_ptr_mut(nr) {
        // SAFETY: as above, this CPU's slot alone. The slot takes the syscall's first errno on this CPU and
        // keeps it; another errno goes to the hash.
        unsafe {
            if (*slot).errno == 0 {
                (*slot).errno = errno;
            }
            if (*slot).errno == errno {
                add(&raw mut (*slot).value, latency);
                return true;
            }
        }
    }
    false
}

#[cfg(bpf_target_arch = "aarch64")]
const CLOSE: u64 = phoebe_common::fd::CLOSE_AARCH64;
#[cfg(not(bpf_target_arch = "aarch64"))]
const CLOSE: u64 = phoebe_common::fd::CLOSE_X86_64;
#[cfg(bpf_target_arch = "aarch64")]
const FUTEX: u64 = within::FUTEX_AARCH64;
#[cfg(not(bpf_target_arch = "aarch64"))]
const FUTEX: u64 = within::FUTEX_X86_64;
#[cfg(bpf_target_arch = "aarch64")]
const FLOCK: u64 = op::FLOCK_AARCH64;
#[cfg(bpf_target_arch = "aarch64")]
const FCNTL: u64 = op::FCNTL_AARCH64;
#[cfg(not(bpf_target_arch = "aarch64"))]
const FLOCK: u64 = op::FLOCK_X86_64;
#[cfg(not(bpf_target_arch = "aarch64"))]
const FCNTL: u64 = op::FCNTL_X86_64;

#[cfg(bpf_target_arch = "aarch64")]
use phoebe_common::shape::aarch64 as shape_regs;
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) use phoebe_common::shape::aarch64_path as path_arg;
#[cfg(not(bpf_target_arch = "aarch64"))]
use phoebe_common::shape::x86_64 as shape_regs;
#[cfg(not(bpf_target_arch = "aarch64"))]
pub(crate) use phoebe_common::shape::x86_64_path as path_arg;

/// Byte offsets of the six argument registers in `struct pt_regs` at `sys_exit`: x86_64's di, si, dx, r10, r8,
/// r9 (the return value is in ax, so they still hold the arguments).
#[cfg(not(bpf_target_arch = "aarch64"))]
pub(crate) const ARG_OFFSETS: [usize; 6] = [14 * 8, 13 * 8, 12 * 8, 7 * 8, 9 * 8, 8 * 8];
/// aarch64: x0 holds the return value by now; the first argument is `orig_x0` (after regs[31], sp, pc, pstate).
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) const ARG_OFFSETS: [usize; 6] = [34 * 8, 8, 2 * 8, 3 * 8, 4 * 8, 5 * 8];

/// Reads the kept bits of one shape register (0 when unused or unreadable).
#[inline(always)]
fn shape_value(regs: *const u8, reg: ShapeReg) -> u64 {
    let Some(offset) = ARG_OFFSETS.get(usize::from(reg.arg)) else {
        return 0;
    };
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    match unsafe { bpf_probe_read_kernel(regs.wrapping_add(*offset).cast::<u64>()) } {
        Ok(value) => reg.keep(value),
        Err(_) => 0,
    }
}

/// Adds one call to this CPU's shape counters.
#[inline(always)]
fn count_shape(regs: [ShapeReg; 2], ptr: *const u8, nr: u32, errno: u32, latency: u64, fd: u64) {
    let key = ShapeKey {
        nr,
        errno,
        values: [
            shape_value(ptr, regs[0]),
            // The descriptor's code, for a call on one: its second shape register is unused.
            shape_value(ptr, regs[1]) | fd,
        ],
    };
    count_in(&PHOEBE_SHAPES, &key, latency);
}

// Descriptor facts (`fd=`, `nonblock=`) of the calls on a descriptor (`phoebe_common::fd`): counted in the shape
// map with the descriptor's code as the key's second value, which no shape register of those syscalls uses.
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) use phoebe_common::fd::aarch64_fd as fd_arg;
#[cfg(not(bpf_target_arch = "aarch64"))]
pub(crate) use phoebe_common::fd::x86_64_fd as fd_arg;

/// The code (`phoebe_common::fd::encode`) of the descriptor in argument `arg` (`fd_arg`'s answer; a getppid pays
/// its one comparison tree on `nr`), `phoebe_common::fd::UNKNOWN` for a syscall without one.
#[inline(always)]
fn fd_code(arg: Option<u8>, regs: *const u8) -> u64 {
    let Some(offset) = arg.and_then(|arg| ARG_OFFSETS.get(usize::from(arg))) else {
        return phoebe_common::fd::UNKNOWN;
    };
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    match unsafe { bpf_probe_read_kernel(regs.wrapping_add(*offset).cast::<u64>()) } {
        Ok(reg) => crate::fdfacts::facts(reg),
        Err(_) => phoebe_common::fd::UNKNOWN,
    }
}

/// Adds one call on a descriptor (a syscall without shape registers) to this CPU's shape counters, under its
/// descriptor's code.
#[inline(always)]
fn count_fd(nr: u32, errno: u32, latency: u64, fd: u64) {
    let key = ShapeKey {
        nr,
        errno,
        values: [0, fd],
    };
    count_in(&PHOEBE_SHAPES, &key, latency);
}

/// What `path_hash` found: an absolute path's hash ([`UNKNOWN_PATH`] when unreadable or too long), or a relative
/// path of some length, left in the buffer for the walk program to join to its base.
#[derive(Clone, Copy)]
enum PathRead {
    Absolute(u64),
    Relative(u32),
}

/// The path in argument `arg`, read from the target's memory into this CPU's buffer.
#[inline(always)]
fn path_hash(arg: u8, regs: *const u8) -> PathRead {
    let unknown = PathRead::Absolute(UNKNOWN_PATH);
    let Some(offset) = ARG_OFFSETS.get(usize::from(arg)) else {
        return unknown;
    };
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    let Ok(ptr) = (unsafe { bpf_probe_read_kernel(regs.wrapping_add(*offset).cast::<u64>()) }) else {
        return unknown;
    };
    let Some(buf) = PHOEBE_PATHBUF.get_ptr_mut(0) else {
        return unknown;
    };
    // SAFETY: index 0 exists (length 1); this CPU's slot, used by this program only while it runs (programs do
    // not migrate between CPUs and a tracepoint program does not nest on one CPU). The helper checks the read of
    // the user pointer and writes at most `PATH_BYTES` bytes, NUL included.
    let (len, first) = match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, &mut (*buf).bytes) } {
        Ok(read) => (read.len(), read.first().copied()),
        Err(_) => return unknown,
    };
    // A path that filled the buffer may have been cut: not the call's path.
    if len >= PATH_BYTES - 1 {
        return unknown;
    }
    // An empty path (`AT_EMPTY_PATH`, glibc's fstat) looks no name up: the call works on the dirfd's open file,
    // and has no path, as ptrace says (`facts::resolve_path`).
    if len == 0 {
        return unknown;
    }
    if first != Some(b'/') {
        return PathRead::Relative(len as u32);
    }
    // SAFETY: as above; the helper wrote a NUL after the `len` bytes, where the hash stops. The buffer keeps
    // the text for `store_path_text`.
    PathRead::Absolute(fnv1a(unsafe { &(*buf).bytes }))
}

/// Adds one call of a path syscall to this CPU's path counters. The path's text is stored at the first call of
/// its counter element only: once the element exists (for every CPU: a per-CPU hash element has every CPU's
/// slot), the text map is not looked up again. A relative path, when the walk program is there, is not counted
/// here: its length is returned, for `sys_exit` to hand the call over last.
#[inline(always)]
fn count_path(arg: u8, regs: *const u8, nr: u32, errno: u32, latency: u64, open: u64) -> Option<u32> {
    let hash = if errno == 0 && EXEC_LIKE.contains(&nr) {
        UNKNOWN_PATH
    } else {
        match path_hash(arg, regs) {
            PathRead::Absolute(hash) => hash,
            PathRead::Relative(len) if crate::walk::enabled() => return Some(len),
            PathRead::Relative(_) => UNKNOWN_PATH,
        }
    };
    let key = PathKey {
        nr,
        errno,
        hash,
        fd: open,
    };
    count_path_key(&key, latency);
    None
}

/// The [`open`](phoebe_common::shape::open) code of an open's flags register; `open::UNKNOWN` for any other call.
#[inline(always)]
fn open_code(nr: u64, regs: *const u8) -> u64 {
    use phoebe_common::shape::open;
    #[cfg(bpf_target_arch = "aarch64")]
    let (arg, o_directory) = (open::aarch64(nr), open::AARCH64_O_DIRECTORY);
    #[cfg(not(bpf_target_arch = "aarch64"))]
    let (arg, o_directory) = (open::x86_64(nr), open::X86_64_O_DIRECTORY);
    let Some(arg) = arg else {
        return open::UNKNOWN;
    };
    if arg == open::CREAT {
        return open::CREATES;
    }
    let Some(offset) = ARG_OFFSETS.get(usize::from(arg)) else {
        return open::UNKNOWN;
    };
    // SAFETY: `regs` is the `struct pt_regs *` the tracepoint passes; the helper checks the read.
    match unsafe { bpf_probe_read_kernel(regs.wrapping_add(*offset).cast::<u64>()) } {
        Ok(flags) => open::code(flags, o_directory),
        Err(_) => open::UNKNOWN,
    }
}

/// This CPU's path buffer, where a path's text is left for [`count_path_key`] to store.
#[inline(always)]
pub(crate) fn path_buf() -> Option<*mut PathText> {
    PHOEBE_PATHBUF.get_ptr_mut(0)
}

/// Adds one call to this CPU's path counters of `key` if they exist (the path's text was stored when they were
/// made); `false` when they do not.
#[inline(always)]
pub(crate) fn count_existing_path_key(key: &PathKey, latency: u64) -> bool {
    match PHOEBE_PATHS.get_ptr_mut(key) {
        Some(value) => {
            // SAFETY: this CPU's slot of the element, valid while the program runs; BPF programs do not migrate
            // between CPUs, so no other CPU writes it.
            unsafe { add(value, latency) };
            true
        }
        None => false,
    }
}

/// Adds one call to this CPU's path counters of `key`, whose path's text (unless unknown) is in the path buffer.
#[inline(always)]
pub(crate) fn count_path_key(key: &PathKey, latency: u64) {
    let hash = key.hash;
    if count_existing_path_key(key, latency) {
        return;
    }
    if hash != UNKNOWN_PATH {
        store_path_text(hash);
    }
    count_in(&PHOEBE_PATHS, key, latency);
}

/// Stores the text of `hash`, the path [`path_hash`] just read into this CPU's buffer, unless it is stored
/// already (another key, or another CPU, stored it first: the insert then fails and changes nothing).
#[inline(always)]
fn store_path_text(hash: u64) {
    if let Some(buf) = PHOEBE_PATHBUF.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); this CPU's buffer, which `path_hash` filled in this run of the
        // program and nothing wrote since. Passed by reference, so the 256 bytes are not copied to the stack: the
        // map copies them into the new element.
        let text: &PathText = unsafe { &*buf };
        let _ = PHOEBE_PATHTXT.insert(hash, text, u64::from(BPF_NOEXIST));
    }
}

/// Adds one call of `latency` nanoseconds to a counter.
///
/// # Safety
/// `value` points to this CPU's slot of a live per-CPU map element, which no other CPU writes.
#[inline(always)]
unsafe fn add(value: *mut CountValue, latency: u64) {
    // SAFETY: the caller's contract.
    unsafe {
        (*value).calls += 1;
        (*value).latency_ns_sum += latency;
        if latency > (*value).latency_ns_max {
            (*value).latency_ns_max = latency;
        }
    }
}

/// Adds one call to this CPU's counters of `key`.
#[inline(always)]
fn count(key: &CountKey, latency: u64) {
    count_in(&PHOEBE_COUNTS, key, latency);
}

/// Adds one call to this CPU's counters of `key` in `map` (the per-syscall counts or the shape counts).
#[inline(always)]
fn count_in<K>(map: &PerCpuHashMap<K, CountValue>, key: &K, latency: u64) {
    for _ in 0..2 {
        if let Some(value) = map.get_ptr_mut(key) {
            // SAFETY: the pointer is this CPU's slot of the element, valid while the program runs; BPF programs
            // do not migrate between CPUs, so no other CPU writes it.
            unsafe { add(value, latency) };
            return;
        }
        let value = CountValue {
            calls: 1,
            latency_ns_sum: latency,
            latency_ns_max: latency,
        };
        if map.insert(key, value, u64::from(BPF_NOEXIST)).is_ok() {
            return;
        }
        // Another CPU created the element meanwhile (EEXIST): look it up again. Otherwise the map is full.
    }
    if let Some(lost) = PHOEBE_LOST.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); per-CPU slot, written by this CPU only.
        unsafe { *lost += 1 };
    }
}

/// Adds one call of `latency` nanoseconds to this CPU's latency histogram of `key`.
#[inline(always)]
fn histogram(key: &CountKey, latency: u64) {
    let bucket = latency_bucket(latency);
    for _ in 0..2 {
        if let Some(value) = PHOEBE_LATHIST.get_ptr_mut(key) {
            // SAFETY: this CPU's slot of the element, valid while the program runs, written by this CPU only;
            // `bucket` is at most `LATENCY_BOUNDS_NS.len()`, a valid index of `counts`.
            unsafe {
                if let Some(count) = (*value).counts.get_mut(bucket) {
                    *count += 1;
                }
                (*value).sum_ns += latency;
            }
            return;
        }
        // The key's first call: an empty element, which the next turn counts the call in. Inserted from a
        // static's map memory: the 200-byte value on the stack did not leave room in `sys_exit`'s 512 bytes for
        // the descriptor facts' windows. Another CPU's insert of the same key in between only fails this one.
        #[expect(
            clippy::needless_borrows_for_generic_args,
            reason = "by value, the static would be copied onto the stack"
        )]
        let _ = PHOEBE_LATHIST.insert(key, &EMPTY_HISTOGRAM, u64::from(BPF_NOEXIST));
    }
    if let Some(lost) = PHOEBE_LOST.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); per-CPU slot, written by this CPU only.
        unsafe { *lost += 1 };
    }
}

/// A measurement aid, never attached by the observer: the cheapest program the `sys_exit` hook can run, so that
/// the benches can tell the hook's own cost from the observer's (`phoebe::backend::ebpf::EmptyProgram`).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn phoebe_sc_nop(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn phoebe_sc_enter(_ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    if state_of(tgid) == state::COUNTING {
        let at = now();
        if let Some(slot) = PHOEBE_ENTTID.get_ptr_mut(tid) {
            // SAFETY: a live element of an array map, this thread's, which only this thread's own programs write
            // (at its entry) or clear (at its exit).
            unsafe { *slot = at };
            return 0;
        }
        // A tid beyond the array: in place once the thread has its element (an update would allocate a new
        // element and free the old one on every call: the hash's update locks a bucket and swaps elements).
        match PHOEBE_ENTERED.get_ptr_mut(tid) {
            // SAFETY: the value of a successful lookup, a plain u64 of this thread's, which only this thread's
            // own programs write (at its entry) or delete (at its exit).
            Some(slot) => unsafe { *slot = at },
            None => {
                let _ = PHOEBE_ENTERED.insert(tid, at, 0);
            }
        }
    }
    0
}

/// When this thread entered its current call (`phoebe_sc_enter`), if it was seen entering.
#[inline(always)]
fn entered_at(tid: u32) -> Option<u64> {
    let at = match PHOEBE_ENTTID.get_ptr(tid) {
        // SAFETY: a live element of an array map, a plain u64 written by this thread's own programs.
        Some(slot) => unsafe { *slot },
        // SAFETY: the value of a successful lookup, a plain u64 written by `phoebe_sc_enter` for this thread.
        None => unsafe { PHOEBE_ENTERED.get(tid) }.copied().unwrap_or(0),
    };
    (at != 0).then_some(at)
}
