//! Building and installing the seccomp-bpf programs that the ptrace backend (`SECCOMP_RET_TRACE`: stop only on the
//! targeted calls) and the seccomp backend (`SECCOMP_RET_USER_NOTIF` for probabilistic rules, `SECCOMP_RET_ERRNO` for
//! p = 1 rules) put on the target right before exec.
//!
//! A [`Policy`] — an [`Action`] per syscall number, a default for the others and one for calls of another ABI — is
//! [`compile`]d into a classic-BPF program that checks the architecture, sends x32 calls to the other-ABI action, then
//! finds the call's action by binary search on the syscall number, so a lookup costs O(log n) in the number of rules.
//! `evaluate` (test builds and the `evaluate` feature only) runs such a program in user space for the tests and
//! phoebe's fuzzer; `phoebe_sys::seccomp::install` is the one place that hands a program to the kernel.
//!
//! A crate of its own (`phoebe-filter`) on the core and the sys layer alone: the ptrace and seccomp backends build
//! their programs with it, and Cargo keeps it from importing either.
//!
//! It does not decide anything per call: which calls fail, with which errno and how often is the decision module's job;
//! the filter only routes calls to a backend, or for a certain failure straight to the errno. We build the program
//! ourselves because seccompiler 0.5 has no `RET_USER_NOTIF`, no `NEW_LISTENER` and one action per filter (DESIGN §4).

#[cfg(test)]
mod kernel_tests;

use std::{collections::BTreeMap, fmt, mem::offset_of};

use libc::{seccomp_data, sock_filter};

use phoebe_core::model::shape::ArgTest;

pub use phoebe_sys::seccomp::{InstallError, InstallFlags, MAX_INSNS, Step};

/// What a program checks before its search: the audit architecture of native calls, and whether x32 calls share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Abi {
    name: &'static str,
    audit_arch: u32,
    x32: bool,
}

impl Abi {
    /// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`); x32 calls report it too.
    const X86_64: Self = Self {
        name: "x86_64",
        audit_arch: 0xc000_003e,
        x32: true,
    };
    /// `AUDIT_ARCH_AARCH64` (`EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
    const AARCH64: Self = Self {
        name: "aarch64",
        audit_arch: 0xc000_00b7,
        x32: false,
    };
    /// The ABI phoebe is built for.
    const NATIVE: Self = if cfg!(target_arch = "x86_64") {
        Self::X86_64
    } else {
        Self::AARCH64
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("phoebe's seccomp filter knows the audit architecture of x86_64 and aarch64 only");

/// The `seccomp_data.arch` of native calls: `AUDIT_ARCH_X86_64` or `AUDIT_ARCH_AARCH64` (libc does not export the
/// `AUDIT_ARCH_*` constants).
pub const NATIVE_AUDIT_ARCH: u32 = Abi::NATIVE.audit_arch;

/// `__X32_SYSCALL_BIT`: on x86_64 a call whose number has this bit comes from the x32 ABI (with the native `arch`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The largest errno a filter may return (`MAX_ERRNO`); larger values are clamped by the kernel.
pub const MAX_ERRNO: u16 = 4095;

/// At most this many runs of rules end a binary-search branch as a chain of comparisons.
const MAX_LEAF: usize = 4;
// A leaf is at most 2 comparisons per run, the default return and one return per run: every jump inside it is short.
const _: () = assert!(3 * MAX_LEAF <= u8::MAX as usize);

const OFFSET_NR: u32 = offset_of!(seccomp_data, nr) as u32;
const OFFSET_ARCH: u32 = offset_of!(seccomp_data, arch) as u32;
const OFFSET_ARGS: u32 = offset_of!(seccomp_data, args) as u32;

#[cfg(not(target_endian = "little"))]
compile_error!("the filter loads an argument's low word at its first four bytes: little-endian only");

/// Offset of the low (`high` false) or high 32 bits of argument `arg` in `seccomp_data`.
const fn arg_word(arg: u8, high: bool) -> u32 {
    OFFSET_ARGS + 8 * arg as u32 + if high { 4 } else { 0 }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// At most this many alternatives in one guard (each a handful of instructions), so a guard stays short.
pub const MAX_GUARD_ALTERNATIVES: usize = 16;

/// What the filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the call run (`SECCOMP_RET_ALLOW`).
    Allow,
    /// Fail the call with this errno without running it (`SECCOMP_RET_ERRNO`); must be in 1..=4095.
    Errno(u16),
    /// Stop a ptrace tracer at the call with this data in its event message (`SECCOMP_RET_TRACE`); with no tracer
    /// attached the call fails with `ENOSYS`.
    Trace(u16),
    /// Ask the supervisor holding the listener fd (`SECCOMP_RET_USER_NOTIF`).
    UserNotif,
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
    /// Let the call run and log it to the audit log (`SECCOMP_RET_LOG`).
    Log,
}

impl Action {
    /// The filter's return value for this action: `SECCOMP_RET_*` with its data.
    pub const fn ret(self) -> u32 {
        match self {
            Self::Allow => libc::SECCOMP_RET_ALLOW,
            Self::Errno(errno) => libc::SECCOMP_RET_ERRNO | errno as u32,
            Self::Trace(data) => libc::SECCOMP_RET_TRACE | data as u32,
            Self::UserNotif => libc::SECCOMP_RET_USER_NOTIF,
            Self::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Self::Log => libc::SECCOMP_RET_LOG,
        }
    }
}

/// A per-syscall seccomp policy: an action per native syscall number, a default for the numbers without a rule and an
/// action for calls of another ABI (a foreign `arch`, such as i386 `int 0x80`, or an x32 call on x86_64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    default: Action,
    other_abi: Action,
    rules: BTreeMap<u32, Action>,
    guards: BTreeMap<u32, Guard>,
}

/// A syscall's action taken only when its registers pass one of the alternatives; otherwise `otherwise`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Guard {
    any: Vec<Vec<ArgTest>>,
    otherwise: Action,
}

