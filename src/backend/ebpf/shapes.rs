//! Call shapes on eBPF (DESIGN §6): the observer counts the calls of shaped syscalls by the kept bits of their
//! shape registers (`phoebe_common::shape`); here they become [`Shape`]s through the one definition,
//! [`shape_of`], with a probe that knows nothing beyond registers. Path syscalls are counted by the hash of their
//! absolute path argument, read in the kernel at `sys_exit`, and the kernel stores each path once: their `path=`
//! comes from the same [`shape_of`] and the same normalisation as ptrace's. Relative paths (their base, the cwd or
//! a dirfd, is not read), descriptor-kind and `O_NONBLOCK` components (and clone3's flags, which are in memory)
//! are `unknown` on eBPF.

use std::{collections::BTreeMap, time::Duration};

use aya::maps::{HashMap, MapData, PerCpuHashMap};
use phoebe_common::{
    CountValue, maps,
    shape::{self, PathKey, PathText, ShapeKey, ShapeReg, UNKNOWN_PATH},
};

use super::{EbpfError, Observer};
use crate::backend::{counts::decode_result, facts::normalize_absolute};
use crate::model::{
    ObservationBuilder, Syscall,
    shape::{Probe, RegistersOnly, Shape, shape_of},
};

/// Cumulative calls per shape key, summed over CPUs.
pub(super) type ShapeSnapshot = BTreeMap<ShapeKey, u64>;

/// The shape registers of syscall `nr` on this machine's architecture (the eBPF programs use the same table).
pub fn registers_of(nr: u64) -> Option<[ShapeReg; 2]> {
    #[cfg(target_arch = "aarch64")]
    return shape::aarch64(nr);
    #[cfg(not(target_arch = "aarch64"))]
    return shape::x86_64(nr);
}

/// Cumulative calls per path key, summed over CPUs.
pub(super) type PathSnapshot = BTreeMap<PathKey, u64>;

/// The paths read by the kernel, by hash, normalised; kept across ticks (the kernel stores each one once).
pub(super) type PathTexts = std::collections::HashMap<u64, String>;

/// The index of syscall `nr`'s path argument, for the path syscalls the eBPF observer reads paths of.
pub fn path_arg_of(nr: u64) -> Option<u8> {
    #[cfg(target_arch = "aarch64")]
    return shape::aarch64_path(nr);
    #[cfg(not(target_arch = "aarch64"))]
    return shape::x86_64_path(nr);
}

/// A probe that knows one path, the one the kernel read (already normalised), and nothing else.
struct KernelPath(Option<String>);

impl Probe for KernelPath {
    fn path(&mut self, _: Syscall, _: &[u64; 6]) -> Option<String> {
        self.0.clone()
    }
    fn fd(&mut self, _: i32) -> Option<crate::model::shape::FdFacts> {
        None
    }
    fn read_u64(&mut self, _: u64) -> Option<u64> {
        None
    }
}

/// The shape of a path syscall `nr` whose absolute path argument was `path` as the kernel read it (`None`:
/// relative or unreadable, an unknown path), through the same [`shape_of`] and normalisation as ptrace's.
pub fn shape_of_path(nr: u64, path: Option<&[u8]>) -> Option<(Syscall, Shape)> {
    let syscall = Syscall::from_number(nr)?;
    path_arg_of(nr)?;
    let path = path.map(|raw| normalize_absolute(&String::from_utf8_lossy(raw)));
    Some((syscall, shape_of(syscall, &[0; 6], &mut KernelPath(path))))
}

/// The syscall and shape a key stands for.
pub fn shape_of_key(key: &ShapeKey) -> Option<(Syscall, Shape)> {
    let syscall = Syscall::from_number(u64::from(key.nr))?;
    let regs = registers_of(u64::from(key.nr))?;
    let args = shape::registers(&regs, &key.values);
    Some((syscall, shape_of(syscall, &args, &mut RegistersOnly)))
}

impl Observer {
    /// Reads the shape counters, summed over CPUs.
    pub(super) fn shape_snapshot(&self) -> Result<ShapeSnapshot, EbpfError> {
        let name = maps::SHAPES;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.ebpf.map(name).ok_or(EbpfError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        })?;
        let counts: PerCpuHashMap<&MapData, ShapeKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut out = ShapeSnapshot::new();
        for entry in counts.iter() {
            let (key, per_cpu) = entry.map_err(map_err)?;
            out.insert(key, per_cpu.iter().map(|v| v.calls).sum());
        }
        Ok(out)
    }
}

