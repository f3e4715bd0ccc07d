//! What a call's exit cannot tell any more, learned at its entry by a program on the syscall's own tracepoint
//! (`syscalls:sys_enter_futex`), which runs for that syscall alone, not for every call of the machine as a
//! `sys_enter` program would: what is left of a timed futex wait's timeout as it starts (`within=`; an absolute
//! deadline minus the time then). `sys_exit` takes it by thread ([`take_within`]).

use aya_ebpf::{
    EbpfContext,
    helpers::bpf_probe_read_user,
    macros::{map, tracepoint},
    maps::LruHashMap,
    programs::TracePointContext,
};
use phoebe_common::{
    TARGETS_CAPACITY,
    shape::within::{self, Entry},
    state,
};

use crate::{current, targets::state_of};

/// Each thread's timed wait in progress, by tid. An LRU map: a thread that dies in a wait leaves its element for
/// the map to drop.
#[map]
static PHOEBE_WITHIN: LruHashMap<u32, Entry> = LruHashMap::with_max_entries(TARGETS_CAPACITY, 0);

/// Byte offset of the syscall's argument `i` in the tracepoint's record (`struct syscall_trace_enter`: the
/// 8-byte common header, the syscall number, then the six arguments as unsigned longs).
const fn arg(i: usize) -> usize {
    16 + 8 * i
}

#[tracepoint(category = "syscalls", name = "sys_enter_futex")]
pub fn phoebe_futex_in(ctx: TracePointContext) -> u32 {
    let (tgid, tid) = current();
    if state_of(tgid) != state::COUNTING {
        return 0;
    }
    // SAFETY: the record's fields at constant offsets within it (the verifier checks each context access).
    let (op, timeout) = unsafe {
        let record = ctx.as_ptr().cast::<u8>();
        (
            core::ptr::read(record.add(arg(1)).cast::<u64>()),
            core::ptr::read(record.add(arg(3)).cast::<u64>()),
        )
    };
    if timeout == 0 {
        return 0;
    }
    let Some(absolute) = within::monotonic_deadline(op & 0xffff_ffff) else {
        return 0;
    };
    // `struct __kernel_timespec { tv_sec; tv_nsec; }`, which the kernel refuses (EINVAL) unless
    // 0 <= tv_nsec < 10^9 and tv_sec >= 0: such a call has no class.
    // SAFETY: the helper checks the read of the task's memory.
    let Ok([secs, nanos]) = (unsafe { bpf_probe_read_user(timeout as *const [u64; 2]) }) else {
        return 0;
    };
    if secs > i64::MAX as u64 || nanos >= 1_000_000_000 {
        return 0;
    }
    // Saturated by hand: `saturating_mul` is a 128-bit multiplication, a builtin BPF does not have. Anything
    // near the limit is `long` anyway.
    let given = if secs >= 18_000_000_000 {
        u64::MAX
    } else {
        secs * 1_000_000_000 + nanos
    };
    // The kernel's monotonic clock, which an absolute FUTEX_WAIT_BITSET deadline is on.
    let left = if absolute {
        given.saturating_sub(crate::now())
    } else {
        given
    };
    let entry = Entry {
        timeout,
        class: within::class(left),
    };
    // A full map drops its least recently used element.
    let _ = PHOEBE_WITHIN.insert(tid, entry, 0);
    0
}

/// The class of the current thread's timed futex wait whose timeout pointer is `timeout`, as its entry left it;
/// `None` when the entry program was not there or left another call's.
#[inline(always)]
pub(crate) fn take_within(tid: u32, timeout: u64) -> Option<u64> {
    // SAFETY: a plain-data value of a successful lookup, copied out at once.
    let entry = unsafe { PHOEBE_WITHIN.get(tid) }.copied()?;
    let _ = PHOEBE_WITHIN.remove(tid);
    (entry.timeout == timeout).then_some(entry.class)
}