impl Policy {
    /// A policy with no rules: every native call gets `default`, calls of another ABI get [`Action::Allow`] (phoebe is
    /// no sandbox, and a rule written for a native number must not hit the call with that number in another table).
    pub fn new(default: Action) -> Self {
        Self {
            default,
            other_abi: Action::Allow,
            rules: BTreeMap::new(),
            guards: BTreeMap::new(),
        }
    }

    /// Gives native syscall `nr` the action `action` only for calls whose registers pass one of the alternatives
    /// of `any` (all the tests of one); its other calls get `otherwise`. A call shape predicate decided in the
    /// kernel (DESIGN §6): calls of other shapes never leave it. More than [`MAX_GUARD_ALTERNATIVES`]
    /// alternatives, or none, and the guard is dropped: `action` applies to every call.
    pub fn set_guarded(
        &mut self,
        nr: u32,
        action: Action,
        any: Vec<Vec<ArgTest>>,
        otherwise: Action,
    ) -> &mut Self {
        self.rules.insert(nr, action);
        if (1..=MAX_GUARD_ALTERNATIVES).contains(&any.len()) && action != otherwise {
            self.guards.insert(nr, Guard { any, otherwise });
        } else {
            self.guards.remove(&nr);
        }
        self
    }

    /// Gives native syscall `nr` its own action; setting the same number again replaces the action (and any
    /// guard).
    pub fn set(&mut self, nr: u32, action: Action) -> &mut Self {
        self.rules.insert(nr, action);
        self.guards.remove(&nr);
        self
    }

    /// Sets the action for calls of another ABI (a foreign audit architecture, or the x32 ABI on x86_64).
    pub fn other_abi(&mut self, action: Action) -> &mut Self {
        self.other_abi = action;
        self
    }

    fn validate(&self, abi: Abi) -> Result<(), FilterError> {
        check_errno(RuleSite::Default, self.default)?;
        check_errno(RuleSite::OtherAbi, self.other_abi)?;
        for guard in self.guards.values() {
            check_errno(RuleSite::Default, guard.otherwise)?;
            for test in guard.any.iter().flatten() {
                let arg = match *test {
                    ArgTest::LowEq { arg, .. }
                    | ArgTest::LowAnySet { arg, .. }
                    | ArgTest::LowNoneSet { arg, .. }
                    | ArgTest::Zero { arg }
                    | ArgTest::NonZero { arg } => arg,
                };
                if arg > 5 {
                    return Err(FilterError::BadProgram {
                        pc: 0,
                        reason: "a guard tests an argument past the sixth",
                    });
                }
            }
        }
        for (&nr, &action) in &self.rules {
            check_errno(RuleSite::Syscall(nr), action)?;
            if abi.x32 && nr & X32_SYSCALL_BIT != 0 {
                return Err(FilterError::X32Rule { nr });
            }
        }
        Ok(())
    }
}

fn check_errno(site: RuleSite, action: Action) -> Result<(), FilterError> {
    match action {
        Action::Errno(errno) if !(1..=MAX_ERRNO).contains(&errno) => {
            Err(FilterError::InvalidErrno { site, errno })
        }
        _ => Ok(()),
    }
}

/// Where in a [`Policy`] an invalid action was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSite {
    /// The rule for this native syscall number.
    Syscall(u32),
    /// The default action.
    Default,
    /// The action for calls of another ABI.
    OtherAbi,
}

impl fmt::Display for RuleSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syscall(nr) => write!(f, "syscall {nr}"),
            Self::Default => f.write_str("the default action"),
            Self::OtherAbi => f.write_str("the other-ABI action"),
        }
    }
}

/// Why a seccomp program could not be built, run or installed.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// An `Errno` action outside 1..=4095.
    #[error("errno {errno} for {site} is outside 1..={MAX_ERRNO}")]
    InvalidErrno {
        /// The rule that carries it.
        site: RuleSite,
        /// The rejected value.
        errno: u16,
    },
    /// A rule for a number with the x32 bit, which the x32 check answers before any rule is looked at.
    #[error("the rule for syscall {nr:#x} could never match")]
    X32Rule {
        /// The rule's syscall number.
        nr: u32,
    },
    /// The program is longer than the kernel accepts.
    #[error("the seccomp program needs {len} instructions, more than the kernel's limit of {limit}")]
    TooLong {
        /// The program's length in instructions.
        len: usize,
        /// `BPF_MAXINSNS`.
        limit: usize,
    },
    /// The kernel refused to install the program, or it was refused before the kernel was asked.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// `evaluate` met an instruction it cannot run.
    #[error("bad seccomp program at instruction {pc}: {reason}")]
    BadProgram {
        /// Index of the instruction.
        pc: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl phoebe_core::hint::Hinted for FilterError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(match self {
            FilterError::X32Rule { .. } => {
                "numbers with the x32 bit (0x40000000) get the other-ABI action".into()
            }
            FilterError::TooLong { .. } => "use fewer rules or fewer distinct actions".into(),
            FilterError::Install(e) => return e.hint(),
            FilterError::InvalidErrno { .. } | FilterError::BadProgram { .. } => return None,
        })
    }
}

/// Where the search sends a syscall number: a return value, or the guard block with this index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ret(u32),
    Guard(usize),
}

/// A maximal run of consecutive syscall numbers with the same (non-default) target.
#[derive(Debug, Clone, Copy)]
struct Run {
    lo: u32,
    hi: u32,
    ret: Target,
}

