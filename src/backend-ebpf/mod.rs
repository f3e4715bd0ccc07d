//! The eBPF backend: observes a process tree's system calls in the kernel, at about the cost of the syscall
//! tracepoint itself, with aya.
//!
//! Raw tracepoints (no tracefs, no kprobes, no trampolines): `sys_exit` counts each completed call per
//! (syscall, errno) in per-CPU maps (successes and each syscall's first errno in arrays by number, the rest in a
//! hash; [`merge_arrays`] joins
//! them), deciding who is a target from an array mirror of the target map; `sys_enter` stamps entry times only when latency is asked for;
//! `sched_process_fork` adds a target's children to the target set, `sched_process_exec` starts the launched
//! target's counting, `sched_process_exit` prunes a process when its last thread ends (pid reuse). User space
//! reads the cumulative counters once per interval and records the difference ([`delta`]): nothing is ever
//! cleared, so nothing is lost between a read and a clear. Injection lives in `inject.rs`; [`EbpfBackend`] runs
//! either mode. Owns: loading, attaching, reading the maps, the observe loop; what eBPF can do on this machine is
//! `probe.rs`'s. Raw calls beyond aya live in `sys.rs`; BTF offsets come from `btf.rs`.

pub mod btf;
pub mod fmod_ret;
pub mod inject;
mod launch;
mod probe;
pub mod shapes;
pub mod sys;

use std::{collections::HashSet, os::fd::AsFd, time::Duration};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap},
    programs::RawTracePoint,
};
use phoebe_common::{
    CountKey, CountValue, ENTERED_MAX_TIDS, ErrorSlot, LatencyBuckets, SUCCESS_SLOTS, TGID_BLOCK,
    TGIDS_MAX_BLOCKS, globals, maps, programs, shape::walk, state,
};

use phoebe_backend_common::{BackendError, Outcome, Target, control::Control};
use phoebe_core::model::{Draws, FaultSpec, ObservationBuilder, Syscall, shape::ShapeCoverage};

/// The compiled eBPF object (built by `build.rs` from `ebpf/phoebe-ebpf`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/phoebe-probes"));

/// What the observer should measure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeOptions {
    /// Split counters by process (`monitor`) instead of summing the tree (`observe`).
    pub per_process: bool,
    /// Attach `sys_enter` too and time every call (costs a second tracepoint on every syscall).
    pub latency: bool,
    /// With `latency`: also count each call in a latency histogram per key (a second hash update per call).
    pub histograms: bool,
}

const HINT: &str = "eBPF needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF; `phoebe doctor` says what \
                    this machine allows; `--backend ptrace` works without";

/// Why the eBPF observer could not start or be read.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux)")]
    Btf(#[source] std::io::Error),
    #[error("the kernel's BTF has no {0}")]
    BtfMissing(&'static str),
    #[error("cannot load phoebe's eBPF object")]
    Load(#[source] aya::EbpfError),
    #[error("cannot load or attach the eBPF program {name} to {tracepoint}")]
    Program {
        name: &'static str,
        tracepoint: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error(
        "this kernel refuses both ways phoebe attaches its eBPF injector ({what}), so phoebe cannot inject with \
         eBPF here"
    )]
    InjectRefused { what: String },
    #[error(
        "the kernel's verifier rejected phoebe's program {program}: a phoebe bug, please report it with this \
         log's end and the kernel version:\n{log}"
    )]
    Verifier { program: String, log: String },
    #[error("cannot use the eBPF map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

impl phoebe_core::hint::Hinted for EbpfError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            EbpfError::Btf(_) | EbpfError::BtfMissing(_) | EbpfError::Load(_) | EbpfError::Program { .. } => {
                Some(HINT.into())
            }
            EbpfError::InjectRefused { .. } => Some(
                "eBPF injection needs BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS) and either fmod_ret \
                 on the kernel's security_* functions or BPF LSM (CONFIG_BPF_LSM with `bpf` in the active LSM list: \
                 `cat /sys/kernel/security/lsm`; boot with `lsm=…,bpf`); `phoebe doctor` checks them; inject with \
                 --backend seccomp instead"
                    .into(),
            ),
            EbpfError::Verifier { .. } | EbpfError::Map { .. } => None,
        }
    }
}

