//! The plausible tier (DESIGN §6): the catalogue entries ([`crate::model::catalogue`]) whose shape class the
//! program really used in an observation, each as a rule at the sporadic fixed rate, most-called first — what an
//! `--explore plausible` campaign appends to the realistic models. Pure functions.
//!
//! An entry is used when some call of the observation belongs to its class: `fsync-EIO` (`fd=file`) only if the
//! program fsynced a regular file, never because it fsynced a directory or because another program might. An
//! entry whose errno the program already met on such a call is left to the realistic tier, which injects it at its
//! observed rate. Entries phoebe cannot decide (the observation has no shapes, the descriptor's kind was not
//! learned) are listed apart with the reason, never guessed.

use std::collections::BTreeMap;

use crate::model::{
    Errno, FaultSpec, Observation, Shape, SynthSettings,
    catalogue::{self, Class, Entry},
    observation::{OTHER_SHAPES, SyscallStats},
    shape::{Key, for_errno},
};

use super::SettingError;

/// One plausible experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Plausible {
    pub entry: &'static Entry,
    /// Calls of the observation in the entry's class, over the whole run.
    pub calls: u64,
    /// The observed shapes in the class with their calls, most called first, the dynamic loader's own files
    /// ([`loader_file`]) left out; empty only when the syscall has no shapes (every call is in the class).
    pub shapes: Vec<(Shape, u64)>,
    /// The rate it injects at: [`rate`] of the class's calls per run.
    pub rate: f64,
    /// What the experiment injects: the entry's rule at [`Plausible::rate`].
    pub fault: FaultSpec,
}

/// The largest rate [`rate`] raises a plausible experiment to: a call made once per run is failed in half the
/// runs, never in every one (a call that fails every time is no sporadic error).
pub const MAX_RAISED_RATE: f64 = 0.5;

/// The rate of a plausible experiment whose class of calls was made `calls` times over `runs` runs: the sporadic
/// fixed rate, raised for a call made fewer than 1/`fixed` times per run to one injection expected per run (1 /
/// calls per run), at most [`MAX_RAISED_RATE`]. At the fixed rate, such an experiment mostly injects nothing: on
/// Redis, `openat-ENFILE` at 5 % of 7 opens per run was `not-exercised` in 5 runs of 5. A fixed rate of 0 (no
/// plausible injection at all) stays 0.
pub fn rate(fixed: f64, calls: u64, runs: u32) -> f64 {
    let per_run = calls as f64 / f64::from(runs.max(1));
    if per_run <= 0.0 || fixed <= 0.0 {
        return fixed;
    }
    fixed.max((1.0 / per_run).min(MAX_RAISED_RATE))
}

/// A catalogue entry on a syscall the program called that is not a plausible experiment, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    pub entry: &'static Entry,
    /// Calls of the entry's syscall in the observation.
    pub calls: u64,
    pub reason: String,
}

/// The plausible tier of one observation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlausibleTier {
    /// Most calls first; among equal counts, in catalogue order.
    pub experiments: Vec<Plausible>,
    /// Entries whose syscall the program called but which are not experiments: already in the realistic tier, or
    /// undecidable from the observation. Entries on syscalls it never called are not listed.
    pub left_out: Vec<LeftOut>,
}

