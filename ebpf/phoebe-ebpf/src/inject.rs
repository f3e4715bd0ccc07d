//! The injector: BPF LSM programs that fail a target's calls in the kernel, by rule, with no round trip to
//! user space. Each program reads the current syscall number from the task's saved registers, so a rule for
//! `openat` fails `openat` calls only, not the opens inside `execve` (the target's own exec keeps working);
//! each syscall is decided at exactly one hook (`SyscallRules::hook`). Decisions mirror `phoebe::decide`:
//! every call that reaches the hook gets the next call index; while the switch is on each rule of the syscall
//! counts the call as matched, and the first rule whose window, max and probability allow it injects.
//! Injections go to user space through a ring buffer.

use aya_ebpf::{
    helpers::{
        bpf_get_current_task_btf, bpf_get_prandom_u32, bpf_probe_read_kernel, bpf_send_signal_thread,
        bpf_task_pt_regs,
    },
    macros::{lsm, map},
    maps::{Array, PerCpuArray, RingBuf},
    programs::LsmContext,
};
use phoebe_common::{
    decide,
    inject::{
        EVENTS_BYTES, InjectEvent, KernelRule, MAX_RULES, RULES_PER_SYSCALL, RuleCounters, SYSCALL_SLOTS,
        SyscallRules, hook, sigpipe,
    },
    state,
};

use crate::{
    MAX_ERRNO, PT_REGS_ARG2, PT_REGS_ARG3, PT_REGS_SYSCALL_NR, current, global, now, targets::state_of,
};

#[unsafe(no_mangle)]
static PHOEBE_TASK_FILES_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_FILES_FDT_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
static PHOEBE_FDT_FD_OFFSET: u32 = 0;

#[map]
static PHOEBE_RULES: Array<SyscallRules> = Array::with_max_entries(SYSCALL_SLOTS, 0);
#[map]
static PHOEBE_RULECNT: Array<RuleCounters> = Array::with_max_entries(MAX_RULES, 0);
#[map]
static PHOEBE_CALLS: Array<u64> = Array::with_max_entries(SYSCALL_SLOTS, 0);
#[map]
static PHOEBE_SWITCH: Array<u32> = Array::with_max_entries(1, 0);
#[map]
static PHOEBE_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);
#[map]
static PHOEBE_EVLOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// `MAY_WRITE` and `MAY_READ` in `file_permission`'s mask.
const MAY_WRITE: i32 = 2;
const MAY_READ: i32 = 4;

/// Adds `n` to a counter shared by all CPUs and returns the value before.
///
/// Inline assembly because neither path through Rust works here: `core::sync::atomic` has no `fetch_add` on
/// the BPF target (no compare-and-swap), and LLVM lowers the `atomic_xadd` intrinsic to the old XADD (which
/// returns nothing) for the `generic` CPU that aya-build's bpf-linker call selects. `BPF_ATOMIC | BPF_FETCH`
/// needs Linux >= 5.12, older than any kernel with BPF LSM that phoebe supports.
/// On the host, where this crate is only compiled (`cargo build --workspace`) and never run, the same operation in
/// portable Rust: the BPF instruction does not assemble there.
#[inline(always)]
fn fetch_add(counter: *mut u64, n: u64) -> u64 {
    let mut value = n;
    // SAFETY: `counter` points into an array map's value, valid and 8-byte aligned while the program runs; the
    // instruction adds atomically, so concurrent updates from other CPUs are safe, and it touches no other
    // memory or register.
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!(
            "{value} = atomic_fetch_add((u64 *)({counter} + 0), {value})",
            value = inout(reg) value,
            counter = in(reg) counter,
            options(nostack),
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        // SAFETY: as above: `counter` is valid, 8-byte aligned and only ever accessed atomically.
        value = unsafe { core::sync::atomic::AtomicU64::from_ptr(counter) }
            .fetch_add(value, core::sync::atomic::Ordering::Relaxed);
    }
    value
}

/// The current task's saved user register at byte `offset` of its `struct pt_regs`.
#[inline(always)]
fn user_register(offset: usize) -> Option<u64> {
    // SAFETY: both helpers take the current task, which is always valid while the program runs; every caller
    // passes a constant offset inside `struct pt_regs` (the verifier refuses a variable one), and the read goes
    // through bpf_probe_read_kernel, which checks the address.
    unsafe {
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const u8;
        bpf_probe_read_kernel(regs.wrapping_add(offset).cast::<u64>()).ok()
    }
}

/// The syscall the current task is in, from its saved user registers (`orig_ax`).
#[inline(always)]
fn syscall_nr() -> Option<u32> {
    let nr = user_register(PT_REGS_SYSCALL_NR)? as i64;
    (0..i64::from(SYSCALL_SLOTS)).contains(&nr).then_some(nr as u32)
}