pub use phoebe_backend_common::counts::{Histograms, Snapshot, decode};

/// The loaded and attached programs. Dropping it detaches and unloads them (they are held by file descriptors
/// only, never pinned, so they also go when phoebe is killed).
pub struct Observer {
    ebpf: Ebpf,
    /// The target states by tgid (`maps::TGIDS`), mapped: where [`Observer::add_target`] writes its targets'.
    tgids: sys::MappedBytes,
    /// Counters split by process: everything is in the hash, the arrays by syscall number stay empty.
    per_process: bool,
}

/// Elements of `maps::TGIDS` for this machine's `pid_max` (every pid when it cannot be read).
fn tgid_blocks() -> u32 {
    let pid_max = phoebe_sys::procfs::pid_max().unwrap_or(u32::MAX);
    pid_max.div_ceil(TGID_BLOCK as u32).clamp(1, TGIDS_MAX_BLOCKS)
}

/// Elements of `maps::ENTERED_BY_TID`: one per possible tid with `--latency` (up to `ENTERED_MAX_TIDS`; a larger
/// tid's entry time goes to the `maps::ENTERED` hash), one otherwise (the programs never write it then).
fn entered_tids(latency: bool) -> u32 {
    if !latency {
        return 1;
    }
    let pid_max = phoebe_sys::procfs::pid_max().unwrap_or(u32::MAX);
    pid_max.clamp(1, ENTERED_MAX_TIDS)
}