impl Observer {
    /// Reads the path counters, summed over CPUs, and the text of every hash not in `texts` yet.
    pub(super) fn path_snapshot(&self, texts: &mut PathTexts) -> Result<PathSnapshot, EbpfError> {
        let missing = |name| EbpfError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        };
        let name = maps::PATHS;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.ebpf.map(name).ok_or_else(|| missing(name))?;
        let counts: PerCpuHashMap<&MapData, PathKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut out = PathSnapshot::new();
        for entry in counts.iter() {
            let (key, per_cpu) = entry.map_err(map_err)?;
            out.insert(key, per_cpu.iter().map(|v| v.calls).sum());
        }
        let name = maps::PATH_TEXT;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.ebpf.map(name).ok_or_else(|| missing(name))?;
        let stored: HashMap<&MapData, u64, PathText> = HashMap::try_from(map).map_err(map_err)?;
        for key in out.keys() {
            if key.hash == UNKNOWN_PATH || texts.contains_key(&key.hash) {
                continue;
            }
            // Absent only when the text map was full at the path's first call: the path stays unknown.
            if let Ok(text) = stored.get(&key.hash, 0) {
                texts.insert(
                    key.hash,
                    normalize_absolute(&String::from_utf8_lossy(text.text())),
                );
            }
        }
        Ok(out)
    }
}

/// Records the path calls added between two reads into the interval that contains `at`.
pub(super) fn record_paths(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &PathSnapshot,
    now: &PathSnapshot,
    texts: &PathTexts,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    record_counted(builder, at, before, now, only, |key| {
        let path = texts.get(&key.hash).map(String::as_bytes);
        shape_of_path(u64::from(key.nr), path).map(|(sc, shape)| (sc, shape, key.errno))
    });
}

/// Records the shaped calls added between two reads into the interval that contains `at`.
pub(super) fn record(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &ShapeSnapshot,
    now: &ShapeSnapshot,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    record_counted(builder, at, before, now, only, |key| {
        shape_of_key(key).map(|(sc, shape)| (sc, shape, key.errno))
    });
}

/// The calls each key of a counter map gained between two reads, recorded with the syscall, shape and errno
/// `decode` gives the key (keys it cannot decode, syscalls left out by `only`, and unshaped recordings skipped).
fn record_counted<K: Ord>(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &BTreeMap<K, u64>,
    now: &BTreeMap<K, u64>,
    only: Option<&std::collections::HashSet<Syscall>>,
    decode: impl Fn(&K) -> Option<(Syscall, Shape, u32)>,
) {
    for (key, calls) in now {
        let calls = calls.saturating_sub(before.get(key).copied().unwrap_or(0));
        if calls == 0 {
            continue;
        }
        let Some((syscall, shape, errno)) = decode(key) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&syscall)) || !builder.records_shapes(syscall) {
            continue;
        }
        let Some(result) = decode_result(errno) else {
            continue;
        };
        builder.record_shape_many(at, syscall, &shape, result, calls);
    }
}

