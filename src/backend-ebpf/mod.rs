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
    programs::{RawTracePoint, raw_trace_point::RawTracePointLinkId},
};
use phoebe_common::{
    CountKey, CountValue, ENTERED_MAX_TIDS, ErrorSlot, LatencyBuckets, SUCCESS_SLOTS, TGID_BLOCK,
    TGIDS_MAX_BLOCKS, globals, maps, programs,
    shape::{walk, within},
    state,
};

use phoebe_backend_common::{BackendError, Outcome, Target, control::Control};
use phoebe_core::model::{Draws, FaultSpec, ObservationBuilder, Syscall, shape::ShapeCoverage};

/// The compiled eBPF object (built by `build.rs` from `ebpf/phoebe-ebpf`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/phoebe-probes"));

/// What the observer should measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    #[error("--ebpf-maps: {what}")]
    Lent { what: String },
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
            EbpfError::Lent { .. } => Some(
                "--ebpf-maps is how `phoebe exec` lends the observer it loaded once to the `phoebe observe` of \
                 each baseline run; leave it out, and `phoebe observe` loads its own"
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
    /// The loaded object (its programs and the program array they tail-call); `None` when the observer was
    /// lent by another process ([`Observer::adopt`]), which loaded and attaches the programs.
    ebpf: Option<Ebpf>,
    /// The maps user space reads and writes.
    maps: Maps,
    /// The target states by tgid (`maps::TGIDS`), mapped: where [`Observer::add_target`] writes its targets'.
    tgids: sys::MappedBytes,
    /// What it was started to measure (an adopted observer is only taken for the same).
    options: ProbeOptions,
    /// Each program, the tracepoint it goes on and its link while attached (none while a campaign has not lent it).
    links: Vec<(&'static str, &'static str, Option<RawTracePointLinkId>)>,
    /// The entry programs that loaded (`syscalls:sys_enter_*`: a futex wait's `within=`, close's descriptor), the
    /// tracepoint each goes on and its link while attached: with the others, so that no call of the machine pays
    /// for them between runs.
    entry_links: Vec<(
        &'static str,
        &'static str,
        Option<aya::programs::trace_point::TracePointLinkId>,
    )>,
}

/// The observer lent by the `phoebe exec` that started this process ([`Observer::adopt`]), for its observation
/// to take ([`Observer::take_or_start`]) instead of loading its own: loading is the verifier's pass over the
/// programs, ≈ 110 ms of the ≈ 115 ms an observed run's start costs (`strace -T -e bpf phoebe observe --backend
/// ebpf -- true`), so a campaign pays it once, not once per baseline run.
static ADOPTED: std::sync::Mutex<Option<Observer>> = std::sync::Mutex::new(None);

/// Every map user space reads or writes: what [`Maps`] holds, and what a lent observer's descriptors are.
const SHARED_MAPS: [&str; 11] = [
    maps::TARGETS,
    maps::TGIDS,
    maps::COUNTS,
    maps::SUCCESSES,
    maps::ERRORS,
    maps::SHAPES,
    maps::PATHS,
    maps::PATH_TEXT,
    maps::LOST,
    maps::ENTERED,
    maps::LATENCY_HISTOGRAMS,
];

