//! phoebe's eBPF programs: count the system calls of a process tree, per (process, syscall, errno), in
//! per-CPU maps; follow the tree through fork and prune it at exit; optionally time each call.
//!
//! Built for `bpfel-unknown-none` by the `phoebe` crate's `build.rs` (aya-build); on the host it compiles to an
//! empty program so that `cargo clippy --workspace` checks it. Loaded and read by `phoebe::backend::ebpf`. Owns
//! nothing but the in-kernel side; the layout of every map is in `phoebe-common`.

#![cfg_attr(target_arch = "bpf", no_std, no_main)]

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{fentry, lsm, map, raw_tracepoint},
    maps::{HashMap, PerCpuArray, PerCpuHashMap},
    programs::{FEntryContext, LsmContext, RawTracePointContext},
};
use phoebe_common::{COUNTS_CAPACITY, CountKey, CountValue, TARGETS_CAPACITY, state};

/// Byte offset of `orig_ax` (the syscall number) in the `struct pt_regs` that `sys_exit` passes: part of the
/// architecture's user ABI (`struct user_regs_struct`), so no BTF lookup is needed.
#[cfg(any(bpf_target_arch = "x86_64", not(bpf_target_arch = "aarch64")))]
const PT_REGS_SYSCALL_NR: usize = 15 * 8;
/// arm64: `regs[31], sp, pc, pstate, orig_x0`, then `syscallno`.
#[cfg(bpf_target_arch = "aarch64")]
const PT_REGS_SYSCALL_NR: usize = 35 * 8;

/// The kernel's `MAX_ERRNO`: returns in `-4095..=-1` are errors.
const MAX_ERRNO: i64 = 4095;

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

#[unsafe(no_mangle)]
static PHOEBE_TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_EXIT_HAS_GROUP_DEAD: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_PER_PROCESS: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_LATENCY: u32 = 0;

#[map]
static PHOEBE_TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(TARGETS_CAPACITY, 0);
#[map]
static PHOEBE_COUNTS: PerCpuHashMap<CountKey, CountValue> =
    PerCpuHashMap::with_max_entries(COUNTS_CAPACITY, 0);
