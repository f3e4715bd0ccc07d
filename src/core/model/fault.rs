//! The fault grammar (DESIGN §5): one parser for the CLI's `--fault` and the JSON model, with precise errors.
//!
//! `SYSCALL[,SYSCALL…]:ERRNO[=WEIGHT][,ERRNO=WEIGHT…][:p=PROB][:nth=N|:after=N][:every=N][:max=N][:path=GLOB]
//! [:when=entry|exit][:delay=DUR]`, `SYSCALL[,SYSCALL…]:short=N|P%[:OPTION=VALUE…]` for a partial transfer,
//! `SYSCALL[,SYSCALL…]:delay=DUR[:OPTION=VALUE…]` for a latency fault (the call is held, then runs for real), and
//! strace's `inject=SET:error=E[:when=FIRST[..LAST][+[STEP]]]` as an alias.
//! Owns: parsing, validation and the canonical text form. Does not own: deciding whether a call is injected
//! (`crate::decide`).

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    names::{Errno, NameError, Syscall, fd_arg, path_arg},
    shape::{self, Key, Predicate},
};

/// Whether the error replaces the call (`entry`: the call never runs) or its result (`exit`: it runs, then fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    #[default]
    Entry,
    Exit,
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            When::Entry => "entry",
            When::Exit => "exit",
        })
    }
}

/// Which of a rule's matching calls are eligible: the `first`-th (1-based) and every `every`-th after it, up to
/// `last`. `nth=N` is first = last = N; `after=N` is first = N + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWindow {
    pub first: u64,
    pub last: Option<u64>,
    pub every: u64,
}

impl Default for CallWindow {
    fn default() -> Self {
        CallWindow {
            first: 1,
            last: None,
            every: 1,
        }
    }
}

impl CallWindow {
    /// Is the `n`-th (1-based) matching call eligible?
    /// The semantics are phoebe-common's [`in_window`](phoebe_common::decide::in_window), which the eBPF
    /// injector runs too.
    pub fn contains(&self, n: u64) -> bool {
        phoebe_common::decide::in_window(
            self.first,
            self.last.unwrap_or(phoebe_common::inject::UNLIMITED),
            self.every,
            n,
        )
    }
}

/// How much of a read or write a partial-transfer rule (`short=`) lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Short {
    /// At most this many bytes (≥ 1).
    Bytes(u64),
    /// At most this percentage of the requested count (1..=99), and at least one byte.
    Percent(u8),
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Short::Bytes(n) => write!(f, "{n}"),
            Short::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Short {
    /// As in the grammar: `"1"`, `"50%"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Short {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Short::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a rule does to a call it injects: fail it with an errno, or let it transfer less (`short=`). A catalogue
/// entry and an error model have one; in JSON it is one field, `"errno": "EIO"` or `"short": "1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Errno(Errno),
    Short(Short),
}

impl Action {
    /// The errno, for an action that fails the call.
    pub fn errno(self) -> Option<Errno> {
        match self {
            Action::Errno(e) => Some(e),
            Action::Short(_) => None,
        }
    }

    /// The action in an id (a file name): `EIO`, `short`.
    pub fn id_part(self) -> String {
        match self {
            Action::Errno(e) => e.to_string(),
            Action::Short(_) => "short".into(),
        }
    }
}

impl fmt::Display for Action {
    /// As in a rule: `EIO`, `short=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Errno(e) => write!(f, "{e}"),
            Action::Short(s) => write!(f, "short={s}"),
        }
    }
}

impl Short {
    /// Parses the value of `short=`: `1`, `50%`.
    pub fn parse(value: &str) -> Result<Short, String> {
        let hint = "e.g. short=1 (at most one byte) or short=50% (at most half the requested count)";
        match value.strip_suffix('%') {
            Some(pct) => match pct.parse::<u8>() {
                Ok(p @ 1..=99) => Ok(Short::Percent(p)),
                _ => Err(format!(
                    "short={value}: expected a whole percentage from 1% to 99%, {hint}"
                )),
            },
            None => match value.parse::<u64>() {
                Ok(n @ 1..) => Ok(Short::Bytes(n)),
                _ => Err(format!(
                    "short={value}: expected a byte count ≥ 1 (0 would be end-of-file, not a short transfer), {hint}"
                )),
            },
        }
    }
}

impl Short {
    /// The amount as a part of a file name: `1`, `50pct`.
    pub fn id_part(self) -> String {
        match self {
            Short::Bytes(n) => n.to_string(),
            Short::Percent(p) => format!("{p}pct"),
        }
    }

