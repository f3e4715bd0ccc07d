//! eBPF injection at the kernel's LSM hooks: the kernel decides and fails the target's calls itself, with no stop
//! and no round trip to phoebe (`ebpf/phoebe-ebpf/src/inject.rs` has the programs). Each hook's program is
//! attached as a BPF LSM program (`lsm/<hook>`) where `bpf` is an active LSM, else as fmod_ret on the kernel
//! function `security_<hook>` (`fmod_ret.rs`), which runs whatever the LSM list; [`mechanisms`] says which is
//! tried first.
//!
//! Hooks are not syscalls. Each syscall this backend can fail is decided at exactly one LSM hook, and only the
//! calls that reach that hook are seen: an `openat` that fails its path walk never reaches `file_open`. So
//! [`plan`] states, per rule, which syscalls it really covers and through which hook, and refuses the rules no
//! hook can honour (path globs, exit-side injection, delays, syscalls without a hook) with the backend to use
//! instead. Rolls use `bpf_get_prandom_u32`, not the seed: a run is reproduced by replaying its log (the call
//! indices are exact) on seccomp or ptrace.
//!
//! Owns: the syscall → hook table, turning rules into the kernel's tables, loading and attaching the programs
//! (BPF LSM here, fmod_ret through `fmod_ret.rs`), the runtime switch (a map flag) and collecting the injection
//! events into the decider's log.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::Lsm,
};
use phoebe_common::{
    decide, globals,
    inject::{
        ERRNOS_PER_RULE, InjectEvent, KernelRule, MAX_RULES, RULES_PER_SYSCALL, RuleCounters, SYSCALL_SLOTS,
        SyscallRules, UNLIMITED, globals as inject_globals, hook, maps as inject_maps,
        programs as inject_programs, sigpipe,
    },
    maps, programs, state,
};

use super::{EbpfError, OBJECT, attach_raw_tp, btf, fmod_ret, launch};
use phoebe_backend_common::{BackendError, Outcome, Target, control::Control};
use phoebe_core::{
    decide::Decider,
    hint::Hint,
    model::{Effect, Errno, FaultSpec, Injection, Syscall, When, realism},
};

/// An LSM hook and what it means for the syscalls decided there.
#[derive(Debug, PartialEq, Eq)]
pub struct Hook {
    /// `phoebe_common::inject::hook` id.
    id: u32,
    /// The LSM hook's name (`lsm/<name>`).
    pub lsm: &'static str,
    /// The program that implements it.
    program: &'static str,
    /// How many arguments the hook takes: the program reads them, then the return value so far, from its
    /// context (the same layout for `lsm/<name>` and for fmod_ret on `security_<name>`).
    args: usize,
    /// Which calls of its syscalls it sees, and which it does not.
    pub covers: &'static str,
}

const FILE_OPEN: Hook = Hook {
    id: hook::FILE_OPEN,
    lsm: "file_open",
    program: inject_programs::FILE_OPEN,
    args: 1,
    covers: "calls that resolved their path and passed the permission checks (one that fails earlier, e.g. \
             ENOENT, never reaches the hook and is not counted); not O_PATH opens",
};
const FILE_READ: Hook = Hook {
    id: hook::FILE_READ,
    lsm: "file_permission",
    program: inject_programs::FILE_PERMISSION,
    args: 2,
    covers: "calls on an open file, pipe, terminal or socket (MAY_READ)",
};
const FILE_WRITE: Hook = Hook {
    id: hook::FILE_WRITE,
    lsm: "file_permission",
    program: inject_programs::FILE_PERMISSION,
    args: 2,
    covers: "calls on an open file, pipe, terminal or socket (MAY_WRITE), except writes to the caller's stderr \
             (fd 2), which are never failed so that the program can still report",
};
const SOCKET_CREATE: Hook = Hook {
    id: hook::SOCKET_CREATE,
    lsm: "socket_create",
    program: inject_programs::SOCKET_CREATE,
    args: 4,
    covers: "every call with a known address family",
};
const SOCKET_BIND: Hook = Hook {
    id: hook::SOCKET_BIND,
    lsm: "socket_bind",
    program: inject_programs::SOCKET_BIND,
    args: 3,
    covers: "calls on a socket, before the address is bound",
};
const SOCKET_CONNECT: Hook = Hook {
    id: hook::SOCKET_CONNECT,
    lsm: "socket_connect",
    program: inject_programs::SOCKET_CONNECT,
    args: 3,
    covers: "calls on a socket, before connecting",
};
const SOCKET_LISTEN: Hook = Hook {
    id: hook::SOCKET_LISTEN,
    lsm: "socket_listen",
    program: inject_programs::SOCKET_LISTEN,
    args: 2,
    covers: "calls on a socket",
};
const SOCKET_ACCEPT: Hook = Hook {
    id: hook::SOCKET_ACCEPT,
    lsm: "socket_accept",
    program: inject_programs::SOCKET_ACCEPT,
    args: 2,
    covers: "calls on a listening socket, before waiting for a peer",
};
const SOCKET_SENDMSG: Hook = Hook {
    id: hook::SOCKET_SENDMSG,
    lsm: "socket_sendmsg",
    program: inject_programs::SOCKET_SENDMSG,
    args: 3,
    covers: "calls on a socket, before sending",
};
const SOCKET_RECVMSG: Hook = Hook {
    id: hook::SOCKET_RECVMSG,
    lsm: "socket_recvmsg",
    program: inject_programs::SOCKET_RECVMSG,
    args: 4,
    covers: "calls on a socket, before receiving",
};
const SOCKET_SHUTDOWN: Hook = Hook {
    id: hook::SOCKET_SHUTDOWN,
    lsm: "socket_shutdown",
    program: inject_programs::SOCKET_SHUTDOWN,
    args: 2,
    covers: "calls on a socket",
};

