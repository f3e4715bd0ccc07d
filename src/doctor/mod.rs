//! `phoebe doctor`: what each backend can do on this machine, per mode, and exactly why not.
//!
//! Every answer comes from a real probe, not a table, and each backend makes its own (`Backend::probe`, in the
//! backend's `probe.rs`: a raw tracepoint and trampoline programs for eBPF, a seized child for ptrace, a listener
//! in a forked child for seccomp). Owns: the machine-wide facts (read through `sys::host`: kernel, capabilities,
//! BTF, LSMs, containment), the report that joins them to the backends' probes, and its rendering ([`render`]).
//! Does not own: any backend's probing.

use std::{borrow::Cow, fmt::Write};

use serde::Serialize;

use crate::{
    backend::{self, BackendKind, ModeKind},
    hint::Hinted,
    sys::host,
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
                crate::hint::chain(e).message()
            ),
            hint: e.hint().map(Cow::into_owned),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub facts: Facts,
    pub verdicts: Vec<Verdict>,
}

/// The machine-wide facts the backends' verdicts rest on.
pub fn facts() -> Facts {
    let kernel = host::kernel_release();
    Facts {
        euid: host::euid(),
        capabilities: host::capabilities(),
        btf: host::btf(),
        bpf_jit: host::bpf_jit(),
        kprobes: host::kprobes(),
        kprobe_override: host::kernel_config(&kernel, "BPF_KPROBE_OVERRIDE"),
        lsms: host::lsms(),
        ptrace_scope: host::ptrace_scope(),
        containment: containment(),
        kernel,
    }
}

/// One backend's verdicts, one per mode, from its own probe.
fn verdicts(kind: BackendKind) -> Vec<Verdict> {
    let probe = backend::backend(kind).probe();
    ModeKind::ALL
        .into_iter()
        .map(|mode| verdict(kind, mode, probe.get(mode).clone()))
        .collect()
}

fn verdict(kind: BackendKind, mode: ModeKind, capability: backend::Capability) -> Verdict {
    Verdict {
        backend: kind.name(),
        mode: mode.name(),
        available: capability.available,
        reason: capability.reason,
        hint: capability.hint,
    }
}

/// Runs every probe: the machine's facts, then each backend's.
pub fn diagnose() -> Report {
    let facts = facts();
    let verdicts = BackendKind::ALL.into_iter().flat_map(verdicts).collect();
    Report {
        version: crate::model::FORMAT_VERSION,
        facts,
        verdicts,
    }
}

/// Can `backend` do `mode` (`"observe"` or `"inject"`) on this machine? The answer `phoebe doctor` gives, from
/// the same probe, and only that backend's.
pub fn check(backend: BackendKind, mode: &str) -> Verdict {
    match ModeKind::from_name(mode) {
        Some(kind) => verdict(backend, kind, backend::backend(backend).probe().get(kind).clone()),
        None => Verdict {
            backend: backend.name(),
            mode: "unknown",
            available: false,
            reason: format!("phoebe has no '{mode}' mode"),
            hint: None,
        },
    }
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