    /// The count a call that asked for `count` bytes runs with instead, or `None` when it asked for no more than
    /// that already (then nothing is shortened): `short=N` is min(N, count), `short=P%` is count × P / 100
    /// rounded down, but at least one byte.
    pub fn shorten(self, count: u64) -> Option<u64> {
        let to = match self {
            Short::Bytes(n) => n,
            // u128: count × 99 cannot overflow.
            Short::Percent(p) => {
                u64::try_from(u128::from(count) * u128::from(p) / 100).map_or(u64::MAX, |n| n.max(1))
            }
        };
        (to < count).then_some(to)
    }
}

/// The calls a partial-transfer rule applies to: reads and writes whose byte count is a register argument (the
/// third), so that a tracer can lower it at the call's entry and restore it at its exit. The vectored calls
/// (`readv`, `recvmsg`, `writev`, `sendmsg`, …) keep their counts in the target's memory and are not among them.
pub const SHORT_SYSCALLS: &[&str] = &["read", "pread64", "recvfrom", "write", "pwrite64", "sendto"];

/// The register argument holding the byte count of a call [`SHORT_SYSCALLS`] lists: the third (index 2) for
/// every one of them.
pub const SHORT_COUNT_ARG: usize = 2;

/// One parsed fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub syscalls: Vec<Syscall>,
    /// Errnos with their relative weights (all > 0); empty for a partial-transfer rule (`short`) and for a latency
    /// fault (`delay=` alone, see [`FaultSpec::is_delay_only`]).
    pub errnos: Vec<(Errno, f64)>,
    /// Probability that an eligible call is injected, in [0, 1].
    pub probability: f64,
    pub window: CallWindow,
    /// At most this many injections by this rule.
    pub max: Option<u64>,
    /// Only calls whose (absolute, resolved) path argument matches this glob.
    pub path: Option<String>,
    pub when: When,
    /// Delay the call this long before failing it, or, in a latency fault (no errno, no `short`), before letting
    /// it run for real.
    pub delay: Option<Duration>,
    /// Shape predicates (DESIGN §6: `op=`, `timeout=`, `fd=`, `nonblock=`, …), in key order: only calls whose
    /// shape satisfies every one are matched.
    pub shape: Vec<Predicate>,
    /// A partial transfer instead of an error (`read:short=1`): the call runs with a smaller count and returns
    /// fewer bytes, so `when` is `Exit` and `errnos` is empty. Only the ptrace backend runs these.
    pub short: Option<Short>,
}

/// What is wrong with a `--fault` text. Each variant names the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("fault '{spec}': {source}")]
    Name {
        spec: String,
        #[source]
        source: NameError,
    },
    #[error("fault '{spec}': {problem}")]
    Invalid { spec: String, problem: String },
}

const KEYS: &str = "p, nth, after, every, max, path, when, delay, short or delay (in place of the errno), and the shape predicates op, timeout, \
                    sleeps, family, type, ctl, registered, fd, nonblock, ready, atomic, req, map, loader, prot, advice, clone, nohang, option, cwd, \
                    child, creates, exists, parent, dest_exists, empty, readers, caught, template";

/// The longest `delay=` (and strace's `delay_enter=`) a rule may ask for: a day is far beyond any call worth
/// slowing down, and every deadline computed from it stays representable.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