/// The syscalls this backend can fail, each with the one hook that decides it. Left out on purpose: syscalls
/// that pass their hook more than once per call (sendmmsg, recvmmsg, socketpair, sendfile, copy_file_range,
/// splice), which would be decided several times per call.
const TABLE: &[(&[&str], &Hook)] = &[
    (&["open", "openat", "openat2", "creat"], &FILE_OPEN),
    (&["read", "readv", "pread64", "preadv", "preadv2"], &FILE_READ),
    (
        &["write", "writev", "pwrite64", "pwritev", "pwritev2"],
        &FILE_WRITE,
    ),
    (&["socket"], &SOCKET_CREATE),
    (&["bind"], &SOCKET_BIND),
    (&["connect"], &SOCKET_CONNECT),
    (&["listen"], &SOCKET_LISTEN),
    (&["accept", "accept4"], &SOCKET_ACCEPT),
    (&["sendto", "sendmsg"], &SOCKET_SENDMSG),
    (&["recvfrom", "recvmsg"], &SOCKET_RECVMSG),
    (&["shutdown"], &SOCKET_SHUTDOWN),
];

/// The hook that decides `syscall`'s calls, if any.
pub fn hook_of(syscall: Syscall) -> Option<&'static Hook> {
    TABLE
        .iter()
        .find(|(names, _)| names.contains(&syscall.name()))
        .map(|(_, hook)| *hook)
}

/// Every syscall this backend can fail, in table order.
pub fn covered_syscalls() -> impl Iterator<Item = &'static str> {
    TABLE.iter().flat_map(|(names, _)| names.iter().copied())
}

/// What one rule covers on this backend.
#[derive(Debug)]
pub struct Coverage {
    /// The rule as the user wrote it (canonical form).
    pub fault: String,
    pub syscalls: Vec<(Syscall, &'static Hook)>,
}

/// The rules turned into the kernel's tables, with what each covers.
#[derive(Debug)]
pub struct Plan {
    pub coverage: Vec<Coverage>,
    /// Per syscall number, its rules in rule order.
    tables: BTreeMap<u32, SyscallRules>,
    /// The programs to load and attach (by program name), with their hook.
    hooks: BTreeMap<&'static str, &'static Hook>,
}

impl Plan {
    /// One paragraph per rule: `rule N 'SPEC': SYSCALL via hook HOOK: what it covers`. Which mechanism runs the
    /// hooks is known only once they are attached ([`Injector::mechanism`]).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, rule) in self.coverage.iter().enumerate() {
            let _ = writeln!(out, "phoebe: ebpf: rule {} '{}' covers:", i + 1, rule.fault);
            for (syscall, hook) in &rule.syscalls {
                let _ = writeln!(out, "  {} via hook {}: {}", syscall.name(), hook.lsm, hook.covers);
            }
        }
        out
    }

    /// The LSM hooks the plan attaches, by name, each once.
    fn hook_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.hooks.values().map(|h| h.lsm).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// How the hooks' programs are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// BPF LSM programs on the hooks themselves: they run only where `bpf` is in the active LSM list.
    Lsm,
    /// Tracing programs modifying the return of `security_<hook>` (`fmod_ret.rs`): they run whatever the list.
    FmodRet,
}

impl Mechanism {
    /// `lsm/file_open` or `fmod_ret/security_file_open`.
    pub fn attach_point(self, hook: &str) -> String {
        match self {
            Mechanism::Lsm => format!("lsm/{hook}"),
            Mechanism::FmodRet => format!("fmod_ret/{}", fmod_ret::function_of(hook)),
        }
    }
}