/// Compiles `policy` into a classic-BPF program for `SECCOMP_SET_MODE_FILTER`.
///
/// Layout (x86_64; aarch64 has no x32 check):
///
/// ```text
///     ld  [arch]
///     jeq #NATIVE_AUDIT_ARCH, 0, other
///     ld  [nr]
///     jset #0x40000000, other, tree
/// other: ret #other_abi
/// tree:  jge #k, right, left          ; binary search on the first number of the middle run,
///        …                            ; with a `ja` trampoline where `right` is more than 255 away
/// leaf:  jeq #nr, ret_a, next         ; ≤ 4 runs: jeq for one number, jgt/jge for a range
///        ret #default
///        ret #a …
/// ```
///
/// Consecutive numbers with the same action become one range and rules equal to the default disappear, so a lookup
/// executes at most about 4 + log2(runs / 4) × (1 or 2) + 9 instructions. Errnos are checked (1..=4095), as is the
/// final length against `BPF_MAXINSNS`, so the kernel never answers a bare `EINVAL`.
pub fn compile(policy: &Policy) -> Result<Vec<sock_filter>, FilterError> {
    compile_for(policy, Abi::NATIVE)
}

fn compile_for(policy: &Policy, abi: Abi) -> Result<Vec<sock_filter>, FilterError> {
    policy.validate(abi)?;
    let default = policy.default.ret();
    let mut out = Emitter::default();
    // Guard blocks go last in the program (first, building backwards); the search reaches them with `ja`.
    let mut guards: Vec<usize> = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    for (&nr, action) in &policy.rules {
        let ret = match policy.guards.get(&nr) {
            Some(guard) => {
                guards.push(emit_guard(&mut out, guard, action.ret()));
                Target::Guard(guards.len() - 1)
            }
            None if action.ret() == default => continue,
            None => Target::Ret(action.ret()),
        };
        match runs.last_mut() {
            Some(last) if last.ret == ret && last.hi.checked_add(1) == Some(nr) => last.hi = nr,
            _ => runs.push(Run { lo: nr, hi: nr, ret }),
        }
    }
    let on_default = Target::Ret(default);
    let targets = Targets { guards: &guards };
    emit_tree(&mut out, &runs, 0, u32::MAX, on_default, &targets);
    emit_header(&mut out, policy.other_abi.ret(), abi);
    let prog = out.finish();
    if prog.len() > MAX_INSNS {
        return Err(FilterError::TooLong {
            len: prog.len(),
            limit: MAX_INSNS,
        });
    }
    Ok(prog)
}

/// Builds a program backwards, so that every (forward) jump target is already placed when the jump is written.
#[derive(Default)]
struct Emitter {
    reversed: Vec<sock_filter>,
}

impl Emitter {
    /// Pushes the instruction that precedes everything pushed so far; returns its position counted from the end.
    fn push(&mut self, code: u16, k: u32, jt: u8, jf: u8) -> usize {
        self.reversed.push(sock_filter { code, jt, jf, k });
        self.reversed.len() - 1
    }

    fn ret(&mut self, ret: u32) -> usize {
        self.push(RET_K, ret, 0, 0)
    }

    /// The jump offset from the next instruction pushed to `target` (a position counted from the end).
    fn offset_to(&self, target: usize) -> usize {
        self.reversed.len() - target - 1
    }

    /// Like [`Self::offset_to`], for the jumps inside one leaf, which are short by construction.
    fn short_offset_to(&self, target: usize) -> u8 {
        u8::try_from(self.offset_to(target)).expect("a leaf spans fewer than 256 instructions")
    }

    /// Position of the instruction pushed last, which is the first one of the program so far.
    fn first(&self) -> usize {
        self.reversed.len() - 1
    }

    fn finish(mut self) -> Vec<sock_filter> {
        self.reversed.reverse();
        self.reversed
    }
}

/// Where the guard blocks start (positions counted from the end), by index.
struct Targets<'a> {
    guards: &'a [usize],
}

impl Targets<'_> {
    /// Pushes what sends the program to `target`: its `ret`, or a `ja` to its guard block.
    fn emit(&self, out: &mut Emitter, target: Target) -> usize {
        match target {
            Target::Ret(ret) => out.ret(ret),
            Target::Guard(i) => {
                let offset = out.offset_to(self.guards[i]);
                out.push(JA, offset as u32, 0, 0)
            }
        }
    }
}

/// Emits a guard block: `then` when one alternative's tests all hold, else the guard's `otherwise`. Returns the
/// block's first instruction. A failing test jumps to the next alternative, which is a few instructions away.
fn emit_guard(out: &mut Emitter, guard: &Guard, then: u32) -> usize {
    let on_then = out.ret(then);
    let mut next = out.ret(guard.otherwise.ret());
    for all in guard.any.iter().rev() {
        let offset = out.offset_to(on_then);
        out.push(JA, offset as u32, 0, 0);
        for test in all.iter().rev() {
            emit_test(out, *test, next);
        }
        next = out.first();
    }
    next
}

/// Emits one register test: falls through when it holds, jumps to `fail` when it does not.
fn emit_test(out: &mut Emitter, test: ArgTest, fail: usize) {
    match test {
        ArgTest::LowEq { arg, mask, value } => {
            out.push(JEQ_K, value, 0, out.short_offset_to(fail));
            if mask != u32::MAX {
                out.push(AND_K, mask, 0, 0);
            }
            out.push(LD_W_ABS, arg_word(arg, false), 0, 0);
        }
        ArgTest::LowAnySet { arg, bits } => {
            out.push(JSET_K, bits, 0, out.short_offset_to(fail));
            out.push(LD_W_ABS, arg_word(arg, false), 0, 0);
        }
        ArgTest::LowNoneSet { arg, bits } => {
            out.push(JSET_K, bits, out.short_offset_to(fail), 0);
            out.push(LD_W_ABS, arg_word(arg, false), 0, 0);
        }
        ArgTest::Zero { arg } => {
            out.push(JEQ_K, 0, 0, out.short_offset_to(fail));
            out.push(LD_W_ABS, arg_word(arg, true), 0, 0);
            out.push(JEQ_K, 0, 0, out.short_offset_to(fail));
            out.push(LD_W_ABS, arg_word(arg, false), 0, 0);
        }
        ArgTest::NonZero { arg } => {
            let after = out.first();
            out.push(JEQ_K, 0, out.short_offset_to(fail), 0);
            out.push(LD_W_ABS, arg_word(arg, true), 0, 0);
            // Low word not zero: the test holds, skip the high word.
            out.push(JEQ_K, 0, 0, out.short_offset_to(after));
            out.push(LD_W_ABS, arg_word(arg, false), 0, 0);
        }
    }
}