impl Observer {
    pub fn start(options: ProbeOptions) -> Result<Self, EbpfError> {
        let btf = btf::Btf::from_sys_fs().map_err(EbpfError::Btf)?;
        let tgid_offset = btf
            .member_offset("task_struct", "tgid")
            .ok_or(EbpfError::BtfMissing("task_struct.tgid"))?;
        let group_dead = u32::from(btf.tracepoint_args("sched_process_exit") == Some(2));
        // Descriptor facts for call shapes: without one of their offsets, descriptors are unknown (as before).
        let fd_offsets = shapes::fd_offsets(&btf).unwrap_or_else(|missing| {
            tracing::warn!(
                missing,
                "the kernel's BTF lacks a member: descriptor kinds and nonblock stay unknown"
            );
            [0; 17]
        });
        // The path walk (files behind descriptors, relative paths): without one of its offsets, unknown (as before).
        let walk_offsets = shapes::walk_offsets(&btf).unwrap_or_else(|missing| {
            tracing::warn!(
                missing,
                "the kernel's BTF lacks a member: the paths of files behind descriptors and relative paths stay unknown"
            );
            [0; 14]
        });
        drop(btf);
        let per_process = u32::from(options.per_process);
        let latency = u32::from(options.latency);
        let histograms = u32::from(options.latency && options.histograms);
        let blocks = tgid_blocks();
        let mirror = 1u32;
        let mut ebpf = sys::without_kernel_btf(|| {
            EbpfLoader::new()
                .btf(None)
                .map_max_entries(maps::TGIDS, blocks)
                .map_max_entries(maps::ENTERED_BY_TID, entered_tids(options.latency))
                .override_global(globals::TGID_MIRROR, &mirror, true)
                .override_global(globals::TASK_TGID_OFFSET, &tgid_offset, true)
                .override_global(globals::EXIT_HAS_GROUP_DEAD, &group_dead, true)
                .override_global(globals::PER_PROCESS, &per_process, true)
                .override_global(globals::LATENCY, &latency, true)
                .override_global(globals::HISTOGRAMS, &histograms, true)
                .override_global(phoebe_common::fd::OFFSETS_GLOBAL, &fd_offsets, true)
                .override_global(walk::OFFSETS_GLOBAL, &walk_offsets, true)
                .load(OBJECT)
        })
        .map_err(EbpfError::Load)?;
        let mut attach = vec![
            (programs::FORK, "sched_process_fork"),
            (programs::EXEC, "sched_process_exec"),
            (programs::EXIT, "sched_process_exit"),
            (programs::SYS_EXIT, "sys_exit"),
        ];
        if options.latency {
            attach.push((programs::SYS_ENTER, "sys_enter"));
        }
        let tgids = match ebpf.map(maps::TGIDS) {
            Some(aya::maps::Map::Array(data)) => {
                sys::MappedBytes::map(data.fd().as_fd(), blocks as usize * TGID_BLOCK).map_err(|e| {
                    EbpfError::Map {
                        name: maps::TGIDS,
                        source: aya::maps::MapError::IoError(e.into()),
                    }
                })?
            }
            _ => {
                return Err(EbpfError::Map {
                    name: maps::TGIDS,
                    source: aya::maps::MapError::InvalidName {
                        name: maps::TGIDS.into(),
                    },
                });
            }
        };
        if walk_offsets[walk::off::ENABLED] != 0
            && let Err(error) = load_walk(&mut ebpf)
        {
            // `sys_exit` counts such calls without their path when the tail call finds no program.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            tracing::warn!(
                error = %text,
                "the path walk program did not load: the paths of files behind descriptors and relative paths stay unknown"
            );
        }
        for (name, tracepoint) in attach {
            attach_raw_tp(&mut ebpf, name, tracepoint)?;
        }
        Ok(Observer {
            ebpf,
            tgids,
            per_process: options.per_process,
        })
    }

    fn targets_map(&mut self) -> Result<BpfHashMap<&mut MapData, u32, u32>, EbpfError> {
        let map = self.ebpf.map_mut(maps::TARGETS).ok_or(EbpfError::Map {
            name: maps::TARGETS,
            source: aya::maps::MapError::InvalidName {
                name: maps::TARGETS.into(),
            },
        })?;
        BpfHashMap::try_from(map).map_err(|source| EbpfError::Map {
            name: maps::TARGETS,
            source,
        })
    }

    /// Adds a process to the target set, in `state` (see `phoebe_common::state`).
    pub fn add_target(&mut self, tgid: u32, state: u32) -> Result<(), EbpfError> {
        self.targets_map()?
            .insert(tgid, state, 0)
            .map_err(|source| EbpfError::Map {
                name: maps::TARGETS,
                source,
            })?;
        // The programs' mirror of the state (a tgid beyond it is looked up in the hash by the programs too).
        self.tgids.set(tgid as usize, state as u8);
        Ok(())
    }

    /// Stops following a process (one that ended without the kernel seeing it end, see `monitor`).
    pub fn remove_target(&mut self, tgid: u32) {
        if let Ok(mut map) = self.targets_map() {
            let _ = map.remove(&tgid);
        }
        // 0: not followed, in the programs' mirror too.
        self.tgids.set(tgid as usize, 0);
    }

    /// The processes followed now.
    pub fn targets(&mut self) -> Vec<u32> {
        match self.targets_map() {
            Ok(map) => map.keys().filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Reads every counter, summed over CPUs (maxima are the maximum over CPUs).
    pub fn snapshot(&self) -> Result<Snapshot, EbpfError> {
        let map_err = |source| EbpfError::Map {
            name: maps::COUNTS,
            source,
        };
        let map = self.ebpf.map(maps::COUNTS).ok_or(EbpfError::Map {
            name: maps::COUNTS,
            source: aya::maps::MapError::InvalidName {
                name: maps::COUNTS.into(),
            },
        })?;
        let counts: PerCpuHashMap<&MapData, CountKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut snapshot = Snapshot::new();
        for entry in counts.iter() {
            // An element can appear twice if the kernel inserted one during the walk: the later read wins.
            let (key, per_cpu) = entry.map_err(map_err)?;
            snapshot.insert(key, sum_cpus(per_cpu.iter()));
        }
        if self.per_process {
            // 2 × SUCCESS_SLOTS lookups per read saved: the programs never write the arrays in this mode.
            return Ok(snapshot);
        }
        let successes: PerCpuArray<&MapData, CountValue> = self.array(maps::SUCCESSES)?;
        let errors: PerCpuArray<&MapData, ErrorSlot> = self.array(maps::ERRORS)?;
        let mut by_nr = Vec::with_capacity(SUCCESS_SLOTS as usize);
        let mut errors_by_nr = Vec::with_capacity(SUCCESS_SLOTS as usize);
        for nr in 0..successes.len() {
            let map_err = |name| move |source| EbpfError::Map { name, source };
            by_nr.push(sum_cpus(
                successes.get(&nr, 0).map_err(map_err(maps::SUCCESSES))?.iter(),
            ));
            errors_by_nr.push(errors.get(&nr, 0).map_err(map_err(maps::ERRORS))?.to_vec());
        }
        merge_arrays(&mut snapshot, &by_nr, &errors_by_nr);
        Ok(snapshot)
    }

    /// Reads every latency histogram, summed over CPUs (empty unless started with `histograms`).
    pub fn histograms(&self) -> Result<Histograms, EbpfError> {
        let name = maps::LATENCY_HISTOGRAMS;
        let map_err = |source| EbpfError::Map { name, source };
        let map = self.ebpf.map(name).ok_or(EbpfError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        })?;
        let buckets: PerCpuHashMap<&MapData, CountKey, LatencyBuckets> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut out = Histograms::new();
        for entry in buckets.iter() {
            let (key, per_cpu) = entry.map_err(map_err)?;
            out.insert(key, sum_buckets(per_cpu.iter()));
        }
        Ok(out)
    }

    /// Deletes `keys` from the counter and histogram maps: `monitor` does so for processes that ended, once it has
    /// read their last counts, so that a long-running monitor of short-lived processes does not fill the maps. A
    /// key absent from a map is not an error.
    pub fn forget(&mut self, keys: &[CountKey]) -> Result<(), EbpfError> {
        fn remove<V: aya::Pod>(
            ebpf: &mut Ebpf,
            name: &'static str,
            keys: &[CountKey],
        ) -> Result<(), EbpfError> {
            let map_err = |source| EbpfError::Map { name, source };
            let map = ebpf.map_mut(name).ok_or(EbpfError::Map {
                name,
                source: aya::maps::MapError::InvalidName { name: name.into() },
            })?;
            let mut map: PerCpuHashMap<&mut MapData, CountKey, V> =
                PerCpuHashMap::try_from(map).map_err(map_err)?;
            for key in keys {
                match map.remove(key) {
                    Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                    Err(aya::maps::MapError::SyscallError(e))
                        if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(map_err(e)),
                }
            }
            Ok(())
        }
        remove::<CountValue>(&mut self.ebpf, maps::COUNTS, keys)?;
        remove::<LatencyBuckets>(&mut self.ebpf, maps::LATENCY_HISTOGRAMS, keys)
    }

    /// The per-CPU array map `name`.
    fn array<V: aya::Pod>(&self, name: &'static str) -> Result<PerCpuArray<&MapData, V>, EbpfError> {
        let map = self.ebpf.map(name).ok_or(EbpfError::Map {
            name,
            source: aya::maps::MapError::InvalidName { name: name.into() },
        })?;
        PerCpuArray::try_from(map).map_err(|source| EbpfError::Map { name, source })
    }

    /// Counter updates lost because the counter map (or the histogram map) was full.
    pub fn lost(&self) -> u64 {
        let Some(map) = self.ebpf.map(maps::LOST) else {
            return 0;
        };
        let Ok(lost) = PerCpuArray::<&MapData, u64>::try_from(map) else {
            return 0;
        };
        lost.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }
}

