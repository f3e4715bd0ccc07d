//! What phoebe's eBPF programs (`phoebe-ebpf`) and its user space (`phoebe::backend::ebpf`) must agree on: the
//! layout of map keys and values, the states of a target process, and the names of maps, programs and globals.
//!
//! `no_std` and dependency-free for the eBPF side; the `user` feature adds `aya::Pod` so that user space can read
//! the maps. Owns no logic.

#![no_std]

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
    /// (latency only).
    pub const ENTERED: &str = "PHOEBE_ENTERED";
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
    // SAFETY: `ErrorSlot` is `repr(C)`, `Copy`, two `u32`s then a `CountValue` (8-aligned, right after 8 bytes):
    // every bit pattern is valid, no implicit padding.
    unsafe impl aya::Pod for super::ErrorSlot {}
}