/// The plausible tier of `obs` from the shipped catalogue, at `settings.fixed_rate` (raised for rare calls: [`rate`]).
pub fn plausible(obs: &Observation, settings: &SynthSettings) -> Result<PlausibleTier, SettingError> {
    settings.validate()?;
    let entries = catalogue::entries();
    let totals = obs.totals();
    let mut tier = PlausibleTier::default();
    for entry in entries {
        let Some(stats) = totals.get(&entry.syscall).filter(|s| s.calls > 0) else {
            continue;
        };
        let mut left_out = |reason: String| {
            tier.left_out.push(LeftOut {
                entry,
                calls: stats.calls,
                reason,
            })
        };
        match use_of(entry, stats, obs.backend == "ebpf") {
            Use::Used { calls, shapes } => {
                // A partial transfer is no error: the observation cannot show whether the program met it.
                if let Some(errno) = entry.action.errno()
                    && let Some(shape) = failed_naturally(entry, errno, stats, &shapes)
                {
                    left_out(format!(
                        "the program already met {errno} on {}{}: the realistic tier injects it at its observed rate",
                        entry.syscall,
                        if shape.is_empty() {
                            String::new()
                        } else {
                            format!(" ({shape})")
                        }
                    ));
                    continue;
                }
                let rate = rate(settings.fixed_rate, calls, obs.runs);
                tier.experiments.push(Plausible {
                    entry,
                    calls,
                    shapes,
                    rate,
                    fault: entry.fault(rate),
                });
            }
            Use::Unused => {}
            Use::Undecided(reason) => left_out(reason),
        }
    }
    // Stable: equal counts keep the catalogue's order.
    tier.experiments.sort_by_key(|p| std::cmp::Reverse(p.calls));
    Ok(tier)
}

enum Use {
    Used { calls: u64, shapes: Vec<(Shape, u64)> },
    Unused,
    Undecided(String),
}