impl FaultSpec {
    /// Parses either grammar; the error names the rule and what would work.
    pub fn parse(text: &str) -> Result<Self, FaultError> {
        let spec = text.trim();
        let invalid = |problem: String| FaultError::Invalid {
            spec: spec.to_owned(),
            problem,
        };
        let name_err = |source| FaultError::Name {
            spec: spec.to_owned(),
            source,
        };
        if spec.is_empty() {
            return Err(invalid(
                "empty fault; expected SYSCALL:ERRNO[:p=PROB…], e.g. openat:ENOENT:p=0.1".into(),
            ));
        }
        if let Some(rest) = spec.strip_prefix("inject=") {
            return parse_strace(spec, rest);
        }
        let mut head = spec.splitn(3, ':');
        let syscalls = parse_syscalls(head.next().unwrap_or_default()).map_err(|e| match e {
            ListError::Name(n) => name_err(n),
            ListError::Empty => invalid("no syscall before the first ':'".into()),
        })?;
        let errno_part = head
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(
                "no errno; expected SYSCALL:ERRNO, e.g. openat:ENOENT, or SYSCALL:delay=DUR for a latency fault, \
                 e.g. read:delay=50ms"
                    .into(),
            ))?;
        if errno_part.starts_with("p=")
            || errno_part.contains('=') && errno_part.split('=').next() == Some("p")
        {
            return Err(invalid(
                "the errno comes before the options, e.g. openat:ENOENT:p=0.1".into(),
            ));
        }
        let short = match errno_part.strip_prefix("short=") {
            Some(value) => Some(Short::parse(value).map_err(invalid)?),
            None => None,
        };
        // A latency fault: `delay=DUR` in the errno's place, the call held and then run for real.
        let delay_only = match errno_part.strip_prefix("delay=") {
            Some(value) => match parse_delay(value).map_err(invalid)? {
                Duration::ZERO => {
                    return Err(invalid(format!(
                        "delay={value}: a latency fault without an errno needs a delay above zero, e.g. delay=50ms"
                    )));
                }
                delay => Some(delay),
            },
            None => None,
        };
        let mut errnos = Vec::new();
        for item in errno_part
            .split(',')
            .filter(|_| short.is_none() && delay_only.is_none())
        {
            let (name, weight) = match item.split_once('=') {
                Some((name, w)) => {
                    let weight: f64 = w
                        .parse()
                        .ok()
                        .filter(|w: &f64| w.is_finite() && *w > 0.0)
                        .ok_or_else(|| {
                            invalid(format!("weight '{w}' of {name} must be a positive number"))
                        })?;
                    (name, weight)
                }
                None => (item, 1.0),
            };
            errnos.push((Errno::parse(name).map_err(name_err)?, weight));
        }
        check_errnos(errnos.iter().map(|(e, _)| *e)).map_err(invalid)?;
        let mut fault = FaultSpec::new(syscalls, errnos);
        if short.is_some() {
            fault.short = short;
            fault.when = When::Exit;
        }
        let mut seen: Vec<&str> = Vec::new();
        if delay_only.is_some() {
            fault.delay = delay_only;
            seen.push("delay");
        }
        // Options are split where a `key=` starts, so that a path may hold colons.
        let options = head.next().map(shape::split_components).unwrap_or_default();
        for opt in options {
            let (key, value) = opt
                .split_once('=')
                .ok_or_else(|| invalid(format!("option '{opt}' is not KEY=VALUE (keys: {KEYS})")))?;
            if seen.contains(&key) {
                return Err(invalid(format!("'{key}=' is given twice")));
            }
            seen.push(key);
            let count = |min: u64| {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= min)
                    .ok_or_else(|| invalid(format!("{key}={value}: expected a whole number ≥ {min}")))
            };
            match key {
                "p" => {
                    fault.probability =
                        parse_probability(value).map_err(|p| invalid(format!("p={value}: {p}")))?
                }
                "nth" => {
                    let n = count(1)?;
                    fault.window.first = n;
                    fault.window.last = Some(n);
                }
                "after" => {
                    fault.window.first = count(0)?.checked_add(1).ok_or_else(|| {
                        invalid(format!("after={value}: the largest is after={}", u64::MAX - 1))
                    })?
                }
                "every" => fault.window.every = count(1)?,
                "max" => fault.max = Some(count(1)?),
                "path" if value.is_empty() => {
                    return Err(invalid("path= needs a glob, e.g. path=/etc/*".into()));
                }
                "path" => {
                    glob::Pattern::new(value).map_err(|e| invalid(format!("path={value}: {e}")))?;
                    fault.path = Some(value.to_owned());
                }
                "when" if fault.short.is_some() => {
                    if value != "exit" {
                        return Err(invalid(format!(
                            "when={value}: a short transfer lets the call run (with a lower count) and ends at its \
                             exit; leave when= out"
                        )));
                    }
                }
                "when" if delay_only.is_some() => {
                    return Err(invalid(format!(
                        "when={value}: a latency fault holds the call before it runs and then lets it run, so it has \
                         no side to choose; leave when= out (or add an errno, e.g. read:EIO:delay=10ms:when=exit)"
                    )));
                }
                "when" => {
                    fault.when = match value {
                        "entry" => When::Entry,
                        "exit" => When::Exit,
                        _ => return Err(invalid(format!("when={value}: expected entry or exit"))),
                    }
                }
                "delay" => fault.delay = Some(parse_delay(value).map_err(invalid)?),
                "template" if value.is_empty() => {
                    return Err(invalid(
                        "template= needs a path template, e.g. template=/proc/*/stat".into(),
                    ));
                }
                "template" => fault
                    .shape
                    .push(Predicate::parse(Key::Path, value).map_err(invalid)?),
                _ => match Key::parse(key) {
                    Some(k) if k != Key::Path => {
                        fault.shape.push(Predicate::parse(k, value).map_err(invalid)?);
                    }
                    _ => return Err(invalid(format!("unknown option '{key}=' (keys: {KEYS})"))),
                },
            }
        }
        fault.shape.sort_by_key(|p| p.key);
        if seen.contains(&"nth") && (seen.contains(&"after") || seen.contains(&"every")) {
            return Err(invalid(
                "nth= selects one call; it cannot be combined with after= or every=".into(),
            ));
        }
        fault.validate().map_err(invalid)?;
        Ok(fault)
    }

    fn new(syscalls: Vec<Syscall>, errnos: Vec<(Errno, f64)>) -> Self {
        FaultSpec {
            syscalls,
            errnos,
            probability: 1.0,
            window: CallWindow::default(),
            max: None,
            path: None,
            when: When::Entry,
            delay: None,
            shape: Vec::new(),
            short: None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.short.is_some()
            && let Some(sc) = self
                .syscalls
                .iter()
                .find(|sc| !SHORT_SYSCALLS.contains(&sc.name()))
        {
            return Err(format!(
                "short= makes a read or write transfer fewer bytes by lowering its count register, and '{sc}' has \
                 no such register (vectored calls keep their counts in memory); it applies to {}",
                SHORT_SYSCALLS.join(", ")
            ));
        }
        if self.path.is_some()
            && let Some(sc) = self
                .syscalls
                .iter()
                .find(|sc| path_arg(**sc).is_none() && fd_arg(**sc).is_none())
        {
            return Err(format!(
                "path= needs syscalls with a path or file-descriptor argument, and '{sc}' has neither \
                 (e.g. openat, statx, read, write)"
            ));
        }
        for pred in &self.shape {
            if let Some(sc) = self.syscalls.iter().find(|sc| {
                !shape::keys_of(**sc).contains(&pred.key) && !shape::guards_of(**sc).contains(&pred.key)
            }) {
                return Err(format!(
                    "{}= is a shape of {}, not of '{sc}'",
                    shape::grammar_name(pred.key),
                    pred.key.applies_to()
                ));
            }
        }
        Ok(())
    }

    /// Is this a latency fault: `delay=` with no errno and no `short=`, so a chosen call is held for the delay and
    /// then runs for real?
    pub fn is_delay_only(&self) -> bool {
        self.errnos.is_empty() && self.short.is_none() && self.delay.is_some()
    }

    /// Does this rule inject on every matching call, with no state (so a filter can fail the call by itself)?
    pub fn is_unconditional(&self) -> bool {
        self.probability >= 1.0
            && self.window == CallWindow::default()
            && self.max.is_none()
            && self.path.is_none()
            && self.shape.is_empty()
            && self.delay.is_none()
            && self.when == When::Entry
            && self.errnos.len() == 1
    }
}