/// A measurement aid for the benches, never used by a command: the empty program `phoebe_sc_nop` attached to
/// `sys_exit`, which gives the hook's own cost (every syscall of the machine then takes the tracepoint's slow
/// path and runs a program that returns at once). The observer's cost above it is what phoebe's program adds.
/// Dropping it detaches and unloads the program.
pub struct EmptyProgram {
    _ebpf: Ebpf,
}

impl EmptyProgram {
    pub fn attach() -> Result<Self, EbpfError> {
        let mut ebpf = EbpfLoader::new().load(OBJECT).map_err(EbpfError::Load)?;
        attach_raw_tp(&mut ebpf, programs::SYS_EXIT_NOP, "sys_exit")?;
        Ok(EmptyProgram { _ebpf: ebpf })
    }
}

/// Loads the path walk program (`phoebe_common::shape::walk`) and puts it in the program array `sys_exit`
/// tail-calls. The array lives in `ebpf`, whose descriptor keeps its slot (the kernel empties a program array
/// when user space closes its last descriptor of it).
fn load_walk(ebpf: &mut Ebpf) -> Result<(), EbpfError> {
    let err = |source| EbpfError::Program {
        name: walk::PROGRAM,
        tracepoint: "sys_exit (tail call)",
        source,
    };
    let program: &mut RawTracePoint = ebpf
        .program_mut(walk::PROGRAM)
        .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
        .and_then(|p| p.try_into())
        .map_err(err)?;
    program.load().map_err(err)?;
    let fd = program
        .fd()
        .map_err(err)?
        .try_clone()
        .map_err(|e| err(aya::programs::ProgramError::IOError(e)))?;
    let map_err = |source| EbpfError::Map {
        name: walk::PROGRAMS,
        source,
    };
    let map = ebpf.map_mut(walk::PROGRAMS).ok_or_else(|| {
        map_err(aya::maps::MapError::InvalidName {
            name: walk::PROGRAMS.into(),
        })
    })?;
    let mut array = aya::maps::ProgramArray::try_from(map).map_err(map_err)?;
    array.set(0, &fd, 0).map_err(map_err)
}

