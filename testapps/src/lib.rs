//! Helpers shared by the test apps in `src/bin/`: the FNV-1a checksum, the usage-error exit and number
//! parsing for their few flags. Nothing here makes a system call except the exits.

use std::{fmt::Display, process, str::FromStr};

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