fn parse_probability(value: &str) -> Result<f64, &'static str> {
    let p = match value.strip_suffix('%') {
        Some(pct) => pct.parse::<f64>().map(|v| v / 100.0),
        None => value.parse::<f64>(),
    }
    .map_err(|_| "expected a probability between 0 and 1, e.g. p=0.05 or p=5%")?;
    if !(0.0..=1.0).contains(&p) {
        return Err("a probability must be between 0 and 1 (e.g. p=0.05 or p=5%)");
    }
    Ok(p)
}

enum ListError {
    Name(NameError),
    Empty,
}

fn parse_syscalls(list: &str) -> Result<Vec<Syscall>, ListError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let sc = Syscall::parse(name).map_err(ListError::Name)?;
        if !out.contains(&sc) {
            out.push(sc);
        }
    }
    if out.is_empty() {
        Err(ListError::Empty)
    } else {
        Ok(out)
    }
}

/// Refuses the errnos from 512 up: kernel-internal restart codes a program never sees (it would get "Error 512").
fn check_errnos(errnos: impl IntoIterator<Item = Errno>) -> Result<(), String> {
    match errnos.into_iter().find(|e| e.is_kernel_internal()) {
        Some(e) => Err(format!(
            "errno {} is kernel-internal (from {} up, restart codes no program ever sees); inject one below it, \
             e.g. EINTR",
            e.code(),
            super::names::FIRST_INTERNAL_ERRNO
        )),
        None => Ok(()),
    }
}

/// The `DUR` of `delay=DUR`: a humantime duration of at most [`MAX_DELAY`].
fn parse_delay(value: &str) -> Result<Duration, String> {
    let delay =
        humantime::parse_duration(value).map_err(|e| format!("delay={value}: {e} (e.g. delay=10ms)"))?;
    check_delay(delay).map_err(|p| format!("delay={value}: {p}"))
}

/// `delay` if it is at most [`MAX_DELAY`].
fn check_delay(delay: Duration) -> Result<Duration, String> {
    if delay > MAX_DELAY {
        return Err("the longest delay is 24h (e.g. delay=10ms)".into());
    }
    Ok(delay)
}

