//! Syscall and errno names and numbers.
//!
//! Owns: turning the names people type (`openat`, `ENOENT`) and plain numbers into numbers, and back, with a
//! "did you mean" suggestion for typos. Tables come from the `syscalls` crate (native architecture), not from
//! hand-written lists. Does not own: which syscalls carry a path argument (see [`path_arg`]).

use std::{collections::HashMap, fmt, str::FromStr, sync::OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use syscalls::{Errno as RawErrno, Sysno};

/// Largest errno a system call can return (the kernel's `MAX_ERRNO`).
pub const MAX_ERRNO: i32 = 4095;

/// Errnos from 512 up are kernel-internal restart codes (`ERESTARTSYS` …) that never reach a program.
pub const FIRST_INTERNAL_ERRNO: i32 = 512;

/// A system call of the native architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Syscall(Sysno);

impl Syscall {
    /// The syscall with this number, if the native table has one.
    pub fn from_number(nr: u64) -> Option<Self> {
        usize::try_from(nr).ok().and_then(Sysno::new).map(Syscall)
    }

    /// The kernel's name, e.g. `openat`.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The native syscall number.
    pub fn number(self) -> u32 {
        self.0.id() as u32
    }

    /// Every syscall of the native architecture.
    pub fn all() -> impl Iterator<Item = Syscall> {
        Sysno::iter().map(Syscall)
    }

    /// Parses a name (`openat`) or a number (`257`); the error names the input and the closest valid name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let s = s.trim();
        if let Ok(nr) = s.parse::<u64>() {
            return Self::from_number(nr).ok_or_else(|| NameError::UnknownSyscall {
                input: s.to_owned(),
                suggestion: None,
            });
        }
        Sysno::from_str(s)
            .map(Syscall)
            .map_err(|_| NameError::UnknownSyscall {
                input: s.to_owned(),
                suggestion: closest(s, Syscall::all().map(Syscall::name)),
            })
    }
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Syscall {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Syscall {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Syscall::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An error number a system call returns (positive, 1..=4095).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

impl Errno {
    /// The errno with this number, if it is in 1..=4095.
    pub fn new(code: i32) -> Option<Self> {
        (1..=MAX_ERRNO).contains(&code).then_some(Errno(code))
    }

    pub fn code(self) -> i32 {
        self.0
    }

    /// The symbolic name (`ENOENT`), if the native table has one.
    pub fn symbol(self) -> Option<&'static str> {
        RawErrno::new(self.0).name()
    }

    /// `strerror`-like description, if known.
    pub fn description(self) -> Option<&'static str> {
        RawErrno::new(self.0).description()
    }

    /// Kernel-internal restart codes (`ERESTARTSYS` and friends) never reach the program.
    pub fn is_kernel_internal(self) -> bool {
        self.0 >= FIRST_INTERNAL_ERRNO
    }

    /// Parses `ENOENT`, `enoent` or `2`; the error names the input and the closest valid name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let s = s.trim();
        if let Ok(code) = s.parse::<i64>() {
            return i32::try_from(code)
                .ok()
                .and_then(Errno::new)
                .ok_or(NameError::ErrnoOutOfRange(code));
        }
        let upper = s.to_ascii_uppercase();
        errno_table()
            .get(upper.as_str())
            .copied()
            .ok_or_else(|| NameError::UnknownErrno {
                input: s.to_owned(),
                suggestion: closest(&upper, errno_table().keys().copied()),
            })
    }
}

/// Name → errno, built once from the `syscalls` crate's table (it has no reverse lookup).
fn errno_table() -> &'static HashMap<&'static str, Errno> {
    static TABLE: OnceLock<HashMap<&'static str, Errno>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (1..=MAX_ERRNO)
            .filter_map(|code| Errno::new(code).and_then(|e| e.symbol().map(|name| (name, e))))
            .collect()
    })
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Errno {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Errno {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Errno::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A name or number that is not a syscall or errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("unknown syscall '{input}'{}", did_you_mean(suggestion))]
    UnknownSyscall {
        input: String,
        suggestion: Option<&'static str>,
    },
    #[error("unknown errno '{input}'{}", did_you_mean(suggestion))]
    UnknownErrno {
        input: String,
        suggestion: Option<&'static str>,
    },
    #[error("errno {0} is out of range (errnos are 1..=4095)")]
    ErrnoOutOfRange(i64),
}