/// How the program's calls of the entry's syscall relate to the entry's class. `ebpf`: the observation is the
/// eBPF observer's, which leaves some components unknown that ptrace reads (a write's size, a timed wait's
/// `CLOCK_REALTIME` deadline): a class it cannot decide says so.
fn use_of(entry: &Entry, stats: &SyscallStats, ebpf: bool) -> Use {
    if entry.shape.is_empty() && stats.shapes.is_empty() {
        return Use::Used {
            calls: stats.calls,
            shapes: Vec::new(),
        };
    }
    if stats.shapes.is_empty() {
        return Use::Undecided(format!(
            "the observation has no call shapes for {} (eBPF, or --shapes off), so phoebe cannot tell whether the \
             program made calls of this class ({}); observe with --backend ptrace",
            entry.syscall,
            class_text(entry)
        ));
    }
    let mut shapes: BTreeMap<Shape, u64> = BTreeMap::new();
    let (mut undecided, mut loader, mut always, mut pseudo) = (0, 0, 0, 0);
    // What made calls undecided: their components left unknown, and calls pooled as `other`.
    let mut unknown: std::collections::BTreeSet<&'static str> = std::collections::BTreeSet::new();
    let mut pooled = 0;
    for (text, st) in &stats.shapes {
        // As the entry's errno sees the shape: whether a name exists says nothing of EMFILE.
        let raw = (text != OTHER_SHAPES).then(|| Shape::parse(text).ok()).flatten();
        // The loader's own mmaps (`loader=yes`, where the observer could tell) are its, whatever they map.
        let by_loader = raw
            .as_ref()
            .is_some_and(|shape| shape.get(Key::Loader) == Some("yes"));
        let parsed = raw.map(|shape| for_errno(&shape, entry.action.errno()));
        // Calls of the class that failed with the entry's errno every time are in the state that gives it (a pipe
        // without a reader, EPIPE): injecting it there adds nothing, and their failures say nothing of the other
        // shapes.
        let always_fails = entry
            .action
            .errno()
            .is_some_and(|errno| st.calls > 0 && st.errors.get(&errno) == Some(&st.calls));
        if always_fails
            && parsed
                .as_ref()
                .is_some_and(|shape| entry.shape.is_empty() || entry.matches(shape))
        {
            always += st.calls;
            continue;
        }
        match parsed {
            Some(shape)
                if (entry.shape.is_empty() || entry.matches(&shape))
                    && (by_loader || loader_file(&shape)) =>
            {
                loader += st.calls
            }
            // A disk's error on a file the kernel makes up as it is read (/proc, /sys): no disk is behind it.
            Some(shape)
                if entry.class == Class::Disk
                    && (entry.shape.is_empty() || entry.matches(&shape))
                    && pseudo_file(&shape) =>
            {
                pseudo += st.calls
            }
            // A rule names the exact shape, so every component must be known: an unknown path could be the
            // loader's file (and `path=unknown` is no glob of any file).
            Some(shape) if entry.matches(&shape) && shape.unknown().next().is_none() => {
                *shapes.entry(shape).or_default() += st.calls
            }
            // Could it be in the class, and could a rule name it? Not with an unknown component (or when pooled).
            Some(shape)
                if entry
                    .shape
                    .iter()
                    .all(|p| p.matches(&shape) || shape.unknown().any(|k| k == p.key)) =>
            {
                unknown.extend(shape.unknown().map(|k| k.name()));
                undecided += st.calls
            }
            Some(_) => {}
            None => {
                pooled += st.calls;
                undecided += st.calls
            }
        }
    }
    if shapes.is_empty() {
        if always > 0 && loader == 0 && undecided == 0 {
            return Use::Undecided(format!(
                "every call of this class ({}) already failed with {} (the state that gives it, such as a pipe \
                 whose reader had gone): injecting it there would add nothing",
                if entry.shape.is_empty() {
                    entry.syscall.to_string()
                } else {
                    class_text(entry)
                },
                entry.action
            ));
        }
        if loader > 0 && undecided == 0 {
            return Use::Undecided(format!(
                "the only calls of this class ({}) were the dynamic loader's, on its own files (shared objects, \
                 ld.so.cache) or from its own code: a failure there ends the program before its code runs, which \
                 says nothing about it",
                if entry.shape.is_empty() {
                    entry.syscall.to_string()
                } else {
                    class_text(entry)
                }
            ));
        }
        if pseudo > 0 && undecided == 0 {
            return Use::Undecided(format!(
                "the only calls of this class ({}) were on files of /proc or /sys{}, which the kernel makes up as \
                 they are read: no disk is behind them to fail",
                class_text(entry),
                if loader > 0 {
                    " and the dynamic loader's own"
                } else {
                    ""
                }
            ));
        }
        if undecided > 0 {
            let names: Vec<&str> = unknown.into_iter().collect();
            let listed = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => names.join(""),
            };
            let why = match (names.is_empty(), pooled > 0) {
                (false, false) => format!("its {listed} unknown"),
                (false, true) => format!("its {listed} unknown, or pooled as '{OTHER_SHAPES}'"),
                _ => format!("pooled as '{OTHER_SHAPES}'"),
            };
            let them = if names.len() == 1 { "it" } else { "them" };
            let hint = if ebpf && !names.is_empty() {
                format!(
                    "; the eBPF observer cannot learn {them} there, ptrace reads {them} at each call (exec \
                     --observer ptrace, observe --backend ptrace)"
                )
            } else {
                String::new()
            };
            return Use::Undecided(format!(
                "{undecided} call{} of {} had a shape phoebe could not learn in full ({why}), so it cannot tell \
                 whether they were of this class ({}) and write a rule for exactly them{hint}",
                if undecided == 1 { "" } else { "s" },
                entry.syscall,
                class_text(entry)
            ));
        }
        return Use::Unused;
    }
    let mut shapes: Vec<(Shape, u64)> = shapes.into_iter().collect();
    shapes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Use::Used {
        calls: shapes.iter().map(|(_, n)| n).sum(),
        shapes,
    }
}

/// Does `shape` name a file the dynamic loader opens, reads and maps before the program's code runs (a shared
/// object, `/etc/ld.so.cache`, `/etc/ld.so.preload`)? A plausible error there kills every program alike (exit
/// 127) and blames it for its loader: such calls are never a plausible experiment's.
pub fn loader_file(shape: &Shape) -> bool {
    shape.get(Key::Path).is_some_and(|path| {
        let name = path.rsplit('/').next().unwrap_or(path);
        matches!(path, "/etc/ld.so.cache" | "/etc/ld.so.preload")
            || name.ends_with(".so")
            || name.contains(".so.")
    })
}