/// The mechanisms to try, in order, given whether `bpf` is an active LSM (`None`: unknown, securityfs is not
/// mounted). BPF LSM first where it is active. Where it is not, an LSM program would load, attach and never
/// run, so fmod_ret only. Where nobody knows, fmod_ret first (it runs either way), BPF LSM as a last resort.
pub fn mechanisms(bpf_lsm_active: Option<bool>) -> &'static [Mechanism] {
    match bpf_lsm_active {
        Some(true) => &[Mechanism::Lsm, Mechanism::FmodRet],
        Some(false) => &[Mechanism::FmodRet],
        None => &[Mechanism::FmodRet, Mechanism::Lsm],
    }
}

fn refuse(fault: &FaultSpec, reason: String) -> BackendError {
    BackendError::Unsupported {
        fault: fault.to_string(),
        backend: "ebpf",
        reason,
        hint: None,
    }
}

/// Checks every rule against what the LSM hooks can do and builds the kernel's tables. A rule that cannot be
/// honoured exactly is refused, never approximated.
pub fn plan(faults: &[&FaultSpec]) -> Result<Plan, BackendError> {
    if faults.len() > MAX_RULES as usize {
        return Err(BackendError::Unsupported {
            fault: format!("{} rules", faults.len()),
            backend: "ebpf",
            reason: format!("at most {MAX_RULES} rules fit in the kernel's tables"),
            hint: None,
        });
    }
    let mut coverage = Vec::new();
    let mut tables: BTreeMap<u32, SyscallRules> = BTreeMap::new();
    let mut hooks = BTreeMap::new();
    phoebe_backend_common::refuse_short(
        faults,
        "ebpf",
        "LSM hooks decide before the call runs and cannot change its count",
    )?;
    for (id, fault) in faults.iter().enumerate() {
        if fault.path.is_some() {
            return Err(refuse(
                fault,
                format!(
                    "path globs cannot be matched inside the kernel; {}",
                    Hint::UseSeccomp
                ),
            ));
        }
        if let Some(pred) = fault.shape.first() {
            return Err(refuse(
                fault,
                format!(
                    "the injector's programs do not compute call shapes, so {}= cannot be honoured; {}",
                    phoebe_core::model::shape::grammar_name(pred.key),
                    Hint::UseSeccomp
                ),
            ));
        }
        if fault.when == When::Exit {
            return Err(refuse(
                fault,
                format!(
                    "LSM hooks decide before the call runs, so when=exit cannot be honoured; {}",
                    Hint::UsePtrace
                ),
            ));
        }
        if fault.delay.is_some() {
            return Err(refuse(
                fault,
                "an LSM hook cannot sleep, so delay= cannot be honoured; use --backend seccomp or --backend ptrace"
                    .into(),
            ));
        }
        if fault.syscalls.iter().any(|sc| sc.name() == "connect")
            && fault
                .errnos
                .iter()
                .any(|(errno, _)| errno.code() == libc::ETIMEDOUT)
        {
            return Err(refuse(
                fault,
                format!(
                    "a blocking connect's ETIMEDOUT comes once its SYN retries have run out (127 s with Linux's \
                     default 6), and an LSM hook cannot hold the call that long, so it would come at once; {}",
                    Hint::UseSeccomp
                ),
            ));
        }
        if fault.errnos.len() > ERRNOS_PER_RULE {
            return Err(refuse(
                fault,
                format!("at most {ERRNOS_PER_RULE} errnos per rule fit in the kernel's tables"),
            ));
        }
        let kernel = kernel_rule(id as u32, fault);
        let mut syscalls = Vec::new();
        for &syscall in &fault.syscalls {
            let Some(hook) = hook_of(syscall) else {
                return Err(refuse(
                    fault,
                    format!(
                        "no LSM hook decides '{}'; the eBPF backend can fail {}; {}",
                        syscall.name(),
                        covered_syscalls().collect::<Vec<_>>().join(", "),
                        Hint::UseSeccomp
                    ),
                ));
            };
            let nr = syscall.number();
            if nr >= SYSCALL_SLOTS {
                return Err(refuse(
                    fault,
                    format!("syscall number {nr} is beyond the kernel's table"),
                ));
            }
            let table = tables.entry(nr).or_insert(SyscallRules {
                hook: hook.id,
                count: 0,
                sigpipe: sigpipe_of(syscall),
                pad: 0,
                rules: [kernel; RULES_PER_SYSCALL],
            });
            if table.count as usize == RULES_PER_SYSCALL {
                return Err(refuse(
                    fault,
                    format!(
                        "at most {RULES_PER_SYSCALL} rules per syscall fit in the kernel's tables, and '{}' has more",
                        syscall.name()
                    ),
                ));
            }
            table.rules[table.count as usize] = kernel;
            table.count += 1;
            hooks.insert(hook.program, hook);
            syscalls.push((syscall, hook));
        }
        coverage.push(Coverage {
            fault: fault.to_string(),
            syscalls,
        });
    }
    Ok(Plan {
        coverage,
        tables,
        hooks,
    })
}