fn attach_raw_tp(ebpf: &mut Ebpf, name: &'static str, tracepoint: &'static str) -> Result<(), EbpfError> {
    let err = |source| EbpfError::Program {
        name,
        tracepoint,
        source,
    };
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
        .and_then(|p| p.try_into())
        .map_err(err)?;
    program.load().map_err(err)?;
    program.attach(tracepoint).map_err(err)?;
    Ok(())
}

/// One key's counters over all CPUs: counts add up, the maximum is the largest.
pub fn sum_cpus<'a>(per_cpu: impl IntoIterator<Item = &'a CountValue>) -> CountValue {
    per_cpu
        .into_iter()
        .fold(CountValue::default(), |acc, v| CountValue {
            calls: acc.calls + v.calls,
            latency_ns_sum: acc.latency_ns_sum + v.latency_ns_sum,
            latency_ns_max: acc.latency_ns_max.max(v.latency_ns_max),
        })
}

/// One key's latency histograms over all CPUs: buckets and sums add up.
pub fn sum_buckets<'a>(per_cpu: impl IntoIterator<Item = &'a LatencyBuckets>) -> LatencyBuckets {
    per_cpu.into_iter().fold(LatencyBuckets::default(), |mut acc, v| {
        for (a, b) in acc.counts.iter_mut().zip(v.counts.iter()) {
            *a += b;
        }
        acc.sum_ns += v.sum_ns;
        acc
    })
}

/// Adds what the arrays counted by syscall number to a snapshot of the counter map, under the key the counter map
/// would have used (`{tgid: 0, nr, errno}`), so that nothing above this module knows there are three maps:
/// `successes[nr]` (CPUs summed) and, per CPU, `errors[cpu][nr]` (that CPU's first errno of syscall `nr`). Counts
/// add up, the larger maximum stands; empty slots add nothing.
pub fn merge_arrays(snapshot: &mut Snapshot, successes: &[CountValue], errors: &[Vec<ErrorSlot>]) {
    let mut add = |nr: usize, errno: u32, value: &CountValue| {
        if value.calls == 0 {
            return;
        }
        let key = CountKey {
            tgid: 0,
            nr: nr as u32,
            errno,
            pad: 0,
        };
        let merged = match snapshot.get(&key) {
            Some(old) => sum_cpus([old, value]),
            None => *value,
        };
        snapshot.insert(key, merged);
    };
    for (nr, value) in successes.iter().enumerate() {
        add(nr, 0, value);
    }
    for (nr, per_cpu) in errors.iter().enumerate() {
        for slot in per_cpu.iter().filter(|slot| slot.errno != 0) {
            add(nr, slot.errno, &slot.value);
        }
    }
}