/// strace's `inject=SET:error=E[:when=EXPR]`, mapped onto our rule (strace injects every eligible call: p = 1).
fn parse_strace(spec: &str, rest: &str) -> Result<FaultSpec, FaultError> {
    let invalid = |problem: String| FaultError::Invalid {
        spec: spec.to_owned(),
        problem,
    };
    let mut parts = rest.split(':');
    let set = parts.next().unwrap_or_default();
    if set.starts_with('!') || set.starts_with('%') || set.starts_with('/') || set.contains('?') {
        return Err(invalid(format!(
            "strace set '{set}' is not supported here: list syscalls by name, e.g. inject=openat,read:error=EIO"
        )));
    }
    let syscalls = parse_syscalls(set).map_err(|e| match e {
        ListError::Name(source) => FaultError::Name {
            spec: spec.to_owned(),
            source,
        },
        ListError::Empty => invalid("no syscall after 'inject='".into()),
    })?;
    let mut errno = None;
    let mut window = CallWindow::default();
    let mut max = None;
    let mut delay = None;
    for opt in parts {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| invalid(format!("strace option '{opt}' is not KEY=VALUE")))?;
        match key {
            "error" => {
                errno = Some(Errno::parse(value).map_err(|source| FaultError::Name {
                    spec: spec.to_owned(),
                    source,
                })?)
            }
            "when" => {
                (window, max) = parse_strace_when(value).map_err(|p| invalid(format!("when={value}: {p}")))?
            }
            "delay_enter" => {
                let us: u64 = value
                    .parse()
                    .map_err(|_| invalid(format!("delay_enter={value}: expected microseconds")))?;
                delay = Some(
                    check_delay(Duration::from_micros(us))
                        .map_err(|p| invalid(format!("delay_enter={value}: {p}")))?,
                );
            }
            "retval" | "signal" | "syscall" | "delay_exit" | "poke_enter" | "poke_exit" => {
                return Err(invalid(format!(
                    "strace's '{key}=' is not supported; phoebe injects errors (error=ERRNO)"
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "unknown strace option '{key}=' (expected error= and when=)"
                )));
            }
        }
    }
    let errno = errno.ok_or_else(|| {
        invalid("the strace form needs error=ERRNO, e.g. inject=openat:error=ENOENT".into())
    })?;
    check_errnos([errno]).map_err(invalid)?;
    let mut fault = FaultSpec::new(syscalls, vec![(errno, 1.0)]);
    fault.window = window;
    fault.max = max;
    fault.delay = delay;
    Ok(fault)
}

/// strace's `FIRST`, `FIRST+`, `FIRST+STEP`, `FIRST..LAST`, `FIRST..LAST+STEP`. A range becomes a window plus a
/// `max` equal to the number of calls it selects, which is exact because strace's injection has p = 1.
fn parse_strace_when(value: &str) -> Result<(CallWindow, Option<u64>), String> {
    let num = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("'{s}' is not a call number ≥ 1 (forms: 3, 3+, 3+2, 2..5, 2..10+2)"))
    };
    let (range, step) = match value.split_once('+') {
        Some((r, "")) => (r, Some(1)),
        Some((r, s)) => (r, Some(num(s)?)),
        None => (value, None),
    };
    let (first, last) = match range.split_once("..") {
        Some((f, l)) => (num(f)?, Some(num(l)?)),
        None => (num(range)?, None),
    };
    let every = step.unwrap_or(1);
    match (last, step) {
        (None, None) => Ok((
            CallWindow {
                first,
                last: Some(first),
                every: 1,
            },
            None,
        )),
        (None, Some(_)) => Ok((
            CallWindow {
                first,
                last: None,
                every,
            },
            None,
        )),
        (Some(last), _) if last < first => Err(format!("the range {first}..{last} is empty")),
        // The range's end becomes a count, so the rule prints as after=/every=/max= and parses back equal.
        (Some(last), _) => Ok((
            CallWindow {
                first,
                last: None,
                every,
            },
            Some((last - first) / every + 1),
        )),
    }
}