/// Whether the kernel raises SIGPIPE with an `EPIPE` of `syscall` ([`realism::epipe_signal`]), as the injector's
/// programs read it ([`sigpipe`]): they raise it too, in the calling thread, as the kernel's `send_sig(SIGPIPE,
/// current, 0)` does.
fn sigpipe_of(syscall: Syscall) -> u32 {
    match realism::epipe_signal(syscall) {
        None => sigpipe::NEVER,
        Some(None) => sigpipe::ALWAYS,
        Some(Some(flags)) => sigpipe::UNLESS_NOSIGNAL_IN + flags as u32,
    }
}

/// One rule as the kernel applies it (`id`: its index among the rules), built by phoebe-common's
/// [`decide::kernel_rule`], whose window and weights the eBPF program reads back with the same crate's functions.
fn kernel_rule(id: u32, fault: &FaultSpec) -> KernelRule {
    let errnos: Vec<(u32, f64)> = fault.errnos.iter().map(|(e, w)| (e.code() as u32, *w)).collect();
    decide::kernel_rule(
        id,
        fault.probability,
        &errnos,
        (
            fault.window.first,
            fault.window.last.unwrap_or(UNLIMITED),
            fault.window.every,
        ),
        fault.max.unwrap_or(UNLIMITED),
    )
}

/// The last `n` lines of a verifier log.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Is BPF LSM active? `None` when `/sys/kernel/security/lsm` cannot be read (securityfs not mounted).
pub fn bpf_lsm_active() -> Option<bool> {
    let list = std::fs::read_to_string("/sys/kernel/security/lsm").ok()?;
    Some(list.trim().split(',').any(|lsm| lsm == "bpf"))
}

/// Why one mechanism could not attach the plan's hooks.
enum Refusal {
    /// The kernel refused it (this sentence says how): try the next mechanism.
    Kernel(String),
    /// Anything else (a verifier rejection is a phoebe bug): stop.
    Fatal(EbpfError),
}

/// Loads and attaches the plan's programs as BPF LSM programs.
fn attach_lsm(ebpf: &mut Ebpf, plan: &Plan, aya_btf: &aya::Btf) -> Result<(), Refusal> {
    for (&program, hook) in &plan.hooks {
        let lsm = hook.lsm;
        let prog: &mut Lsm = ebpf
            .program_mut(program)
            .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
            .and_then(|p| p.try_into())
            .map_err(|source| {
                Refusal::Fatal(EbpfError::Program {
                    name: program,
                    tracepoint: lsm,
                    source,
                })
            })?;
        prog.load(lsm, aya_btf).map_err(|e| match e {
            // The verifier went through the code and rejected it: phoebe's program is at fault, not the
            // kernel's configuration.
            aya::programs::ProgramError::LoadError { verifier_log, .. }
                if fmod_ret::verified_code(&verifier_log.to_string()) =>
            {
                Refusal::Fatal(EbpfError::Verifier {
                    program: program.into(),
                    log: tail(&verifier_log.to_string(), 12),
                })
            }
            e => Refusal::Kernel(format!("loading lsm/{lsm}: {}", phoebe_sys::error::errno_of(&e))),
        })?;
        prog.attach().map_err(|e| {
            Refusal::Kernel(format!(
                "attaching lsm/{lsm}: {}",
                phoebe_sys::error::errno_of(&e)
            ))
        })?;
    }
    Ok(())
}

/// Unloads (and so detaches) whatever [`attach_lsm`] loaded before a refusal.
fn unload_lsm(ebpf: &mut Ebpf, plan: &Plan) {
    for &program in plan.hooks.keys() {
        if let Some(prog) = ebpf.program_mut(program) {
            let prog: Result<&mut Lsm, _> = prog.try_into();
            if let Ok(prog) = prog {
                let _ = prog.unload();
            }
        }
    }
}

/// Loads and attaches the plan's programs as fmod_ret on `security_<hook>`.
fn attach_fmod_ret(
    programs: &Result<fmod_ret::Programs, fmod_ret::FmodRetError>,
    plan: &Plan,
    btf: &btf::Btf,
) -> Result<Vec<fmod_ret::Attached>, Refusal> {
    let programs = programs.as_ref().map_err(|e| Refusal::Kernel(error_chain(e)))?;
    let mut attached = Vec::new();
    for (&program, hook) in &plan.hooks {
        match programs.attach(program, hook.lsm, hook.args, btf) {
            Ok(link) => attached.push(link),
            Err(fmod_ret::FmodRetError::Verifier { program, log, .. }) => {
                return Err(Refusal::Fatal(EbpfError::Verifier {
                    program: format!("{program} (as fmod_ret)"),
                    log: tail(&log, 12),
                }));
            }
            Err(e) => return Err(Refusal::Kernel(error_chain(&e))),
        }
    }
    Ok(attached)
}

