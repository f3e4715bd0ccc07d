//! What a call's exit cannot tell any more, learned at its entry by a program on the syscall's own tracepoint
//! (`syscalls:sys_enter_futex`, `syscalls:sys_enter_close`), which runs for that syscall alone, not for every
//! call of the machine as a `sys_enter` program would: what is left of a timed futex wait's timeout as it starts
//! (`within=`; an absolute deadline minus the time then, on `CLOCK_MONOTONIC` or, read as the TAI clock less the
//! offset user space found, `CLOCK_REALTIME`), and what the descriptor a close closes is (gone from the
//! task's table by the exit). `sys_exit` takes them by thread ([`take_within`], [`take_closing`]).

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_ktime_get_tai_ns, bpf_probe_read_user},
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use phoebe_common::{
    TARGETS_CAPACITY,
    fd::{self, Closing},
    shape::within::{self, Entry, Timeout},
    state,
};

use crate::{current, targets::state_of};

/// `CLOCK_TAI` less `CLOCK_REALTIME` in nanoseconds, and whether user space set it
/// (`phoebe_common::shape::within::TAI_OFFSET_GLOBAL`).
#[unsafe(no_mangle)]
static PHOEBE_TAI_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static PHOEBE_REALTIME: u32 = 0;

/// The TAI offset user space set.
#[inline(always)]
fn tai_offset() -> u64 {
    // SAFETY: a valid, aligned static; the volatile read keeps the compiler from folding the default.
    unsafe { core::ptr::read_volatile(&PHOEBE_TAI_OFFSET) }
}

/// Each thread's timed wait in progress, by tid. An LRU map: a thread that dies in a wait leaves its element for
/// the map to drop.
#[map]
static PHOEBE_WITHIN: LruHashMap<u32, Entry> = LruHashMap::with_max_entries(TARGETS_CAPACITY, 0);

/// The close in progress on each CPU, with its thread: a close rarely sleeps, so its exit almost always comes on
/// the CPU of its entry, and a per-CPU slot costs a few instructions where a hash map's insert, lookup and delete
/// cost about 200 ns per close. A thread that moved, or whose slot another close took meanwhile, finds another
/// thread's (or descriptor's) close there: its descriptor stays unknown.
#[map]
static PHOEBE_CLOSING: PerCpuArray<Closing> = PerCpuArray::with_max_entries(1, 0);

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
    let Some(clock) = within::timeout(op & 0xffff_ffff) else {
        return 0;
    };
    let now = match clock {
        Timeout::Relative => 0,
        // The kernel's monotonic clock, which an absolute FUTEX_WAIT_BITSET deadline is on.
        Timeout::Monotonic => crate::now(),
        Timeout::Realtime => {
            if crate::global(&PHOEBE_REALTIME) == 0 {
                return 0;
            }
            // SAFETY: takes no arguments and only reads the TAI clock (Linux 6.1).
            unsafe { bpf_ktime_get_tai_ns() }.wrapping_sub(tai_offset())
        }
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
    let left = given.saturating_sub(now);
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

#[tracepoint(category = "syscalls", name = "sys_enter_close")]
pub fn phoebe_close_in(ctx: TracePointContext) -> u32 {
    let (tgid, tid) = current();
    if state_of(tgid) != state::COUNTING {
        return 0;
    }
    // SAFETY: the record's field at a constant offset within it (the verifier checks the context access).
    let reg = unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(arg(0)).cast::<u64>()) };
    let code = crate::fdfacts::facts(reg);
    let kind = code as u8;
    // A regular file's or directory's path, for the walk at the exit: from the file just read.
    let (mnt, dentry) = if kind == fd::kind::FILE || kind == fd::kind::DIR {
        let (mnt_at, dentry_at) = crate::walk::path_members();
        match (
            crate::fdfacts::file_word(mnt_at),
            crate::fdfacts::file_word(dentry_at),
        ) {
            (Some((_, mnt)), Some((_, dentry))) => (mnt, dentry),
            _ => (0, 0),
        }
    } else {
        (0, 0)
    };
    if let Some(slot) = PHOEBE_CLOSING.get_ptr_mut(0) {
        // SAFETY: index 0 exists (length 1); this CPU's slot, written by this program only, which does not nest
        // on a CPU, and read by `sys_exit` on this CPU.
        unsafe {
            *slot = Closing {
                tid: u64::from(tid),
                fd: reg,
                code,
                mnt,
                dentry,
            }
        };
    }
    0
}

/// What the current thread's close of descriptor register `reg` closed, as its entry left it; `None` when the
/// entry program was not there or left another call's.
#[inline(always)]
pub(crate) fn take_closing(tid: u32, reg: u64) -> Option<Closing> {
    let slot = PHOEBE_CLOSING.get_ptr_mut(0)?;
    // SAFETY: index 0 exists; this CPU's slot (see `PHOEBE_CLOSING`), copied out and its thread cleared, so
    // that no later exit takes it again.
    let closing = unsafe {
        let closing = *slot;
        (*slot).tid = 0;
        closing
    };
    (closing.tid == u64::from(tid) && closing.fd == reg).then_some(closing)
}
