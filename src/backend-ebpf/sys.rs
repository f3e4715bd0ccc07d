//! The eBPF backend's chokepoint for raw calls beyond aya: memory mappings (of a map shared with the programs, of
//! the kernel's BTF), the loader's thread without the kernel's BTF in sight, a thread that sees tracefs where the
//! machine has not mounted it, and the `bpf(2)` commands aya cannot issue for us (`fmod_ret.rs`). Launching the target stopped before its exec and being the subreaper of its tree
//! are `crate::sys`'s (`launch.rs`, `subreaper.rs`).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

/// `bpf(cmd, attr)` for a command that returns a new file descriptor (BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN).
///
/// # Safety
///
/// Every pointer `attr` holds for `cmd` (instructions, license, log buffer, names) must point to memory that is
/// valid, for writing where the kernel writes (the log buffer), for as many bytes as `attr` says, for the
/// duration of the call.
pub unsafe fn bpf_fd(
    cmd: aya_obj::generated::bpf_cmd,
    attr: &mut aya_obj::generated::bpf_attr,
) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: `attr` is a live, exclusively borrowed `bpf_attr` of exactly the size passed; the pointers inside
    // it are valid per this function's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            std::mem::size_of::<aya_obj::generated::bpf_attr>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: for these commands a non-negative return is a new file descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// A shared, writable memory mapping of a `BPF_F_MMAPABLE` array map's values: the programs and phoebe see the
/// same bytes. Unmapped on drop.
pub struct MappedBytes {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl MappedBytes {
    /// Maps the first `len` bytes of the values of the array map `fd` (created with `BPF_F_MMAPABLE`).
    pub fn map(fd: std::os::fd::BorrowedFd<'_>, len: usize) -> Result<Self, Errno> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint), of a map fd that stays open while
        // phoebe holds the map; nothing in this process aliases the new range.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or(Errno::EINVAL)?;
        Ok(MappedBytes { ptr, len })
    }

    /// Stores one byte (a single-byte store, as the programs' own: the bytes around it, which programs on other
    /// CPUs may write meanwhile, are not rewritten). `false` when `at` is beyond the mapping.
    pub fn set(&self, at: usize, value: u8) -> bool {
        if at >= self.len {
            return false;
        }
        // SAFETY: `at` is inside the live mapping of `len` bytes; a volatile store because the kernel's programs
        // read the same memory.
        unsafe { self.ptr.as_ptr().add(at).write_volatile(value) };
        true
    }