/// Emits the search for `nr` among `runs`, knowing `lo <= nr <= hi`.
fn emit_tree(out: &mut Emitter, runs: &[Run], lo: u32, hi: u32, default: Target, targets: &Targets<'_>) {
    if runs.len() <= MAX_LEAF {
        emit_leaf(out, runs, lo, hi, default, targets);
        return;
    }
    let mid = runs.len() / 2;
    // Runs are sorted and disjoint, so `split > runs[0].lo >= lo`.
    let split = runs[mid].lo;
    emit_tree(out, &runs[mid..], split, hi, default, targets);
    let right = out.first();
    emit_tree(out, &runs[..mid], lo, split - 1, default, targets);
    let offset = out.offset_to(right);
    match u8::try_from(offset) {
        Ok(jt) => out.push(JGE_K, split, jt, 0),
        Err(_) => {
            // Too far for an 8-bit offset: jump over a `ja` (32-bit offset) when nr < split. A program has far fewer
            // than 2^32 instructions (it is rejected above 4096), so the offset fits.
            out.push(JA, offset as u32, 0, 0);
            out.push(JGE_K, split, 0, 1)
        }
    };
}

/// Emits a chain of comparisons for at most [`MAX_LEAF`] runs, knowing `lo <= nr <= hi`: the checks in ascending
/// order, then `ret default`, then one `ret` per distinct action of the leaf.
fn emit_leaf(out: &mut Emitter, runs: &[Run], lo: u32, hi: u32, default: Target, targets: &Targets<'_>) {
    if let [only] = runs
        && only.lo <= lo
        && only.hi >= hi
    {
        targets.emit(out, only.ret);
        return;
    }
    let mut rets: Vec<(Target, usize)> = Vec::with_capacity(MAX_LEAF);
    for run in runs.iter().rev() {
        if !rets.iter().any(|&(ret, _)| ret == run.ret) {
            rets.push((run.ret, targets.emit(out, run.ret)));
        }
    }
    let on_default = targets.emit(out, default);
    // Every check falls through to the next run's checks (or `ret default`) when nr is above the run. Reaching a run
    // means nr differs from every earlier single number and is above every earlier range.
    for run in runs.iter().rev() {
        let action = rets
            .iter()
            .find(|&&(ret, _)| ret == run.ret)
            .map_or(on_default, |&(_, at)| at);
        if run.lo == run.hi {
            out.push(JEQ_K, run.lo, out.short_offset_to(action), 0);
        } else if run.lo <= lo {
            out.push(JGT_K, run.hi, 0, out.short_offset_to(action));
        } else {
            out.push(
                JGE_K,
                run.lo,
                out.short_offset_to(action),
                out.short_offset_to(on_default),
            );
            if run.hi < hi {
                out.push(JGT_K, run.hi, 1, 0);
            }
        }
    }
}

/// Emits the architecture check (and for x86_64 the x32 check) in front of the search tree.
fn emit_header(out: &mut Emitter, other_abi: u32, abi: Abi) {
    if abi.x32 {
        let tree = out.first();
        let other = out.ret(other_abi);
        out.push(
            JSET_K,
            X32_SYSCALL_BIT,
            out.short_offset_to(other),
            out.short_offset_to(tree),
        );
        out.push(LD_W_ABS, OFFSET_NR, 0, 0);
        out.push(JEQ_K, abi.audit_arch, 0, out.short_offset_to(other));
    } else {
        let load_nr = out.push(LD_W_ABS, OFFSET_NR, 0, 0);
        out.ret(other_abi);
        out.push(JEQ_K, abi.audit_arch, out.short_offset_to(load_nr), 0);
    }
    out.push(LD_W_ABS, OFFSET_ARCH, 0, 0);
}

/// Runs `prog` on `data` the way the kernel would and returns the filter's return value.
///
/// Only the instructions [`compile`] emits are supported (`ld [k]` of a 32-bit word, `and` with a constant, `ja`,
/// `jeq`/`jgt`/`jge`/`jset` with a constant, `ret` of a constant); anything else, a jump out of the program or falling off its end is a
/// [`FilterError::BadProgram`].
#[cfg(any(test, feature = "evaluate"))]
pub fn evaluate(prog: &[sock_filter], data: &seccomp_data) -> Result<u32, FilterError> {
    execute(prog, data).map(|run| run.ret)
}

/// The result of [`execute`]: the return value and how many instructions ran to get it.
#[cfg(any(test, feature = "evaluate"))]
#[derive(Debug, Clone, Copy)]
struct Execution {
    ret: u32,
    /// Read by this crate's tests (the cost of a lookup), not by `evaluate`.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "only the tests measure a lookup's cost")
    )]
    executed: usize,
}

