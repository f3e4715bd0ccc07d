//! The target set: the processes phoebe follows, a tgid map seeded by user space with the launched child,
//! grown at `sched_process_fork`, moved to counting at `sched_process_exec`, pruned at `sched_process_exit` (so
//! that a recycled pid is not followed). Shared by the observer and the injector.
//!
//! `PHOEBE_TGIDS` mirrors the states of `PHOEBE_TARGETS`, one byte per tgid in an array, for the programs that run
//! on every syscall of the machine ([`state_of`]): an array lookup is inlined by the verifier, a hash lookup hashes
//! and walks a bucket. Every program that changes `PHOEBE_TARGETS` changes the mirror with it ([`set_state`],
//! [`forget`]); the hash stays complete and authoritative.

use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    helpers::bpf_probe_read_kernel,
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap},
    programs::RawTracePointContext,
};
use phoebe_common::{TARGETS_CAPACITY, TGID_BLOCK, state};

use crate::{
    current, global,
    observe::{PHOEBE_ENTERED, PHOEBE_ENTTID, PHOEBE_LATENCY},
};

#[unsafe(no_mangle)]
static PHOEBE_TASK_TGID_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_EXIT_HAS_GROUP_DEAD: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_TGID_MIRROR: u32 = 0;

// Not preallocated: processes come and go at fork and exit, far less often than syscalls; loading then does not
// allocate and clear TARGETS_CAPACITY elements.
#[map]
pub(crate) static PHOEBE_TARGETS: HashMap<u32, u32> =
    HashMap::with_max_entries(TARGETS_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static PHOEBE_TGIDS: Array<[u8; TGID_BLOCK]> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// The state of `tgid` (0: not a target): its byte in `PHOEBE_TGIDS` when the mirror is on, otherwise (or when the
/// tgid is beyond the array: `pid_max` raised after the map was sized) its value in the hash. The verifier
/// resolves the test of the read-only global, so the path not taken costs nothing.
#[inline(always)]
pub(crate) fn state_of(tgid: u32) -> u32 {
    if global(&PHOEBE_TGID_MIRROR) != 0
        && let Some(block) = PHOEBE_TGIDS.get_ptr(tgid / TGID_BLOCK as u32)
    {
        // SAFETY: the pointer is a live element of an array map, TGID_BLOCK bytes; the index is below TGID_BLOCK.
        return u32::from(unsafe { (*block)[tgid as usize % TGID_BLOCK] });
    }
    // SAFETY: plain u32 value of a successful lookup.
    unsafe { PHOEBE_TARGETS.get(tgid) }.copied().unwrap_or(0)
}

/// Writes `tgid`'s byte in the mirror (its state, or 0 to forget it), when the mirror is on.
#[inline(always)]
fn mirror(tgid: u32, st: u32) {
    if global(&PHOEBE_TGID_MIRROR) == 0 {
        return;
    }
    if let Some(block) = PHOEBE_TGIDS.get_ptr_mut(tgid / TGID_BLOCK as u32) {
        // SAFETY: a live element of an array map, TGID_BLOCK bytes; the index is below TGID_BLOCK. A single-byte
        // store: the neighbours' bytes, which other CPUs may write, are not touched.
        unsafe { (*block)[tgid as usize % TGID_BLOCK] = st as u8 };
    }
}

/// Sets the state of a target already in `PHOEBE_TARGETS`, in the hash and in the mirror.
#[inline(always)]
pub(crate) fn set_state(tgid: u32, st: u32) {
    if let Some(value) = PHOEBE_TARGETS.get_ptr_mut(tgid) {
        // SAFETY: plain u32 value of a successful lookup; an element removed meanwhile is freed only after every
        // running program is done (RCU), so the pointer stays valid for this program.
        unsafe { *value = st };
        mirror(tgid, st);
    }
}

/// Removes a target from the mirror and the hash.
#[inline(always)]
fn forget(tgid: u32) {
    mirror(tgid, 0);
    let _ = PHOEBE_TARGETS.remove(tgid);
}

/// `sched_process_fork(parent, child)`, run by the parent: a child of a target is a target.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn phoebe_fork(ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current();
    let st = state_of(tgid);
    if st == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(1);
    let offset = global(&PHOEBE_TASK_TGID_OFFSET) as usize;
    // SAFETY: `child` is the new `struct task_struct *`; the offset of `tgid` was read from this kernel's BTF; the
    // helper checks the read.
    let Ok(child_tgid) = (unsafe { bpf_probe_read_kernel(child.wrapping_add(offset).cast::<u32>()) }) else {
        return 0;
    };
    if child_tgid != tgid {
        // A full map loses the child, which is then not counted; nothing better can be done in the kernel.
        if PHOEBE_TARGETS.insert(child_tgid, st, 0).is_ok() {
            mirror(child_tgid, st);
        }
    }
    0
}

/// `sched_process_exec(p, old_pid, bprm)`, run by the task that exec'd: the launched target starts counting.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn phoebe_exec(_ctx: RawTracePointContext) -> i32 {
    let (tgid, _) = current();
    // SAFETY: plain u32 value of a successful lookup.
    if unsafe { PHOEBE_TARGETS.get(tgid) }.copied() == Some(state::LAUNCHED) {
        // The launched process is single-threaded at its exec: nothing else changes its state meanwhile.
        set_state(tgid, state::EXECED);
    }
    0
}

/// `sched_process_exit(p[, group_dead])`, run by each exiting thread: forget the thread's entry time, and the
/// process when its last thread ends (so that a recycled pid is not counted).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn phoebe_pexit(ctx: RawTracePointContext) -> i32 {
    let (tgid, tid) = current();
    if global(&PHOEBE_LATENCY) != 0 {
        match PHOEBE_ENTTID.get_ptr_mut(tid) {
            // SAFETY: a live element of an array map; this thread's, and the thread is ending.
            Some(slot) => unsafe { *slot = 0 },
            None => {
                let _ = PHOEBE_ENTERED.remove(tid);
            }
        }
    }
    let group_dead = if global(&PHOEBE_EXIT_HAS_GROUP_DEAD) != 0 {
        ctx.arg::<u64>(1) & 0xff != 0
    } else {
        // Older kernels: the leader's exit stands for the process (a leader that exits before its threads ends
        // counting early there).
        tid == tgid
    };
    if group_dead {
        forget(tgid);
    }
    0
}
