//! What phoebe's eBPF programs (`phoebe-ebpf`) and its user space (`phoebe::backend::ebpf`) must agree on: the
//! layout of map keys and values, the states of a target process, and the names of maps, programs and globals.
//!
//! `no_std` and dependency-free for the eBPF side; the `user` feature adds `aya::Pod` so that user space can read
//! the maps. Owns no logic but a rule's window, `max` and weights ([`decide`]), which both sides run, and
//! [`shape`]'s table of the register bits a call's shape reads.

#![no_std]

pub mod decide;
pub mod fd;

/// Key of the per-CPU counter map: one (process, syscall, errno) triple.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    /// Thread-group id of the caller, or 0 when counters are not split by process (`observe`).
    pub tgid: u32,
    /// Native syscall number.
    pub nr: u32,
    /// The errno the call returned, 0 for success. Restart codes (≥ 512) are kept here and dropped in user space.
    pub errno: u32,
    /// Explicit padding: the kernel hashes every byte of a key.
    pub pad: u32,
}

/// Cumulative counters of one key on one CPU. Never reset while the programs run: user space reads them and
/// subtracts its previous reading, so there is no read-then-clear race.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountValue {
    /// Completed calls.
    pub calls: u64,
    /// Sum of entry-to-exit latencies in nanoseconds (0 unless latency is measured).
    pub latency_ns_sum: u64,
    /// Longest single call so far, in nanoseconds (0 unless latency is measured).
    pub latency_ns_max: u64,
}

/// Upper bounds (inclusive, in nanoseconds) of the latency histogram's buckets ([`maps::LATENCY_HISTOGRAMS`]):
/// 1-2.5-5 steps from 250 ns (a cheap call) to 10 s (a blocking one), the bounds a Prometheus histogram exposes as
/// `le` in seconds. A call longer than the last bound lands in the last slot (`le="+Inf"` only).
pub const LATENCY_BOUNDS_NS: [u64; 24] = [
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Slots of a [`LatencyBuckets`]: one per bound, then one for longer calls.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

/// One key's latency histogram on one CPU (or summed over CPUs): calls per bucket (not cumulative), and the sum of
/// their latencies. Only calls whose entry was timed are counted, so `counts` may sum to a little less than the
/// key's [`CountValue::calls`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyBuckets {
    /// `counts[i]`: calls that took at most `LATENCY_BOUNDS_NS[i]` and more than the bound before; the last slot:
    /// longer than every bound.
    pub counts: [u64; LATENCY_BUCKETS],
    /// Sum of those calls' latencies, in nanoseconds.
    pub sum_ns: u64,
}

impl LatencyBuckets {
    /// No call yet.
    pub const ZERO: LatencyBuckets = LatencyBuckets {
        counts: [0; LATENCY_BUCKETS],
        sum_ns: 0,
    };
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        LatencyBuckets::ZERO
    }
}

/// The slot of [`LatencyBuckets::counts`] a call of `ns` nanoseconds goes to. A scan over constants, which the
/// compiler unrolls: the eBPF verifier sees no loop and no memory access.
#[inline(always)]
pub fn latency_bucket(ns: u64) -> usize {
    let mut i = 0;
    while i < LATENCY_BOUNDS_NS.len() {
        if ns <= LATENCY_BOUNDS_NS[i] {
            return i;
        }
        i += 1;
    }
    LATENCY_BOUNDS_NS.len()
}

/// One syscall's errors on one CPU in [`maps::ERRORS`]: the first errno that syscall returned on that CPU, and
/// the counters of that errno. A call that fails with another errno is counted in [`maps::COUNTS`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorSlot {
    /// The errno this slot counts; 0 while the syscall has not failed on this CPU.
    pub errno: u32,
    /// Explicit padding.
    pub pad: u32,
    pub value: CountValue,
}

/// Slots of the per-CPU arrays of successful calls ([`maps::SUCCESSES`]) and of first errors ([`maps::ERRORS`]), indexed by syscall number: every native
/// syscall of x86_64 and arm64 is below it. A success of a larger number goes to the counter map instead.
pub const SUCCESS_SLOTS: u32 = 512;