/// Records the calls of syscalls whose shape has no register component and no path read by the kernel
/// (descriptor calls, clone3, the rarer path syscalls)
/// added between two reads of the per-syscall counters: their shape is all `unknown` on eBPF, recorded as such so
/// that synthesis knows it cannot tell their shapes apart (and excludes them) rather than taking them as shapeless.
pub(super) fn record_unknown(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &super::Snapshot,
    now: &super::Snapshot,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    for (key, value) in super::delta(before, now) {
        if registers_of(u64::from(key.nr)).is_some() || path_arg_of(u64::from(key.nr)).is_some() {
            continue;
        }
        let Some((syscall, result)) = super::decode(&key) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&syscall)) || !builder.records_shapes(syscall) {
            continue;
        }
        let shape = shape_of(syscall, &[0; 6], &mut RegistersOnly);
        builder.record_shape_many(at, syscall, &shape, result, value.calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Mostly small values (the ones programs pass), sometimes any.
        fn arg(&mut self) -> u64 {
            match self.next() % 4 {
                0 => self.next(),
                1 => self.next() % 1024,
                2 => self.next() & 0x1_ffff,
                _ => self.next() % 16,
            }
        }
    }

    /// The kernel keeps only the bits `shape_of` reads: for any registers, the shape rebuilt from the kept bits is
    /// the shape of the full registers (with a probe that knows nothing beyond registers, as on eBPF).
    #[test]
    fn kept_registers_give_the_shape_of_the_full_registers() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut shaped = 0;
        for sc in Syscall::all() {
            let nr = u64::from(sc.number());
            let Some(regs) = registers_of(nr) else {
                // No register component: the shape is the same for all registers.
                let a = shape_of(sc, &[1, 2, 3, 4, 5, 6], &mut RegistersOnly);
                let b = shape_of(sc, &[7, 0, 9, 0, 11, 0], &mut RegistersOnly);
                assert_eq!(a, b, "{}", sc.name());
                continue;
            };
            shaped += 1;
            for _ in 0..2000 {
                let args: [u64; 6] = std::array::from_fn(|_| rng.arg());
                let values = regs.map(|r| match args.get(usize::from(r.arg)) {
                    Some(v) => r.keep(*v),
                    None => 0,
                });
                let key = ShapeKey {
                    nr: nr as u32,
                    errno: 0,
                    values,
                };
                let (_, from_key) = shape_of_key(&key).expect("a known syscall");
                assert_eq!(
                    from_key.to_string(),
                    shape_of(sc, &args, &mut RegistersOnly).to_string(),
                    "{} {args:x?}",
                    sc.name()
                );
            }
        }
        assert_eq!(shaped, 16, "shaped syscalls");
    }

    /// The kernel's path table names the same argument as `path_arg`, the one definition of path syscalls.
    #[test]
    fn the_kernel_reads_the_path_argument_path_arg_names() {
        let mut paths = 0;
        for sc in Syscall::all() {
            let Some(arg) = path_arg_of(u64::from(sc.number())) else {
                continue;
            };
            paths += 1;
            let (index, _) = crate::model::names::path_arg(sc)
                .unwrap_or_else(|| panic!("{} has no path argument", sc.name()));
            assert_eq!(usize::from(arg), index, "{}", sc.name());
        }
        assert!(paths >= 16, "{paths} path syscalls");
    }

    /// A path read by the kernel gives ptrace's shape: templated, lexically normalised; none gives `unknown`.
    #[test]
    fn kernel_paths_give_the_shapes_ptrace_gives() {
        let nr = u64::from(Syscall::parse("openat").unwrap().number());
        let text = |path: Option<&[u8]>| shape_of_path(nr, path).unwrap().1.to_string();
        assert_eq!(text(Some(b"/proc/1234/stat")), "path=/proc/*/stat");
        assert_eq!(text(Some(b"/etc/./x/..//passwd")), "path=/etc/passwd");
        assert_eq!(text(None), "path=unknown");
        // Not a path syscall: no shape from a path key.
        assert!(shape_of_path(u64::from(Syscall::parse("getppid").unwrap().number()), None).is_none());
    }

    #[test]
    fn futex_keys_decode_to_op_and_timeout() {
        let nr = Syscall::parse("futex").unwrap().number();
        let key = ShapeKey {
            nr,
            errno: 0,
            values: [128, 1],
        };
        let (_, shape) = shape_of_key(&key).unwrap();
        assert_eq!(shape.to_string(), "op=FUTEX_WAIT_PRIVATE:timeout=yes");
    }

    /// epoll_ctl's operation is in a register, its target descriptor's kind is not: `ctl=` is known on eBPF.
    #[test]
    fn epoll_ctl_keys_decode_to_the_operation_with_an_unknown_descriptor() {
        let nr = Syscall::parse("epoll_ctl").unwrap().number();
        let key = ShapeKey {
            nr,
            errno: 0,
            values: [2, 0],
        };
        let (_, shape) = shape_of_key(&key).unwrap();
        assert_eq!(
            shape.to_string(),
            "ctl=del:registered=unknown:fd=unknown:nonblock=unknown"
        );
    }
}