#[map]
static PHOEBE_ENTERED: HashMap<u32, u64> = HashMap::with_max_entries(TARGETS_CAPACITY, 0);
#[map]
static PHOEBE_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// A global set by user space before loading; `read_volatile` keeps the compiler from folding the default.
#[inline(always)]
fn global(value: &'static u32) -> u32 {
    // SAFETY: `value` is a valid, aligned static; the volatile read only prevents constant folding.
    unsafe { core::ptr::read_volatile(value) }
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: bpf_ktime_get_ns takes no arguments and only reads the monotonic clock.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn current() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn phoebe_sc_exit(ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    let Some(target) = PHOEBE_TARGETS.get_ptr_mut(tgid) else {
        return 0;
    };
    // SAFETY: the pointer comes from a successful lookup in a preallocated hash map and the value is a plain u32.
    let st = unsafe { *target };
    if st != state::COUNTING {
        if st == state::EXECED {
            // This is the return of the exec that started the target: not one of its calls; count from now on.
            // SAFETY: as above; only this process's own exit path moves it out of EXECED.
            unsafe { *target = state::COUNTING };
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
    let key = CountKey {
        tgid: if global(&PHOEBE_PER_PROCESS) != 0 { tgid } else { 0 },
        nr: nr as u32,
        errno,
        pad: 0,
    };
    let mut latency = 0u64;
    if global(&PHOEBE_LATENCY) != 0
        // SAFETY: the value is a plain u64 written by `phoebe_sc_enter` for this thread.
        && let Some(entered) = unsafe { PHOEBE_ENTERED.get(tid) }
    {
        latency = now().saturating_sub(*entered);
    }
    count(&key, latency);
    0
}

/// Adds one call to this CPU's counters of `key`.
#[inline(always)]
fn count(key: &CountKey, latency: u64) {
    for _ in 0..2 {
        if let Some(value) = PHOEBE_COUNTS.get_ptr_mut(key) {
            // SAFETY: the pointer is this CPU's slot of the element, valid while the program runs; BPF programs
            // do not migrate between CPUs, so no other CPU writes it.
            unsafe {
                (*value).calls += 1;
                (*value).latency_ns_sum += latency;
                if latency > (*value).latency_ns_max {
                    (*value).latency_ns_max = latency;
                }
            }
            return;
        }
        let value = CountValue {
            calls: 1,
            latency_ns_sum: latency,
            latency_ns_max: latency,
        };
        if PHOEBE_COUNTS.insert(key, value, u64::from(BPF_NOEXIST)).is_ok() {
            return;
        }
        // Another CPU created the element meanwhile (EEXIST): look it up again. Otherwise the map is full.
    }
    if let Some(lost) = PHOEBE_LOST.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); per-CPU slot, written by this CPU only.
        unsafe { *lost += 1 };
    }
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn phoebe_sc_enter(_ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    // SAFETY: plain u32 value of a successful lookup.
    if let Some(st) = unsafe { PHOEBE_TARGETS.get(tgid) }
        && *st == state::COUNTING
    {
        let _ = PHOEBE_ENTERED.insert(tid, now(), 0);
    }
    0
}

/// `sched_process_fork(parent, child)`, run by the parent: a child of a target is a target.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn phoebe_fork(ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current();
    // SAFETY: plain u32 value of a successful lookup.
    let Some(st) = (unsafe { PHOEBE_TARGETS.get(tgid) }).copied() else {
        return 0;
    };
    let child: *const u8 = ctx.arg(1);
    let offset = global(&PHOEBE_TASK_TGID_OFFSET) as usize;
    // SAFETY: `child` is the new `struct task_struct *`; the offset of `tgid` was read from this kernel's BTF; the
    // helper checks the read.
    let Ok(child_tgid) = (unsafe { bpf_probe_read_kernel(child.wrapping_add(offset).cast::<u32>()) }) else {
        return 0;
    };
    if child_tgid != tgid {
        // A full map loses the child, which is then not counted; nothing better can be done in the kernel.
        let _ = PHOEBE_TARGETS.insert(child_tgid, st, 0);
    }
    0
}

/// `sched_process_exec(p, old_pid, bprm)`, run by the task that exec'd: the launched target starts counting.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn phoebe_exec(_ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current();
    if let Some(st) = PHOEBE_TARGETS.get_ptr_mut(tgid) {
        // SAFETY: plain u32 value of a successful lookup; the launched process is single-threaded at its exec.
        unsafe {
            if *st == state::LAUNCHED {
                *st = state::EXECED;
            }
        }
    }
    0
}

/// `sched_process_exit(p[, group_dead])`, run by each exiting thread: forget the thread's entry time, and the
/// process when its last thread ends (so that a recycled pid is not counted).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn phoebe_pexit(ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    if global(&PHOEBE_LATENCY) != 0 {
        let _ = PHOEBE_ENTERED.remove(tid);
    }
    let group_dead = if global(&PHOEBE_EXIT_HAS_GROUP_DEAD) != 0 {
        ctx.arg::<u64>(1) & 0xff != 0
    } else {
        // Older kernels: the leader's exit stands for the process (a leader that exits before its threads ends
        // counting early there).
        tid == tgid
    };
    if group_dead {
        let _ = PHOEBE_TARGETS.remove(tgid);
    }
    0
}

/// `phoebe doctor`'s probe of plain raw tracepoints (never attached by the observer).
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn phoebe_probe_rt(_ctx: RawTracePointContext) -> i32 {
    0
}

/// `phoebe doctor`'s probe of trampoline programs: does nothing, on a function every kernel has.
#[fentry(function = "do_sys_openat2")]
pub fn phoebe_probe_fe(_ctx: FEntryContext) -> u32 {
    0
}

/// `phoebe doctor`'s probe of BPF LSM programs: allows everything.
#[lsm(hook = "file_open")]
pub fn phoebe_probe_lsm(_ctx: LsmContext) -> i32 {
    0
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach a panic; this is never executed.
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// On the host this crate is an empty program, so that `cargo clippy --workspace` can check it.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