/// The maps user space reads and writes, by name: taken out of the loaded object (its programs keep using them:
/// the kernel binds maps to programs at load), or adopted from the descriptors another phoebe lent.
struct Maps(std::collections::HashMap<&'static str, aya::maps::Map>);

fn no_map(name: &'static str) -> EbpfError {
    EbpfError::Map {
        name,
        source: aya::maps::MapError::InvalidName { name: name.into() },
    }
}

/// The data of the kinds of map phoebe's object has.
fn map_data(map: &aya::maps::Map) -> Option<&MapData> {
    use aya::maps::Map;
    match map {
        Map::Array(data) | Map::HashMap(data) | Map::PerCpuArray(data) | Map::PerCpuHashMap(data) => {
            Some(data)
        }
        _ => None,
    }
}

impl Maps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, EbpfError> {
        SHARED_MAPS
            .iter()
            .map(|&name| {
                ebpf.take_map(name)
                    .map(|map| (name, map))
                    .ok_or_else(|| no_map(name))
            })
            .collect::<Result<_, _>>()
            .map(Maps)
    }

    fn get(&self, name: &'static str) -> Result<&aya::maps::Map, EbpfError> {
        self.0.get(name).ok_or_else(|| no_map(name))
    }

    fn get_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, EbpfError> {
        self.0.get_mut(name).ok_or_else(|| no_map(name))
    }

    /// The `BPF_F_MMAPABLE` target-state array, mapped.
    fn map_tgids(&self) -> Result<sys::MappedBytes, EbpfError> {
        let data = map_data(self.get(maps::TGIDS)?).ok_or_else(|| no_map(maps::TGIDS))?;
        let blocks = data
            .info()
            .map_err(|source| EbpfError::Map {
                name: maps::TGIDS,
                source,
            })?
            .max_entries();
        sys::MappedBytes::map(data.fd().as_fd(), blocks as usize * TGID_BLOCK).map_err(|e| EbpfError::Map {
            name: maps::TGIDS,
            source: aya::maps::MapError::IoError(e.into()),
        })
    }
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

impl Drop for Observer {
    /// The entry programs come off their tracepoints in parallel, not one grace period after the other as the
    /// programs' own drop would.
    fn drop(&mut self) {
        let _ = self.detach_entries();
    }
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
        // A CLOCK_REALTIME futex deadline is read against the TAI clock less this (`shapes::tai_offset_ns`).
        let (tai_offset, realtime) = shapes::tai_offset_ns().map_or((0u64, 0u32), |ns| (ns, 1));
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
                .override_global(within::TAI_OFFSET_GLOBAL, &tai_offset, true)
                .override_global(within::REALTIME_GLOBAL, &realtime, true)
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
        let shared = Maps::take(&mut ebpf)?;
        let tgids = shared.map_tgids()?;
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
        // Loaded (verified) once; attached and detached as runs come and go.
        for (name, _) in &attach {
            load_raw_tp(&mut ebpf, name)?;
        }
        // Call shapes (`observe`): a timed futex wait's `within=` and close's descriptor, which only the call's
        // entry can tell; without them, `unknown` as before.
        let mut entry_links = Vec::new();
        if !options.per_process {
            for (name, tracepoint, what) in [
                (
                    programs::FUTEX_ENTER,
                    "sys_enter_futex",
                    "timed futex waits' within=",
                ),
                (programs::CLOSE_ENTER, "sys_enter_close", "close's fd= and path="),
            ] {
                match load_entry(&mut ebpf, name) {
                    Ok(()) => entry_links.push((name, tracepoint, None)),
                    Err(why) => {
                        tracing::warn!(error = %why, "the {tracepoint} program did not load: {what} stays unknown")
                    }
                }
            }
        }
        tracing::debug!(?options, "loaded the eBPF observer's programs");
        let mut observer = Observer {
            ebpf: Some(ebpf),
            maps: shared,
            tgids,
            options,
            links: attach.into_iter().map(|(name, tp)| (name, tp, None)).collect(),
            entry_links,
        };
        observer.attach()?;
        Ok(observer)
    }

    /// The observer lent to this process ([`Observer::adopt`]) when it measures what `options` asks for; a
    /// fresh one otherwise.
    pub fn take_or_start(options: ProbeOptions) -> Result<Self, EbpfError> {
        let adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner()).take();
        match adopted {
            Some(observer) if observer.options == options => Ok(observer),
            _ => Observer::start(options),
        }
    }

    /// Takes the maps of an observer that another phoebe loaded and keeps attached (`phoebe exec`, which lends
    /// its observer to the `phoebe observe` of each baseline run: [`Lender`]) from the descriptors it left open
    /// for this process (`--ebpf-maps`), for this process's [`Observer::take_or_start`] with `options` (the
    /// lender's programs measure no latency: an observation that asks for it loads its own). To be called before
    /// this process opens any eBPF map itself.
    pub fn adopt(fds: &[i32], options: ProbeOptions) -> Result<(), EbpfError> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let lent = |what: String| EbpfError::Lent { what };
        let mut seen = HashSet::new();
        let mut by_name = std::collections::HashMap::new();
        for &fd in fds {
            if !seen.insert(fd) {
                return Err(lent(format!("descriptor {fd} is given twice")));
            }
            let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map_err(|e| lent(format!("descriptor {fd} is not open in this process ({e})")))?;
            if link.as_os_str() != "anon_inode:bpf-map" {
                return Err(lent(format!(
                    "descriptor {fd} is {}, not an eBPF map",
                    link.display()
                )));
            }
            // SAFETY: `fd` is open and is an eBPF map (its /proc link says so), given once; this process opens
            // maps only through aya, which it has not done yet (see above), so the descriptor was inherited and
            // nothing else here owns or closes it: the `OwnedFd` is its only owner.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // Not for the target: the descriptor came open across exec, so it is closed at the next one.
            nix::fcntl::fcntl(
                &owned,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| lent(format!("descriptor {fd}: cannot set FD_CLOEXEC ({e})")))?;
            let map_err = |e: aya::maps::MapError| lent(format!("descriptor {fd}: {e}"));
            let data = MapData::from_fd(owned).map_err(map_err)?;
            let info = data.info().map_err(map_err)?;
            let name = info.name_as_str().unwrap_or("");
            let Some(&name) = SHARED_MAPS.iter().find(|n| **n == name) else {
                return Err(lent(format!(
                    "descriptor {fd} is the eBPF map '{name}', not one of phoebe's"
                )));
            };
            by_name.insert(name, aya::maps::Map::from_map_data(data).map_err(map_err)?);
        }
        if let Some(name) = SHARED_MAPS.iter().find(|n| !by_name.contains_key(*n)) {
            return Err(lent(format!("no descriptor of the map {name}")));
        }
        let maps = Maps(by_name);
        let observer = Observer {
            tgids: maps.map_tgids()?,
            ebpf: None,
            maps,
            options,
            links: Vec::new(),
            entry_links: Vec::new(),
        };
        *ADOPTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(observer);
        Ok(())
    }

    fn attach(&mut self) -> Result<(), EbpfError> {
        let Some(ebpf) = &mut self.ebpf else {
            return Ok(());
        };
        for (name, tracepoint, link) in &mut self.links {
            if link.is_none() {
                *link = Some(attach_raw_tp(ebpf, name, tracepoint)?);
            }
        }
        let mut failed = Vec::new();
        for (i, (name, tracepoint, link)) in self.entry_links.iter_mut().enumerate() {
            if link.is_some() {
                continue;
            }
            match attach_entry(ebpf, name, tracepoint) {
                Ok(id) => *link = Some(id),
                Err(why) => {
                    tracing::warn!(error = %why, "the {tracepoint} program did not attach: what it learns stays unknown");
                    failed.push(i);
                }
            }
        }
        // Not tried again at every run.
        for i in failed.into_iter().rev() {
            self.entry_links.remove(i);
        }
        Ok(())
    }

    fn detach(&mut self) -> Result<(), EbpfError> {
        let Some(ebpf) = &mut self.ebpf else {
            return Ok(());
        };
        for (name, tracepoint, link) in &mut self.links {
            let Some(id) = link.take() else { continue };
            raw_tp(ebpf, name, tracepoint)?
                .detach(id)
                .map_err(|source| EbpfError::Program {
                    name,
                    tracepoint,
                    source,
                })?;
        }
        self.detach_entries()
    }

    /// Detaches the entry programs, each on a thread of its own: taking a program off a syscall tracepoint waits
    /// for a tasks-trace RCU grace period (the syscall tracepoints may fault since Linux 6.13), 75–110 ms here,
    /// which a run need not wait for (a process that exits meanwhile waits for them in the kernel).
    fn detach_entries(&mut self) -> Result<(), EbpfError> {
        let Some(ebpf) = &mut self.ebpf else {
            return Ok(());
        };
        for (name, tracepoint, link) in &mut self.entry_links {
            let Some(id) = link.take() else { continue };
            let taken = entry_program(ebpf, name)
                .and_then(|program| program.take_link(id))
                .map_err(|source| EbpfError::Program {
                    name,
                    tracepoint,
                    source,
                })?;
            // Where no thread can be had, the failed spawn drops the link (and waits) here.
            if let Err(e) = std::thread::Builder::new()
                .name("phoebe-detach".into())
                .spawn(move || drop(taken))
            {
                tracing::debug!(error = %e, "no thread to detach {name} on: detached here");
            }
        }
        Ok(())
    }

    /// Empties the target set and every map the programs count in, as a fresh load has them (the scratch
    /// buffers need nothing; a lent observer measures no latency, so stamps no entry times).
    fn clear(&mut self) -> Result<(), EbpfError> {
        fn hash<K: aya::Pod, V: aya::Pod>(maps: &mut Maps, name: &'static str) -> Result<(), EbpfError> {
            let map_err = |source| EbpfError::Map { name, source };
            let map = maps.get_mut(name)?;
            let mut map: BpfHashMap<&mut MapData, K, V> = BpfHashMap::try_from(map).map_err(map_err)?;
            let keys = map.keys().collect::<Result<Vec<_>, _>>().map_err(map_err)?;
            keys.iter().try_for_each(|key| map.remove(key).map_err(map_err))
        }
        fn per_cpu_hash<K: aya::Pod, V: aya::Pod>(
            maps: &mut Maps,
            name: &'static str,
        ) -> Result<(), EbpfError> {
            let map_err = |source| EbpfError::Map { name, source };
            let map = maps.get_mut(name)?;
            let mut map: PerCpuHashMap<&mut MapData, K, V> = PerCpuHashMap::try_from(map).map_err(map_err)?;
            let keys = map.keys().collect::<Result<Vec<_>, _>>().map_err(map_err)?;
            keys.iter().try_for_each(|key| map.remove(key).map_err(map_err))
        }
        fn per_cpu_array<V: aya::Pod + Default>(
            maps: &mut Maps,
            name: &'static str,
        ) -> Result<(), EbpfError> {
            let map_err = |source| EbpfError::Map { name, source };
            let map = maps.get_mut(name)?;
            let mut map: PerCpuArray<&mut MapData, V> = PerCpuArray::try_from(map).map_err(map_err)?;
            let cpus = aya::util::nr_cpus().map_err(|(_, e)| map_err(aya::maps::MapError::IoError(e)))?;
            for index in 0..map.len() {
                let zeros = aya::maps::PerCpuValues::try_from(vec![V::default(); cpus])
                    .map_err(|e| map_err(aya::maps::MapError::IoError(e)))?;
                map.set(index, zeros, 0).map_err(map_err)?;
            }
            Ok(())
        }
        self.tgids.zero();
        hash::<u32, u32>(&mut self.maps, maps::TARGETS)?;
        hash::<u32, u64>(&mut self.maps, maps::ENTERED)?;
        hash::<u64, phoebe_common::shape::PathText>(&mut self.maps, maps::PATH_TEXT)?;
        per_cpu_hash::<CountKey, CountValue>(&mut self.maps, maps::COUNTS)?;
        per_cpu_hash::<CountKey, LatencyBuckets>(&mut self.maps, maps::LATENCY_HISTOGRAMS)?;
        per_cpu_hash::<phoebe_common::shape::ShapeKey, CountValue>(&mut self.maps, maps::SHAPES)?;
        per_cpu_hash::<phoebe_common::shape::PathKey, CountValue>(&mut self.maps, maps::PATHS)?;
        per_cpu_array::<u64>(&mut self.maps, maps::LOST)?;
        if !self.options.per_process {
            per_cpu_array::<CountValue>(&mut self.maps, maps::SUCCESSES)?;
            per_cpu_array::<ErrorSlot>(&mut self.maps, maps::ERRORS)?;
        }
        Ok(())
    }

    fn targets_map(&mut self) -> Result<BpfHashMap<&mut MapData, u32, u32>, EbpfError> {
        let map = self.maps.get_mut(maps::TARGETS)?;
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
        let map = self.maps.get(maps::COUNTS)?;
        let counts: PerCpuHashMap<&MapData, CountKey, CountValue> =
            PerCpuHashMap::try_from(map).map_err(map_err)?;
        let mut snapshot = Snapshot::new();
        for entry in counts.iter() {
            // An element can appear twice if the kernel inserted one during the walk: the later read wins.
            let (key, per_cpu) = entry.map_err(map_err)?;
            snapshot.insert(key, sum_cpus(per_cpu.iter()));
        }
        if self.options.per_process {
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
        let map = self.maps.get(name)?;
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
            maps: &mut Maps,
            name: &'static str,
            keys: &[CountKey],
        ) -> Result<(), EbpfError> {
            let map_err = |source| EbpfError::Map { name, source };
            let map = maps.get_mut(name)?;
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
        remove::<CountValue>(&mut self.maps, maps::COUNTS, keys)?;
        remove::<LatencyBuckets>(&mut self.maps, maps::LATENCY_HISTOGRAMS, keys)
    }

    /// The per-CPU array map `name`.
    fn array<V: aya::Pod>(&self, name: &'static str) -> Result<PerCpuArray<&MapData, V>, EbpfError> {
        let map = self.maps.get(name)?;
        PerCpuArray::try_from(map).map_err(|source| EbpfError::Map { name, source })
    }

    /// Counter updates lost because the counter map (or the histogram map) was full.
    pub fn lost(&self) -> u64 {
        let Ok(map) = self.maps.get(maps::LOST) else {
            return 0;
        };
        let Ok(lost) = PerCpuArray::<&MapData, u64>::try_from(map) else {
            return 0;
        };
        lost.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }
}