/// Target states per tgid in [`maps::TGIDS`]: one byte each, `TGID_BLOCK` to an array element (the element of
/// tgid `t` is `t / TGID_BLOCK`, its byte `t % TGID_BLOCK`; in the memory-mapped array, byte `t`).
pub const TGID_BLOCK: usize = 64;
/// Elements of [`maps::TGIDS`] that cover every possible pid (`PID_MAX_LIMIT`, 2^22). The map is declared with one
/// element (a loader that does not turn the mirror on pays nothing for it); the observer sizes it from
/// `/proc/sys/kernel/pid_max`, up to this. A tgid beyond the map is looked up in [`maps::TARGETS`].
pub const TGIDS_MAX_BLOCKS: u32 = (1 << 22) / TGID_BLOCK as u32;

/// Most elements user space gives [`maps::ENTERED_BY_TID`] (8 MiB of entry times); a larger tid uses
/// [`maps::ENTERED`].
pub const ENTERED_MAX_TIDS: u32 = 1 << 20;

pub mod shape;

/// States of a thread group in the target map.
pub mod state {
    /// Launched by phoebe, stopped or running its launcher code: not counted until its exec.
    pub const LAUNCHED: u32 = 1;
    /// Exec'd: counting starts after the return of that exec, which is not one of the target's calls.
    pub const EXECED: u32 = 2;
    /// Counted.
    pub const COUNTING: u32 = 3;
}

/// Map names (the kernel keeps at most 15 bytes of a name).
pub mod maps {
    /// `HashMap<u32 tgid, u32 state>` (not preallocated): the processes whose calls are counted.
    pub const TARGETS: &str = "PHOEBE_TARGETS";
    /// `PerCpuHashMap<CountKey, CountValue>` (not preallocated): failed calls, and every call when counters are
    /// split by process.
    pub const COUNTS: &str = "PHOEBE_COUNTS";
    /// `PerCpuHashMap<shape::ShapeKey, CountValue>` (not preallocated): calls of syscalls whose shape has register
    /// components, by those registers' kept bits (`observe` only, not per process).
    pub const SHAPES: &str = "PHOEBE_SHAPES";
    /// `PerCpuHashMap<shape::PathKey, CountValue>` (not preallocated): calls of path syscalls by the FNV-1a hash
    /// of their absolute path argument (hash 0: relative, unreadable or truncated, an unknown path).
    pub const PATHS: &str = "PHOEBE_PATHS";
    /// `HashMap<u64 hash, shape::PathText>` (not preallocated): each hash's path, stored at its first call.
    pub const PATH_TEXT: &str = "PHOEBE_PATHTXT";
    /// `PerCpuArray<CountValue>` of [`super::SUCCESS_SLOTS`], indexed by syscall number: successful calls when
    /// counters are not split by process (`observe`), counted without a hash lookup. User space merges it into
    /// the same snapshot as `COUNTS` (key `{tgid: 0, nr, errno: 0}`).
    pub const SUCCESSES: &str = "PHOEBE_SUCCESS";
    /// `PerCpuArray<ErrorSlot>` of [`super::SUCCESS_SLOTS`], indexed by syscall number: when counters are not
    /// split by process, each syscall's first errno on each CPU is counted here without a hash lookup (a storm of
    /// one error is the common case); merged into the snapshot under `{tgid: 0, nr, errno}`.
    pub const ERRORS: &str = "PHOEBE_ERRORS";
    /// `Array<[u8; TGID_BLOCK]>`, memory-mappable: the state of every tgid in `TARGETS` again, one byte each (0:
    /// not a target), so that the programs on every syscall decide with an array lookup the verifier inlines
    /// instead of a hash lookup. Used only when [`super::globals::TGID_MIRROR`] is 1; then the programs keep it
    /// equal to `TARGETS`, and user space writes its own targets' bytes through a memory mapping (single-byte
    /// stores: no read-modify-write of a neighbour's state).
    pub const TGIDS: &str = "PHOEBE_TGIDS";
    /// `HashMap<u32 tid, u64 ns>` (not preallocated): when each targeted thread entered its current call
    /// (latency only), for a tid beyond [`ENTERED_BY_TID`].
    pub const ENTERED: &str = "PHOEBE_ENTERED";
    /// `Array<u64>` indexed by tid: the same entry times (0: none), so that both syscall programs find them with
    /// an array lookup the verifier inlines instead of a hash lookup. Declared with one element; user space sizes
    /// it with `--latency` (`pid_max` elements, at most [`super::ENTERED_MAX_TIDS`]).
    pub const ENTERED_BY_TID: &str = "PHOEBE_ENTTID";
    /// `PerCpuHashMap<CountKey, LatencyBuckets>` (not preallocated): latency histograms, written only when
    /// [`super::globals::HISTOGRAMS`] is 1 (`monitor --latency`); keyed as `COUNTS`.
    pub const LATENCY_HISTOGRAMS: &str = "PHOEBE_LATHIST";
    /// `PerCpuArray<u64>` of length 1: counter updates lost because `COUNTS` was full.
    pub const LOST: &str = "PHOEBE_LOST";
}

