//! Helpers shared by the test apps in `src/bin/`: the FNV-1a checksum, the usage-error exit and number
//! parsing for their few flags, and the seccomp filters of `notify-self`, `allow-all` and `trace-self`.
//! Nothing else here makes a system call except the exits.

use std::{fmt::Display, io, process, str::FromStr};

/// FNV-1a 64-bit offset basis.
pub const FNV1A_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
pub const FNV1A_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds `bytes` into a running FNV-1a 64 hash; start from [`FNV1A_OFFSET`].
pub fn fnv1a_update(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV1A_PRIME);
    }
    hash
}

/// Prints `usage: <text>` to stderr and exits 2, the usage-error code of every test app.
pub fn usage(text: &str) -> ! {
    eprintln!("usage: {text}");
    process::exit(2)
}

/// The app's one optional argument, a count of rounds (at least 1; `default` without it), or exit through
/// [`usage`]: for the apps whose usage is `APP [N]`.
pub fn rounds_arg(default: u64, usage_text: &str) -> u64 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() > 1 {
        usage(usage_text);
    }
    let rounds: u64 = match args.first() {
        Some(n) => parse_flag("N", Some(n.clone()), usage_text),
        None => default,
    };
    if rounds == 0 {
        usage(usage_text);
    }
    rounds
}

/// Parses the value of `flag`, or exits through [`usage`] if it is missing or not a number.
pub fn parse_flag<T: FromStr>(flag: &str, value: Option<String>, usage_text: &str) -> T
where
    T::Err: Display,
{
    let Some(value) = value else {
        eprintln!("{flag} needs a value");
        usage(usage_text)
    };
    match value.parse() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{flag} {value}: {e}");
            usage(usage_text)
        }
    }
}

/// Sets `no_new_privs` and installs a one-instruction seccomp filter that allows every call
/// (`SECCOMP_RET_ALLOW`) with `flags` (`SECCOMP_FILTER_FLAG_*`); returns what `seccomp(2)` returned (a listener's
/// fd with `SECCOMP_FILTER_FLAG_NEW_LISTENER`, otherwise 0). The error says which of the two calls failed, the
/// second as `seccomp(<what>)`.
pub fn install_allow_all(flags: libc::c_ulong, what: &str) -> io::Result<i64> {
    let mut allow = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    install_filter(&mut allow, flags, what)
}

/// Sets `no_new_privs` and installs the classic-BPF seccomp filter `insns` with `flags`, as
/// [`install_allow_all`] does.
pub fn install_filter(insns: &mut [libc::sock_filter], flags: libc::c_ulong, what: &str) -> io::Result<i64> {
    // SAFETY: PR_SET_NO_NEW_PRIVS reads only its integer arguments, passed at register width.
    if unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("prctl(PR_SET_NO_NEW_PRIVS) failed: {e}"),
        ));
    }
    let prog = libc::sock_fprog {
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `insns`, initialised instructions that outlive the call; the kernel copies them
    // and returns a new fd, 0 or -1 without writing to our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("seccomp({what}) failed: {e}")));
    }
    Ok(ret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        assert_eq!(fnv1a_update(FNV1A_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_update(FNV1A_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_update(FNV1A_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
        let split = fnv1a_update(fnv1a_update(FNV1A_OFFSET, b"foo"), b"bar");
        assert_eq!(split, 0x8594_4171_f739_67e8);
    }
}
