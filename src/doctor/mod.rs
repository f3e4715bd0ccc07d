//! `phoebe doctor`: what each backend can do on this machine, per mode, and exactly why not.
//!
//! Every answer comes from a real probe, not a table: a trivial raw tracepoint is loaded and attached, a trampoline
//! (fentry), a BPF LSM program and the same program as fmod_ret on `security_file_open` are loaded and their errno
//! reported, a child is seized with ptrace, a seccomp
//! listener is created in a forked child; kernel facts are read from `/sys`, `/proc` and the kernel config.
//! Owns the probes and the report's data; rendering is [`render`]. Raw calls live in `sys.rs`.

pub mod sys;

use std::{ffi::CString, fmt::Write, path::Path};

use aya::{
    Btf, EbpfLoader,
    programs::{FEntry, Lsm, RawTracePoint},
};
use phoebe_common::programs;
use serde::Serialize;

use crate::{
    backend::{
        ebpf::{
            OBJECT, btf,
            fmod_ret::{self, Programs},
            inject::{Mechanism, mechanisms},
        },
        filter::sys::InstallFlags,
    },
    sys::{
        error::{Chain, errno_of},
        procfs,
    },
};

/// One backend in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub backend: &'static str,
    pub mode: &'static str,
    pub available: bool,
    /// What the probe found (why it works, or exactly why not).
    pub reason: String,
    /// What to do about it, when it does not work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Facts about the machine the verdicts rest on.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub kernel: String,
    pub euid: u32,
    /// Effective capabilities that matter to phoebe.
    pub capabilities: Vec<&'static str>,
    pub btf: bool,
    /// `net.core.bpf_jit_enable`, when readable.
    pub bpf_jit: Option<String>,
    pub kprobes: bool,
    /// `CONFIG_BPF_KPROBE_OVERRIDE` from the kernel config, when one was found.
    pub kprobe_override: Option<bool>,
    /// Active LSMs (`/sys/kernel/security/lsm`), when securityfs is mounted.
    pub lsms: Option<Vec<String>>,
    /// `kernel.yama.ptrace_scope`, when Yama is active.
    pub ptrace_scope: Option<u32>,
    /// Whether the target's whole tree ends when phoebe is killed (`sys::contain`).
    pub containment: Containment,
}