/// Raises the signal the kernel raises with `errno` from this syscall ([`SyscallRules::sigpipe`]: SIGPIPE with a
/// write's `EPIPE`, unless a send's flags say `MSG_NOSIGNAL`) in the calling thread, as the kernel's
/// `send_sig(SIGPIPE, current, 0)` does. Returns the signal raised, 0 for none.
#[inline(always)]
fn raise_with(errno: u32, mode: u32) -> u32 {
    if errno != sigpipe::EPIPE || mode == sigpipe::NEVER {
        return 0;
    }
    if mode >= sigpipe::UNLESS_NOSIGNAL_IN {
        let offset = if mode == sigpipe::UNLESS_NOSIGNAL_IN + 2 {
            PT_REGS_ARG2
        } else if mode == sigpipe::UNLESS_NOSIGNAL_IN + 3 {
            PT_REGS_ARG3
        } else {
            // No send keeps its flags elsewhere (`realism::epipe_signal`).
            return 0;
        };
        match user_register(offset) {
            Some(flags) if flags & sigpipe::MSG_NOSIGNAL == 0 => {}
            _ => return 0,
        }
    }
    // SAFETY: takes a signal number only; it signals the current thread, which is in a syscall (process
    // context, not a kernel thread), where the kernel raises its own SIGPIPE.
    if unsafe { bpf_send_signal_thread(sigpipe::SIGPIPE) } == 0 {
        sigpipe::SIGPIPE
    } else {
        0
    }
}

/// The hook's return value for `errno` (positive): `-errno`, in a form Linux 6.12's verifier can bound. It
/// requires LSM return values in `[-MAX_ERRNO, 0]` but tracks no range through BPF_NEG, which is what LLVM
/// makes of `-x`; `0 - x` in BPF_SUB, on a value masked to `0..=MAX_ERRNO`, it does track. An errno beyond
/// `MAX_ERRNO` (never written by user space) would be masked, not trusted.
#[inline(always)]
fn deny(errno: u32) -> i32 {
    let masked = u64::from(errno) & MAX_ERRNO as u64;
    let value: u64;
    // SAFETY: register arithmetic only: no memory, no stack, no other register.
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::arch::asm!(
            "{value} = 0",
            "{value} -= {masked}",
            value = out(reg) value,
            masked = in(reg) masked,
            options(pure, nomem, nostack),
        );
    }
    // The host build (compiled, never run): the same value in portable Rust.
    #[cfg(not(target_arch = "bpf"))]
    {
        value = 0u64.wrapping_sub(masked);
    }
    value as i32
}

/// Is the current call one to fail, at hook `at`? Returns the errno (positive) to inject.
#[inline(always)]
fn decide(at: u32) -> Option<u32> {
    let (tgid, tid) = current();
    // The target set's one lookup, shared with the observer (0: not a target).
    let st = state_of(tgid);
    if st == 0 || st == state::LAUNCHED {
        return None;
    }
    let nr = syscall_nr()?;
    let rules = PHOEBE_RULES.get(nr)?;
    if rules.hook != at {
        return None;
    }
    let index = fetch_add(PHOEBE_CALLS.get_ptr_mut(nr)?, 1) + 1;
    if PHOEBE_SWITCH.get(0).copied() != Some(1) {
        return None;
    }
    let mut decided: Option<(u32, u32)> = None;
    for i in 0..RULES_PER_SYSCALL {
        if i as u32 >= rules.count {
            break;
        }
        let Some(rule) = rules.rules.get(i) else {
            break;
        };
        let Some(counters) = PHOEBE_RULECNT.get_ptr_mut(rule.rule) else {
            continue;
        };
        // SAFETY: `counters` points into an array map value, valid while the program runs.
        let matched = fetch_add(unsafe { &raw mut (*counters).matched }, 1) + 1;
        if decided.is_some() || !decide::in_window(rule.first, rule.last, rule.every, matched) {
            continue;
        }
        if rule.always == 0 {
            // SAFETY: takes no arguments.
            if unsafe { bpf_get_prandom_u32() } >= rule.threshold {
                continue;
            }
        }
        // SAFETY: as above.
        let injected = unsafe { &raw mut (*counters).injected };
        if !decide::under_max(fetch_add(injected, 1), rule.max) {
            // Over the limit (maybe by a call on another CPU that got there first): give the slot back.
            fetch_add(injected, u64::MAX);
            continue;
        }
        decided = Some((pick_errno(rule), rule.rule));
    }
    let (errno, rule) = decided?;
    let signal = raise_with(errno, rules.sigpipe);
    if let Some(mut event) = PHOEBE_EVENTS.reserve::<InjectEvent>(0) {
        event.write(InjectEvent {
            t_ns: now(),
            index,
            tgid,
            tid,
            nr,
            errno,
            rule,
            signal,
        });
        event.submit(0);
    } else if let Some(lost) = PHOEBE_EVLOST.get_ptr_mut(0) {
        // SAFETY: index 0 exists; per-CPU slot, written by this CPU only.
        unsafe { *lost += 1 };
    }
    Some(errno)
}

/// The rule's errno for this call: by weight when it has several. Written with `get` rather than indexing: the
/// verifier rejects a program that merely contains a (dead) panic path.
#[inline(always)]
fn pick_errno(rule: &KernelRule) -> u32 {
    let count = rule.errno_count as usize;
    if count > 1 {
        // SAFETY: takes no arguments.
        let roll = unsafe { bpf_get_prandom_u32() };
        if let Some(i) = decide::pick_weighted(roll, &rule.errno_below, count) {
            return rule.errnos.get(i).copied().unwrap_or(0);
        }
    }
    rule.errnos.get(count.saturating_sub(1)).copied().unwrap_or(0)
}

