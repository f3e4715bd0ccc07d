//! Facts about the machine, not about one process or one backend: the kernel's release and build options,
//! phoebe's effective uid and capabilities, BTF, the kprobe PMU and the active LSMs. `doctor` prints them; a
//! backend's probe (`Backend::probe`) reads the few it needs from here rather than from `doctor`.
//!
//! Reads are best effort, like [`procfs`]'s: what cannot be read is `None`, `false` or empty, and the caller says
//! what that means.

use std::path::Path;

use super::procfs;

/// The running kernel's release (`uname -r`); empty when `uname` fails.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// phoebe's effective uid (`/proc/self/status`), `u32::MAX` when unreadable.
pub fn euid() -> u32 {
    procfs::self_status("Uid:")
        .and_then(|uids| uids.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(u32::MAX)
}

/// The effective capabilities that matter to phoebe, by name.
pub fn capabilities() -> Vec<&'static str> {
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

/// `CONFIG_<name>` from `/proc/config.gz` (through gzip) or `/boot/config-<release>`: `Some(true)` if `=y`, `None`
/// when no kernel config was found.
pub fn kernel_config(release: &str, name: &str) -> Option<bool> {
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

/// Whether the kernel publishes its BTF (`/sys/kernel/btf/vmlinux`, `CONFIG_DEBUG_INFO_BTF`).
pub fn btf() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// Whether the kernel has a kprobe PMU (`CONFIG_KPROBES`).
pub fn kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// `net.core.bpf_jit_enable`, when readable.
pub fn bpf_jit() -> Option<String> {
    procfs::sysctl("net/core/bpf_jit_enable")
}

/// The active LSMs (`/sys/kernel/security/lsm`), when securityfs is mounted.
pub fn lsms() -> Option<Vec<String>> {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .ok()
        .map(|s| s.trim().split(',').map(str::to_owned).collect())
}

/// `kernel.yama.ptrace_scope`, when Yama is active.
pub fn ptrace_scope() -> Option<u32> {
    procfs::sysctl("kernel/yama/ptrace_scope").and_then(|s| s.parse().ok())
}

/// One sentence naming ENOSPC when the file system that holds `path` is full (less than 64 KiB or no inode left
/// for phoebe's user; root may use the reserved blocks), `None` otherwise or when it cannot be told: why a run
/// whose output went there may have left nothing, not even its error message.
pub fn full_file_system(path: &Path) -> Option<String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let blocks = if nix::unistd::geteuid().is_root() {
        stat.blocks_free()
    } else {
        stat.blocks_available()
    };
    let free = blocks.saturating_mul(stat.fragment_size());
    let no_inode = stat.files() > 0 && stat.files_available() == 0;
    (free < 64 * 1024 || no_inode).then(|| {
        format!(
            "the file system of {} is full ({} KiB{} free): writes there fail with ENOSPC (No space left on device)",
            dir.display(),
            free / 1024,
            if no_inode { ", no inode" } else { "" }
        )
    })
}