impl fmt::Display for FaultSpec {
    /// The canonical text form; parsing it gives the same rule back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.syscalls.iter().map(|s| s.name()).collect();
        write!(f, "{}:", names.join(","))?;
        if let Some(short) = self.short {
            write!(f, "short={short}")?;
        }
        let delay_only = self.is_delay_only();
        if let Some(delay) = self.delay.filter(|_| delay_only) {
            write!(f, "delay={}", humantime::format_duration(delay))?;
        }
        let weighted = self.errnos.iter().any(|(_, w)| *w != 1.0);
        for (i, (errno, weight)) in self.errnos.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{errno}")?;
            if weighted {
                write!(f, "={weight}")?;
            }
        }
        if self.probability < 1.0 {
            write!(f, ":p={}", self.probability)?;
        }
        let w = self.window;
        if w.last == Some(w.first) {
            write!(f, ":nth={}", w.first)?;
        } else {
            if w.first > 1 {
                write!(f, ":after={}", w.first - 1)?;
            }
            if w.every > 1 {
                write!(f, ":every={}", w.every)?;
            }
        }
        if let Some(max) = self.max {
            write!(f, ":max={max}")?;
        }
        for pred in &self.shape {
            write!(f, ":{pred}")?;
        }
        if let Some(path) = &self.path {
            write!(f, ":path={path}")?;
        }
        if self.when == When::Exit && self.short.is_none() {
            f.write_str(":when=exit")?;
        }
        if let Some(delay) = self.delay.filter(|_| !delay_only) {
            write!(f, ":delay={}", humantime::format_duration(delay))?;
        }
        Ok(())
    }
}

impl FromStr for FaultSpec {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultSpec::parse(s)
    }
}

impl Serialize for FaultSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FaultSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FaultSpec::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> FaultSpec {
        FaultSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        FaultSpec::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn minimal_rule() {
        let f = parse("openat:ENOENT");
        assert_eq!(f.syscalls, vec![Syscall::parse("openat").unwrap()]);
        assert_eq!(f.errnos, vec![(Errno::parse("ENOENT").unwrap(), 1.0)]);
        assert_eq!(f.probability, 1.0);
        assert!(f.is_unconditional());
        assert_eq!(f.to_string(), "openat:ENOENT");
    }

    #[test]
    fn every_option() {
        let f = parse(
            "openat,statx:ENOENT=3,EIO=1:p=0.25:after=10:every=2:max=5:path=/etc/*:when=exit:delay=10ms",
        );
        assert_eq!(f.syscalls.len(), 2);
        assert_eq!(f.errnos[0].1, 3.0);
        assert_eq!(f.probability, 0.25);
        assert_eq!(
            f.window,
            CallWindow {
                first: 11,
                last: None,
                every: 2
            }
        );
        assert_eq!(f.max, Some(5));
        assert_eq!(f.path.as_deref(), Some("/etc/*"));
        assert_eq!(f.when, When::Exit);
        assert_eq!(f.delay, Some(Duration::from_millis(10)));
        assert!(!f.is_unconditional());
        // read works on a descriptor, whose file path= matches; getpid has neither
        assert!(FaultSpec::parse("read:EIO:path=/x").is_ok());
        assert!(err("getpid:EIO:path=/x").contains("'getpid' has neither"));
    }