/// Does `shape` name a file of a file system the kernel makes up (`/proc`, `/sys`): no disk is behind it, so a
/// disk's error (EIO, ENOSPC, EDQUOT) never comes from it. Found on Node: a plausible `read:EIO` failed its reads
/// of `/proc/PID/maps`.
pub fn pseudo_file(shape: &Shape) -> bool {
    shape
        .get(Key::Path)
        .is_some_and(|path| path.starts_with("/proc/") || path.starts_with("/sys/"))
}

/// A shape of the class (empty for an entry without predicates) on which the program's calls already failed with
/// `errno`, if any.
fn failed_naturally(
    entry: &Entry,
    errno: Errno,
    stats: &SyscallStats,
    shapes: &[(Shape, u64)],
) -> Option<Shape> {
    if shapes.is_empty() {
        // Every call is in the class: any failure with the errno counts.
        return stats.errors.contains_key(&errno).then(Shape::default);
    }
    // Only a failure on a shape the experiment would inject into: a pipe whose reader had gone failed with EPIPE
    // (its state, `readers=no`), which says nothing of what a write to a pipe that is read meets when its reader
    // dies, which is this entry's.
    stats
        .shapes
        .iter()
        .filter(|(_, st)| st.errors.contains_key(&errno))
        .filter_map(|(text, _)| Shape::parse(text).ok())
        .map(|shape| for_errno(&shape, Some(errno)))
        .find(|shape| entry.matches(shape) && shapes.iter().any(|(used, _)| used == shape))
}