fn did_you_mean(s: &Option<&'static str>) -> String {
    s.map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default()
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
fn closest<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    let limit = (input.len() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&input, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// Levenshtein distance; a few lines here beat a dependency for one suggestion on an error path.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether what a syscall leaves in the return register is its result. `rt_sigreturn` restores the interrupted
/// context, return register included: when a signal interrupted a call that then failed with EINTR, it "returns"
/// -EINTR without failing at all, so its return value is never an error, and failing it corrupts the program
/// (a crash phoebe would blame on the program).
pub fn returns_a_result(sc: Syscall) -> bool {
    sc.name() != "rt_sigreturn"
}

/// What a completed call of `sc` really returned: an apparent error of a syscall whose return register is not a
/// result ([`returns_a_result`]) is a success.
pub fn real_result(sc: Syscall, result: Result<(), Errno>) -> Result<(), Errno> {
    if returns_a_result(sc) { result } else { Ok(()) }
}

/// Which argument (0-based) of a syscall is a path, and which argument (if any) is the directory fd it is
/// relative to. `None` for syscalls without a path argument. Hand-written because no crate records argument
/// meanings; it covers the native file-system calls a `path=` rule is useful for.
pub fn path_arg(sc: Syscall) -> Option<(usize, Option<usize>)> {
    let at = |path: usize| Some((path, Some(0)));
    match sc.name() {
        "open" | "creat" | "stat" | "lstat" | "access" | "execve" | "unlink" | "mkdir" | "rmdir"
        | "readlink" | "chdir" | "truncate" | "chmod" | "chown" | "lchown" | "rename" | "link" | "statfs"
        | "utime" | "utimes" | "mknod" | "getxattr" | "lgetxattr" | "setxattr" | "lsetxattr"
        | "listxattr" | "removexattr" | "chroot" | "acct" | "swapon" | "swapoff" | "uselib" => {
            Some((0, None))
        }
        "openat" | "openat2" | "newfstatat" | "fstatat64" | "statx" | "faccessat" | "faccessat2"
        | "execveat" | "unlinkat" | "mkdirat" | "readlinkat" | "fchmodat" | "fchmodat2" | "fchownat"
        | "renameat" | "renameat2" | "linkat" | "mknodat" | "utimensat" | "futimesat"
        | "name_to_handle_at" => at(1),
        _ => None,
    }
}

/// The new name of a rename or link call: (path argument, dirfd argument), as [`path_arg`] gives the old one.
/// Their EEXIST and ENOTEMPTY are about this name, not the one [`path_arg`] names.
pub fn dest_path_arg(sc: Syscall) -> Option<(usize, Option<usize>)> {
    match sc.name() {
        "rename" | "link" => Some((1, None)),
        "renameat" | "renameat2" | "linkat" => Some((3, Some(2))),
        _ => None,
    }
}

/// Which argument (0-based) of a syscall is the file descriptor it works on, for syscalls without a path
/// argument: a `path=` rule then matches the file the descriptor refers to (`/proc/PID/fd/N`). Hand-written for
/// the same reason as [`path_arg`].
pub fn fd_arg(sc: Syscall) -> Option<usize> {
    match sc.name() {
        "read" | "write" | "pread64" | "pwrite64" | "readv" | "writev" | "preadv" | "pwritev" | "preadv2"
        | "pwritev2" | "fstat" | "lseek" | "fsync" | "fdatasync" | "ftruncate" | "getdents64"
        | "fallocate" | "flock" | "fcntl" | "ioctl" | "close" | "mmap" | "sendto" | "recvfrom"
        | "sendmsg" | "recvmsg" | "connect" | "bind" | "listen" | "accept" | "accept4" | "shutdown"
        | "fchmod" | "fchown" | "fstatfs" | "fgetxattr" | "fsetxattr" | "fadvise64" | "readahead"
        | "sync_file_range" | "copy_file_range" | "splice" | "tee" | "sendfile" | "epoll_wait"
        | "epoll_pwait" | "epoll_pwait2" => Some(if sc.name() == "mmap" { 4 } else { 0 }),
        // The descriptor being added, modified or removed, not the epoll instance (argument 0): its kind decides
        // EPERM (a regular file or directory cannot be polled).
        "epoll_ctl" => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rt_sigreturn_never_fails_whatever_its_return_register_says() {
        let eintr = Errno::new(libc::EINTR).unwrap();
        let sigreturn = Syscall::parse("rt_sigreturn").unwrap();
        assert_eq!(real_result(sigreturn, Err(eintr)), Ok(()));
        let read = Syscall::parse("read").unwrap();
        assert_eq!(real_result(read, Err(eintr)), Err(eintr));
    }

    #[test]
    fn syscall_names_and_numbers_round_trip() {
        let openat = Syscall::parse("openat").unwrap();
        assert_eq!(openat.name(), "openat");
        assert_eq!(Syscall::parse(&openat.number().to_string()).unwrap(), openat);
    }

    #[test]
    fn unknown_syscall_suggests_closest() {
        let err = Syscall::parse("opnat").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown syscall 'opnat' (did you mean 'openat'?)"
        );
        let err = Syscall::parse("zzzzzzzzzz").unwrap_err();
        assert_eq!(err.to_string(), "unknown syscall 'zzzzzzzzzz'");
    }

    #[test]
    fn errno_parses_names_case_insensitively_and_numbers() {
        assert_eq!(Errno::parse("ENOENT").unwrap().code(), libc::ENOENT);
        assert_eq!(Errno::parse("eio").unwrap().code(), libc::EIO);
        assert_eq!(Errno::parse("13").unwrap().code(), libc::EACCES);
        assert_eq!(Errno::parse("ENOENT").unwrap().to_string(), "ENOENT");
    }

    #[test]
    fn bad_errnos_are_named() {
        assert_eq!(
            Errno::parse("ENOENTT").unwrap_err().to_string(),
            "unknown errno 'ENOENTT' (did you mean 'ENOENT'?)"
        );
        assert!(matches!(Errno::parse("0"), Err(NameError::ErrnoOutOfRange(0))));
        assert!(matches!(
            Errno::parse("5000"),
            Err(NameError::ErrnoOutOfRange(5000))
        ));
    }

    #[test]
    fn restart_codes_are_internal() {
        assert!(Errno::new(512).unwrap().is_kernel_internal());
        assert!(!Errno::new(libc::EINTR).unwrap().is_kernel_internal());
    }

    #[test]
    fn path_arguments() {
        assert_eq!(path_arg(Syscall::parse("openat").unwrap()), Some((1, Some(0))));
        assert_eq!(path_arg(Syscall::parse("read").unwrap()), None);
        assert_eq!(fd_arg(Syscall::parse("read").unwrap()), Some(0));
        assert_eq!(fd_arg(Syscall::parse("mmap").unwrap()), Some(4));
        assert_eq!(fd_arg(Syscall::parse("epoll_ctl").unwrap()), Some(2));
        // CPython's test suite: EBADF on epoll_wait came from a closed epoll descriptor; without the descriptor in
        // its shape it was injected on open ones, where the kernel never returns it, and a test failed.
        assert_eq!(fd_arg(Syscall::parse("epoll_wait").unwrap()), Some(0));
        assert_eq!(fd_arg(Syscall::parse("openat").unwrap()), None);
        assert_eq!(
            dest_path_arg(Syscall::parse("renameat2").unwrap()),
            Some((3, Some(2)))
        );
        assert_eq!(dest_path_arg(Syscall::parse("link").unwrap()), Some((1, None)));
        assert_eq!(dest_path_arg(Syscall::parse("unlink").unwrap()), None);
    }
}