#[cfg(any(test, feature = "evaluate"))]
fn execute(prog: &[sock_filter], data: &seccomp_data) -> Result<Execution, FilterError> {
    let bytes = data_bytes(data);
    let mut acc: u32 = 0;
    let mut pc = 0;
    let mut executed = 0;
    loop {
        let bad = |reason| FilterError::BadProgram { pc, reason };
        let insn = prog
            .get(pc)
            .ok_or_else(|| bad("the program ends without a return"))?;
        executed += 1;
        let skip = match insn.code {
            LD_W_ABS => {
                let at = insn.k as usize;
                let word = bytes
                    .get(at..at + 4)
                    .filter(|_| at.is_multiple_of(4))
                    .ok_or_else(|| bad("load outside seccomp_data or misaligned"))?;
                acc = u32::from_ne_bytes(word.try_into().expect("a 4-byte slice"));
                0
            }
            RET_K => {
                return Ok(Execution {
                    ret: insn.k,
                    executed,
                });
            }
            AND_K => {
                acc &= insn.k;
                0
            }
            JA => insn.k as usize,
            JEQ_K | JGT_K | JGE_K | JSET_K => {
                let taken = match insn.code {
                    JEQ_K => acc == insn.k,
                    JGT_K => acc > insn.k,
                    JGE_K => acc >= insn.k,
                    _ => acc & insn.k != 0,
                };
                usize::from(if taken { insn.jt } else { insn.jf })
            }
            _ => return Err(bad("unsupported instruction")),
        };
        let next = pc + 1 + skip;
        if skip > 0 && next >= prog.len() {
            return Err(bad("jump past the end of the program"));
        }
        pc = next;
    }
}