/// Program names; every program phoebe loads starts with [`programs::PREFIX`], which is how tests check that
/// none stays loaded after phoebe exits.
pub mod programs {
    pub const PREFIX: &str = "phoebe_";
    pub const SYS_EXIT: &str = "phoebe_sc_exit";
    pub const SYS_ENTER: &str = "phoebe_sc_enter";
    /// A measurement aid for the benches: returns at once, attached to `sys_exit` to time the hook itself.
    pub const SYS_EXIT_NOP: &str = "phoebe_sc_nop";
    pub const FORK: &str = "phoebe_fork";
    pub const EXEC: &str = "phoebe_exec";
    pub const EXIT: &str = "phoebe_pexit";
    /// On `syscalls:sys_enter_futex`: what is left of a timed wait's timeout as it starts (`shape::within`).
    pub const FUTEX_ENTER: &str = "phoebe_futex_in";
    /// On `syscalls:sys_enter_close`: what the descriptor a close closes is (`fd::Closing`).
    pub const CLOSE_ENTER: &str = "phoebe_close_in";
    /// `phoebe doctor`'s probes: a trivial program of each kind, loaded and attached to see what the kernel allows.
    pub const PROBE_RAW_TP: &str = "phoebe_probe_rt";
    pub const PROBE_FENTRY: &str = "phoebe_probe_fe";
    pub const PROBE_LSM: &str = "phoebe_probe_lsm";
}

/// Globals user space sets before loading (`EbpfLoader::override_global`).
pub mod globals {
    /// `u32`: byte offset of `tgid` in `struct task_struct`, read from the kernel's BTF.
    pub const TASK_TGID_OFFSET: &str = "PHOEBE_TASK_TGID_OFFSET";
    /// `u32`: 1 when `sched_process_exit` passes `group_dead` as its second argument (Linux ≥ 6.16).
    pub const EXIT_HAS_GROUP_DEAD: &str = "PHOEBE_EXIT_HAS_GROUP_DEAD";
    /// `u32`: 1 to key counters by process (`monitor`), 0 to sum them (`observe`).
    pub const PER_PROCESS: &str = "PHOEBE_PER_PROCESS";
    /// `u32`: 1 when `sys_enter` is attached and latencies are measured.
    pub const LATENCY: &str = "PHOEBE_LATENCY";
    /// `u32`: 1 to also count each timed call in its latency histogram ([`super::maps::LATENCY_HISTOGRAMS`]);
    /// only with [`LATENCY`].
    pub const HISTOGRAMS: &str = "PHOEBE_HISTOGRAMS";
    /// `u32`: 1 when user space sized [`super::maps::TGIDS`] and writes its targets there too; 0 (the default):
    /// the programs use `TARGETS` alone.
    pub const TGID_MIRROR: &str = "PHOEBE_TGID_MIRROR";
}

/// Capacity of the counter map: distinct (process, syscall, errno) triples.
pub const COUNTS_CAPACITY: u32 = 16384;
/// Capacity of the target map: processes followed at once.
pub const TARGETS_CAPACITY: u32 = 32768;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `CountKey` is `repr(C)`, `Copy`, made only of `u32`s with explicit padding: every bit pattern is valid
    // and there are no implicit padding bytes.
    unsafe impl aya::Pod for super::CountKey {}
    // SAFETY: `CountValue` is `repr(C)`, `Copy`, three `u64`s: every bit pattern is valid, no padding.
    unsafe impl aya::Pod for super::CountValue {}
    // SAFETY: `LatencyBuckets` is `repr(C)`, `Copy`, only `u64`s: every bit pattern is valid, no padding.
    unsafe impl aya::Pod for super::LatencyBuckets {}
    // SAFETY: `ErrorSlot` is `repr(C)`, `Copy`, two `u32`s then a `CountValue` (8-aligned, right after 8 bytes):
    // every bit pattern is valid, no implicit padding.
    unsafe impl aya::Pod for super::ErrorSlot {}
}

