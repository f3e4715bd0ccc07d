//! What the eBPF backend can do on this machine ([`probe`], its `Backend::probe`): observing is a trivial raw
//! tracepoint loaded and attached; injecting is a trampoline (fentry), a BPF LSM program and the same program as
//! fmod_ret on `security_file_open`, each loaded (and attached) and its errno reported, and the mechanism the
//! injector would choose from them (`inject::mechanisms`). The programs are `ebpf/phoebe-ebpf`'s `probes.rs`;
//! each is dropped (detached, unloaded) before the probe returns.

use aya::{
    Btf, EbpfLoader,
    programs::{FEntry, Lsm, RawTracePoint},
};
use phoebe_common::programs;

use super::{
    OBJECT, btf,
    fmod_ret::{self, Programs},
    inject::{Mechanism, mechanisms},
};
use phoebe_backend_common::{Capability, Probe};
use phoebe_sys::{error::errno_of, host};

/// Loads and attaches the trivial raw tracepoint program, then drops it.
fn probe_raw_tp() -> Result<(), String> {
    // Loaded as the observer loads it: without parsing the kernel's BTF, which a raw tracepoint does not need.
    let mut ebpf = super::sys::without_kernel_btf(|| EbpfLoader::new().btf(None).load(OBJECT))
        .map_err(|e| format!("loading the object: {}", errno_of(&e)))?;
    let prog: &mut RawTracePoint = ebpf
        .program_mut(programs::PROBE_RAW_TP)
        .ok_or("probe program missing")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    prog.load().map_err(|e| format!("load: {}", errno_of(&e)))?;
    prog.attach("sys_enter")
        .map_err(|e| format!("attach: {}", errno_of(&e)))?;
    Ok(())
}

/// Loads the futex entry program and attaches it to `syscalls:sys_enter_futex` (through tracefs, mounted in a
/// private namespace where the machine has none), then drops it: whether the observer can learn what only a
/// call's entry tells (a timed futex wait's `within=`, close's descriptor).
fn probe_syscall_tp() -> Result<(), String> {
    let mut ebpf = super::sys::without_kernel_btf(|| EbpfLoader::new().btf(None).load(OBJECT))
        .map_err(|e| format!("loading the object: {}", errno_of(&e)))?;
    let prog: &mut aya::programs::TracePoint = ebpf
        .program_mut(programs::FUTEX_ENTER)
        .ok_or("entry program missing")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    prog.load().map_err(|e| format!("load: {}", errno_of(&e)))?;
    super::sys::with_tracefs(|| prog.attach("syscalls", "sys_enter_futex").map(drop))?
        .map_err(|e| format!("attach: {}", errno_of(&e)))
}

/// What the trampoline probes found: each result is the errno.
struct Trampolines {
    fentry: Result<(), String>,
    lsm: Result<(), String>,
    /// The BPF LSM probe's code as fmod_ret on `security_file_open`, the injector's fallback.
    fmod_ret: Result<(), String>,
}

/// Loads (and attaches) a trampoline program (fentry), a BPF LSM program and the same program as fmod_ret.
fn probe_trampolines() -> Trampolines {
    let all = |why: String| Trampolines {
        fentry: Err(why.clone()),
        lsm: Err(why.clone()),
        fmod_ret: Err(why),
    };
    let (btf, ours) = match (Btf::from_sys_fs(), btf::Btf::from_sys_fs()) {
        (Ok(btf), Ok(ours)) => (btf, ours),
        (Err(e), _) => return all(format!("no kernel BTF: {e}")),
        (_, Err(e)) => return all(format!("no kernel BTF: {e}")),
    };
    let mut ebpf = match EbpfLoader::new().load(OBJECT) {
        Ok(ebpf) => ebpf,
        Err(e) => return all(format!("loading the object: {}", errno_of(&e))),
    };
    // Returns 0 (the call goes on), like the LSM probe: harmless on security_file_open too.
    let fmod_ret = Programs::relocate(OBJECT, &ebpf, &btf)
        .and_then(|p| p.attach(programs::PROBE_LSM, "file_open", 1, &ours))
        .map(drop)
        .map_err(|e| match e {
            fmod_ret::FmodRetError::Verifier { log, .. } => {
                format!(
                    "fmod_ret rejected by the verifier: {}",
                    log.lines().last().unwrap_or_default()
                )
            }
            e => e.to_string(),
        });
    let fentry = (|| {
        let prog: &mut FEntry = ebpf
            .program_mut(programs::PROBE_FENTRY)
            .ok_or("probe program missing")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        prog.load("do_sys_openat2", &btf)
            .map_err(|e| format!("fentry load: {}", errno_of(&e)))?;
        prog.attach()
            .map_err(|e| format!("fentry attach: {}", errno_of(&e)))?;
        Ok::<(), String>(())
    })();
    let lsm = (|| {
        let prog: &mut Lsm = ebpf
            .program_mut(programs::PROBE_LSM)
            .ok_or("probe program missing")?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        prog.load("file_open", &btf)
            .map_err(|e| format!("lsm load: {}", errno_of(&e)))?;
        prog.attach()
            .map_err(|e| format!("lsm attach: {}", errno_of(&e)))?;
        Ok::<(), String>(())
    })();
    Trampolines {
        fentry,
        lsm,
        fmod_ret,
    }
}