    #[test]
    fn canonical_text_round_trips() {
        for s in [
            "openat:ENOENT:p=0.2",
            "openat,statx:ENOENT=3,EACCES=1:nth=4",
            "write:EIO:after=2:every=3:max=1:when=exit",
            "openat:EACCES:path=/tmp/**:delay=5ms",
            "execve:E2BIG",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
    }

    #[test]
    fn epoll_ctl_rules_take_ctl_and_the_target_descriptor() {
        let f = parse("epoll_ctl:ENOENT:p=1:ctl=EPOLL_CTL_DEL|mod:fd=pipe");
        assert_eq!(f.to_string(), "epoll_ctl:ENOENT:ctl=del|mod:fd=pipe");
        assert_eq!(parse(&f.to_string()), f);
        assert_eq!(
            err("read:EIO:ctl=del"),
            "fault 'read:EIO:ctl=del': ctl= is a shape of epoll_ctl, not of 'read'"
        );
        assert!(err("epoll_ctl:ENOENT:ctl=remove").contains("expected add, mod or del"));
        assert!(FaultSpec::parse("epoll_ctl:EPERM:path=/tmp/**").is_ok());
    }

    #[test]
    fn numbers_and_percentages() {
        let f = parse("257:2:p=5%");
        assert_eq!(f.syscalls[0].name(), "openat");
        assert_eq!(f.errnos[0].0.code(), 2);
        assert!((f.probability - 0.05).abs() < 1e-12);
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert_eq!(
            err("opnat:ENOENT"),
            "fault 'opnat:ENOENT': unknown syscall 'opnat' (did you mean 'openat'?)"
        );
        assert_eq!(
            err("openat:ENOENTT"),
            "fault 'openat:ENOENTT': unknown errno 'ENOENTT' (did you mean 'ENOENT'?)"
        );
        assert!(err("openat:ENOENT:p=1.5").contains("between 0 and 1"));
        assert!(err("openat:ENOENT:p=x").contains("expected a probability"));
        assert!(err("openat").contains("no errno"));
        assert!(err("openat:ENOENT:bogus=1").contains("unknown option 'bogus='"));
        assert!(err("openat:ENOENT:nth=0").contains("≥ 1"));
        assert!(err("openat:ENOENT:nth=2:after=1").contains("cannot be combined"));
        assert!(err("openat:ENOENT:p=0.1:p=0.2").contains("twice"));
        assert!(err("openat:ENOENT:when=later").contains("entry or exit"));
        assert!(err("openat:ENOENT:delay=soon").contains("delay=soon"));
        assert!(err("openat:p=0.1").contains("errno comes before"));
        assert!(err("").contains("empty fault"));
        assert!(err("openat:ENOENT=0").contains("positive"));
    }

    /// Regression (issue 13, fuzzing): `after=18446744073709551615` overflowed adding 1 (a panic in a debug build,
    /// a window starting at call 0 in a release build).
    #[test]
    fn after_u64_max_is_refused_not_an_overflow() {
        assert_eq!(
            err("openat:ENOENT:after=18446744073709551615"),
            "fault 'openat:ENOENT:after=18446744073709551615': after=18446744073709551615: the largest is \
             after=18446744073709551614"
        );
        let last = parse("openat:ENOENT:after=18446744073709551614");
        assert_eq!(last.window.first, u64::MAX);
        assert!(last.window.contains(u64::MAX) && !last.window.contains(u64::MAX - 1));
        assert_eq!(parse(&last.to_string()), last);
    }

    #[test]
    fn strace_alias() {
        let f = parse("inject=openat:error=ENOENT");
        assert_eq!(f, parse("openat:ENOENT"));
        assert_eq!(
            parse("inject=openat,read:error=EIO:when=3").to_string(),
            "openat,read:EIO:nth=3"
        );
        assert_eq!(
            parse("inject=openat:error=EIO:when=3+").to_string(),
            "openat:EIO:after=2"
        );
        assert_eq!(
            parse("inject=openat:error=EIO:when=3+2").to_string(),
            "openat:EIO:after=2:every=2"
        );
        let range = parse("inject=openat:error=EIO:when=2..6+2");
        assert_eq!(
            range.window,
            CallWindow {
                first: 2,
                last: None,
                every: 2
            }
        );
        assert_eq!(range.max, Some(3));
        assert_eq!(
            parse(&range.to_string()),
            range,
            "the canonical form parses back equal"
        );
        let eligible: Vec<u64> = (1..8).filter(|n| range.window.contains(*n)).collect();
        assert_eq!(eligible, vec![2, 4, 6]);
        assert_eq!(
            parse("inject=openat:error=EIO:delay_enter=1000").delay,
            Some(Duration::from_millis(1))
        );
    }

    #[test]
    fn malformed_strace_alias() {
        assert!(err("inject=openat").contains("needs error=ERRNO"));
        assert!(err("inject=openat:error=EIO:when=x").contains("when=x"));
        assert!(err("inject=openat:error=EIO:when=5..2").contains("empty"));
        assert!(err("inject=openat:retval=0").contains("not supported"));
        assert!(err("inject=%file:error=EIO").contains("not supported"));
        assert!(err("inject=:error=EIO").contains("no syscall"));
    }

    #[test]
    fn short_transfers() {
        let f = parse("read,recvfrom:short=1:p=0.2:fd=socket");
        assert_eq!(f.short, Some(Short::Bytes(1)));
        assert!(f.errnos.is_empty());
        assert_eq!(f.when, When::Exit, "the call runs, then returns fewer bytes");
        assert!(!f.is_unconditional());
        assert_eq!(f.to_string(), "read,recvfrom:short=1:p=0.2:fd=socket");
        assert_eq!(parse(&f.to_string()), f);
        let half = parse("write:short=50%:when=exit");
        assert_eq!(half.short, Some(Short::Percent(50)));
        assert_eq!(half.to_string(), "write:short=50%");
        assert_eq!(parse("write:short=50%"), half);
        assert!(err("read:short=0").contains("0 would be end-of-file"));
        assert!(err("read:short=100%").contains("from 1% to 99%"));
        assert!(err("read:short=x").contains("e.g. short=1"));
        assert!(err("read:short=1:when=entry").contains("leave when= out"));
        assert!(err("read,openat:short=1").contains(
            "'openat' has no such register (vectored calls keep their counts in memory); it applies to read, \
             pread64, recvfrom, write, pwrite64, sendto"
        ));
        assert!(err("readv:short=1").contains("'readv' has no such register"));
    }

    /// In a plan or a report an action is one field, as errnos always were: `"errno": "EIO"`, `"short": "1"`.
    #[test]
    fn an_action_is_one_json_field() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Model {
            id: String,
            #[serde(flatten)]
            action: Action,
        }
        for (action, json) in [
            (
                Action::Errno(Errno::parse("EIO").unwrap()),
                r#"{"id":"m","errno":"EIO"}"#,
            ),
            (Action::Short(Short::Bytes(1)), r#"{"id":"m","short":"1"}"#),
            (Action::Short(Short::Percent(50)), r#"{"id":"m","short":"50%"}"#),
        ] {
            let m = Model {
                id: "m".into(),
                action,
            };
            assert_eq!(serde_json::to_string(&m).unwrap(), json);
            assert_eq!(serde_json::from_str::<Model>(json).unwrap(), m);
        }
        assert!(serde_json::from_str::<Model>(r#"{"id":"m","short":"0"}"#).is_err());
        assert_eq!(Action::Short(Short::Percent(50)).to_string(), "short=50%");
        assert_eq!(Action::Short(Short::Percent(50)).id_part(), "short");
    }

    #[test]
    fn short_counts() {
        // short=N: min(N, count); a count no larger is left alone (nothing to shorten, nothing injected).
        assert_eq!(Short::Bytes(1).shorten(4096), Some(1));
        assert_eq!(Short::Bytes(16).shorten(17), Some(16));
        assert_eq!(Short::Bytes(16).shorten(16), None);
        assert_eq!(Short::Bytes(16).shorten(3), None);
        assert_eq!(Short::Bytes(1).shorten(0), None);
        // short=P%: count × P / 100 rounded down, at least one byte.
        assert_eq!(Short::Percent(50).shorten(4096), Some(2048));
        assert_eq!(Short::Percent(50).shorten(3), Some(1));
        assert_eq!(Short::Percent(10).shorten(5), Some(1), "at least one byte");
        assert_eq!(
            Short::Percent(99).shorten(1),
            None,
            "one byte cannot be shortened"
        );
        assert_eq!(Short::Percent(99).shorten(2), Some(1));
        assert_eq!(
            Short::Percent(99).shorten(u64::MAX),
            Some(18_262_276_632_972_456_098)
        );
    }

    #[test]
    fn delay_alone_is_a_latency_fault() {
        let f = parse("read,recvfrom:delay=50ms:p=0.5:fd=socket");
        assert!(f.is_delay_only());
        assert!(f.errnos.is_empty() && f.short.is_none());
        assert_eq!(f.delay, Some(Duration::from_millis(50)));
        assert_eq!(f.when, When::Entry);
        assert!(!f.is_unconditional(), "a filter cannot hold a call");
        assert_eq!(f.to_string(), "read,recvfrom:delay=50ms:p=0.5:fd=socket");
        assert_eq!(parse(&f.to_string()), f);
        let with_path = parse("openat:delay=1s:path=/etc/**");
        assert_eq!(with_path.to_string(), "openat:delay=1s:path=/etc/**");
        assert_eq!(parse(&with_path.to_string()), with_path);
        // With an errno, delay= stays an option that delays the error.
        let error = parse("read:EIO:delay=10ms");
        assert!(!error.is_delay_only());
        assert_eq!(error.to_string(), "read:EIO:delay=10ms");
        assert_eq!(
            err("read:delay=0ms"),
            "fault 'read:delay=0ms': delay=0ms: a latency fault without an errno needs a delay above zero, e.g. \
             delay=50ms"
        );
        assert!(err("read:delay=soon").contains("delay=soon"));
        assert!(err("read:delay=2days").contains("longest delay is 24h"));
        assert!(err("read:delay=1ms:delay=2ms").contains("'delay=' is given twice"));
        assert!(err("read:delay=1ms:when=exit").contains("leave when= out"));
        assert!(err("read").contains("SYSCALL:delay=DUR"));
    }

    #[test]
    fn window_membership() {
        let w = CallWindow {
            first: 3,
            last: None,
            every: 1,
        };
        assert!(!w.contains(2) && w.contains(3) && w.contains(100));
        let nth = CallWindow {
            first: 2,
            last: Some(2),
            every: 1,
        };
        assert!(nth.contains(2) && !nth.contains(3));
    }

    #[test]
    fn serde_uses_the_grammar() {
        let f = parse("openat:ENOENT:p=0.5");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, "\"openat:ENOENT:p=0.5\"");
        let back: FaultSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