/// An error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    phoebe_sys::error::Chain::asking(e, phoebe_sys::error::hints_of).message()
}

/// The loaded and attached injector. Dropping it detaches and unloads every program.
pub struct Injector {
    ebpf: Ebpf,
    /// How the hooks are attached.
    mechanism: Mechanism,
    /// The fmod_ret links, when that is the mechanism (the BPF LSM programs are held by `ebpf`).
    _fmod_ret: Vec<fmod_ret::Attached>,
    /// The hooks attached (LSM names), for [`Injector::note`].
    hooks: Vec<&'static str>,
    /// Whether `bpf` was an active LSM when the hooks were attached.
    bpf_lsm: Option<bool>,
    events: RingBuf<MapData>,
    switch: Array<MapData, u32>,
    /// The switch's state in the kernel, so that only changes are written.
    switched_on: bool,
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |source| EbpfError::Map { name, source }
}

fn missing(name: &'static str) -> EbpfError {
    EbpfError::Map {
        name,
        source: aya::maps::MapError::InvalidName { name: name.into() },
    }
}

impl Injector {
    /// Loads the programs `plan` needs, fills the rule tables and attaches everything, with injection on or off.
    pub fn start(plan: &Plan, on: bool) -> Result<Self, EbpfError> {
        let bpf_lsm = bpf_lsm_active();
        let btf = btf::Btf::from_sys_fs().map_err(EbpfError::Btf)?;
        let offset = |name: &'static str, member: &'static str, what: &'static str| {
            btf.member_offset(name, member).ok_or(EbpfError::BtfMissing(what))
        };
        let tgid_offset = offset("task_struct", "tgid", "task_struct.tgid")?;
        let files_offset = offset("task_struct", "files", "task_struct.files")?;
        let fdt_offset = offset("files_struct", "fdt", "files_struct.fdt")?;
        let fd_offset = offset("fdtable", "fd", "fdtable.fd")?;
        let group_dead = u32::from(btf.tracepoint_args("sched_process_exit") == Some(2));
        let aya_btf = aya::Btf::from_sys_fs().map_err(|e| EbpfError::Btf(std::io::Error::other(e)))?;
        let mut ebpf = EbpfLoader::new()
            .override_global(globals::TASK_TGID_OFFSET, &tgid_offset, true)
            .override_global(globals::EXIT_HAS_GROUP_DEAD, &group_dead, true)
            .override_global(inject_globals::TASK_FILES_OFFSET, &files_offset, true)
            .override_global(inject_globals::FILES_FDT_OFFSET, &fdt_offset, true)
            .override_global(inject_globals::FDT_FD_OFFSET, &fd_offset, true)
            .load(OBJECT)
            .map_err(EbpfError::Load)?;
        // Now, while `ebpf` still holds every map: the fmod_ret programs must share them all.
        let fmod_ret = fmod_ret::Programs::relocate(OBJECT, &ebpf, &aya_btf);
        {
            let mut rules: Array<&mut MapData, SyscallRules> = Array::try_from(
                ebpf.map_mut(inject_maps::RULES)
                    .ok_or_else(|| missing(inject_maps::RULES))?,
            )
            .map_err(map_err(inject_maps::RULES))?;
            for (nr, table) in &plan.tables {
                rules.set(*nr, table, 0).map_err(map_err(inject_maps::RULES))?;
            }
        }
        let mut switch: Array<MapData, u32> = Array::try_from(
            ebpf.take_map(inject_maps::SWITCH)
                .ok_or_else(|| missing(inject_maps::SWITCH))?,
        )
        .map_err(map_err(inject_maps::SWITCH))?;
        switch
            .set(0, u32::from(on), 0)
            .map_err(map_err(inject_maps::SWITCH))?;
        let events = RingBuf::try_from(
            ebpf.take_map(inject_maps::EVENTS)
                .ok_or_else(|| missing(inject_maps::EVENTS))?,
        )
        .map_err(map_err(inject_maps::EVENTS))?;
        for (name, tracepoint) in [
            (programs::FORK, "sched_process_fork"),
            (programs::EXEC, "sched_process_exec"),
            (programs::EXIT, "sched_process_exit"),
        ] {
            attach_raw_tp(&mut ebpf, name, tracepoint)?;
        }
        let mut refusals = Vec::new();
        if bpf_lsm == Some(false) {
            refusals.push(
                "BPF LSM is not active (`bpf` is not in /sys/kernel/security/lsm; boot with `lsm=…,bpf`)"
                    .to_owned(),
            );
        }
        let mut chosen = None;
        for &mechanism in mechanisms(bpf_lsm) {
            let attached = match mechanism {
                Mechanism::Lsm => attach_lsm(&mut ebpf, plan, &aya_btf).map(|()| Vec::new()),
                Mechanism::FmodRet => attach_fmod_ret(&fmod_ret, plan, &btf),
            };
            match attached {
                Ok(links) => {
                    chosen = Some((mechanism, links));
                    break;
                }
                Err(Refusal::Fatal(e)) => return Err(e),
                Err(Refusal::Kernel(why)) => {
                    if mechanism == Mechanism::Lsm {
                        unload_lsm(&mut ebpf, plan);
                    }
                    refusals.push(why);
                }
            }
        }
        let Some((mechanism, links)) = chosen else {
            return Err(EbpfError::InjectRefused {
                what: refusals.join("; "),
            });
        };
        Ok(Injector {
            ebpf,
            mechanism,
            _fmod_ret: links,
            hooks: plan.hook_names(),
            bpf_lsm,
            events,
            switch,
            switched_on: on,
        })
    }

    /// One line for the user: which mechanism runs the hooks, at which attach points.
    pub fn note(&self) -> String {
        let points: Vec<String> = self
            .hooks
            .iter()
            .map(|h| self.mechanism.attach_point(h))
            .collect();
        match self.mechanism {
            Mechanism::Lsm => format!(
                "phoebe: ebpf: hooks attached as BPF LSM programs: {}",
                points.join(", ")
            ),
            Mechanism::FmodRet => format!(
                "phoebe: ebpf: hooks attached as fmod_ret programs on the kernel's security functions ({}): {}",
                match self.bpf_lsm {
                    Some(false) => "BPF LSM is not active here",
                    Some(true) => "BPF LSM was refused",
                    None => "the active LSM list is unknown: securityfs is not mounted",
                },
                points.join(", ")
            ),
        }
    }

    /// Adds a process to the target set (see `phoebe_common::state`).
    pub fn add_target(&mut self, tgid: u32) -> Result<(), EbpfError> {
        let map = self
            .ebpf
            .map_mut(maps::TARGETS)
            .ok_or_else(|| missing(maps::TARGETS))?;
        let mut targets: BpfHashMap<&mut MapData, u32, u32> =
            BpfHashMap::try_from(map).map_err(map_err(maps::TARGETS))?;
        targets
            .insert(tgid, state::LAUNCHED, 0)
            .map_err(map_err(maps::TARGETS))
    }

    /// The processes followed now.
    pub fn targets(&self) -> Vec<u32> {
        let Some(map) = self.ebpf.map(maps::TARGETS) else {
            return Vec::new();
        };
        match BpfHashMap::<&MapData, u32, u32>::try_from(map) {
            Ok(map) => map.keys().filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Turns injection on or off in the kernel (the runtime switch).
    pub fn set_switch(&mut self, on: bool) -> Result<(), EbpfError> {
        if on != self.switched_on {
            self.switch
                .set(0, u32::from(on), 0)
                .map_err(map_err(inject_maps::SWITCH))?;
            self.switched_on = on;
        }
        Ok(())
    }

    /// Every injection event the kernel has published since the last call.
    pub fn drain(&mut self) -> Vec<InjectEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.events.next() {
            if item.len() >= std::mem::size_of::<InjectEvent>() {
                // SAFETY: the item holds at least size_of::<InjectEvent>() bytes written by the kernel program
                // from an `InjectEvent`, a plain-old-data struct valid for any bit pattern; the read is unaligned.
                out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<InjectEvent>()) });
            }
        }
        out
    }

    /// Each rule's counters (index = rule).
    pub fn counters(&self, rules: usize) -> Result<Vec<RuleCounters>, EbpfError> {
        let map = self
            .ebpf
            .map(inject_maps::RULE_COUNTERS)
            .ok_or_else(|| missing(inject_maps::RULE_COUNTERS))?;
        let array: Array<&MapData, RuleCounters> =
            Array::try_from(map).map_err(map_err(inject_maps::RULE_COUNTERS))?;
        (0..rules as u32)
            .map(|i| array.get(&i, 0).map_err(map_err(inject_maps::RULE_COUNTERS)))
            .collect()
    }

    /// Injection events dropped because the ring buffer was full.
    pub fn events_lost(&self) -> u64 {
        let Some(map) = self.ebpf.map(inject_maps::EVENTS_LOST) else {
            return 0;
        };
        let Ok(lost) = PerCpuArray::<&MapData, u64>::try_from(map) else {
            return 0;
        };
        lost.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }
}