/// The eBPF inject verdict from the probes: (available, reason). The mechanism named is the one the injector
/// would use (`inject::mechanisms`): BPF LSM where `bpf` is active and its probe worked, else fmod_ret.
fn inject_verdict(probes: &Trampolines, lsms: Option<&[String]>, kprobes: bool) -> (bool, String) {
    let lsm_active = lsms.map(|lsms| lsms.iter().any(|l| l == "bpf"));
    let lsm_why_not = match (&probes.lsm, lsm_active) {
        (Err(l), _) => Some(format!("BPF LSM refused ({l})")),
        (Ok(()), Some(false)) => Some(format!(
            "`bpf` is not an active LSM ({})",
            lsms.unwrap_or_default().join(",")
        )),
        (Ok(()), _) => None,
    };
    let chosen = mechanisms(lsm_active).iter().find(|m| match m {
        Mechanism::Lsm => lsm_why_not.is_none(),
        Mechanism::FmodRet => probes.fmod_ret.is_ok(),
    });
    const COVERS: &str = "`inject --backend ebpf` says which syscalls each rule covers";
    match chosen {
        Some(Mechanism::Lsm) => (
            true,
            format!(
                "injects through BPF LSM: loaded and attached lsm/file_open{}; {COVERS}",
                match lsm_active {
                    Some(true) => ", `bpf` is an active LSM",
                    // Without securityfs the list is unknown; the attach alone does not prove the hook runs.
                    _ =>
                        ", but the active LSM list is unknown (securityfs not mounted) and fmod_ret was refused",
                }
            ),
        ),
        Some(Mechanism::FmodRet) => (
            true,
            format!(
                "injects through fmod_ret on the kernel's security_* functions: loaded and attached \
                 fmod_ret/security_file_open ({}); {COVERS}",
                lsm_why_not
                    .unwrap_or_else(|| "the active LSM list is unknown: securityfs not mounted".into())
            ),
        ),
        None => {
            // fmod_ret is on every list: it was refused too.
            let mut why = Vec::new();
            if let (Err(f), Err(l), Err(m)) = (&probes.fentry, &probes.lsm, &probes.fmod_ret) {
                why.push(format!("trampoline programs refused ({f}; {l}; {m})"));
                if lsm_active == Some(false) {
                    why.push(format!(
                        "`bpf` is not an active LSM ({})",
                        lsms.unwrap_or_default().join(",")
                    ));
                }
            } else {
                why.extend(lsm_why_not);
                if let Err(m) = &probes.fmod_ret {
                    why.push(format!("fmod_ret refused ({m})"));
                }
            }
            // phoebe's injector uses trampolines only; kprobes are listed so that nobody wonders about them.
            why.push(if !kprobes {
                "no kprobes (no kprobe PMU: CONFIG_KPROBES is off)".to_owned()
            } else {
                "kprobes do not help: phoebe injects through BPF LSM or fmod_ret only".to_owned()
            });
            (false, why.join("; "))
        }
    }
}

