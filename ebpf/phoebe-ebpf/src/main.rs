//! phoebe's eBPF programs: count the system calls of a process tree, per (process, syscall, errno), in
//! per-CPU maps (`observe`); fail chosen calls with BPF LSM programs (`inject`); follow the tree through fork and prune it at exit (`targets`); `phoebe doctor`'s
//! probes (`probes`).
//!
//! Built for `bpfel-unknown-none` by the `phoebe-backend-ebpf` crate's `build.rs` (`src/backend-ebpf`, aya-build); on the host it compiles to an
//! empty program so that `cargo clippy --workspace` checks it. Loaded and read by `phoebe::backend::ebpf`. Owns
//! nothing but the in-kernel side; the layout of every map is in `phoebe-common`.

#![cfg_attr(target_arch = "bpf", no_std, no_main)]
// The injector's shared counters need an atomic fetch-and-add: inline assembly (see `inject::fetch_add`).
// `build.rs` sets RUSTC_BOOTSTRAP=1 for this crate's build only.
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

mod entry;
mod fdfacts;
mod inject;
mod observe;
mod probes;
mod targets;
mod walk;

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns};

/// Byte offset of `orig_ax` (the syscall number) in `struct pt_regs`: part of the architecture's user ABI
/// (`struct user_regs_struct`), so no BTF lookup is needed.
#[cfg(any(bpf_target_arch = "x86_64", not(bpf_target_arch = "aarch64")))]
pub(crate) const PT_REGS_SYSCALL_NR: usize = 15 * 8;
/// arm64: `regs[31], sp, pc, pstate, orig_x0`, then `syscallno`.
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) const PT_REGS_SYSCALL_NR: usize = 35 * 8;

/// Byte offsets of the syscall's arguments 2 and 3 in `struct pt_regs` (where the sends keep their flags):
/// x86_64's `dx` and `r10` (`struct user_regs_struct`, as [`PT_REGS_SYSCALL_NR`]). Constants, not a table: a
/// table indexed at run time lands in `.rodata`, and Linux 6.1's verifier rejected the load from it.
#[cfg(any(bpf_target_arch = "x86_64", not(bpf_target_arch = "aarch64")))]
pub(crate) const PT_REGS_ARG2: usize = 12 * 8;
#[cfg(any(bpf_target_arch = "x86_64", not(bpf_target_arch = "aarch64")))]
pub(crate) const PT_REGS_ARG3: usize = 7 * 8;
/// arm64: `regs[2]`, `regs[3]`.
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) const PT_REGS_ARG2: usize = 2 * 8;
#[cfg(bpf_target_arch = "aarch64")]
pub(crate) const PT_REGS_ARG3: usize = 3 * 8;

/// The kernel's `MAX_ERRNO`: returns in `-4095..=-1` are errors.
pub(crate) const MAX_ERRNO: i64 = 4095;

/// A global set by user space before loading; `read_volatile` keeps the compiler from folding the default.
#[inline(always)]
pub(crate) fn global(value: &'static u32) -> u32 {
    // SAFETY: `value` is a valid, aligned static; the volatile read only prevents constant folding.
    unsafe { core::ptr::read_volatile(value) }
}

#[inline(always)]
pub(crate) fn now() -> u64 {
    // SAFETY: bpf_ktime_get_ns takes no arguments and only reads the monotonic clock.
    unsafe { bpf_ktime_get_ns() }
}

/// (tgid, tid) of the current task.
#[inline(always)]
pub(crate) fn current() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

/// `value`, unknown to the compiler: a mask applied to it stays in the program (LLVM would drop a mask it can
/// prove redundant, and the verifier, which tracks less, then sees an unbounded offset), and zeros stored from
/// it stay stores (LLVM makes a `memset` call, a BPF subprogram, of 16 adjacent zero bytes).
#[inline(always)]
pub(crate) fn opaque(value: u64) -> u64 {
    let mut value = value;
    // SAFETY: a move of one register to itself: no memory, no stack, no other register.
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!("{value} = {value}", value = inout(reg) value, options(pure, nomem, nostack));
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        value = core::hint::black_box(value);
    }
    value
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