/// The observer of a campaign ([`phoebe_backend_common::CampaignObserver`]): loaded once, attached only while a
/// baseline run's `phoebe observe` uses it, its maps lent to that process by descriptor (`--ebpf-maps`).
pub struct Lender {
    observer: Observer,
}

impl Lender {
    pub fn start() -> Result<Self, EbpfError> {
        let mut observer = Observer::start(ProbeOptions::default())?;
        observer.detach()?;
        Ok(Lender { observer })
    }
}

impl phoebe_backend_common::CampaignObserver for Lender {
    fn lend(&mut self, cmd: &mut std::process::Command) -> Result<(), BackendError> {
        use std::os::{fd::AsRawFd, unix::process::CommandExt};
        let observer = &mut self.observer;
        observer.detach().map_err(RunError::Ebpf)?;
        observer.clear().map_err(RunError::Ebpf)?;
        let fds = SHARED_MAPS
            .iter()
            .map(|&name| {
                let map = observer.maps.get(name)?;
                map_data(map)
                    .map(|data| data.fd().as_fd().as_raw_fd())
                    .ok_or_else(|| no_map(name))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(RunError::Ebpf)?;
        observer.attach().map_err(RunError::Ebpf)?;
        let list = fds.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        cmd.arg("--ebpf-maps").arg(list);
        // SAFETY: the closure runs in the child between fork and exec: `fcntl` is async-signal-safe, allocates
        // nothing and changes only the child's own descriptor table; the descriptors are open in the parent
        // (`self` holds them) when it forks.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &fds {
                    // Keep this map open across the exec (the flags of a descriptor are only FD_CLOEXEC).
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            })
        };
        Ok(())
    }

    fn reclaim(&mut self) {
        if let Err(error) = self.observer.detach() {
            tracing::warn!(error = %error, "cannot detach the campaign's eBPF observer");
        }
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

/// The raw tracepoint program `name` of `ebpf` (`tracepoint` only names it in the error).
fn raw_tp<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<&'a mut RawTracePoint, EbpfError> {
    ebpf.program_mut(name)
        .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
        .and_then(|p| p.try_into())
        .map_err(|source| EbpfError::Program {
            name,
            tracepoint,
            source,
        })
}