/// How often the supervisor drains the events and mirrors the switch: the switch's latency, and at most
/// `EVENTS_BYTES / 48` (≈ 21 000) logged injections per tick. Measured in a one-CPU guest, a 10 ms tick cost the
/// target 1.46× on a getppid storm (phoebe's wake-ups took its CPU); 100 ms cost nothing measurable.
const TICK: Duration = Duration::from_millis(100);

/// The injector as the supervisor drives it.
struct Injecting {
    injector: Injector,
    switch: Arc<AtomicBool>,
    events: Vec<InjectEvent>,
    /// CLOCK_MONOTONIC at the launch, in ns: injection times are logged relative to it.
    t0_ns: u64,
}

fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}

impl launch::Programs for Injecting {
    fn follow(&mut self, tgid: u32) -> Result<(), EbpfError> {
        self.t0_ns = monotonic_ns();
        self.injector.add_target(tgid)
    }

    fn followed(&mut self) -> Vec<u32> {
        self.injector.targets()
    }

    fn tick(&mut self, _tick: u32, _at: Duration, _last: bool) -> Result<(), BackendError> {
        self.injector
            .set_switch(self.switch.load(Ordering::Relaxed))
            .map_err(super::RunError::Ebpf)?;
        let events = self.injector.drain();
        self.events.extend(events);
        Ok(())
    }
}