/// The in-kernel injector (BPF LSM): rules per syscall number, counters per rule, one event per injection.
pub mod inject {
    /// Syscall numbers the rule table covers (`0..SYSCALL_SLOTS`): every native syscall of x86_64 and arm64.
    pub const SYSCALL_SLOTS: u32 = 512;
    /// Rules one syscall can have at once (in rule order, as the user gave them).
    pub const RULES_PER_SYSCALL: usize = 4;
    /// Weighted errnos one rule can choose from.
    pub const ERRNOS_PER_RULE: usize = 8;
    /// Rules one run can have.
    pub const MAX_RULES: u32 = 64;
    /// Size of the injection event ring buffer, in bytes (a power of two, a multiple of the page size).
    pub const EVENTS_BYTES: u32 = 1 << 20;
    /// `KernelRule::max` and `KernelRule::last` meaning "no limit".
    pub const UNLIMITED: u64 = u64::MAX;

    /// The LSM hook through which a syscall's calls are failed; each syscall has exactly one, so that a call
    /// that passes several hooks (a `write` to a socket also reaches `socket_sendmsg`) is decided once.
    pub mod hook {
        pub const FILE_OPEN: u32 = 1;
        pub const FILE_READ: u32 = 2;
        pub const FILE_WRITE: u32 = 3;
        pub const SOCKET_CREATE: u32 = 4;
        pub const SOCKET_BIND: u32 = 5;
        pub const SOCKET_CONNECT: u32 = 6;
        pub const SOCKET_LISTEN: u32 = 7;
        pub const SOCKET_ACCEPT: u32 = 8;
        pub const SOCKET_SENDMSG: u32 = 9;
        pub const SOCKET_RECVMSG: u32 = 10;
        pub const SOCKET_SHUTDOWN: u32 = 11;
    }