/// The entry program `name` (a tracepoint program).
fn entry_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::TracePoint, aya::programs::ProgramError> {
    ebpf.program_mut(name)
        .ok_or(aya::programs::ProgramError::UnexpectedProgramType)?
        .try_into()
}

/// Loads (verifies) the entry program `name`, not attached yet.
fn load_entry(ebpf: &mut Ebpf, name: &str) -> Result<(), String> {
    let program = entry_program(ebpf, name).map_err(|e| format!("{name}: {e}"))?;
    program.load().map_err(|e| error_chain(&e))
}

/// Attaches the loaded entry program `name` to `syscalls:<tracepoint>`, through tracefs, mounted for the attach
/// alone where the machine has not (`sys::with_tracefs`).
fn attach_entry(
    ebpf: &mut Ebpf,
    name: &str,
    tracepoint: &str,
) -> Result<aya::programs::trace_point::TracePointLinkId, String> {
    let program = entry_program(ebpf, name).map_err(|e| format!("{name}: {e}"))?;
    sys::with_tracefs(|| program.attach("syscalls", tracepoint))?.map_err(|e| error_chain(&e))
}

/// `error` and its causes, joined.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        text.push(cause.to_string());
        source = cause.source();
    }
    text.join(": ")
}

/// Loads (verifies) the raw tracepoint program `name`, not attached yet.
fn load_raw_tp(ebpf: &mut Ebpf, name: &'static str) -> Result<(), EbpfError> {
    raw_tp(ebpf, name, "(loading)")?
        .load()
        .map_err(|source| EbpfError::Program {
            name,
            tracepoint: "(loading)",
            source,
        })
}