    /// Stores 0 in every byte (volatile byte stores, as [`MappedBytes::set`]).
    pub fn zero(&self) {
        for at in 0..self.len {
            // SAFETY: `at` is inside the live mapping of `len` bytes; volatile for the same reason as in `set`.
            unsafe { self.ptr.as_ptr().add(at).write_volatile(0) };
        }
    }
}

// SAFETY: the mapping is owned by this value alone and only ever written with single-byte volatile stores through
// `&self` (which the kernel's programs race with by design, byte by byte): moving the owner to another thread
// moves nothing thread-bound.
unsafe impl Send for MappedBytes {}

impl Drop for MappedBytes {
    fn drop(&mut self) {
        // SAFETY: the range was returned by mmap with this length and is not used after this point.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Runs `load` on a thread of its own whose root directory is an empty directory (`unshare(CLONE_FS)` + `chroot`:
/// the rest of phoebe keeps its root), so that `/sys/kernel/btf/vmlinux` cannot be opened there.
///
/// Why: aya 0.14's `EbpfLoader::new` reads and parses the kernel's whole BTF (≈ 28 ms and ≈ 17 MiB here) before
/// its caller can say `.btf(None)`, and phoebe's raw-tracepoint programs never use it (no CO-RE relocations, no
/// BTF-typed programs; the few kernel facts they need come from `btf.rs`). Without the file the loader logs
/// nothing and loads the same way. Best effort: without CAP_SYS_CHROOT (or if the empty directory cannot be made)
/// `load` runs in the usual root and the loader parses the BTF as before. `load` must not open files by path.
pub fn without_kernel_btf<T: Send>(load: impl FnOnce() -> T + Send) -> T {
    // The empty directory is opened and removed at once, in this thread (a SIGKILL of phoebe could only leave it
    // behind in the few microseconds between mkdir and rmdir); the loader's thread enters it by descriptor: a
    // removed directory can still be a thread's working directory and root.
    let empty = tempfile::Builder::new()
        .prefix("phoebe-root-")
        .tempdir()
        .ok()
        .and_then(|dir| {
            let opened = std::fs::File::open(dir.path()).ok();
            drop(dir);
            opened
        });
    let joined = std::thread::scope(|scope| {
        scope
            .spawn(move || {
                if let Some(dir) = empty
                    && let Err(e) = chroot_this_thread(&dir)
                {
                    tracing::debug!(error = %e, "the eBPF loader reads the kernel's BTF (no chroot)");
                }
                load()
            })
            .join()
    });
    joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Gives the calling thread its own root and working directory (`CLONE_FS`), then makes `dir` its root.
fn chroot_this_thread(dir: &std::fs::File) -> Result<(), Errno> {
    // SAFETY: unshare takes a flag and no pointers; CLONE_FS only unshares the calling thread's root, working
    // directory and umask from the other threads of the process.
    Errno::result(unsafe { libc::unshare(libc::CLONE_FS) })?;
    nix::unistd::fchdir(dir)?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")
}

/// A private, read-only memory mapping of a whole file.
pub struct MappedFile {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone: sharing or moving it between threads only
// shares immutable bytes.
unsafe impl Send for MappedFile {}
// SAFETY: as above; `as_slice` hands out shared references to bytes nobody writes.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps `path` read-only (`MAP_PRIVATE`). `/sys/kernel/btf/vmlinux` can be mapped since Linux 6.16, which
    /// saves reading its 5 MiB through sysfs 4 KiB at a time; older kernels refuse, and the caller reads it.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).map_err(|_| std::io::Error::from(Errno::EFBIG))?;
        if len == 0 {
            return Err(Errno::EINVAL.into());
        }
        // SAFETY: a fresh private read-only mapping chosen by the kernel (null hint) of an open file of `len`
        // bytes; nothing else aliases the new range. The mapping outlives the descriptor, which may be closed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast()).ok_or(Errno::EINVAL)?;
        Ok(MappedFile { ptr, len })
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is the start of a live read-only mapping of `len` bytes that lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: the range was returned by mmap with this length; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Where aya looks for tracefs (the ids of tracepoints): mounted when one of them lists something.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Runs `f` where tracefs can be read: on this thread when the machine has it mounted, otherwise on a thread of
/// its own that mounts it in a private mount namespace (no mount is left behind: the namespace ends with the
/// thread). What `f` opens (a perf event, a link) outlives the thread. Needs `CAP_SYS_ADMIN` for the mount.
pub fn with_tracefs<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let mounted = |dir: &str| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if TRACEFS.iter().any(|dir| mounted(dir)) {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                use nix::mount::{MsFlags, mount};
                // A thread may unshare its mount namespace (it takes its own copy of the file-system context).
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("cannot unshare the mount namespace ({e})"))?;
                // Private first: a mount made under a shared `/` would propagate to the machine's namespace.
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .map_err(|e| format!("cannot make / private in the thread's mount namespace ({e})"))?;
                mount(
                    Some("tracefs"),
                    TRACEFS[0],
                    Some("tracefs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .map_err(|e| format!("cannot mount tracefs on {} ({e})", TRACEFS[0]))?;
                Ok(f())
            })
            .join()
            .map_err(|_| "the tracefs thread panicked".to_owned())?
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_loader_thread_has_an_empty_root_and_the_others_keep_theirs() {
        let btf = Path::new("/sys/kernel/btf/vmlinux");
        let before = btf.exists();
        let (seen, root_entries) = without_kernel_btf(|| {
            (
                btf.exists(),
                std::fs::read_dir("/").map(|d| d.count()).unwrap_or(usize::MAX),
            )
        });
        assert_eq!(btf.exists(), before, "the calling thread's root is untouched");
        // SAFETY: geteuid takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            phoebe_core::testing::skipped(
                "chroot needs root (CAP_SYS_CHROOT); without it the loader reads the BTF",
            );
            return;
        }
        assert!(!seen, "the kernel's BTF is out of the loader thread's sight");
        assert_eq!(root_entries, 0, "its root is an empty directory");
    }

    #[test]
    fn a_mapped_file_reads_like_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let map = MappedFile::open(&path).unwrap();
        assert_eq!(map.as_slice(), &content[..]);
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        assert!(
            MappedFile::open(&dir.path().join("empty")).is_err(),
            "nothing to map"
        );
    }
}