/// What happened between two reads of the cumulative counters: per key, the calls and latency added since
/// `before`. The maximum latency of the interval is the new maximum when the run's maximum grew, otherwise the
/// interval's average (the true maximum lies between the two; per-interval maxima would need a reset, and a
/// reset races with the kernel).
pub fn delta(before: &Snapshot, now: &Snapshot) -> Vec<(CountKey, CountValue)> {
    let mut out = Vec::new();
    for (key, value) in now {
        let prev = before.get(key).copied().unwrap_or_default();
        let calls = value.calls.saturating_sub(prev.calls);
        if calls == 0 {
            continue;
        }
        let sum = value.latency_ns_sum.saturating_sub(prev.latency_ns_sum);
        let max = if value.latency_ns_max > prev.latency_ns_max {
            value.latency_ns_max
        } else {
            sum / calls
        };
        out.push((
            *key,
            CountValue {
                calls,
                latency_ns_sum: sum,
                latency_ns_max: max,
            },
        ));
    }
    out
}

/// Records the counters added between two reads into the interval that contains `at`.
fn record(
    builder: &mut ObservationBuilder,
    at: Duration,
    before: &Snapshot,
    now: &Snapshot,
    only: Option<&std::collections::HashSet<Syscall>>,
) {
    for (key, value) in delta(before, now) {
        let Some((syscall, result)) = decode(&key) else {
            continue;
        };
        if only.is_some_and(|only| !only.contains(&syscall)) {
            continue;
        }
        builder.record_many(
            at,
            syscall,
            result,
            value.calls,
            value.latency_ns_sum,
            value.latency_ns_max,
        );
    }
}

/// The observer as the supervisor drives it: at each tick, the counters added since the last one go into the
/// interval that tick ends.
struct Observing<'a> {
    observer: Observer,
    builder: &'a mut ObservationBuilder,
    only: Option<&'a std::collections::HashSet<Syscall>>,
    before: Snapshot,
    shapes_before: shapes::ShapeSnapshot,
    paths_before: shapes::PathSnapshot,
    path_texts: shapes::PathTexts,
}

impl launch::Programs for Observing<'_> {
    fn follow(&mut self, tgid: u32) -> Result<(), EbpfError> {
        self.observer.add_target(tgid, state::LAUNCHED)
    }

    fn followed(&mut self) -> Vec<u32> {
        self.observer.targets()
    }

    fn tick(&mut self, _tick: u32, end: Duration, _last: bool) -> Result<(), BackendError> {
        let now = self.observer.snapshot().map_err(RunError::Ebpf)?;
        // Just before the interval's end (each tick but the last is on a boundary of the builder's intervals),
        // so that it lands in the interval the tick closes.
        record(
            self.builder,
            end.saturating_sub(Duration::from_nanos(1)),
            &self.before,
            &now,
            self.only,
        );
        shapes::record_unknown(
            self.builder,
            end.saturating_sub(Duration::from_nanos(1)),
            &self.before,
            &now,
            self.only,
        );
        self.before = now;
        let shapes_now = self.observer.shape_snapshot().map_err(RunError::Ebpf)?;
        shapes::record(
            self.builder,
            end.saturating_sub(Duration::from_nanos(1)),
            &self.shapes_before,
            &shapes_now,
            self.only,
        );
        self.shapes_before = shapes_now;
        let paths_now = self
            .observer
            .path_snapshot(&mut self.path_texts)
            .map_err(RunError::Ebpf)?;
        shapes::record_paths(
            self.builder,
            end.saturating_sub(Duration::from_nanos(1)),
            &self.paths_before,
            &paths_now,
            &self.path_texts,
            self.only,
        );
        self.paths_before = paths_now;
        Ok(())
    }

    /// `--interval auto` doubles the builder's interval as the run goes on: ticks follow it.
    fn period(&self) -> Option<Duration> {
        Some(self.builder.interval())
    }
}

/// The eBPF backend: observes with raw tracepoints, injects at LSM (or fmod_ret) hooks.
pub struct EbpfBackend;

/// What only the eBPF backend fails at (a [`BackendError`] wraps it).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start '{command}' under eBPF")]
    Launch {
        command: String,
        #[source]
        source: phoebe_sys::launch::LaunchError,
    },
    #[error("cannot use eBPF")]
    Ebpf(#[source] EbpfError),
}