fn attach_raw_tp(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<RawTracePointLinkId, EbpfError> {
    let err = |source| EbpfError::Program {
        name,
        tracepoint,
        source,
    };
    let program = raw_tp(ebpf, name, tracepoint)?;
    if program.fd().is_err() {
        program.load().map_err(err)?;
    }
    program.attach(tracepoint).map_err(err)
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

    fn campaign_observer(
        &self,
    ) -> Result<Option<Box<dyn phoebe_backend_common::CampaignObserver>>, BackendError> {
        Ok(Some(Box::new(Lender::start().map_err(RunError::Ebpf)?)))
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
    let observer = Observer::take_or_start(ProbeOptions {
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
    let mut warnings = Vec::new();
    if lost > 0 {
        observing.builder.lose(lost);
        warnings.push(format!(
            "{lost} counter update(s) lost: the observer's counter maps were full (thousands of distinct paths)\n\
             hint: those calls are counted without their shape, and synthesis makes no model of a syscall whose \
             shapes were not recorded; --backend ptrace records every shape"
        ));
    }
    Ok(Outcome {
        exit: ended.exit,
        duration: ended.duration,
        warnings,
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

    /// The observer's start-up went from 20 to about 170 ms once it learned call shapes in the kernel: the
    /// verifier walked the rest of `sys_exit` once for each value of a descriptor's or an open's code it could tell
    /// apart, 84 004 instructions for a program of 2 236 (143 ms). Bounded by what the kernel reports having
    /// verified, a count, not a time (20 272 since the codes go through a per-CPU slot).
    #[test]
    fn regression_the_verifier_walked_sys_exit_once_per_descriptor_kind() {
        // SAFETY: geteuid takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            phoebe_core::testing::skipped("loading the eBPF observer needs root (CAP_BPF and CAP_PERFMON)");
            return;
        }
        let observer = Observer::start(ProbeOptions::default()).expect("the observer loads");
        let ebpf = observer.ebpf.as_ref().expect("loaded");
        let verified = |name: &str| {
            ebpf.program(name)
                .and_then(|p| p.info().ok())
                .and_then(|info| info.verified_instruction_count())
        };
        let Some(sys_exit) = verified(programs::SYS_EXIT) else {
            phoebe_core::testing::skipped(
                "the kernel reports no verified instruction count (before Linux 5.16)",
            );
            return;
        };
        assert!(sys_exit < 40_000, "sys_exit: {sys_exit} instructions verified");
        if let Some(walk) = verified(walk::PROGRAM) {
            assert!(walk < 40_000, "the path walk: {walk} instructions verified");
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
