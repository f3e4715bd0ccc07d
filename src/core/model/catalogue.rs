//! The catalogue of plausible errors (DESIGN §6, the "plausible" tier): errors production meets that a short
//! observation rarely shows — a disk that fills, an fsync that fails, a peer that resets, descriptors that run out,
//! a signal that interrupts a wait. Each entry is one errno on one class of call shapes of one syscall, with the
//! condition under which the kernel returns it, whether it comes before or after the call's effects, and its source.
//!
//! The data is `catalogue.toml` beside this file, embedded in the binary; its tests check every entry against the
//! realism table ([`super::realism`]) and the fault grammar. Owns: the entries and which observed shapes they
//! apply to. Does not own: choosing them for a program (`crate::synth::plausible`).

use std::{fmt, sync::OnceLock};

use serde::Deserialize;

use super::{
    fault::{Action, FaultSpec, Short, When},
    names::{Errno, Syscall},
    realism::{self, Realism},
    shape::{self, Key, Predicate, Shape},
};

/// The catalogue's text, as shipped.
pub const SOURCE: &str = include_str!("catalogue.toml");

/// What kind of trouble an entry stands for: the catalogue's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Disk,
    Network,
    Resources,
    Interrupted,
    /// Transfers that move fewer bytes than asked (`short=`): legal, and routine on pipes and stream sockets.
    Partial,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Disk => "disk",
            Class::Network => "network",
            Class::Resources => "resources",
            Class::Interrupted => "interrupted",
            Class::Partial => "partial",
        })
    }
}

/// One plausible error: `action` (an errno, or a partial transfer) on the calls of `syscall` whose shape satisfies
/// every predicate of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique in the catalogue: `fsync-EIO`, or with the first descriptor kind when the syscall and errno have
    /// several entries (`read-short-pipe`, `read-short-tcp`).
    pub id: String,
    pub class: Class,
    pub syscall: Syscall,
    /// Shape predicates, in key order; empty for every call of the syscall.
    pub shape: Vec<Predicate>,
    /// The errno, or for the `partial` class how short the transfer is (`short=1`).
    pub action: Action,
    /// `Entry`: the kernel returns it before the call has any effect; `Exit`: after (always, for a partial
    /// transfer).
    pub when: When,
    /// When the kernel returns it, in one sentence.
    pub condition: String,
    /// The man page section, or the kernel source where the man pages are silent.
    pub source: String,
}

impl Entry {
    /// Does a call of this observed shape belong to the entry's class? An entry without predicates takes every
    /// call of its syscall; a component phoebe could not learn (`unknown`) never matches a predicate.
    pub fn matches(&self, shape: &Shape) -> bool {
        self.shape.iter().all(|p| p.matches(shape))
    }

    /// The rule that injects this entry with probability `p` (in [0, 1]): `fsync:EIO:p=0.05:fd=file:when=exit`,
    /// `read:short=1:p=0.05:fd=pipe`.
    pub fn fault(&self, p: f64) -> FaultSpec {
        let mut text = format!("{}:{}:p={p}", self.syscall, self.action);
        for pred in &self.shape {
            text.push_str(&format!(":{pred}"));
        }
        text.push_str(shape::plausible_guards(self.syscall, self.action));
        if self.when == When::Exit && self.action.errno().is_some() {
            text.push_str(":when=exit");
        }
        FaultSpec::parse(&text).unwrap_or_else(|e| {
            panic!(
                "catalogue entry {} makes an invalid rule with p={p}: {e}",
                self.id
            )
        })
    }
}

/// What is wrong with the catalogue's text: the entry (table and position) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("catalogue: {at}: {problem}")]
pub struct CatalogueError {
    /// `[[disk]] #3`, or `catalogue.toml` for the file as a whole.
    pub at: String,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    disk: Vec<RawEntry>,
    #[serde(default)]
    network: Vec<RawEntry>,
    #[serde(default)]
    resources: Vec<RawEntry>,
    #[serde(default)]
    interrupted: Vec<RawEntry>,
    #[serde(default)]
    partial: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    syscalls: Vec<String>,
    shape: String,
    /// One of `errno` and `short` (the `partial` class).
    #[serde(default)]
    errno: Option<String>,
    #[serde(default)]
    short: Option<String>,
    when: When,
    condition: String,
    source: String,
}