impl From<RunError> for BackendError {
    fn from(e: RunError) -> Self {
        BackendError::own_unhinted(e)
    }
}

impl phoebe_backend_common::Backend for EbpfBackend {
    fn kind(&self) -> phoebe_backend_common::BackendKind {
        phoebe_backend_common::BackendKind::Ebpf
    }

    fn check(&self, mode: &phoebe_backend_common::Mode<'_>) -> Result<(), BackendError> {
        match mode {
            phoebe_backend_common::Mode::Observe { .. } => Ok(()),
            phoebe_backend_common::Mode::Inject { decider, .. } => inject::check(decider),
        }
    }

    fn check_rules(&self, faults: &[&FaultSpec]) -> Result<(), BackendError> {
        inject::plan(faults).map(drop)
    }

    fn campaign_skips(&self, faults: &[&FaultSpec]) -> Option<BackendError> {
        self.check_rules(faults).err()
    }

    fn probe(&self) -> phoebe_backend_common::Probe {
        probe::probe()
    }

    fn probe_observe(&self) -> phoebe_backend_common::Capability {
        probe::probe_observe()
    }

    /// The LSM program rolls with `bpf_get_prandom_u32`: the seed decides nothing.
    fn draws(&self) -> Draws {
        Draws::InKernel
    }

    /// The observer's programs read the registers, the path arguments of path syscalls (a relative one joined to
    /// the cwd or dirfd's directory they walk), what a call's descriptor is (its kind and `O_NONBLOCK`, and a
    /// file's path they walk, from the kernel's own structures), not the target's other memory.
    fn observed_shapes(&self) -> ShapeCoverage {
        ShapeCoverage::InKernel
    }

    /// Timing a call is a second map update per call, paid only with `--latency`.
    fn measures_latency(&self, asked: bool) -> bool {
        asked
    }

    fn describe(&self, decider: &phoebe_core::decide::Decider) -> Result<Option<String>, BackendError> {
        // A replay is refused by `check`, not described.
        if decider.is_replay() {
            return Ok(None);
        }
        inject::plan(&decider.faults().collect::<Vec<_>>()).map(|plan| Some(plan.describe()))
    }

    fn run(
        &self,
        target: &Target,
        mode: phoebe_backend_common::Mode<'_>,
        control: &Control,
    ) -> Result<Outcome, BackendError> {
        match mode {
            phoebe_backend_common::Mode::Observe {
                builder,
                record_only,
                latency,
            } => observe(target, builder, record_only, latency, control),
            phoebe_backend_common::Mode::Inject { decider, note } => {
                inject::run(target, decider, control, note)
            }
        }
    }
}