/// The log's view of a kernel event.
fn injection(event: &InjectEvent, t0_ns: u64) -> Option<Injection> {
    Some(Injection {
        t_ns: event.t_ns.saturating_sub(t0_ns),
        pid: event.tgid as i32,
        tid: event.tid as i32,
        syscall: Syscall::from_number(u64::from(event.nr))?,
        index: event.index,
        // The kernel keys its own decisions (per syscall over the tree): no thread key.
        thread: None,
        thread_index: None,
        effect: Effect::Errno(Errno::new(event.errno as i32)?),
        // The kernel cannot hold a call: every rule with delay= is refused before a run.
        delay_ns: None,
        rule: event.rule as usize,
        when: When::Entry,
        // The kernel programs do not compute call shapes (yet): the log says nothing rather than guess.
        shape: None,
        path: None,
        signal: (event.signal != 0).then_some(event.signal as i32),
        interrupted_by: None,
    })
}

/// Checks what the kernel cannot do for `decider` before anything is loaded: replay a log (the kernel rolls its
/// own random numbers) or run a rule no hook sees ([`plan`]).
pub fn check(decider: &Decider) -> Result<(), BackendError> {
    if decider.is_replay() {
        return Err(BackendError::Unsupported {
            fault: "--replay".into(),
            backend: "ebpf",
            reason: "the kernel rolls its own random numbers, so it cannot replay a log call by call; replay with \
                     --backend seccomp (or ptrace)"
                .into(),
            hint: None,
        });
    }
    plan(&decider.faults().collect::<Vec<_>>()).map(drop)
}