/// Parses a catalogue text and checks each entry: names, predicates valid for the syscall, a condition and a
/// source, and no entry on a shape the realism table says can never return its errno.
pub fn parse(text: &str) -> Result<Vec<Entry>, CatalogueError> {
    let file: File = toml::from_str(text).map_err(|e| CatalogueError {
        at: "catalogue.toml".into(),
        problem: e.to_string().trim().to_owned(),
    })?;
    let mut entries = Vec::new();
    for (class, raws) in [
        (Class::Disk, file.disk),
        (Class::Network, file.network),
        (Class::Resources, file.resources),
        (Class::Interrupted, file.interrupted),
        (Class::Partial, file.partial),
    ] {
        for (i, raw) in raws.into_iter().enumerate() {
            let at = format!("[[{class}]] #{}", i + 1);
            entries.extend(entries_of(class, raw).map_err(|problem| CatalogueError {
                at: at.clone(),
                problem,
            })?);
        }
    }
    name_entries(&mut entries);
    Ok(entries)
}

fn entries_of(class: Class, raw: RawEntry) -> Result<Vec<Entry>, String> {
    if raw.syscalls.is_empty() {
        return Err("syscalls is empty; list at least one, e.g. syscalls = [\"write\"]".into());
    }
    let action = match (&raw.errno, &raw.short, class) {
        (Some(errno), None, Class::Partial) => {
            return Err(format!(
                "errno = \"{errno}\" in the partial class; a partial transfer says short = \"1\" (or \"50%\") instead"
            ));
        }
        (Some(text), None, _) => {
            let errno = Errno::parse(text).map_err(|e| e.to_string())?;
            if errno.symbol().is_none() || errno.is_kernel_internal() {
                return Err(format!(
                    "errno {text} is not one a program can see; use a name such as EIO"
                ));
            }
            Action::Errno(errno)
        }
        (None, Some(text), Class::Partial) => {
            if raw.when != When::Exit {
                return Err("a partial transfer runs the call, so its when is \"exit\"".into());
            }
            Action::Short(Short::parse(text)?)
        }
        (None, Some(_), _) => {
            return Err(format!(
                "short = in the {class} class; partial transfers belong in [[partial]]"
            ));
        }
        _ => {
            return Err(
                "give exactly one of errno = \"EIO\" (an error) and short = \"1\" (a partial transfer)"
                    .into(),
            );
        }
    };
    for (field, value) in [("condition", &raw.condition), ("source", &raw.source)] {
        if value.trim().is_empty() {
            return Err(format!(
                "{field} is empty: say when the kernel returns {action} and where that is written"
            ));
        }
    }
    let mut shape = Vec::new();
    if !raw.shape.is_empty() {
        for part in shape::split_components(&raw.shape) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("shape component '{part}' is not KEY=VALUE (e.g. fd=file)"))?;
            let key = Key::parse(k)
                .filter(|k| *k != Key::Path)
                .ok_or_else(|| format!("'{k}=' is not a shape predicate (e.g. fd=, nonblock=, op=)"))?;
            shape.push(Predicate::parse(key, v)?);
        }
        shape.sort_by_key(|p| p.key);
    }
    let mut out = Vec::new();
    for name in &raw.syscalls {
        let syscall = Syscall::parse(name).map_err(|e| e.to_string())?;
        if let Some(pred) = shape.iter().find(|p| !shape::keys_of(syscall).contains(&p.key)) {
            return Err(format!(
                "{}= is a shape of {}, not of '{syscall}'",
                pred.key.name(),
                pred.key.applies_to()
            ));
        }
        match realism::judge_action(syscall, &shape, action) {
            Realism::Possible => {}
            Realism::Impossible(reason) => return Err(reason),
            Realism::Unjudged => {
                return Err(format!(
                    "the realism table has no rule for {syscall} and {action}: add one to src/core/model/realism.rs \
                     that says which shapes can return it"
                ));
            }
        }
        out.push(Entry {
            id: String::new(),
            class,
            syscall,
            shape: shape.clone(),
            action,
            when: raw.when,
            condition: raw.condition.trim().to_owned(),
            source: raw.source.trim().to_owned(),
        });
    }
    Ok(out)
}

/// `syscall-ERRNO` (`syscall-short` for a partial transfer), with the entry's first descriptor kind (or first
/// predicate value) when the pair has several entries.
fn name_entries(entries: &mut [Entry]) {
    let pair = |e: &Entry| format!("{}-{}", e.syscall, e.action.id_part());
    let pairs: Vec<String> = entries.iter().map(pair).collect();
    for (i, entry) in entries.iter_mut().enumerate() {
        let shared = pairs.iter().filter(|p| **p == pairs[i]).count() > 1;
        entry.id = match entry.shape.first().and_then(|p| p.values.first()) {
            Some(value) if shared => format!("{}-{value}", pairs[i]),
            _ => pairs[i].clone(),
        };
    }
}