/// eBPF's probe: a raw tracepoint loaded and attached (observe), trampolines and LSM programs (inject).
pub(super) fn probe() -> Probe {
    let mut observe = probe_observe();
    // What only a call's entry tells, which the observer learns on the syscalls' own tracepoints.
    if observe.available {
        let entry = match probe_syscall_tp() {
            Ok(()) => {
                "; attached a program on syscalls:sys_enter_futex (a timed futex wait's within= and close's \
                       descriptor are learned at the call's entry)"
                    .to_owned()
            }
            Err(e) => format!(
                "; syscalls:sys_enter_futex refused ({e}): a timed futex wait's within= and close's descriptor stay \
                 unknown, observe with --backend ptrace to learn them"
            ),
        };
        observe.reason.push_str(&entry);
    }
    let (available, reason) = inject_verdict(&probe_trampolines(), host::lsms().as_deref(), host::kprobes());
    let inject = if available {
        Capability::available(reason)
    } else {
        Capability::unavailable(
            reason,
            Some(
                "eBPF injection needs BPF trampolines and either fmod_ret on security_* or BPF LSM \
                 (CONFIG_BPF_LSM, `bpf` in the active LSM list: boot with `lsm=…,bpf`); inject with --backend \
                 seccomp (the default) or ptrace"
                    .to_owned(),
            ),
        )
    };
    Probe { observe, inject }
}

/// Whether eBPF can observe here: a raw tracepoint loaded and attached. The part of [`probe`] that choosing the
/// default observer needs, without the trampolines' probes (about 70 ms).
pub(super) fn probe_observe() -> Capability {
    let privileged = host::capabilities().contains(&"CAP_BPF") || host::euid() == 0;
    let bpf_hint = if privileged {
        "phoebe observe --backend ptrace works without eBPF".to_owned()
    } else {
        "run phoebe as root, or give it CAP_BPF and CAP_PERFMON".to_owned()
    };
    let observe = if !host::btf() {
        Err("no kernel BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)".to_owned())
    } else {
        probe_raw_tp()
    };
    match observe {
        Ok(()) => Capability::available(format!(
            "loaded and attached a raw tracepoint on sys_enter (BPF JIT {})",
            match host::bpf_jit().as_deref() {
                Some("0") => "off",
                Some(_) => "on",
                None => "unknown",
            }
        )),
        Err(e) => Capability::unavailable(format!("raw tracepoint refused: {e}"), Some(bpf_hint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probes(fentry: bool, lsm: bool, fmod_ret: bool) -> Trampolines {
        let r = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("{what} load: EPERM"))
            }
        };
        Trampolines {
            fentry: r(fentry, "fentry"),
            lsm: r(lsm, "lsm"),
            fmod_ret: r(fmod_ret, "fmod_ret"),
        }
    }

    fn list(names: &str) -> Vec<String> {
        names.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn inject_names_the_mechanism_the_injector_would_use() {
        let with_bpf = list("lockdown,capability,bpf");
        let without = list("lockdown,capability,apparmor");
        let (ok, why) = inject_verdict(&probes(true, true, true), Some(&with_bpf), true);
        assert!(ok && why.starts_with("injects through BPF LSM: "), "{why}");
        // Stock Debian: the LSM program attaches but would never run.
        let (ok, why) = inject_verdict(&probes(true, true, true), Some(&without), true);
        assert!(ok && why.starts_with("injects through fmod_ret "), "{why}");
        assert!(
            why.contains("`bpf` is not an active LSM (lockdown,capability,apparmor)"),
            "{why}"
        );
        let (ok, why) = inject_verdict(&probes(true, false, true), Some(&with_bpf), true);
        assert!(ok && why.contains("(BPF LSM refused (lsm load: EPERM))"), "{why}");
        let (ok, why) = inject_verdict(&probes(true, true, true), None, true);
        assert!(ok && why.contains("fmod_ret") && why.contains("unknown"), "{why}");
        let (ok, why) = inject_verdict(&probes(true, true, false), None, true);
        assert!(
            ok && why.contains("BPF LSM") && why.contains("fmod_ret was refused"),
            "{why}"
        );
    }

    #[test]
    fn inject_says_why_not_with_every_refusal() {
        // Our host: every trampoline refused.
        let (ok, why) = inject_verdict(&probes(false, false, false), None, false);
        assert!(!ok);
        assert!(
            why.starts_with(
                "trampoline programs refused (fentry load: EPERM; lsm load: EPERM; fmod_ret load: EPERM)"
            ),
            "{why}"
        );
        assert!(
            why.ends_with("no kprobes (no kprobe PMU: CONFIG_KPROBES is off)"),
            "{why}"
        );
        let (ok, why) = inject_verdict(&probes(true, true, false), Some(&list("capability")), true);
        assert!(!ok);
        assert!(why.contains("`bpf` is not an active LSM (capability)"), "{why}");
        assert!(why.contains("fmod_ret refused (fmod_ret load: EPERM)"), "{why}");
    }
}