/// Observes `target` until its whole process tree has ended, counting calls into `builder` (only those in
/// `only`, if given); `latency` adds the exit tracepoint that times each call.
pub(crate) fn observe(
    target: &Target,
    builder: &mut ObservationBuilder,
    only: Option<&HashSet<Syscall>>,
    latency: bool,
    control: &Control,
) -> Result<Outcome, BackendError> {
    let observer = Observer::start(ProbeOptions {
        per_process: false,
        latency,
        histograms: false,
    })
    .map_err(RunError::Ebpf)?;
    let interval = builder.interval();
    let mut observing = Observing {
        observer,
        builder,
        only,
        before: Snapshot::new(),
        shapes_before: shapes::ShapeSnapshot::new(),
        paths_before: shapes::PathSnapshot::new(),
        path_texts: shapes::PathTexts::new(),
    };
    let ended = launch::supervise(target, control, &mut observing, interval)?;
    let lost = observing.observer.lost();
    if lost > 0 {
        tracing::warn!(lost, "the counter map was full: some calls were not counted");
    }
    Ok(Outcome {
        exit: ended.exit,
        duration: ended.duration,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::Errno;

    fn key(nr: u32, errno: u32) -> CountKey {
        CountKey {
            tgid: 0,
            nr,
            errno,
            pad: 0,
        }
    }

    fn value(calls: u64, sum: u64, max: u64) -> CountValue {
        CountValue {
            calls,
            latency_ns_sum: sum,
            latency_ns_max: max,
        }
    }

    #[test]
    fn entry_time_array_covers_every_tid_only_with_latency() {
        assert_eq!(
            entered_tids(false),
            1,
            "without --latency the array is never written"
        );
        let tids = entered_tids(true);
        let pid_max = phoebe_sys::procfs::pid_max().expect("Linux has /proc/sys/kernel/pid_max");
        assert_eq!(tids, pid_max.min(ENTERED_MAX_TIDS));
        if pid_max <= ENTERED_MAX_TIDS {
            // Every tid of this machine has its slot: the programs never fall back to the hash here.
            assert!(std::process::id() < tids);
        }
    }

    #[test]
    fn delta_subtracts_cumulative_counters() {
        let before = Snapshot::from([(key(257, 2), value(10, 1000, 300)), (key(0, 0), value(5, 50, 20))]);
        let now = Snapshot::from([
            (key(257, 2), value(15, 1500, 300)),
            (key(0, 0), value(5, 50, 20)),
            (key(1, 0), value(3, 30, 15)),
        ]);
        let d = delta(&before, &now);
        assert_eq!(
            d,
            vec![
                (key(1, 0), value(3, 30, 15)),
                // The run's maximum did not grow: the interval's average stands in for its maximum.
                (key(257, 2), value(5, 500, 100)),
            ]
        );
        assert!(delta(&now, &now).is_empty(), "nothing new, nothing recorded");
    }

    #[test]
    fn arrays_by_number_merge_into_the_counter_snapshot() {
        // The hash holds what the arrays could not take: here read's EAGAIN (11), open's success (counted by
        // process, or a number beyond the array) and open's second errno on CPU 1 (EACCES, 13).
        let mut snapshot = Snapshot::from([
            (key(0, 11), value(4, 40, 20)),
            (key(2, 0), value(1, 100, 100)),
            (key(2, 13), value(1, 10, 10)),
        ]);
        let mut successes = vec![CountValue::default(); 4];
        successes[0] = value(7, 70, 30);
        successes[2] = value(2, 50, 40);
        let slot = |errno, v| ErrorSlot {
            errno,
            pad: 0,
            value: v,
        };
        let mut errors = vec![vec![ErrorSlot::default(); 2]; 4];
        // open's ENOENT (2) on both CPUs; CPU 1 then met EACCES, which went to the hash.
        errors[2] = vec![slot(2, value(5, 50, 20)), slot(2, value(3, 60, 30))];
        // read failed with EAGAIN on CPU 0 first, with EINTR (4) on CPU 1 first.
        errors[0] = vec![slot(11, value(6, 60, 25)), slot(4, value(1, 5, 5))];
        merge_arrays(&mut snapshot, &successes, &errors);
        assert_eq!(
            snapshot,
            Snapshot::from([
                (key(0, 0), value(7, 70, 30)),
                (key(0, 4), value(1, 5, 5)),
                // The hash's and CPU 0's slot's EAGAIN add up; the larger maximum stands.
                (key(0, 11), value(10, 100, 25)),
                (key(2, 0), value(3, 150, 100)),
                (key(2, 2), value(8, 110, 30)),
                (key(2, 13), value(1, 10, 10)),
            ]),
            "empty slots add no key"
        );
        let again = snapshot.clone();
        merge_arrays(
            &mut snapshot,
            &[CountValue::default(); 8],
            &vec![vec![ErrorSlot::default(); 2]; 8],
        );
        assert_eq!(snapshot, again, "nothing counted, nothing changed");
    }

    #[test]
    fn cpus_add_up_and_maxima_do_not() {
        let total = sum_cpus(&[value(2, 20, 15), value(3, 30, 12)]);
        assert_eq!(total, value(5, 50, 15));
    }

    #[test]
    fn keys_decode_to_the_model() {
        let openat = Syscall::parse("openat").unwrap();
        assert_eq!(
            decode(&key(257, 2)),
            Some((openat, Err(Errno::parse("ENOENT").unwrap())))
        );
        assert_eq!(decode(&key(257, 0)), Some((openat, Ok(()))));
        assert_eq!(
            decode(&key(100_000, 0)),
            None,
            "unknown syscall numbers are dropped"
        );
    }
}