/// Runs `target` with the kernel deciding every targeted call, then puts the kernel's counters and events into
/// `decider`, so that the injection log is the same as the other backends'. `note` gets one line saying how the
/// hooks were attached ([`Injector::note`]) once they are, before the target starts.
pub(super) fn run(
    target: &Target,
    decider: &mut Decider,
    control: &Control,
    note: impl FnOnce(&str),
) -> Result<Outcome, BackendError> {
    check(decider)?;
    let plan = plan(&decider.faults().collect::<Vec<_>>())?;
    let switch = decider.switch();
    let injector = Injector::start(&plan, switch.load(Ordering::Relaxed)).map_err(super::RunError::Ebpf)?;
    note(&injector.note());
    let mut injecting = Injecting {
        injector,
        switch,
        events: Vec::new(),
        t0_ns: 0,
    };
    let ended = launch::supervise(target, control, &mut injecting, TICK)?;
    let rules = decider.faults().count();
    let counters = injecting
        .injector
        .counters(rules)
        .map_err(super::RunError::Ebpf)?;
    for (id, c) in counters.iter().enumerate() {
        decider.ledger_mut().add_counts(id, c.matched, c.injected);
    }
    for event in &injecting.events {
        if let Some(injection) = injection(event, injecting.t0_ns) {
            decider.ledger_mut().log(injection);
        }
    }
    let mut warnings = Vec::new();
    let lost = injecting.injector.events_lost();
    if lost > 0 {
        warnings.push(format!(
            "{lost} injections are counted but not in the log: the kernel's event buffer was full\nhint: fewer \
             injections per second (a lower p=) keep the log complete"
        ));
    }
    Ok(Outcome {
        exit: ended.exit,
        duration: ended.duration,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The plan of the rules `specs`.
    fn plan_of(specs: &[&str]) -> Result<Plan, BackendError> {
        let faults: Vec<FaultSpec> = specs.iter().map(|s| FaultSpec::parse(s).unwrap()).collect();
        plan(&faults.iter().collect::<Vec<_>>())
    }

    fn unsupported(specs: &[&str]) -> String {
        match plan_of(specs) {
            Err(BackendError::Unsupported { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_syscall_has_one_hook() {
        let mut seen = BTreeSet::new();
        for name in covered_syscalls() {
            assert!(seen.insert(name), "{name} is in the table twice");
            let sc = Syscall::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(sc.number() < SYSCALL_SLOTS);
        }
        assert_eq!(hook_of(Syscall::parse("openat").unwrap()), Some(&FILE_OPEN));
        assert_eq!(hook_of(Syscall::parse("write").unwrap()), Some(&FILE_WRITE));
        assert_eq!(hook_of(Syscall::parse("sendmmsg").unwrap()), None);
    }

    #[test]
    fn rules_become_per_syscall_tables_in_rule_order() {
        let plan = plan_of(&["openat,read:EIO:p=0.25:max=3", "openat:ENOENT=3,EACCES=1:nth=2"]).unwrap();
        let openat = plan.tables[&Syscall::parse("openat").unwrap().number()];
        assert_eq!(openat.hook, hook::FILE_OPEN);
        assert_eq!(openat.count, 2);
        assert_eq!(openat.rules[0].rule, 0);
        assert_eq!(openat.rules[0].threshold, 1 << 30);
        assert_eq!(openat.rules[0].always, 0);
        assert_eq!(openat.rules[0].max, 3);
        assert_eq!(openat.rules[0].last, UNLIMITED);
        assert_eq!(openat.rules[1].rule, 1);
        assert_eq!(openat.rules[1].always, 1);
        assert_eq!((openat.rules[1].first, openat.rules[1].last), (2, 2));
        assert_eq!(openat.rules[1].errno_count, 2);
        assert_eq!(
            openat.rules[1].errnos[..2],
            [libc::ENOENT as u32, libc::EACCES as u32]
        );
        assert_eq!(
            openat.rules[1].errno_below[0],
            3 << 30,
            "ENOENT takes 3/4 of the rolls"
        );
        let read = plan.tables[&Syscall::parse("read").unwrap().number()];
        assert_eq!((read.hook, read.count), (hook::FILE_READ, 1));
        assert_eq!(
            plan.hooks.keys().copied().collect::<Vec<_>>(),
            [inject_programs::FILE_OPEN, inject_programs::FILE_PERMISSION]
        );
        let text = plan.describe();
        assert!(
            text.contains("rule 1 'openat,read:EIO:p=0.25:max=3' covers:"),
            "{text}"
        );
        assert!(
            text.contains("  openat via hook file_open: calls that resolved their path"),
            "{text}"
        );
        assert!(text.contains("  read via hook file_permission:"), "{text}");
        assert_eq!(plan.hook_names(), ["file_open", "file_permission"]);
    }

    #[test]
    fn bpf_lsm_goes_first_only_where_it_is_active() {
        use Mechanism::{FmodRet, Lsm};
        assert_eq!(mechanisms(Some(true)), [Lsm, FmodRet]);
        assert_eq!(
            mechanisms(Some(false)),
            [FmodRet],
            "an LSM program would attach and never run"
        );
        assert_eq!(mechanisms(None), [FmodRet, Lsm]);
        assert_eq!(Lsm.attach_point("file_open"), "lsm/file_open");
        assert_eq!(
            FmodRet.attach_point("socket_connect"),
            "fmod_ret/security_socket_connect"
        );
    }

    #[test]
    fn probability_thresholds_cover_the_whole_range() {
        assert_eq!(decide::threshold(0.0), 0);
        assert_eq!(decide::threshold(0.5), 1 << 31);
        assert_eq!(decide::threshold(1.0), u32::MAX);
    }

    #[test]
    fn rules_the_hooks_cannot_honour_are_refused_with_the_backend_to_use() {
        assert!(unsupported(&["openat:ENOENT:path=/etc/*"]).contains("--backend seccomp"));
        assert!(unsupported(&["read:EIO:when=exit"]).contains("--backend ptrace"));
        assert!(unsupported(&["read:short=1"]).starts_with("LSM hooks decide before the call runs"));
        assert!(unsupported(&["read:EAGAIN:fd=socket"]).contains("--backend seccomp"));
        assert!(unsupported(&["read:EIO:delay=10ms"]).contains("cannot sleep"));
        // A connect's ETIMEDOUT is held until its SYN retries have run out, which no LSM hook can.
        let timed_out = unsupported(&["connect:ETIMEDOUT"]);
        assert!(
            timed_out.contains("SYN retries") && timed_out.contains("--backend seccomp"),
            "{timed_out}"
        );
        let latency = unsupported(&["read:delay=10ms"]);
        assert!(
            latency.contains("cannot sleep") && latency.contains("--backend seccomp or --backend ptrace"),
            "{latency}"
        );
        let reason = unsupported(&["futex:EAGAIN"]);
        assert!(reason.contains("no LSM hook decides 'futex'"), "{reason}");
        assert!(
            reason.contains("openat"),
            "the refusal lists what is covered: {reason}"
        );
        assert!(
            unsupported(&["read:EIO", "read:EIO", "read:EIO", "read:EIO", "read:EIO"]).contains("at most 4")
        );
    }
}