/// The hook's verdict: the injected errno, or what an earlier BPF LSM program decided (`retval`).
#[inline(always)]
fn verdict(at: u32, retval: i32) -> i32 {
    if retval != 0 {
        return earlier(retval);
    }
    match decide(at) {
        // 0 (a table without errnos) would allow the call: never inject "success".
        Some(errno) if errno != 0 => deny(errno),
        _ => 0,
    }
}

/// What an earlier BPF LSM program on the same hook decided (`retval`), kept: a denial stays a denial.
#[inline(always)]
fn earlier(retval: i32) -> i32 {
    if retval < 0 {
        deny(retval.unsigned_abs())
    } else {
        0
    }
}

/// `file_open(struct file *file)`: open, openat, openat2, creat.
#[lsm(hook = "file_open")]
pub fn phoebe_lsm_open(ctx: LsmContext) -> i32 {
    verdict(hook::FILE_OPEN, ctx.arg(1))
}

/// `file_permission(struct file *file, int mask)`: read and write calls, told apart by the mask. The caller's
/// stderr is never failed, so that the target can still say what went wrong.
#[lsm(hook = "file_permission")]
pub fn phoebe_lsm_perm(ctx: LsmContext) -> i32 {
    let retval: i32 = ctx.arg(2);
    let mask: i32 = ctx.arg(1);
    let at = if mask & MAY_WRITE != 0 {
        if is_stderr(ctx.arg(0)) {
            return earlier(retval);
        }
        hook::FILE_WRITE
    } else if mask & MAY_READ != 0 {
        hook::FILE_READ
    } else {
        return earlier(retval);
    };
    verdict(at, retval)
}

/// Is `file` the current task's fd 2? Follows `task->files->fdt->fd[2]` with offsets from the kernel's BTF.
#[inline(always)]
fn is_stderr(file: *const u8) -> bool {
    let read = |at: *const u8, offset: u32| -> Option<*const u8> {
        // SAFETY: bpf_probe_read_kernel checks the address; a bad one only fails the read.
        unsafe { bpf_probe_read_kernel(at.wrapping_add(offset as usize).cast::<*const u8>()).ok() }
    };
    // SAFETY: takes no arguments; the current task is valid while the program runs.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let fd2 = read(task, global(&PHOEBE_TASK_FILES_OFFSET))
        .and_then(|files| read(files, global(&PHOEBE_FILES_FDT_OFFSET)))
        .and_then(|fdt| read(fdt, global(&PHOEBE_FDT_FD_OFFSET)))
        .and_then(|fds| read(fds, 2 * 8));
    fd2 == Some(file)
}

/// `socket_create(int family, int type, int protocol, int kern)`: socket (not the kernel's own sockets).
#[lsm(hook = "socket_create")]
pub fn phoebe_lsm_sock(ctx: LsmContext) -> i32 {
    let kern: i32 = ctx.arg(3);
    let retval: i32 = ctx.arg(4);
    if kern != 0 {
        return earlier(retval);
    }
    verdict(hook::SOCKET_CREATE, retval)
}

/// `socket_bind(struct socket *sock, struct sockaddr *address, int addrlen)`: bind.
#[lsm(hook = "socket_bind")]
pub fn phoebe_lsm_bind(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_BIND, ctx.arg(3))
}

/// `socket_connect(struct socket *sock, struct sockaddr *address, int addrlen)`: connect.
#[lsm(hook = "socket_connect")]
pub fn phoebe_lsm_conn(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_CONNECT, ctx.arg(3))
}

/// `socket_listen(struct socket *sock, int backlog)`: listen.
#[lsm(hook = "socket_listen")]
pub fn phoebe_lsm_lstn(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_LISTEN, ctx.arg(2))
}

/// `socket_accept(struct socket *sock, struct socket *newsock)`: accept, accept4 (before waiting for a peer).
#[lsm(hook = "socket_accept")]
pub fn phoebe_lsm_acpt(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_ACCEPT, ctx.arg(2))
}

/// `socket_sendmsg(struct socket *sock, struct msghdr *msg, int size)`: sendto, sendmsg.
#[lsm(hook = "socket_sendmsg")]
pub fn phoebe_lsm_send(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_SENDMSG, ctx.arg(3))
}

/// `socket_recvmsg(struct socket *sock, struct msghdr *msg, int size, int flags)`: recvfrom, recvmsg.
#[lsm(hook = "socket_recvmsg")]
pub fn phoebe_lsm_recv(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_RECVMSG, ctx.arg(4))
}

/// `socket_shutdown(struct socket *sock, int how)`: shutdown.
#[lsm(hook = "socket_shutdown")]
pub fn phoebe_lsm_shut(ctx: LsmContext) -> i32 {
    verdict(hook::SOCKET_SHUTDOWN, ctx.arg(2))
}
