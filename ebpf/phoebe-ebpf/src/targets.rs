//! The target set: the processes phoebe follows, a tgid map seeded by user space with the launched child,
//! grown at `sched_process_fork`, moved to counting at `sched_process_exec`, pruned at `sched_process_exit` (so
//! that a recycled pid is not followed). Shared by the observer and the injector.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{map, raw_tracepoint},
    maps::HashMap,
    programs::RawTracePointContext,
};
use phoebe_common::{TARGETS_CAPACITY, state};

use crate::{
    current, global,
    observe::{PHOEBE_ENTERED, PHOEBE_LATENCY},
};

#[unsafe(no_mangle)]
static PHOEBE_TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_EXIT_HAS_GROUP_DEAD: u32 = 0;

#[map]
pub(crate) static PHOEBE_TARGETS: HashMap<u32, u32> = HashMap::with_max_entries(TARGETS_CAPACITY, 0);

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