    /// One user rule as the kernel applies it to one syscall.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct KernelRule {
        /// Index of the rule among the user's rules (and in the counter map).
        pub rule: u32,
        /// Inject when `bpf_get_prandom_u32() < threshold`, unless `always`.
        pub threshold: u32,
        /// 1: probability 1, no roll.
        pub always: u32,
        /// How many of `errnos` are used (1..=ERRNOS_PER_RULE).
        pub errno_count: u32,
        /// Positive errnos, 1..=4095.
        pub errnos: [u32; ERRNOS_PER_RULE],
        /// Cumulative weights scaled to u32: errno `i` is picked when a second roll is below `errno_below[i]` (and
        /// not below the earlier ones); the last used errno takes whatever is left.
        pub errno_below: [u32; ERRNOS_PER_RULE],
        /// The window of matched calls (1-based): first, last (`UNLIMITED`: none), every.
        pub first: u64,
        pub last: u64,
        pub every: u64,
        /// Most injections of this rule (`UNLIMITED`: none).
        pub max: u64,
    }

    /// The rules of one syscall: the map value at index = syscall number.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SyscallRules {
        /// One of [`hook`]; 0 when the syscall has no rule.
        pub hook: u32,
        /// Rules used in `rules` (0..=RULES_PER_SYSCALL).
        pub count: u32,
        /// Whether an injected `EPIPE` raises SIGPIPE in the calling thread, as the kernel's does: one of
        /// [`sigpipe`].
        pub sigpipe: u32,
        pub pad: u32,
        pub rules: [KernelRule; RULES_PER_SYSCALL],
    }

    /// [`SyscallRules::sigpipe`]: whether an injected `EPIPE` of the syscall raises SIGPIPE.
    pub mod sigpipe {
        /// Never (not a write).
        pub const NEVER: u32 = 0;
        /// Always (write, writev, pwrite64, …: no flags can prevent it).
        pub const ALWAYS: u32 = 1;
        /// Unless the call's argument `value - UNLESS_NOSIGNAL_IN` (a send's flags) has `MSG_NOSIGNAL`.
        pub const UNLESS_NOSIGNAL_IN: u32 = 2;
        /// `MSG_NOSIGNAL`.
        pub const MSG_NOSIGNAL: u64 = 0x4000;
        /// SIGPIPE's number.
        pub const SIGPIPE: u32 = 13;
        /// `EPIPE`.
        pub const EPIPE: u32 = 32;
    }

    /// Counters of one user rule, shared by all CPUs (atomic adds).
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct RuleCounters {
        /// Calls the rule matched while injection was switched on.
        pub matched: u64,
        /// Calls it failed.
        pub injected: u64,
    }

    /// One injection, sent to user space through the ring buffer.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct InjectEvent {
        /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) of the call.
        pub t_ns: u64,
        /// 1-based index of the call among the calls of its syscall that reached the hook.
        pub index: u64,
        pub tgid: u32,
        pub tid: u32,
        pub nr: u32,
        pub errno: u32,
        pub rule: u32,
        /// The signal raised with the error in the calling thread (SIGPIPE with an `EPIPE`), 0 for none.
        pub signal: u32,
    }

    /// Map names.
    pub mod maps {
        /// `Array<SyscallRules>` of `SYSCALL_SLOTS`, indexed by syscall number.
        pub const RULES: &str = "PHOEBE_RULES";
        /// `Array<RuleCounters>` of `MAX_RULES`.
        pub const RULE_COUNTERS: &str = "PHOEBE_RULECNT";
        /// `Array<u64>` of `SYSCALL_SLOTS`: calls of each syscall that reached its hook (the call index).
        pub const CALLS: &str = "PHOEBE_CALLS";
        /// `Array<u32>` of 1: injection on (1) or off (0), the runtime switch.
        pub const SWITCH: &str = "PHOEBE_SWITCH";
        /// `RingBuf` of `InjectEvent`s.
        pub const EVENTS: &str = "PHOEBE_EVENTS";
        /// `PerCpuArray<u64>` of 1: events lost because the ring buffer was full.
        pub const EVENTS_LOST: &str = "PHOEBE_EVLOST";
    }

    /// Program names, one per hook (see [`hook`]).
    pub mod programs {
        pub const FILE_OPEN: &str = "phoebe_lsm_open";
        pub const FILE_PERMISSION: &str = "phoebe_lsm_perm";
        pub const SOCKET_CREATE: &str = "phoebe_lsm_sock";
        pub const SOCKET_BIND: &str = "phoebe_lsm_bind";
        pub const SOCKET_CONNECT: &str = "phoebe_lsm_conn";
        pub const SOCKET_LISTEN: &str = "phoebe_lsm_lstn";
        pub const SOCKET_ACCEPT: &str = "phoebe_lsm_acpt";
        pub const SOCKET_SENDMSG: &str = "phoebe_lsm_send";
        pub const SOCKET_RECVMSG: &str = "phoebe_lsm_recv";
        pub const SOCKET_SHUTDOWN: &str = "phoebe_lsm_shut";
    }

    /// Globals user space sets before loading.
    pub mod globals {
        /// `u32`: byte offsets of `task_struct.files`, `files_struct.fdt` and `fdtable.fd`, from the kernel's BTF:
        /// the write hook leaves the caller's stderr alone.
        pub const TASK_FILES_OFFSET: &str = "PHOEBE_TASK_FILES_OFFSET";
        pub const FILES_FDT_OFFSET: &str = "PHOEBE_FILES_FDT_OFFSET";
        pub const FDT_FD_OFFSET: &str = "PHOEBE_FDT_FD_OFFSET";
    }

    #[cfg(feature = "user")]
    mod pod {
        // SAFETY: `repr(C)`, `Copy`, only integers and arrays of integers laid out without implicit padding
        // (u32 fields come in pairs before the u64s): every bit pattern is valid.
        unsafe impl aya::Pod for super::SyscallRules {}
        // SAFETY: `repr(C)`, two u64s: every bit pattern is valid, no padding.
        unsafe impl aya::Pod for super::RuleCounters {}
        // SAFETY: `repr(C)`, two u64s then six u32s: every bit pattern is valid, no padding.
        unsafe impl aya::Pod for super::InjectEvent {}
    }
}