/// `data` as the kernel's filter sees it: the struct's bytes in native order.
#[cfg(any(test, feature = "evaluate"))]
fn data_bytes(data: &seccomp_data) -> [u8; size_of::<seccomp_data>()] {
    let mut bytes = [0; size_of::<seccomp_data>()];
    bytes[0..4].copy_from_slice(&data.nr.to_ne_bytes());
    bytes[4..8].copy_from_slice(&data.arch.to_ne_bytes());
    bytes[8..16].copy_from_slice(&data.instruction_pointer.to_ne_bytes());
    for (i, arg) in data.args.iter().enumerate() {
        bytes[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A foreign audit architecture (`AUDIT_ARCH_I386`).
    const I386: u32 = 0x4000_0003;

    /// Knuth's MMIX LCG: deterministic and good enough to pick syscall numbers.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        fn below(&mut self, n: u32) -> u32 {
            self.next() % n
        }
    }

    const POOL: [Action; 8] = [
        Action::Allow,
        Action::Errno(1),
        Action::Errno(13),
        Action::Errno(4095),
        Action::Trace(0),
        Action::UserNotif,
        Action::KillProcess,
        Action::Log,
    ];

    /// How a random policy picks its actions.
    #[derive(Clone, Copy, Debug)]
    enum Actions {
        /// Every rule a different action (worst case for the program's size).
        Distinct,
        /// Actions from a small pool, rules on consecutive numbers (many ranges).
        Clustered,
        /// Actions from a small pool on numbers spread over 0..=1024.
        Spread,
    }

    fn random_policy(rng: &mut Lcg, n: usize, actions: Actions) -> Policy {
        let mut policy = Policy::new(POOL[rng.below(8) as usize]);
        policy.other_abi(POOL[rng.below(8) as usize]);
        let mut i = 0;
        while policy.rules.len() < n {
            let (nr, action) = match actions {
                Actions::Distinct => (rng.below(1025), Action::Errno(1 + (i % 4095) as u16)),
                Actions::Clustered => (rng.below(n as u32 * 5 / 4 + 2), POOL[rng.below(3) as usize]),
                Actions::Spread => (rng.below(1025), POOL[rng.below(8) as usize]),
            };
            if !policy.rules.contains_key(&nr) {
                policy.set(nr, action);
                i += 1;
            }
        }
        policy
    }

    fn data(arch: u32, nr: u32) -> seccomp_data {
        seccomp_data {
            nr: nr as i32,
            arch,
            instruction_pointer: 0x7f00_dead_beef,
            args: [u64::MAX; 6],
        }
    }

    /// What the kernel would do, written independently of the compiler.
    fn expected(policy: &Policy, abi: Abi, arch: u32, nr: u32) -> u32 {
        let x32 = abi.x32 && nr & 0x4000_0000 != 0;
        if arch != abi.audit_arch || x32 {
            policy.other_abi.ret()
        } else {
            policy.rules.get(&nr).copied().unwrap_or(policy.default).ret()
        }
    }

    /// Both layouts are checked on every host: only the header differs.
    const ABIS: [Abi; 2] = [Abi::X86_64, Abi::AARCH64];

    /// The numbers every policy is checked on.
    fn probes(policy: &Policy) -> Vec<u32> {
        let mut nrs: Vec<u32> = (0..=1100).collect();
        nrs.extend(0x4000_0000..=0x4000_0000 + 1024);
        nrs.extend([
            0x3fff_ffff,
            0x7fff_ffff,
            0x8000_0000,
            0xbfff_ffff,
            0xc000_0000,
            u32::MAX - 1,
            u32::MAX,
        ]);
        for &nr in policy.rules.keys() {
            nrs.extend([nr.wrapping_sub(1), nr, nr.wrapping_add(1)]);
        }
        nrs
    }

    fn ceil_log2(n: usize) -> usize {
        n.max(1).next_power_of_two().trailing_zeros() as usize
    }

    /// Instructions a native call executes before the search: ld, jeq, ld (and jset for x86_64).
    fn header(abi: Abi) -> usize {
        if abi.x32 { 4 } else { 3 }
    }

    /// The kernel's static checks on a classic-BPF seccomp program (`bpf_check_classic`, `seccomp_check_filter`).
    fn assert_kernel_shape(prog: &[sock_filter]) {
        assert!(
            !prog.is_empty() && prog.len() <= MAX_INSNS,
            "length {}",
            prog.len()
        );
        assert_eq!(
            prog.last().unwrap().code,
            RET_K,
            "the last instruction must return"
        );
        for (pc, insn) in prog.iter().enumerate() {
            let targets: Vec<usize> = match insn.code {
                JA => vec![pc + 1 + insn.k as usize],
                JEQ_K | JGT_K | JGE_K | JSET_K => vec![pc + 1 + insn.jt as usize, pc + 1 + insn.jf as usize],
                LD_W_ABS => {
                    assert!(
                        insn.k == OFFSET_NR || insn.k == OFFSET_ARCH,
                        "load of {} at {pc}",
                        insn.k
                    );
                    vec![]
                }
                RET_K => vec![],
                code => panic!("unexpected code {code:#x} at {pc}"),
            };
            for target in targets {
                assert!(
                    target < prog.len(),
                    "jump from {pc} to {target} leaves the program"
                );
            }
        }
    }

    /// Checks every probe on `abi`'s layout and returns the program and the most instructions a native lookup ran.
    fn check(policy: &Policy, abi: Abi) -> (Vec<sock_filter>, usize) {
        let prog = compile_for(policy, abi).unwrap();
        assert_kernel_shape(&prog);
        let mut max_executed = 0;
        for nr in probes(policy) {
            for arch in [Abi::X86_64.audit_arch, Abi::AARCH64.audit_arch, I386, 0] {
                let run = execute(&prog, &data(arch, nr)).unwrap();
                let want = expected(policy, abi, arch, nr);
                assert_eq!(
                    run.ret, want,
                    "{}: nr {nr:#x} arch {arch:#x} in {policy:?}",
                    abi.name
                );
                if arch == abi.audit_arch {
                    max_executed = max_executed.max(run.executed);
                }
            }
        }
        (prog, max_executed)
    }

    #[test]
    fn random_policies_give_every_call_its_action() {
        let mut rng = Lcg(0x5eed);
        for n in [1, 2, 3, 4, 5, 10, 100, 300, 450] {
            for actions in [Actions::Distinct, Actions::Clustered, Actions::Spread] {
                for _ in 0..3 {
                    let policy = random_policy(&mut rng, n, actions);
                    for abi in ABIS {
                        let (prog, max_executed) = check(&policy, abi);
                        let bound = header(abi) + 2 * ceil_log2(n) + 2 * MAX_LEAF + 1;
                        assert!(
                            max_executed <= bound,
                            "{n} rules ({actions:?}, {abi:?}): {max_executed} executed > {bound}, length {}",
                            prog.len()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn distinct_actions_on_300_and_450_rules_use_trampolines_and_stay_logarithmic() {
        for n in [300, 450] {
            let mut spread = Policy::new(Action::Allow);
            let mut rng = Lcg(n as u64);
            while spread.rules.len() < n {
                let nr = rng.below(1025);
                if !spread.rules.contains_key(&nr) {
                    spread.set(nr, Action::Errno(1 + spread.rules.len() as u16));
                }
            }
            let mut dense = Policy::new(Action::Allow);
            for nr in 0..n as u32 {
                dense.set(nr, Action::Trace(nr as u16));
            }
            for (name, policy) in [("spread", spread), ("dense", dense)] {
                for abi in ABIS {
                    let (prog, max_executed) = check(&policy, abi);
                    eprintln!(
                        "{n} distinct actions ({name}, {}): {} instructions, ≤ {max_executed} executed",
                        abi.name,
                        prog.len()
                    );
                    assert!(
                        prog.iter().any(|insn| insn.code == JA),
                        "{n} {name}: no trampoline needed?"
                    );
                    assert!(max_executed <= header(abi) + 2 * ceil_log2(n) + 2 * MAX_LEAF + 1);
                    // Single numbers need no range checks: at most one jeq per run in a leaf.
                    let leaves = n.div_ceil(MAX_LEAF);
                    assert!(max_executed <= header(abi) + 2 * ceil_log2(leaves) + MAX_LEAF + 1);
                }
            }
        }
    }

    /// Guards decide on registers as the tests say, among many other rules, and only for their syscall.
    #[test]
    fn guarded_syscalls_ask_only_for_calls_whose_registers_pass() {
        let futex = 202;
        let wait_no_timeout = vec![
            ArgTest::LowEq {
                arg: 1,
                mask: u32::MAX,
                value: 128,
            },
            ArgTest::Zero { arg: 3 },
        ];
        let thread = vec![ArgTest::LowAnySet {
            arg: 0,
            bits: 0x10000,
        }];
        let masked = vec![ArgTest::LowEq {
            arg: 2,
            mask: 0xff,
            value: 5,
        }];
        let with_timeout = vec![
            ArgTest::NonZero { arg: 4 },
            ArgTest::LowNoneSet { arg: 5, bits: 1 },
        ];
        for filler in [0usize, 40, 300] {
            let mut rng = Lcg(filler as u64 + 1);
            let mut policy = random_policy(&mut rng, filler, Actions::Distinct);
            policy.set_guarded(
                futex,
                Action::UserNotif,
                vec![
                    wait_no_timeout.clone(),
                    thread.clone(),
                    masked.clone(),
                    with_timeout.clone(),
                ],
                Action::Allow,
            );
            let prog = compile_for(&policy, Abi::X86_64).unwrap();
            let check = |args: [u64; 6], notify: bool| {
                let mut d = data(Abi::X86_64.audit_arch, futex);
                d.args = args;
                let want = if notify { Action::UserNotif } else { Action::Allow };
                assert_eq!(
                    execute(&prog, &d).unwrap().ret,
                    want.ret(),
                    "{filler} rules, args {args:x?}"
                );
            };
            check([0, 128, 0, 0, 0, 0], true);
            check([0, 128, 0, 0x1_0000_0000, 0, 0], false); // a timeout pointer above 4 GiB is not null
            check([0, 129, 0, 0, 0, 0], false);
            check([0x10000, 1, 0, 7, 0, 0], true);
            check([0, 1, 0x1205, 7, 0, 0], true);
            check([0, 1, 0x1206, 7, 0, 0], false);
            check([0, 1, 0, 7, 1, 0], true);
            check([0, 1, 0, 7, 0x2_0000_0000, 2], true);
            check([0, 1, 0, 7, 0x2_0000_0000, 3], false);
            check([0, 1, 0, 7, 0, 0], false);
            // Other syscalls keep their own actions.
            for nr in [0u32, 1, 201, 203, 1000] {
                let d = data(Abi::X86_64.audit_arch, nr);
                assert_eq!(
                    execute(&prog, &d).unwrap().ret,
                    expected(&policy, Abi::X86_64, d.arch, nr),
                    "{nr}"
                );
            }
        }
    }

    /// A `ctl=` rule's guard, as the decider builds it, lets only the operations it names leave the kernel: an
    /// `epoll_ctl:ENOENT:ctl=del` rule never sees (so never fails) an ADD or a MOD.
    #[test]
    fn epoll_ctl_guards_let_only_the_named_operations_through() {
        use phoebe_core::{
            decide::Decider,
            model::{FaultSpec, Syscall},
        };
        let epoll_ctl = Syscall::parse("epoll_ctl").unwrap();
        let nr = epoll_ctl.number();
        for (rule, passes) in [
            ("epoll_ctl:ENOENT:p=1:ctl=del", [false, true, false]),
            ("epoll_ctl:ENOENT:p=1:ctl=mod|del:fd=pipe", [false, true, true]),
            ("epoll_ctl:EEXIST:p=1:ctl=EPOLL_CTL_ADD", [true, false, false]),
        ] {
            let decider = Decider::new(vec![FaultSpec::parse(rule).unwrap()], 1);
            let guard = decider
                .register_guard(epoll_ctl)
                .expect("ctl= is decided on registers");
            let mut policy = Policy::new(Action::Allow);
            policy.set_guarded(nr, Action::UserNotif, guard, Action::Allow);
            let prog = compile_for(&policy, Abi::X86_64).unwrap();
            // ADD, DEL, MOD (1, 2, 3), with garbage in the upper half of the int.
            for (op, want) in [1u64, 2, 3].into_iter().zip(passes) {
                for high in [0, 0xdead_0000_0000] {
                    let mut d = data(Abi::X86_64.audit_arch, nr);
                    d.args = [4, high | op, 5, 0x7ff0, 0, 0];
                    let want = if want { Action::UserNotif } else { Action::Allow };
                    assert_eq!(execute(&prog, &d).unwrap().ret, want.ret(), "{rule}: op {op}");
                }
            }
            // An unknown operation is no rule's.
            let mut d = data(Abi::X86_64.audit_arch, nr);
            d.args = [4, 9, 5, 0, 0, 0];
            assert_eq!(execute(&prog, &d).unwrap().ret, Action::Allow.ret(), "{rule}");
        }
    }

    #[test]
    fn small_programs_need_no_trampolines() {
        let mut rng = Lcg(7);
        let policy = random_policy(&mut rng, 40, Actions::Distinct);
        let prog = compile(&policy).unwrap();
        assert!(!prog.iter().any(|insn| insn.code == JA));
    }

    #[test]
    fn empty_policy_returns_the_default_for_every_native_call() {
        for default in POOL {
            let mut policy = Policy::new(default);
            policy.other_abi(Action::KillProcess);
            for abi in ABIS {
                let (prog, max_executed) = check(&policy, abi);
                assert_eq!(prog.len(), header(abi) + 2, "{prog:?}");
                assert_eq!(max_executed, header(abi) + 1);
            }
        }
    }

    #[test]
    fn rules_equal_to_the_default_vanish() {
        let mut policy = Policy::new(Action::Errno(5));
        for nr in (0..400).step_by(3) {
            policy.set(nr, Action::Errno(5));
        }
        for abi in ABIS {
            let (prog, _) = check(&policy, abi);
            assert_eq!(prog.len(), header(abi) + 2);
        }
    }

    #[test]
    fn consecutive_rules_with_one_action_become_a_range() {
        let mut policy = Policy::new(Action::Allow);
        for nr in 0..=399 {
            policy.set(nr, Action::Errno(13));
        }
        for nr in 500..=700 {
            policy.set(nr, Action::Trace(1));
        }
        policy.set(450, Action::Log);
        for abi in ABIS {
            let (prog, max_executed) = check(&policy, abi);
            // Three runs, one leaf: jgt 399, jeq 450, jge 500 + jgt 700, ret default and three action returns.
            assert_eq!(prog.len(), header(abi) + 1 + 4 + 4, "{prog:?}");
            assert_eq!(max_executed, header(abi) + 5);
        }
    }

    #[test]
    fn adjacent_ranges_with_different_actions() {
        let mut policy = Policy::new(Action::Allow);
        for (i, nr) in (0..1024).enumerate() {
            policy.set(nr, Action::Errno(1 + (i / 7 % 3) as u16));
        }
        policy
            .set(0xbfff_ffff, Action::Log)
            .set(X32_SYSCALL_BIT - 1, Action::Trace(9))
            .set(0x8000_0000, Action::Log);
        for abi in ABIS {
            check(&policy, abi);
        }
    }

    #[test]
    fn too_long_programs_are_refused_with_their_length() {
        let mut policy = Policy::new(Action::Allow);
        for nr in 0..2000 {
            policy.set(nr * 2, Action::Errno(1 + nr as u16));
        }
        match compile(&policy) {
            Err(FilterError::TooLong { len, limit }) => {
                assert_eq!(limit, 4096);
                assert!(len > limit);
                let message = FilterError::TooLong { len, limit }.to_string();
                assert!(
                    message.contains(&format!("needs {len} instructions")),
                    "{message}"
                );
                assert!(message.contains("limit of 4096"), "{message}");
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
        // The largest size that still fits is well above any real syscall table.
        let mut fits = Policy::new(Action::Allow);
        for nr in 0..1300 {
            fits.set(nr * 2, Action::Errno(1 + nr as u16));
        }
        assert!(compile(&fits).unwrap().len() <= MAX_INSNS);
    }

    #[test]
    fn errnos_outside_1_to_4095_name_their_rule() {
        for errno in [0, 4096, u16::MAX] {
            let mut policy = Policy::new(Action::Allow);
            policy.set(39, Action::Errno(1)).set(257, Action::Errno(errno));
            let err = compile(&policy).unwrap_err();
            assert!(
                matches!(err, FilterError::InvalidErrno { site: RuleSite::Syscall(257), errno: e } if e == errno)
            );
            assert_eq!(
                err.to_string(),
                format!("errno {errno} for syscall 257 is outside 1..=4095")
            );
        }
        let err = compile(&Policy::new(Action::Errno(0))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "errno 0 for the default action is outside 1..=4095"
        );
        let err = compile(Policy::new(Action::Allow).other_abi(Action::Errno(5000))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "errno 5000 for the other-ABI action is outside 1..=4095"
        );
        compile(Policy::new(Action::Errno(4095)).set(1, Action::Errno(1))).unwrap();
    }

    #[test]
    fn rules_with_the_x32_bit_are_refused_on_x86_64() {
        let mut policy = Policy::new(Action::Allow);
        policy.set(0x4000_0027, Action::Errno(1));
        let err = compile_for(&policy, Abi::X86_64).unwrap_err();
        assert!(matches!(err, FilterError::X32Rule { nr: 0x4000_0027 }));
        assert_eq!(
            err.to_string(),
            "the rule for syscall 0x40000027 could never match"
        );
        assert_eq!(
            phoebe_sys::error::Chain::asking(&err, phoebe_core::hint::ask::<FilterError>).hints(),
            ["numbers with the x32 bit (0x40000000) get the other-ABI action"]
        );
        let (_, _) = check(&policy, Abi::AARCH64);
    }

    #[test]
    fn actions_map_to_the_kernel_return_values() {
        assert_eq!(Action::Allow.ret(), 0x7fff_0000);
        assert_eq!(Action::Errno(77).ret(), 0x0005_004d);
        assert_eq!(Action::Trace(0x1234).ret(), 0x7ff0_1234);
        assert_eq!(Action::UserNotif.ret(), 0x7fc0_0000);
        assert_eq!(Action::KillProcess.ret(), 0x8000_0000);
        assert_eq!(Action::Log.ret(), 0x7ffc_0000);
    }

    #[test]
    fn evaluate_reads_seccomp_data_like_the_kernel() {
        let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
        // Word 3 of seccomp_data is the upper half of instruction_pointer on little-endian machines.
        let ip_high = [
            insn(LD_W_ABS, 0, 0, 12),
            insn(JEQ_K, 0, 1, 0x7f00),
            insn(RET_K, 0, 0, 1),
            insn(RET_K, 0, 0, 2),
        ];
        let expected = if cfg!(target_endian = "little") { 1 } else { 2 };
        assert_eq!(evaluate(&ip_high, &data(0, 0)).unwrap(), expected);
        let arg5_low = [insn(LD_W_ABS, 0, 0, 56), insn(RET_K, 0, 0, 3)];
        assert_eq!(evaluate(&arg5_low, &data(0, 0)).unwrap(), 3);
        let nr = [
            insn(LD_W_ABS, 0, 0, 0),
            insn(JGE_K, 0, 1, 300),
            insn(RET_K, 0, 0, 1),
            insn(RET_K, 0, 0, 0),
        ];
        assert_eq!(evaluate(&nr, &data(0, 300)).unwrap(), 1);
        assert_eq!(evaluate(&nr, &data(0, 299)).unwrap(), 0);
    }

    #[test]
    fn evaluate_rejects_what_it_cannot_run() {
        let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
        let cases: [(&[sock_filter], usize, &str); 6] = [
            (&[], 0, "the program ends without a return"),
            (&[insn(LD_W_ABS, 0, 0, 0)], 1, "the program ends without a return"),
            (
                &[insn(LD_W_ABS, 0, 0, 2), insn(RET_K, 0, 0, 0)],
                0,
                "load outside seccomp_data or misaligned",
            ),
            (
                &[insn(LD_W_ABS, 0, 0, 64), insn(RET_K, 0, 0, 0)],
                0,
                "load outside seccomp_data or misaligned",
            ),
            (
                &[insn(JA, 0, 0, 1), insn(RET_K, 0, 0, 0)],
                0,
                "jump past the end of the program",
            ),
            (
                &[insn(0x04, 0, 0, 1), insn(RET_K, 0, 0, 0)],
                0,
                "unsupported instruction",
            ),
        ];
        for (prog, at, why) in cases {
            match evaluate(prog, &data(0, 0)) {
                Err(FilterError::BadProgram { pc, reason }) => {
                    assert_eq!((pc, reason), (at, why), "{prog:?}")
                }
                other => panic!("{prog:?}: {other:?}"),
            }
        }
        let jeq_out = [
            insn(LD_W_ABS, 0, 0, 0),
            insn(JEQ_K, 0, 5, 0),
            insn(RET_K, 0, 0, 0),
        ];
        assert!(
            evaluate(&jeq_out, &data(0, 0)).is_ok(),
            "nr 0 takes the in-range branch"
        );
        assert!(matches!(
            evaluate(&jeq_out, &data(0, 3)),
            Err(FilterError::BadProgram { pc: 1, .. })
        ));
    }
}
