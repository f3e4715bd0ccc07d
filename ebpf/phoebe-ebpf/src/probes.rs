//! `phoebe doctor`'s probes: a trivial program of each kind, loaded and attached to see what the kernel allows.

use aya_ebpf::{
    macros::{fentry, lsm, raw_tracepoint},
    programs::{FEntryContext, LsmContext, RawTracePointContext},
};

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