/// phoebe's containment of what it launches, as `doctor` found it.
#[derive(Debug, Clone, Serialize)]
pub struct Containment {
    pub available: bool,
    /// Where phoebe's cgroups are made, or why there are none.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn containment() -> Containment {
    use crate::sys::contain::{self, ContainError};
    match contain::status() {
        Ok(c) => Containment {
            available: true,
            detail: format!(
                "a cgroup v2 per phoebe process under {}, ended by a watchdog when phoebe ends (SIGKILL included)",
                c.path().parent().unwrap_or(c.path()).display()
            ),
            hint: None,
        },
        Err(ContainError::Init) => Containment {
            available: true,
            detail: ContainError::Init.to_string(),
            hint: None,
        },
        Err(e) => Containment {
            available: false,
            detail: format!(
                "{}: if phoebe is killed, the target itself dies with it (and ptrace's tracees), but the \
                 descendants of a seccomp or eBPF target may keep running",
                Chain::new(e).message()
            ),
            hint: Some(e.hint().to_owned()),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub facts: Facts,
    pub verdicts: Vec<Verdict>,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn capabilities() -> Vec<&'static str> {
    const WANTED: [(u32, &str); 4] = [
        (19, "CAP_SYS_PTRACE"),
        (21, "CAP_SYS_ADMIN"),
        (38, "CAP_PERFMON"),
        (39, "CAP_BPF"),
    ];
    // CapEff in /proc/self/status is the capget(2) effective set, in hex.
    let eff = procfs::self_status("CapEff:")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    WANTED
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// `CONFIG_<name>` from /proc/config.gz (through gzip) or /boot/config-<release>: `Some(true)` if `=y`.
fn kernel_config(release: &str, name: &str) -> Option<bool> {
    let text = std::process::Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .or_else(|| std::fs::read_to_string(format!("/boot/config-{release}")).ok())?;
    let key = format!("CONFIG_{name}=");
    Some(text.lines().any(|l| l.starts_with(&key) && l.ends_with("=y")))
}

pub fn facts() -> Facts {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    Facts {
        euid: procfs::self_status("Uid:")
            .and_then(|uids| uids.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(u32::MAX),
        capabilities: capabilities(),
        btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
        bpf_jit: procfs::sysctl("net/core/bpf_jit_enable"),
        kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
        kprobe_override: kernel_config(&kernel, "BPF_KPROBE_OVERRIDE"),
        lsms: read_trim("/sys/kernel/security/lsm").map(|s| s.split(',').map(str::to_owned).collect()),
        ptrace_scope: procfs::sysctl("kernel/yama/ptrace_scope").and_then(|s| s.parse().ok()),
        containment: containment(),
        kernel,
    }
}

/// Loads and attaches the trivial raw tracepoint program, then drops it.
fn probe_raw_tp() -> Result<(), String> {
    let mut ebpf = EbpfLoader::new()
        .load(OBJECT)
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

/// Seizes a child with ptrace (the ptrace backend's first step), then kills it.
fn probe_ptrace() -> Result<(), String> {
    use nix::sys::ptrace::Options;
    let program = CString::new("/bin/true").map_err(|e| e.to_string())?;
    let spawned = crate::backend::ptrace::sys::spawn_traced(
        &program,
        std::slice::from_ref(&program),
        None,
        Options::PTRACE_O_EXITKILL,
    )
    .map_err(|e| Chain::new(&e).one_line())?;
    spawned.kill();
    Ok(())
}

/// Runs every probe.
pub fn diagnose() -> Report {
    let facts = facts();
    let mut verdicts = ptrace_verdicts(&facts);
    verdicts.extend(seccomp_verdicts());
    verdicts.extend(ebpf_verdicts(&facts));
    Report {
        version: crate::model::FORMAT_VERSION,
        facts,
        verdicts,
    }
}

/// Can `backend` do `mode` (`"observe"` or `"inject"`) on this machine? The answer `phoebe doctor` gives, from
/// the same probes, and only that backend's: `phoebe exec --backend X` asks it before its first run.
pub fn check(backend: crate::backend::BackendKind, mode: &str) -> Verdict {
    use crate::backend::BackendKind;
    let facts = facts();
    let verdicts = match backend {
        BackendKind::Ptrace => ptrace_verdicts(&facts),
        BackendKind::Seccomp => seccomp_verdicts(),
        BackendKind::Ebpf => ebpf_verdicts(&facts),
    };
    verdicts
        .into_iter()
        .find(|v| v.mode == mode)
        .unwrap_or_else(|| Verdict {
            backend: backend.name(),
            mode: "unknown",
            available: false,
            reason: format!("phoebe has no '{mode}' mode"),
            hint: None,
        })
}

/// ptrace's verdicts: one probe, a seized child.
fn ptrace_verdicts(facts: &Facts) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let ptrace = probe_ptrace();
    let scope_hint = match facts.ptrace_scope {
        Some(3) => {
            "kernel.yama.ptrace_scope is 3 (no attach at all); it can only be lowered by a reboot".to_owned()
        }
        Some(2) => "kernel.yama.ptrace_scope is 2: run as root or give phoebe CAP_SYS_PTRACE".to_owned(),
        _ => "ptrace needs the same uid as the target or CAP_SYS_PTRACE".to_owned(),
    };
    for mode in ["observe", "inject"] {
        let (available, reason) = match (&ptrace, mode) {
            (Ok(()), "inject") if !cfg!(target_arch = "x86_64") => (
                false,
                "injection edits registers; only x86_64 is implemented".to_owned(),
            ),
            (Ok(()), _) => (true, "seized a child with PTRACE_SEIZE".to_owned()),
            (Err(e), _) => (false, e.clone()),
        };
        verdicts.push(Verdict {
            backend: "ptrace",
            mode,
            hint: (!available).then(|| scope_hint.clone()),
            available,
            reason,
        });
    }
    verdicts
}

/// seccomp's verdicts: observing is impossible by design; injecting needs a listener, created in a child.
fn seccomp_verdicts() -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    // seccomp user notification (the kernel facility the seccomp backend uses).
    verdicts.push(Verdict {
        backend: "seccomp",
        mode: "observe",
        available: false,
        reason: "by design: a call let through (CONTINUE) is never seen again, so its result is unknown"
            .into(),
        hint: Some("observe with ebpf or ptrace".into()),
    });
    let notif = sys::try_seccomp_in_child(InstallFlags::NEW_LISTENER);
    let killable = sys::try_seccomp_in_child(InstallFlags::NEW_LISTENER | InstallFlags::WAIT_KILLABLE_RECV);
    let (available, reason, hint) = match notif {
        Ok(()) => (
            true,
            format!(
                "the kernel's user notification works (SECCOMP_FILTER_FLAG_NEW_LISTENER){}",
                match killable {
                    Ok(()) => ", with WAIT_KILLABLE_RECV".to_owned(),
                    Err(e) => format!("; WAIT_KILLABLE_RECV refused ({e}, needs Linux ≥ 5.19)"),
                }
            ),
            None,
        ),
        Err(e) => (
            false,
            format!("creating a seccomp listener failed: {e}"),
            Some("needs Linux ≥ 5.0 with CONFIG_SECCOMP_FILTER; use --backend ptrace".into()),
        ),
    };
    verdicts.push(Verdict {
        backend: "seccomp",
        mode: "inject",
        available,
        reason,
        hint,
    });
    verdicts
}

/// eBPF's verdicts: a raw tracepoint loaded and attached (observe), trampolines and LSM programs (inject).
fn ebpf_verdicts(facts: &Facts) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let no_priv_hint = "run phoebe as root, or give it CAP_BPF and CAP_PERFMON".to_owned();
    let bpf_hint = if facts.capabilities.contains(&"CAP_BPF") || facts.euid == 0 {
        "phoebe observe --backend ptrace works without eBPF".to_owned()
    } else {
        no_priv_hint
    };
    let observe = if !facts.btf {
        Err("no kernel BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF)".to_owned())
    } else {
        probe_raw_tp()
    };
    verdicts.push(Verdict {
        backend: "ebpf",
        mode: "observe",
        available: observe.is_ok(),
        reason: match &observe {
            Ok(()) => format!(
                "loaded and attached a raw tracepoint on sys_enter (BPF JIT {})",
                match facts.bpf_jit.as_deref() {
                    Some("0") => "off",
                    Some(_) => "on",
                    None => "unknown",
                }
            ),
            Err(e) => format!("raw tracepoint refused: {e}"),
        },
        hint: observe.is_err().then(|| bpf_hint.clone()),
    });
    let (available, reason) = inject_verdict(&probe_trampolines(), facts.lsms.as_deref(), facts.kprobes);
    verdicts.push(Verdict {
        backend: "ebpf",
        mode: "inject",
        available,
        reason,
        hint: (!available).then(|| {
            "eBPF injection needs BPF trampolines and either fmod_ret on security_* or BPF LSM (CONFIG_BPF_LSM, \
             `bpf` in the active LSM list: boot with `lsm=…,bpf`); inject with --backend seccomp (the default) or \
             ptrace"
                .to_owned()
        }),
    });
    verdicts
}

/// The human-readable report.
pub fn render(report: &Report) -> String {
    let f = &report.facts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kernel {}, euid {}, capabilities: {}",
        f.kernel,
        f.euid,
        if f.capabilities.is_empty() {
            "none of CAP_SYS_PTRACE/SYS_ADMIN/PERFMON/BPF".to_owned()
        } else {
            f.capabilities.join(" ")
        }
    );
    let _ = writeln!(
        out,
        "BTF {}, BPF JIT {}, kprobes {}, CONFIG_BPF_KPROBE_OVERRIDE {}, LSMs {}, ptrace_scope {}",
        if f.btf { "yes" } else { "no" },
        f.bpf_jit.as_deref().unwrap_or("unknown"),
        if f.kprobes { "yes" } else { "no" },
        match f.kprobe_override {
            Some(true) => "y",
            Some(false) => "not set",
            None => "unknown (no kernel config found)",
        },
        f.lsms
            .as_ref()
            .map_or("unknown (securityfs not mounted)".to_owned(), |l| l.join(",")),
        f.ptrace_scope
            .map_or("- (Yama not active)".to_owned(), |s| s.to_string()),
    );
    let c = &f.containment;
    let _ = writeln!(
        out,
        "containment {}: {}",
        if c.available { "yes" } else { "no" },
        c.detail
    );
    if let Some(hint) = &c.hint {
        let _ = writeln!(out, "hint: {hint}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<8} {:<8} {:<10} why", "backend", "mode", "status");
    for v in &report.verdicts {
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<10} {}",
            v.backend,
            v.mode,
            if v.available { "available" } else { "no" },
            v.reason
        );
        if let Some(hint) = &v.hint {
            let _ = writeln!(out, "{:<28} hint: {hint}", "");
        }
    }
    out
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