fn class_text(entry: &Entry) -> String {
    entry
        .shape
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Interval, Syscall, observation::ShapeStats};

    /// Calls of one syscall and shape (`""`: none recorded), and how many failed with an errno.
    type Calls<'a> = (&'a str, &'a str, u64, Option<(&'a str, u64)>);

    /// An observation of one interval.
    fn obs(calls: &[Calls<'_>]) -> Observation {
        let mut interval = Interval::default();
        for &(sc, shape, n, failures) in calls {
            let stats = interval.syscalls.entry(Syscall::parse(sc).unwrap()).or_default();
            stats.calls += n;
            let mut shape_stats = ShapeStats {
                calls: n,
                ..Default::default()
            };
            if let Some((errno, k)) = failures {
                let errno = Errno::parse(errno).unwrap();
                *stats.errors.entry(errno).or_default() += k;
                shape_stats.errors.insert(errno, k);
            }
            if !shape.is_empty() {
                stats.shapes.insert(shape.to_owned(), shape_stats);
            }
        }
        Observation {
            version: 2,
            command: vec!["app".into()],
            backend: "ptrace".into(),
            kernel: String::new(),
            started_at: String::new(),
            interval_ms: 1000,
            duration_ms: 1000,
            syscalls: None,
            intervals: vec![interval],
            exit: None,
            interrupted: false,
            usage: None,
            latency_measured: true,
            runs: 1,
            lost: 0,
        }
    }

    fn tier(o: &Observation) -> PlausibleTier {
        plausible(o, &SynthSettings::default()).unwrap()
    }

    fn ids(t: &PlausibleTier) -> Vec<&str> {
        t.experiments.iter().map(|p| p.entry.id.as_str()).collect()
    }

    #[test]
    fn only_the_shapes_the_program_used_most_called_first() {
        let t = tier(&obs(&[
            ("write", "fd=file:nonblock=no:path=/srv/log", 100, None),
            ("read", "fd=tcp:nonblock=yes", 50, Some(("EAGAIN", 20))),
            ("openat", "path=/srv/log", 20, None),
            ("fsync", "fd=file:nonblock=no:path=/srv/log", 10, None),
            ("fsync", "fd=dir:nonblock=no:path=/srv", 5, None),
            ("futex", "op=FUTEX_WAKE_PRIVATE", 1000, None),
            ("lseek", "fd=file:nonblock=no:path=/srv/log", 7, None),
        ]));
        assert_eq!(
            ids(&t),
            [
                "write-ENOSPC",
                "write-EDQUOT",
                "write-EIO",
                "read-ECONNRESET",
                // A partial transfer: no observation shows whether the program met one, so it is never left to
                // the realistic tier.
                "read-short-tcp",
                "openat-EMFILE",
                "openat-ENFILE",
                "fsync-EIO",
                "fsync-ENOSPC",
                "fsync-EDQUOT",
            ]
        );
        assert_eq!(
            t.experiments[4].fault.to_string(),
            "read:short=1:p=0.05:fd=tcp|tcp6|unix-stream:edge=no"
        );
        let fsync = &t.experiments[7];
        assert_eq!(fsync.calls, 10, "the directory's fsyncs are not in fd=file");
        assert_eq!(fsync.shapes.len(), 1);
        assert_eq!(fsync.shapes[0].0.to_string(), "fd=file:nonblock=no:path=/srv/log");
        // 10 calls, fewer than 1/0.05: one injection expected per run.
        assert_eq!(fsync.fault.to_string(), "fsync:EIO:p=0.1:fd=file:when=exit");
        assert_eq!(
            t.experiments[5]
                .shapes
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect::<Vec<_>>(),
            [("path=/srv/log".to_owned(), 20)],
            "openat-EMFILE takes every call, by the shapes the program used"
        );
        // The non-blocking socket's EAGAIN is its state (nothing to read), no plausible error: the catalogue has
        // no EAGAIN of a descriptor, so nothing is left out for it either.
        assert!(t.left_out.is_empty(), "{:?}", t.left_out);
        // Futex wakes are not waits: no EINTR; lseek is in no entry.
        assert!(
            !ids(&t)
                .iter()
                .any(|id| id.starts_with("futex") || id.starts_with("lseek"))
        );
    }

    #[test]
    fn without_shapes_only_the_entries_for_every_call_are_decided() {
        let t = tier(&obs(&[("fsync", "", 10, None), ("pipe2", "", 3, None)]));
        assert_eq!(ids(&t), ["pipe2-EMFILE", "pipe2-ENFILE"]);
        let fsync: Vec<_> = t
            .left_out
            .iter()
            .filter(|l| l.entry.syscall.name() == "fsync")
            .collect();
        assert_eq!(fsync.len(), 3);
        assert!(
            fsync[0].reason.contains("no call shapes for fsync"),
            "{}",
            fsync[0].reason
        );
        assert_eq!(fsync[0].calls, 10);
    }

    #[test]
    fn unknown_components_leave_an_entry_undecided_not_used() {
        let t = tier(&obs(&[
            ("fsync", "fd=unknown:nonblock=unknown", 4, None),
            ("fdatasync", "fd=pipe:nonblock=no", 2, None),
        ]));
        assert!(t.experiments.is_empty());
        // fsync's 4 calls might have been of files; fdatasync of a pipe never is.
        assert_eq!(t.left_out.len(), 3);
        assert!(t.left_out.iter().all(|l| l.entry.syscall.name() == "fsync"));
        assert!(
            t.left_out[0]
                .reason
                .starts_with("4 calls of fsync had a shape phoebe could not learn")
        );
    }

    /// epoll_ctl's ENOSPC (max_user_watches) is the ADD of a descriptor not yet registered alone: the entry takes
    /// those, never the DELs nor an ADD of a registered descriptor (which says EEXIST); where the registration is
    /// unknown (eBPF), the ADDs are undecided, not guessed.
    #[test]
    fn epoll_ctl_enospc_takes_only_the_adds() {
        let t = tier(&obs(&[
            ("epoll_ctl", "ctl=add:registered=no:fd=pipe:nonblock=no", 30, None),
            (
                "epoll_ctl",
                "ctl=add:registered=yes:fd=pipe:nonblock=no",
                7,
                Some(("EEXIST", 7)),
            ),
            (
                "epoll_ctl",
                "ctl=del:registered=no:fd=pipe:nonblock=no",
                60,
                Some(("ENOENT", 30)),
            ),
        ]));
        assert_eq!(ids(&t), ["epoll_ctl-ENOSPC"]);
        let enospc = &t.experiments[0];
        assert_eq!(enospc.calls, 30);
        assert_eq!(enospc.shapes.len(), 1);
        assert_eq!(
            enospc.shapes[0].0.to_string(),
            "ctl=add:registered=no:fd=pipe:nonblock=no"
        );
        assert_eq!(
            enospc.fault.to_string(),
            "epoll_ctl:ENOSPC:p=0.05:ctl=add:registered=no"
        );
        let ebpf = tier(&obs(&[(
            "epoll_ctl",
            "ctl=add:registered=unknown:fd=unknown:nonblock=unknown",
            5,
            None,
        )]));
        assert!(ebpf.experiments.is_empty(), "{ebpf:?}");
        assert!(
            ebpf.left_out
                .iter()
                .any(|l| l.reason.contains("could not learn in full")),
            "{ebpf:?}"
        );
        let dels = tier(&obs(&[(
            "epoll_ctl",
            "ctl=del:registered=no:fd=pipe:nonblock=no",
            5,
            None,
        )]));
        assert!(
            dels.experiments.is_empty() && dels.left_out.is_empty(),
            "{dels:?}"
        );
    }

    /// Prometheus's eBPF baseline: "72 calls of close had a shape phoebe could not learn in full (unknown, or
    /// pooled as 'other')" — neither which component nor what would learn it. The reason names the unknown
    /// components, and on an eBPF observation says that ptrace reads them.
    #[test]
    fn regression_an_undecided_class_did_not_say_what_was_unknown_nor_what_learns_it() {
        let calls = [("close", "fd=unknown:nonblock=unknown", 72, None)];
        let reason = |backend: &str| {
            let mut o = obs(&calls);
            o.backend = backend.into();
            let t = tier(&o);
            t.left_out
                .iter()
                .find(|l| l.entry.syscall.name() == "close")
                .map(|l| l.reason.clone())
                .unwrap_or_else(|| panic!("{t:?}"))
        };
        let ebpf = reason("ebpf");
        assert!(
            ebpf.starts_with(
                "72 calls of close had a shape phoebe could not learn in full (its fd and nonblock unknown), so"
            ),
            "{ebpf}"
        );
        assert!(
            ebpf.ends_with(
                "; the eBPF observer cannot learn them there, ptrace reads them at each call (exec --observer \
                 ptrace, observe --backend ptrace)"
            ),
            "{ebpf}"
        );
        let ptrace = reason("ptrace");
        assert!(ptrace.ends_with("and write a rule for exactly them"), "{ptrace}");
    }

    /// Observed with eBPF, a file behind a descriptor has `path=unknown`: the plausible tier wrote the rule
    /// `fsync:EIO:…:fd=file:nonblock=no:path=unknown`, whose glob matches no file, and the experiment was
    /// `not-exercised`. Such calls are undecided (an unknown path could also be the loader's file), never a rule.
    #[test]
    fn regression_a_shape_with_an_unknown_path_became_a_rule_that_matched_nothing() {
        let t = tier(&obs(&[("fsync", "fd=file:nonblock=no:path=unknown", 200, None)]));
        assert!(t.experiments.is_empty(), "{:?}", ids(&t));
        let left = t
            .left_out
            .iter()
            .find(|l| l.entry.syscall.name() == "fsync")
            .unwrap_or_else(|| panic!("{:?}", t.left_out));
        assert!(left.reason.contains("could not learn in full"), "{}", left.reason);
        let known = tier(&obs(&[(
            "fsync",
            "fd=file:nonblock=no:path=/var/log/app.log",
            200,
            None,
        )]));
        assert!(
            ids(&known).iter().any(|id| id.starts_with("fsync-")),
            "{:?}",
            ids(&known)
        );
    }

    #[test]
    fn the_rate_is_the_sporadic_fixed_rate() {
        let o = obs(&[("clone3", "clone=thread", 200, None)]);
        let settings = SynthSettings {
            fixed_rate: 0.1,
            ..Default::default()
        };
        let t = plausible(&o, &settings).unwrap();
        assert_eq!(ids(&t), ["clone3-EAGAIN"]);
        assert_eq!(t.experiments[0].fault.to_string(), "clone3:EAGAIN:p=0.1");
        let bad = SynthSettings {
            fixed_rate: 2.0,
            ..Default::default()
        };
        assert!(plausible(&o, &bad).is_err());
    }

    /// Found on Redis: `openat-ENFILE` at the fixed 5 % of the 7 opens a run made was `not-exercised` in 5 runs
    /// of 5, `openat-EMFILE` in 4 of 5. A class called fewer than 1/rate times per run is injected at one
    /// injection expected per run, pooled runs counted apart, at most 1/2.
    #[test]
    fn regression_a_rarely_made_call_was_not_exercised_at_the_fixed_rate() {
        assert_eq!(rate(0.05, 1000, 1), 0.05);
        assert_eq!(rate(0.05, 20, 1), 0.05);
        assert!((rate(0.05, 21, 3) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(rate(0.05, 2, 1), 0.5);
        assert_eq!(
            rate(0.05, 1, 1),
            MAX_RAISED_RATE,
            "once per run: half the runs, never all"
        );
        assert_eq!(rate(0.05, 0, 1), 0.05);
        assert_eq!(rate(0.0, 2, 1), 0.0, "--fixed-rate 0 injects nothing");
        let mut o = obs(&[("clone3", "clone=thread", 21, None)]);
        o.runs = 3;
        let t = plausible(&o, &SynthSettings::default()).unwrap();
        assert_eq!(
            t.experiments[0].fault.to_string(),
            "clone3:EAGAIN:p=0.14285714285714285"
        );
    }

    /// An artifact found on the plausible tier's first campaign: `read-EIO`, `openat-EMFILE` and `ENFILE` landed on
    /// the dynamic loader's reads and opens of libc, so the program died with exit 127 before its code ran and the
    /// report blamed it.
    #[test]
    fn plausible_errors_never_land_on_the_loaders_own_files() {
        let t = tier(&obs(&[
            ("openat", "path=/etc/ld.so.cache", 1, None),
            ("openat", "path=/lib/x86_64-linux-gnu/libc.so.6", 1, None),
            ("openat", "path=/srv/log", 4, None),
            (
                "read",
                "fd=file:nonblock=no:path=/lib/x86_64-linux-gnu/libc.so.6",
                1,
                None,
            ),
        ]));
        // A class the loader's calls are not in is simply unused, not left out for the loader.
        assert!(t.left_out.iter().all(|l| l.entry.id != "read-ECONNRESET"));
        let emfile = t
            .experiments
            .iter()
            .find(|p| p.entry.id == "openat-EMFILE")
            .unwrap();
        assert_eq!(emfile.calls, 4);
        assert_eq!(emfile.shapes.len(), 1);
        assert_eq!(emfile.shapes[0].0.to_string(), "path=/srv/log");
        assert!(t.experiments.iter().all(|p| p.entry.id != "read-EIO"));
        let left = t.left_out.iter().find(|l| l.entry.id == "read-EIO").unwrap();
        assert!(left.reason.contains("dynamic loader"), "{}", left.reason);
    }

    /// Regression, found on Node (prettier): the plausible `read-EIO` failed its reads of `/proc/PID/maps`, which
    /// the kernel makes up as they are read and never fails with a disk's error. Disk errors stay off `/proc` and
    /// `/sys`; the other classes (EMFILE on opening one) do not.
    #[test]
    fn regression_disk_errors_were_injected_into_proc_files() {
        let t = tier(&obs(&[
            ("read", "fd=file:nonblock=no:path=/proc/*/maps", 9, None),
            ("read", "fd=file:nonblock=no:path=/sys/fs/cgroup/cpu.max", 2, None),
            ("openat", "creates=no:exists=yes:path=/proc/*/maps", 3, None),
        ]));
        assert!(t.experiments.iter().all(|p| p.entry.id != "read-EIO"));
        let left = t.left_out.iter().find(|l| l.entry.id == "read-EIO").unwrap();
        assert!(left.reason.contains("/proc or /sys"), "{}", left.reason);
        assert!(t.experiments.iter().any(|p| p.entry.id == "openat-EMFILE"));
        let mixed = tier(&obs(&[
            ("read", "fd=file:nonblock=no:path=/proc/*/maps", 9, None),
            ("read", "fd=file:nonblock=no:path=/srv/data.db", 4, None),
        ]));
        let eio = mixed
            .experiments
            .iter()
            .find(|p| p.entry.id == "read-EIO")
            .unwrap();
        assert_eq!(eio.calls, 4);
        assert_eq!(eio.shapes[0].0.get(Key::Path), Some("/srv/data.db"));
    }

    /// Regression, found on Maven's launcher script: the plausible `write-EPIPE-pipe` simulated the death of a
    /// pipe's reader while the reader — the script's own `$(…)` — read on, took the end of its input for the end
    /// of the data and ran Java with an empty class path. No plausible EPIPE lands on a pipe any more; a pipe
    /// whose reader had gone failed naturally (its state) and still says nothing of the TCP entry.
    #[test]
    fn regression_plausible_pipe_epipe_simulated_a_death_while_the_reader_read_on() {
        let t = tier(&obs(&[
            ("write", "fd=pipe:nonblock=no:readers=no", 3, Some(("EPIPE", 3))),
            ("write", "fd=pipe:nonblock=no:readers=yes", 50, None),
        ]));
        let pipe_epipe = |entry: &Entry| {
            entry.action.errno().is_some_and(|e| e.code() == libc::EPIPE)
                && entry
                    .shape
                    .iter()
                    .any(|pred| pred.values.iter().any(|v| v == "pipe"))
        };
        assert!(catalogue::entries().iter().all(|e| !pipe_epipe(e)));
        assert!(t.experiments.iter().all(|p| !pipe_epipe(p.entry)));
        assert!(t.left_out.iter().all(|l| !pipe_epipe(l.entry)));
        assert!(
            t.left_out.iter().all(|l| l.entry.id != "write-EPIPE"),
            "{:?}",
            t.left_out
        );
    }

    /// A plausible `mmap-ENOMEM` failed the dynamic loader's own mmaps (`/bin/true` died with SIGSEGV before its
    /// code ran): the experiment is of the program's mmaps, `loader=no` (eBPF's `unknown` too, which its rule
    /// then leaves to the injector to tell), and the loader's calls are not counted as the class's.
    #[test]
    fn plausible_mmap_enomem_is_of_the_programs_own_mmaps() {
        let t = tier(&obs(&[
            ("mmap", "map=private-anon:loader=yes", 5, None),
            ("mmap", "map=private-file:loader=yes", 20, None),
            ("mmap", "map=private-anon:loader=no", 40, None),
            ("mmap", "map=private-anon:loader=unknown", 7, None),
        ]));
        let enomem = t
            .experiments
            .iter()
            .find(|p| p.entry.id == "mmap-ENOMEM")
            .unwrap();
        assert_eq!(enomem.calls, 47);
        let shapes: Vec<String> = enomem.shapes.iter().map(|(s, _)| s.as_rule()).collect();
        assert_eq!(shapes, ["map=private-anon:loader=no"]);
        // Only the loader mmapped: nothing of the program's to fail.
        let t = tier(&obs(&[("mmap", "map=private-file:loader=yes", 20, None)]));
        assert!(t.experiments.iter().all(|p| p.entry.id != "mmap-ENOMEM"));
        let left = t.left_out.iter().find(|l| l.entry.id == "mmap-ENOMEM").unwrap();
        assert!(left.reason.contains("from its own code"), "{}", left.reason);
    }
}