/// The shipped catalogue, parsed once. Its tests guarantee that it parses; a binary built from a broken file
/// would fail them before it could ship.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse(SOURCE).unwrap_or_else(|e| panic!("the embedded {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn get(id: &str) -> &'static Entry {
        entries()
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("no entry {id}"))
    }

    /// Every entry of the shipped file: the names exist, the predicates parse and belong to the syscall, the
    /// condition and source are there, the realism table allows it (all checked by `parse`), and the ids are
    /// unique file names.
    #[test]
    fn every_entry_is_checked_and_named() {
        let entries = parse(SOURCE).unwrap_or_else(|e| panic!("{e}"));
        // A file cut short would still parse: the catalogue has had 98 entries or more since issue 16.
        assert!(entries.len() >= 98, "{} entries", entries.len());
        let mut ids = BTreeSet::new();
        for e in &entries {
            assert!(ids.insert(e.id.as_str()), "duplicate id {}", e.id);
            assert!(
                e.id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{}",
                e.id
            );
            assert_eq!(
                realism::judge_action(e.syscall, &e.shape, e.action),
                Realism::Possible,
                "{}",
                e.id
            );
            assert!(
                e.condition.ends_with('.'),
                "{}: a condition is one sentence",
                e.id
            );
            assert!(
                e.source.contains("(2)") || e.source.contains("(7)") || e.source.contains(".c"),
                "{}: the source names a man page or a kernel file: {}",
                e.id,
                e.source
            );
            // The rule it makes parses back to itself.
            let fault = e.fault(0.05);
            assert_eq!(FaultSpec::parse(&fault.to_string()).unwrap(), fault);
            // Its class, and its guard: an EINTR's, only processes that catch a signal (and close's, only files
            // whose file system flushes at close); a peer's EPIPE or ECONNRESET, only pipes and sockets whose
            // other end the process does not hold itself; a short transfer, only descriptors no epoll instance
            // watches edge-triggered; a connect's unreachable network or host, only destinations off this host.
            let guarded: Vec<_> = fault
                .shape
                .iter()
                .filter(|p| !p.key.is_guard())
                .cloned()
                .collect();
            assert_eq!(guarded, e.shape);
            let code = e.action.errno().map(|errno| errno.code());
            let peered = [
                "read", "readv", "write", "writev", "recvfrom", "recvmsg", "sendto", "sendmsg",
            ];
            assert_eq!(
                fault.shape.len() > e.shape.len(),
                code == Some(libc::EINTR)
                    && e.syscall.name() != "epoll_wait"
                    && e.syscall.name() != "epoll_pwait"
                    || matches!(code, Some(libc::EPIPE | libc::ECONNRESET))
                        && peered.contains(&e.syscall.name())
                    || matches!(code, Some(libc::ENETUNREACH | libc::EHOSTUNREACH))
                        && e.syscall.name() == "connect"
                    || matches!(code, Some(libc::ENOSPC | libc::EDQUOT)) && e.syscall.name() == "ftruncate"
                    || code.is_none() && peered.contains(&e.syscall.name()),
                "{}: {fault}",
                e.id
            );
        }
    }

    /// Everything issue 16 lists is in the catalogue (the errnos it names on the syscalls it names, in the shape
    /// class that can return them).
    #[test]
    fn the_catalogue_covers_the_issue() {
        let has = |syscalls: &[&str], errno: &str, shape: &str| {
            for sc in syscalls {
                let found = entries().iter().any(|e| {
                    e.syscall.name() == *sc
                        && e.action.to_string() == errno
                        && e.shape
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(":")
                            == shape
                });
                assert!(found, "no entry {sc}:{errno}:{shape}");
            }
        };
        let disk = [
            "write",
            "pwrite64",
            "writev",
            "pwritev",
            "fsync",
            "fdatasync",
            "fallocate",
            "ftruncate",
        ];
        for errno in ["EIO", "ENOSPC", "EDQUOT"] {
            has(&disk, errno, "fd=file");
        }
        has(&["read", "pread64", "readv"], "EIO", "fd=file");
        has(
            &["write", "writev", "sendto", "sendmsg"],
            "ECONNRESET",
            "fd=tcp|tcp6",
        );
        has(
            &["write", "writev", "sendto", "sendmsg"],
            "EPIPE",
            "fd=tcp|tcp6|unix-stream",
        );
        has(&["read", "recvfrom", "recvmsg"], "ECONNRESET", "fd=tcp|tcp6");
        has(&["connect"], "ECONNREFUSED", "fd=tcp|tcp6");
        has(&["connect"], "ETIMEDOUT", "fd=tcp|tcp6:nonblock=no");
        has(&["connect"], "ENETUNREACH", "fd=inet");
        has(&["connect"], "EHOSTUNREACH", "fd=inet");
        let opens = ["open", "openat", "socket", "accept", "accept4", "pipe", "pipe2"];
        has(&opens, "EMFILE", "");
        has(&opens, "ENFILE", "");
        has(&["dup"], "EMFILE", "");
        has(&["mmap", "mremap"], "ENOMEM", "");
        has(&["clone", "clone3", "fork", "vfork"], "EAGAIN", "");
        has(&["read", "write"], "EINTR", "fd=pipe|socket:nonblock=no");
        has(&["wait4"], "EINTR", "nohang=no");
        has(&["nanosleep", "clock_nanosleep"], "EINTR", "");
        // Only a wait that may sleep: a timeout of 0 returns before any signal is looked at.
        has(&["epoll_wait", "poll"], "EINTR", "sleeps=yes");
        has(
            &["connect", "accept"],
            "EINTR",
            "fd=tcp|tcp6|unix-stream|unix-seqpacket:nonblock=no",
        );
        assert!(
            get("futex-EINTR").shape[0]
                .values
                .contains(&"FUTEX_WAIT_PRIVATE".to_owned())
        );
        // What the kernel never does is left out, even where the issue's list would suggest it.
        for (sc, errno) in [
            ("dup2", "EMFILE"),
            ("dup3", "EMFILE"),
            ("dup", "ENFILE"),
            ("brk", "ENOMEM"),
            // A descriptor's EAGAIN is its state (`ready=no`), which phoebe cannot bring about; failing a ready one
            // loses the wake-up an edge-triggered poller waits for (Prometheus, a Go server, hung).
            ("read", "EAGAIN"),
            ("write", "EAGAIN"),
            ("recvfrom", "EAGAIN"),
            ("sendto", "EAGAIN"),
            ("accept4", "EAGAIN"),
        ] {
            assert!(
                !entries()
                    .iter()
                    .any(|e| e.syscall.name() == sc && e.action.to_string() == errno),
                "{sc} {errno}"
            );
        }
    }

    #[test]
    fn entries_know_when_they_happen() {
        assert_eq!(get("fsync-EIO").when, When::Exit);
        assert_eq!(get("write-ENOSPC").when, When::Entry);
        assert_eq!(get("close-EINTR").when, When::Exit);
        assert_eq!(
            get("fsync-EIO").fault(0.05).to_string(),
            "fsync:EIO:p=0.05:fd=file:when=exit"
        );
        assert_eq!(get("write-EPIPE").class, Class::Network);
        assert_eq!(
            get("write-EPIPE").fault(1.0).to_string(),
            "write:EPIPE:fd=tcp|tcp6|unix-stream:peer=other"
        );
    }

    #[test]
    fn entries_match_the_shapes_of_their_class_only() {
        let fsync = get("fsync-EIO");
        assert!(fsync.matches(&Shape::parse("fd=file:nonblock=no:path=/srv/db/wal").unwrap()));
        assert!(!fsync.matches(&Shape::parse("fd=dir:nonblock=no:path=/srv/db").unwrap()));
        assert!(!fsync.matches(&Shape::parse("fd=unknown:nonblock=unknown").unwrap()));
        let reset = get("read-ECONNRESET");
        assert!(reset.matches(&Shape::parse("fd=tcp:nonblock=yes:ready=yes").unwrap()));
        assert!(!reset.matches(&Shape::parse("fd=unix-stream:nonblock=no").unwrap()));
        // No predicates: every call.
        assert!(get("openat-EMFILE").matches(&Shape::parse("path=/etc/hosts").unwrap()));
    }

    #[test]
    fn a_bad_catalogue_is_refused_naming_the_entry() {
        let entry = |body: &str| format!("[[disk]]\n{body}\n");
        let ok = "syscalls = [\"write\"]\nshape = \"fd=file\"\nerrno = \"ENOSPC\"\nwhen = \"entry\"\n\
                  condition = \"Full.\"\nsource = \"write(2) ERRORS\"";
        assert_eq!(parse(&entry(ok)).unwrap().len(), 1);
        let err = |text: String| parse(&text).unwrap_err().to_string();
        assert_eq!(
            err(entry(&ok.replace("fd=file", "fd=pipe"))),
            "catalogue: [[disk]] #1: write on fd=pipe never returns ENOSPC: only a file or a block device runs \
             out of room (write(2) ERRORS)"
        );
        assert!(err(entry(&ok.replace("write(2) ERRORS", " "))).contains("source is empty"));
        assert!(err(entry(&ok.replace("\"write\"", "\"wrte\""))).contains("did you mean 'write'"));
        assert!(err(entry(&ok.replace("fd=file", "op=FUTEX_WAIT"))).contains("op= is a shape of futex"));
        assert!(err(entry(&ok.replace("ENOSPC", "ENOENT"))).contains("no rule for write and ENOENT"));
        assert!(err(entry(&ok.replace("entry\"", "before\""))).contains("catalogue: catalogue.toml"));
        assert!(err(format!("[[disks]]\n{ok}")).contains("disks"));
    }

    /// Partial transfers (`short=`) are entries of their own class, on pipes and stream sockets only, citing the
    /// man pages that allow them; their rule is a `short=` rule.
    #[test]
    fn partial_transfers_are_entries_on_pipes_and_stream_sockets() {
        let read = get("read-short-tcp");
        assert_eq!(read.class, Class::Partial);
        assert_eq!(read.action, Action::Short(Short::Bytes(1)));
        assert_eq!(read.when, When::Exit);
        assert!(
            read.source
                .contains("It is not an error if this number is smaller")
        );
        assert_eq!(
            read.fault(0.05).to_string(),
            "read:short=1:p=0.05:fd=tcp|tcp6|unix-stream:edge=no"
        );
        assert!(get("recvfrom-short").matches(&Shape::parse("fd=unix-stream:nonblock=no").unwrap()));
        assert!(!get("recvfrom-short").matches(&Shape::parse("fd=udp:nonblock=no").unwrap()));
        assert_eq!(
            get("read-short-pipe").fault(1.0).to_string(),
            "read:short=1:fd=pipe:edge=no"
        );
        assert_eq!(
            get("write-short-tcp").fault(1.0).to_string(),
            "write:short=50%:fd=tcp|tcp6|unix-stream:edge=no"
        );
        assert!(get("write-short-pipe").source.contains("pipe(7)"));
        assert!(get("sendto-short").source.contains("socket(7)"));

        let entry = |body: &str| format!("[[partial]]\n{body}\n");
        let ok = "syscalls = [\"read\"]\nshape = \"fd=pipe\"\nshort = \"1\"\nwhen = \"exit\"\n\
                  condition = \"Less.\"\nsource = \"read(2) RETURN VALUE\"";
        assert_eq!(
            parse(&entry(ok)).unwrap()[0].action,
            Action::Short(Short::Bytes(1))
        );
        let err = |text: String| parse(&text).unwrap_err().to_string();
        assert!(
            err(entry(&ok.replace("fd=pipe", "fd=file")))
                .contains("read on file is not routinely short: only pipes and stream sockets"),
            "{}",
            err(entry(&ok.replace("fd=pipe", "fd=file")))
        );
        assert!(err(entry(&ok.replace("fd=pipe", "fd=udp"))).contains("read on udp is not routinely short"));
        assert!(err(entry(&ok.replace("\"read\"", "\"readv\""))).contains("readv is not a read or write"));
        assert!(err(entry(&ok.replace("\"exit\"", "\"entry\""))).contains("its when is \"exit\""));
        assert!(err(entry(&ok.replace("short = \"1\"", "short = \"0\""))).contains("0 would be end-of-file"));
        assert!(
            err(entry(&ok.replace("short = \"1\"", "errno = \"EIO\"")))
                .contains("a partial transfer says short = \"1\"")
        );
        assert!(
            err(entry(
                &ok.replace("short = \"1\"", "errno = \"EIO\"\nshort = \"1\"")
            ))
            .contains("give exactly one of errno")
        );
        assert!(
            err(format!("[[network]]\n{ok}").replace("fd=pipe", "fd=tcp"))
                .contains("partial transfers belong in [[partial]]")
        );
    }
}
