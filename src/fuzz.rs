//! Property tests: no input makes phoebe panic (issue 13). One target per parser, each feeding what the parser
//! accepts on through the code the commands run on it:
//!
//! - the fault grammar (`--fault`, and every rule inside a JSON file): canonical text, the decider, register
//!   guards, the compiled filter (evaluated), the eBPF coverage check, decisions on calls of every shape;
//! - an observation (`synthesize`, exec's baseline): its summary, totals, shapes, and synthesis with three settings;
//! - a plan (`exec --plan`, `plan.json`): id checks, its summary, the experiments and their rules;
//! - an injection log (`inject --replay`, exec's run logs): the replay check, a replay, the summary;
//! - a report (`report DIR`, `report merge`): every format, the verdict counts, a merge;
//! - a campaign (`exec --resume DIR`): what the campaign crate's `experiment::fuzzing::use_campaign` does with one,
//!   which sees the orchestrator's private parts.
//!
//! Inputs are structure-aware: valid documents made by phoebe itself, then mutated (values swapped for edge
//! cases, keys renamed, nodes deleted, copied or duplicated, strings replaced by mutated fault rules and shapes),
//! sometimes cut or spliced as text; fault rules are assembled from the grammar's own pieces, then mutated as text.
//! Every mutation is a pure function of a vector of numbers that proptest generates and shrinks.
//!
//! The CI run is `cargo test` (a few hundred cases per target, about 3 s); a longer run sets the number of
//! cases per target: `PROPTEST_CASES=50000 cargo test --lib -- fuzz::` (debug: overflow checks on; docs/fuzzing.md).

use std::{path::Path, sync::OnceLock, time::Duration};

use proptest::{prelude::*, test_runner::Config};
use serde_json::Value;

use crate::{
    backend::filter,
    decide::{Call, Decider},
    experiment::Campaign,
    files,
    model::{
        Draws, FaultSpec, InjectionLog, Observation, ObservationBuilder, ObservationMeta, Plan, Report,
        SynthSettings, Syscall,
        shape::{FdFacts, Probe, RegistersOnly, Shape},
    },
};

/// The proptest configuration of a target: `ci_cases` cases unless `PROPTEST_CASES` says otherwise, and no
/// regression files written into the source tree (a failure found becomes a named regression test instead).
pub(crate) fn config(ci_cases: u32) -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = ci_cases;
    }
    config
}

// ---------------------------------------------------------------------------------------------------------------
// The mutation engine: a vector of numbers, consumed in order, picks every choice.

/// Reads the choices one at a time; when they run out, every further choice is 0.
pub(crate) struct Choices<'a> {
    rest: &'a [u64],
}

impl<'a> Choices<'a> {
    pub(crate) fn new(choices: &'a [u64]) -> Self {
        Choices { rest: choices }
    }

    fn next(&mut self) -> u64 {
        match self.rest.split_first() {
            Some((first, rest)) => {
                self.rest = rest;
                *first
            }
            None => 0,
        }
    }

    /// A number below `n` (which must be positive).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Numbers at the edges of every field phoebe reads: counts, indices, errnos, shard numbers, milliseconds.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "255",
    "256",
    "511",
    "512",
    "4095",
    "4096",
    "65535",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "0.5",
    "-0.5",
    "1.0000001",
    "1e-300",
    "1e300",
    "-1e300",
    "1.7976931348623157e308",
    "5e-324",
];

/// Strings that mean something somewhere in phoebe's files.
const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "-",
    "x",
    "other",
    "unknown",
    "../../../../tmp/x",
    ".hidden",
    "a/b",
    "\u{0}",
    "é",
    "😀",
    "openat",
    "getpid",
    "futex",
    "ENOENT",
    "E2BIG",
    "EAGAIN",
    "999",
    "4096",
    "openat:ENOENT",
    "futex:EAGAIN:op=FUTEX_WAIT_PRIVATE:timeout=no",
    "op=FUTEX_WAIT_PRIVATE:timeout=no",
    "path=/proc/*/stat",
    "fd=tcp:nonblock=yes",
    "req=TCGETS",
    "1/0",
    "0/0",
    "2/1",
    "1/1",
    "entry",
    "exit",
    "resilient",
    "not-exercised",
    "hung",
    "ptrace",
    "seccomp",
    "ebpf",
    "auto",
    "2026-01-01T00:00:00Z",
    "NaN",
    "<script>&amp;\"'</script>",
];

fn edge_value(c: &mut Choices<'_>) -> Value {
    match c.below(8) {
        0..=2 => serde_json::from_str(c.word(EDGE_NUMBERS)).unwrap_or(Value::Null),
        3..=4 => Value::String((c.word(EDGE_STRINGS)).to_owned()),
        5 => Value::String(mutate_text(&fault_text(c), c)),
        6 => Value::String("A".repeat(1 + c.below(400))),
        _ => match c.below(5) {
            0 => Value::Null,
            1 => Value::Bool(true),
            2 => Value::Bool(false),
            3 => Value::Array(Vec::new()),
            _ => Value::Object(serde_json::Map::new()),
        },
    }
}

/// One step of the path to a node: a key of an object or an index of an array.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// At most this many elements in an array a mutation grows, so that a case stays fast.
const MAX_GROWN: usize = 64;

/// Applies mutations to a JSON document until the choices run out (at most 32).
pub(crate) fn mutate_json(doc: &mut Value, c: &mut Choices<'_>) {
    for _ in 0..32 {
        if c.is_empty() {
            return;
        }
        let mut all = Vec::new();
        paths(doc, &mut Vec::new(), &mut all);
        let path = c.pick(&all).clone();
        // Mostly a change of the value's kind: an edge number for a number, a mutated text for a string.
        let op = match (node(doc, &path), c.below(3)) {
            (Value::Number(_), 0 | 1) => {
                let edge = serde_json::from_str(c.word(EDGE_NUMBERS)).unwrap_or(Value::Null);
                *node(doc, &path) = edge;
                continue;
            }
            (Value::String(_), 0) => 7,
            _ => c.below(9),
        };
        match op {
            // Replace the node with an edge value.
            0..=2 => *node(doc, &path) = edge_value(c),
            // Replace the node with a copy of another node (a valid value in the wrong place).
            3 => {
                let other = c.pick(&all).clone();
                let copy = node(doc, &other).clone();
                *node(doc, &path) = copy;
            }
            // Delete a key or an element.
            4 => match node(doc, &path) {
                Value::Object(map) if !map.is_empty() => {
                    let key = map.keys().nth(c.below(map.len())).cloned();
                    if let Some(key) = key {
                        map.remove(&key);
                    }
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = c.below(items.len());
                    items.remove(i);
                }
                _ => {}
            },
            // Duplicate elements of an array.
            5 => {
                if let Value::Array(items) = node(doc, &path)
                    && !items.is_empty()
                {
                    let item = items[c.below(items.len())].clone();
                    let n = 1 + c.below(MAX_GROWN.saturating_sub(items.len()).max(1));
                    items.extend(std::iter::repeat_n(item, n));
                }
            }
            // Rename a key (map keys are syscall, errno, shape and experiment names).
            6 => {
                if let Value::Object(map) = node(doc, &path)
                    && !map.is_empty()
                {
                    let key = map.keys().nth(c.below(map.len())).cloned();
                    let new = match c.below(3) {
                        0 => (c.word(EDGE_STRINGS)).to_owned(),
                        1 => (c.word(EDGE_NUMBERS)).to_owned(),
                        _ => mutate_text(&fault_text(c), c),
                    };
                    if let Some(value) = key.and_then(|k| map.remove(&k)) {
                        map.insert(new, value);
                    }
                }
            }
            // Mutate a string as text (rules, shapes, ids, paths).
            7 => {
                if let Value::String(s) = node(doc, &path) {
                    *s = mutate_text(s, c);
                }
            }
            // Add an unknown key.
            _ => {
                if let Value::Object(map) = node(doc, &path) {
                    map.insert((c.word(EDGE_STRINGS)).to_owned(), edge_value(c));
                }
            }
        }
    }
}

/// Tokens that make a rule, a shape or a JSON text mean something else when spliced in.
const TOKENS: &[&str] = &[
    ":",
    ",",
    "=",
    "|",
    "%",
    "..",
    "+",
    "-",
    "*",
    "**",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\",
    "/",
    " ",
    "\n",
    "0",
    "1",
    "inject=",
    "error=",
    "when=",
    "p=",
    "nth=",
    "after=",
    "every=",
    "max=",
    "path=",
    "delay=",
    "op=",
    "fd=",
    "req=",
    "family=",
    "type=",
    "map=",
    "prot=",
    "advice=",
    "clone=",
    "nohang=",
    "option=",
    "timeout=",
    "nonblock=",
    "null",
    "true",
    "1e999",
    "-0",
];

/// Applies up to four text edits: cut, delete, splice a token, duplicate, swap; on character boundaries.
pub(crate) fn mutate_text(text: &str, c: &mut Choices<'_>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..c.below(5) {
        let len = chars.len();
        let at = c.below(len + 1);
        match c.below(12) {
            0 => chars.truncate(at),
            1 => {
                let end = (at + 1 + c.below(8)).min(len);
                if at < end {
                    chars.drain(at..end);
                }
            }
            2 | 3 => {
                let token: Vec<char> = c.word(TOKENS).chars().collect();
                chars.splice(at..at, token);
            }
            4..=6 => {
                let end = (at + 1 + c.below(16)).min(len);
                let copy: Vec<char> = chars[at.min(end)..end].to_vec();
                chars.splice(at..at, copy);
            }
            7..=8 => {
                let token: Vec<char> = c.word(TOKENS).chars().collect();
                let end = (at + 1 + c.below(4)).min(len);
                chars.splice(at.min(end)..end, token);
            }
            _ => {
                if len >= 2 {
                    let other = c.below(len);
                    chars.swap(at.min(len - 1), other);
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// Serializes a mutated document, then sometimes edits it as text (most such edits make it invalid JSON).
pub(crate) fn mutated_json(seed: &Value, choices: &[u64], text_edits: &[u64]) -> String {
    let mut doc = seed.clone();
    mutate_json(&mut doc, &mut Choices::new(choices));
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    if text_edits.is_empty() {
        text
    } else {
        mutate_text(&text, &mut Choices::new(text_edits))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fault rules from the grammar's own pieces.

/// Syscalls of every shape family, and names that are not syscalls.
const SYSCALLS: &[&str] = &[
    "openat",
    "read",
    "write",
    "futex",
    "ioctl",
    "socket",
    "socketpair",
    "mmap",
    "mprotect",
    "madvise",
    "clone",
    "clone3",
    "wait4",
    "waitid",
    "prctl",
    "epoll_ctl",
    "getpid",
    "connect",
    "statx",
    "execve",
    "seccomp",
    "257",
    "0",
];
const BAD_SYSCALLS: &[&str] = &["99999", "", "opnat", " openat ", "-1", "18446744073709551616"];

const ERRNOS: &[&str] = &[
    "ENOENT",
    "EIO",
    "EAGAIN",
    "EINTR",
    "ETIMEDOUT",
    "E2BIG",
    "2",
    "133",
    "511",
    "4095",
    "ENOENT=3",
    "EIO=1e308",
    "EAGAIN=0.5",
    "EIO=5e-324",
    "enoent",
];
const BAD_ERRNOS: &[&str] = &[
    "0",
    "-1",
    "512",
    "4096",
    "EIO=0",
    "EIO=nan",
    "EIO=inf",
    "EIO=-1",
    "ERESTARTSYS",
];

/// Options every syscall takes, at their edges.
const OPTIONS: &[&str] = &[
    "p=0",
    "p=1",
    "p=0.5",
    "p=5%",
    "p=100%",
    "p=1e-320",
    "p=-0",
    "p=0.9999999999999999",
    "nth=1",
    "nth=18446744073709551615",
    "after=0",
    "after=3",
    "after=18446744073709551615",
    "after=18446744073709551614",
    "every=1",
    "every=3",
    "every=18446744073709551615",
    "max=1",
    "max=18446744073709551615",
    "when=entry",
    "when=exit",
    "delay=0s",
    "delay=1ns",
    "delay=10ms",
    "delay=24h",
    "delay=23h 59m 59s 999ms 999us 999ns",
];
const BAD_OPTIONS: &[&str] = &[
    "p=101%",
    "p=NaN",
    "p=inf",
    "p=1.0000000001",
    "nth=0",
    "nth=18446744073709551616",
    "every=0",
    "max=0",
    "path=",
    "path=[",
    "when=x",
    "delay=24h 1ns",
    "delay=9223372036854775807s",
    "delay=18446744073709551615s",
    "delay=1y",
    "delay=",
    "bogus=1",
    "p",
    "op=bogus",
    "timeout=maybe",
    "fd=bogus",
    "req=0x",
    "req=0xzz",
    "map=x-y",
    "type=-1",
];

/// Values of each shape predicate, valid and at their edges (`path=` is the rule's glob).
fn predicate_values(key: crate::model::shape::Key) -> &'static [&'static str] {
    use crate::model::shape::Key;
    match key {
        Key::Op => &[
            "FUTEX_WAIT_PRIVATE",
            "wait|wake",
            "0x80",
            "0xffffffffffffffff",
            "FUTEX_WAIT_BITSET_PRIVATE_CLOCK_REALTIME",
            "FUTEX_WAKE",
        ],
        Key::Fd => &["tcp", "socket|file", "inet", "unix", "closed", "other|pipe"],
        Key::Req => &[
            "TCGETS",
            "0x5401",
            "0xffffffffffffffff",
            "FIONREAD|TCGETS",
            "12345",
        ],
        Key::Family => &["inet", "unix|inet6", "2", "99999999999", "4294967295"],
        Key::Type => &["stream", "dgram|raw", "1", "4294967296"],
        Key::Map => &[
            "private-anon",
            "shared-file",
            "private-anon|shared-anon",
            "x-y",
            "-",
        ],
        Key::Prot => &["rw", "none", "rwx|r", "7", "4294967296"],
        Key::Advice => &["dontneed", "4", "MADV_FREE", "99999", "4294967295"],
        Key::Option => &["PR_SET_NAME", "set_name", "15", "4294967296", "PR_SET_VMA"],
        Key::Ctl => &["add", "del|mod", "EPOLL_CTL_MOD", "2", "4294967296", "remove"],
        Key::Path => &["/etc/*", "**", "/tmp/**/x", "a:b", "/proc/*/stat", "[!]"],
        // A component of a few words (`Key::choices`): the generator takes them, and a word of none, itself.
        _ => &["maybe", "", "yes|"],
    }
}

const STRACE_WHEN: &[&str] = &[
    "3",
    "3+",
    "3+2",
    "2..5",
    "2..10+2",
    "5..2",
    "0",
    "1..18446744073709551615",
    "18446744073709551615+",
    "18446744073709551615..18446744073709551615+18446744073709551615",
    "x",
    "",
];

impl Choices<'_> {
    /// Usually one of `good`, sometimes one of `bad`.
    fn good_or_bad(&mut self, good: &[&'static str], bad: &[&'static str]) -> &'static str {
        if self.below(8) == 0 {
            self.word(bad)
        } else {
            self.word(good)
        }
    }
}

/// A fault rule assembled from the grammar's pieces: mostly valid, often at an edge, sometimes in strace's form.
/// Predicates are chosen among the first syscall's own, so that most rules get past the parser.
pub(crate) fn fault_text(c: &mut Choices<'_>) -> String {
    let syscalls: Vec<&str> = (0..1 + c.below(2))
        .map(|_| c.good_or_bad(SYSCALLS, BAD_SYSCALLS))
        .collect();
    if c.below(6) == 0 {
        let mut text = format!("inject={}", syscalls.join(","));
        for _ in 0..c.below(4) {
            text.push_str(&match c.below(4) {
                0 => format!(":error={}", c.good_or_bad(ERRNOS, BAD_ERRNOS)),
                1 => format!(":when={}", c.word(STRACE_WHEN)),
                2 => format!(":delay_enter={}", c.word(EDGE_NUMBERS)),
                _ => format!(":{}", c.good_or_bad(OPTIONS, BAD_OPTIONS)),
            });
        }
        return text;
    }
    let errnos: Vec<&str> = (0..1 + c.below(2))
        .map(|_| c.good_or_bad(ERRNOS, BAD_ERRNOS))
        .collect();
    let mut text = format!("{}:{}", syscalls.join(","), errnos.join(","));
    let keys = Syscall::parse(syscalls[0].trim())
        .map(crate::model::shape::keys_of)
        .unwrap_or_default();
    for _ in 0..c.below(5) {
        text.push(':');
        match keys.len() {
            n if n > 0 && c.below(2) == 0 => {
                let key = keys[c.below(n)];
                text.push_str(crate::model::shape::grammar_name(key));
                text.push('=');
                match key.choices() {
                    // One of the words, all of them, or a value none of them is.
                    Some(choices) => match c.below(3) {
                        0 => text.push_str(choices[c.below(choices.len())]),
                        1 => text.push_str(&choices.join("|")),
                        _ => text.push_str(c.word(predicate_values(key))),
                    },
                    None => text.push_str(c.word(predicate_values(key))),
                }
            }
            _ => text.push_str(c.good_or_bad(OPTIONS, BAD_OPTIONS)),
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------------------------
// What each command does with what it parsed.

/// A probe that answers with whatever the choices say, so that every shape component can take every value.
struct FakeProbe {
    path: Option<String>,
    fd: Option<FdFacts>,
    word: Option<u64>,
}

impl FakeProbe {
    fn new(c: &mut Choices<'_>) -> Self {
        let kinds = crate::model::shape::FD_KINDS;
        FakeProbe {
            path: match c.below(3) {
                0 => None,
                1 => Some("/proc/1234/stat".into()),
                _ => Some(mutate_text("/etc/tmp.Ab3dEf9hIj/x", c)),
            },
            fd: (c.below(3) != 0).then(|| FdFacts {
                kind: c.word(kinds),
                nonblock: [None, Some(true), Some(false)][c.below(3)],
                path: (c.below(2) == 0).then(|| "/var/log/x.log".into()),
            }),
            word: [None, Some(0), Some(u64::MAX), Some(libc::CLONE_THREAD as u64)][c.below(4)],
        }
    }
}

impl Probe for FakeProbe {
    fn path(&mut self, _: Syscall, _: &[u64; 6]) -> Option<String> {
        self.path.clone()
    }
    fn fd(&mut self, _: i32) -> Option<FdFacts> {
        self.fd.clone()
    }
    fn read_u64(&mut self, _: u64) -> Option<u64> {
        self.word
    }
}

/// Register values at the edges of every argument test.
const EDGE_ARGS: &[u64] = &[
    0,
    1,
    2,
    3,
    128,
    129,
    137,
    393,
    0x5401,
    0x541b,
    libc::CLONE_THREAD as u64,
    libc::MAP_SHARED as u64 | libc::MAP_ANONYMOUS as u64,
    libc::MAP_PRIVATE as u64,
    u32::MAX as u64,
    1 << 32,
    u64::MAX,
    u64::MAX - 1,
];

/// The seccomp policies phoebe's backends compile for these rules (the ptrace backend's `RET_TRACE` routing and
/// the seccomp backend's notifications and in-kernel errnos, each with the register guards), compiled and run.
fn filters(decider: &mut Decider, c: &mut Choices<'_>) {
    let targets: Vec<Syscall> = decider.targets().collect();
    let mut trace = filter::Policy::new(filter::Action::Allow);
    let mut notify = filter::Policy::new(filter::Action::Allow);
    for sc in &targets {
        let guard = decider.register_guard(*sc);
        let errno = decider
            .unconditional_errno(*sc)
            .and_then(|e| u16::try_from(e.code()).ok());
        match &guard {
            Some(g) => {
                trace.set_guarded(
                    sc.number(),
                    filter::Action::Trace(1),
                    g.clone(),
                    filter::Action::Allow,
                );
            }
            None => {
                trace.set(sc.number(), filter::Action::Trace(1));
            }
        }
        match (errno, guard) {
            (Some(errno), _) => {
                notify.set(sc.number(), filter::Action::Errno(errno));
            }
            (None, Some(g)) => {
                notify.set_guarded(sc.number(), filter::Action::UserNotif, g, filter::Action::Allow);
            }
            (None, None) => {
                notify.set(sc.number(), filter::Action::UserNotif);
            }
        }
    }
    for policy in [trace, notify] {
        let Ok(prog) = filter::compile(&policy) else {
            continue;
        };
        for sc in targets.iter().take(4) {
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = *c.pick(EDGE_ARGS);
            }
            let data = libc::seccomp_data {
                nr: sc.number() as i32,
                arch: filter::NATIVE_AUDIT_ARCH,
                instruction_pointer: 0,
                args,
            };
            let _ = filter::evaluate(&prog, &data);
        }
    }
}

/// Decides a few calls of each targeted syscall, with edge registers and a probe that says anything.
fn decide_calls(decider: &mut Decider, c: &mut Choices<'_>) {
    let targets: Vec<Syscall> = decider.targets().collect();
    for sc in targets.iter().take(4) {
        for _ in 0..3 {
            let mut args = [0u64; 6];
            for a in &mut args {
                *a = *c.pick(EDGE_ARGS);
            }
            let mut probe = FakeProbe::new(c);
            let path = probe.path.clone();
            let call = Call {
                syscall: *sc,
                pid: 1,
                tid: 1,
                thread: None,
                t_ns: c.next(),
                path: path.as_deref(),
                args,
            };
            if c.below(4) == 0 {
                let _ = decider.decide(&call, &mut RegistersOnly);
            } else {
                let _ = decider.decide(&call, &mut probe);
            }
        }
    }
}

/// Everything phoebe does with a rule it parsed.
fn use_faults(faults: Vec<FaultSpec>, c: &mut Choices<'_>) {
    for fault in &faults {
        // The canonical text is what exec passes to each run's `phoebe inject --fault`: it must mean the same.
        let text = fault.to_string();
        let back = FaultSpec::parse(&text).unwrap_or_else(|e| panic!("'{text}' does not parse back: {e}"));
        assert_eq!(&back, fault, "'{text}' parses back as another rule");
        let _ = fault.is_unconditional();
        for pred in &fault.shape {
            let _ = pred.to_string();
            for sc in &fault.syscalls {
                let _ = crate::model::shape::register_tests(*sc, pred);
            }
        }
    }
    let _ = crate::experiment::skip_reason(Some(crate::backend::BackendKind::Ebpf), &faults);
    let mut decider = Decider::new(faults, c.next());
    filters(&mut decider, c);
    decide_calls(&mut decider, c);
    let log = decider.finish(vec!["app".into()], "ptrace", None, false);
    use_log(&log, c);
}

fn use_fault_text(text: &str, c: &mut Choices<'_>) {
    if let Ok(fault) = FaultSpec::parse(text) {
        use_faults(vec![fault], c);
    }
    let _ = Shape::parse(text).map(|s| s.to_string());
}

fn use_log(log: &InjectionLog, c: &mut Choices<'_>) {
    for draws in [Draws::Seeded, Draws::InKernel] {
        let _ = crate::report::summary::injections(log, draws);
    }
    for rule in &log.rules {
        let _ = rule.achieved_rate();
    }
    if log.replay_problem().is_none() {
        let mut replay = Decider::replay(log);
        filters(&mut replay, c);
        decide_calls(&mut replay, c);
        let replayed = replay.finish(log.command.clone(), &log.backend, log.exit, false);
        let _ = crate::report::summary::injections(&replayed, Draws::Seeded);
    }
    let _ = serde_json::to_string(log);
}

fn use_observation(obs: &Observation, c: &mut Choices<'_>) {
    let _ = crate::report::summary::observation(obs);
    let _ = obs.failed_shapes();
    let _ = obs.totals();
    for settings in [
        SynthSettings::default(),
        SynthSettings {
            shapes: false,
            ..SynthSettings::default()
        },
        SynthSettings {
            quantile: 1.0,
            sporadic_below: 0.0,
            ..SynthSettings::default()
        },
        SynthSettings {
            explore: crate::model::Explore::Plausible,
            ..SynthSettings::default()
        },
    ] {
        if let Ok(plan) = crate::synth::synthesize(obs, &settings) {
            use_plan(&plan, c);
        }
    }
}

fn use_plan(plan: &Plan, c: &mut Choices<'_>) {
    let _ = crate::experiment::check_ids(plan, Path::new("plan.json"));
    let _ = crate::report::summary::plan(plan);
    for model in plan.models.iter().take(4) {
        let _ = model.stats.natural_rate();
        use_faults(model.faults(), c);
    }
    let _ = serde_json::to_string(plan);
}

fn use_report(report: &Report) {
    let _ = crate::report::terminal::render(report, true);
    let _ = crate::report::terminal::render(report, false);
    let _ = crate::report::junit::render(report);
    let _ = crate::report::markdown::render(report);
    let _ = crate::report::html::render(report);
    let _ = report.counts();
    let _ = report.fails_on(&crate::model::Verdict::ALL);
    let _ = report.fails_on_tiers(&["plausible:failed".parse().expect("a tier and a verdict")]);
    for e in &report.experiments {
        let _ = e.realism();
        for r in &e.runs {
            let _ = r.achieved_rate();
        }
    }
    let mut other = report.clone();
    other.shard = Some("2/2".into());
    if let Ok(merged) = crate::report::merge(vec![report.clone(), other]) {
        let _ = crate::report::terminal::render(&merged, false);
    }
    let _ = serde_json::to_string_pretty(report);
}

// ---------------------------------------------------------------------------------------------------------------
// Valid documents, made by phoebe, that the mutations start from.

fn seed_observation() -> &'static Value {
    static SEED: OnceLock<Value> = OnceLock::new();
    SEED.get_or_init(|| {
        let ms = Duration::from_millis;
        let sc = |n: &str| Syscall::parse(n).unwrap();
        let errno = |n: &str| crate::model::Errno::parse(n).unwrap();
        let mut b = ObservationBuilder::new(ms(100));
        let futex_wait = Shape::parse("op=FUTEX_WAIT_PRIVATE:timeout=yes").unwrap();
        let stat = Shape::parse("path=/proc/*/stat").unwrap();
        for i in 0..40u64 {
            let at = ms(i * 10);
            let fail = |every: u64| if i % every == 0 { Err(()) } else { Ok(()) };
            b.record(
                at,
                sc("futex"),
                Some(&futex_wait),
                fail(3).map_err(|()| errno("ETIMEDOUT")),
                Duration::from_micros(i),
            );
            b.record(
                at,
                sc("openat"),
                Some(&stat),
                fail(7).map_err(|()| errno("ENOENT")),
                Duration::from_micros(3),
            );
            b.record(
                at,
                sc("read"),
                None,
                fail(2).map_err(|()| errno("EAGAIN")),
                Duration::ZERO,
            );
            b.record_many(at, sc("write"), Err(errno("EIO")), 1, 10, 10);
        }
        let obs = b.finish(
            ms(450),
            ObservationMeta {
                command: vec!["app".into(), "--flag".into()],
                backend: "ptrace".into(),
                kernel: "6.1.0".into(),
                started_at: "2026-01-01T00:00:00Z".into(),
                exit: Some(crate::model::TargetExit::Code(0)),
                ..ObservationMeta::default()
            },
        );
        serde_json::to_value(obs).unwrap()
    })
}

pub(crate) fn seed_plan() -> &'static Value {
    static SEED: OnceLock<Value> = OnceLock::new();
    SEED.get_or_init(|| {
        let obs: Observation = serde_json::from_value(seed_observation().clone()).unwrap();
        let plan = crate::synth::synthesize(&obs, &SynthSettings::default()).unwrap();
        assert!(!plan.models.is_empty(), "the seed plan has models");
        serde_json::to_value(plan).unwrap()
    })
}

fn seed_log() -> &'static Value {
    static SEED: OnceLock<Value> = OnceLock::new();
    SEED.get_or_init(|| {
        let faults = [
            "openat:ENOENT:p=0.5:path=/etc/*",
            "futex:EAGAIN,ETIMEDOUT=2:op=FUTEX_WAIT_PRIVATE:max=3",
            "read:EIO:nth=2:when=exit:delay=1ms",
        ]
        .iter()
        .map(|f| FaultSpec::parse(f).unwrap())
        .collect();
        let mut decider = Decider::new(faults, 7);
        let mut probe = RegistersOnly;
        for i in 0..20u64 {
            for (name, args) in [
                ("openat", [0u64; 6]),
                ("futex", [0, 128, 0, 0, 0, 0]),
                ("read", [3, 0, 0, 0, 0, 0]),
            ] {
                let call = Call {
                    syscall: Syscall::parse(name).unwrap(),
                    pid: 10,
                    tid: 11,
                    thread: None,
                    t_ns: i * 1000,
                    path: Some("/etc/hostname"),
                    args,
                };
                let _ = decider.decide(&call, &mut probe);
            }
        }
        let log = decider.finish(
            vec!["app".into()],
            "ptrace",
            Some(crate::model::TargetExit::Code(1)),
            false,
        );
        assert!(!log.injections.is_empty(), "the seed log has injections");
        serde_json::to_value(log).unwrap()
    })
}

fn seed_report() -> &'static Value {
    static SEED: OnceLock<Value> = OnceLock::new();
    SEED.get_or_init(|| {
        serde_json::from_str(include_str!("../harness/fixtures/report.json")).expect("the report fixture")
    })
}

/// The JSON choices and the text edits of one case.
fn json_case() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
    (
        prop::collection::vec(any::<u64>(), 0..48),
        prop::option::weighted(0.2, prop::collection::vec(any::<u64>(), 1..12))
            .prop_map(Option::unwrap_or_default),
    )
}

/// Choices for the rules' uses (probes, registers, seeds).
fn uses() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 0..64)
}

proptest! {
    #![proptest_config(config(600))]

    /// `--fault` texts and the rules inside every JSON file.
    #[test]
    fn fault_grammar_never_panics(
        rule in prop::collection::vec(any::<u64>(), 1..24),
        edits in prop::option::weighted(0.3, prop::collection::vec(any::<u64>(), 1..12))
            .prop_map(Option::unwrap_or_default),
        use_choices in uses(),
    ) {
        let mut c = Choices::new(&rule);
        let text = fault_text(&mut c);
        let text = mutate_text(&text, &mut Choices::new(&edits));
        use_fault_text(&text, &mut Choices::new(&use_choices));
    }

    /// Any text at all as a fault rule or a shape.
    #[test]
    fn fault_grammar_never_panics_on_any_text(text in "\\PC{0,80}", use_choices in uses()) {
        use_fault_text(&text, &mut Choices::new(&use_choices));
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn observation_never_panics((choices, edits) in json_case(), use_choices in uses()) {
        let text = mutated_json(seed_observation(), &choices, &edits);
        if let Ok(obs) = files::parse::<Observation>(&text, Path::new("o.json"), "observation") {
            use_observation(&obs, &mut Choices::new(&use_choices));
        }
    }

    #[test]
    fn plan_never_panics((choices, edits) in json_case(), use_choices in uses()) {
        let text = mutated_json(seed_plan(), &choices, &edits);
        if let Ok(plan) = files::parse::<Plan>(&text, Path::new("p.json"), "plan") {
            use_plan(&plan, &mut Choices::new(&use_choices));
        }
    }

    #[test]
    fn injection_log_never_panics((choices, edits) in json_case(), use_choices in uses()) {
        let text = mutated_json(seed_log(), &choices, &edits);
        if let Ok(log) = files::parse::<InjectionLog>(&text, Path::new("l.json"), "injection log") {
            use_log(&log, &mut Choices::new(&use_choices));
        }
    }
}

proptest! {
    #![proptest_config(config(120))]

    #[test]
    fn report_never_panics((choices, edits) in json_case()) {
        let text = mutated_json(seed_report(), &choices, &edits);
        if let Ok(report) = files::parse::<Report>(&text, Path::new("r.json"), "report") {
            use_report(&report);
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn campaign_never_panics(
        choices in prop::collection::vec(any::<u64>(), 0..48),
        edits in prop::option::weighted(0.2, prop::collection::vec(any::<u64>(), 1..12))
            .prop_map(Option::unwrap_or_default),
    ) {
        let text = mutated_json(seed_campaign(), &choices, &edits);
        if let Ok(c) = files::parse::<Campaign>(&text, Path::new("campaign.json"), "campaign") {
            crate::experiment::fuzzing::use_campaign(&c);
        }
    }
}

/// A campaign with faults, the seed plan, service mode and a shard, as JSON.
fn seed_campaign() -> &'static Value {
    static SEED: OnceLock<Value> = OnceLock::new();
    SEED.get_or_init(|| {
        let plan = serde_json::from_value(seed_plan().clone()).unwrap();
        serde_json::to_value(crate::experiment::fuzzing::campaign(Some(plan))).unwrap()
    })
}

#[test]
fn the_seeds_are_valid_and_used_unmutated() {
    let mut c = Choices::new(&[]);
    use_observation(
        &serde_json::from_value(seed_observation().clone()).unwrap(),
        &mut c,
    );
    use_plan(&serde_json::from_value(seed_plan().clone()).unwrap(), &mut c);
    use_log(&serde_json::from_value(seed_log().clone()).unwrap(), &mut c);
    use_report(&serde_json::from_value(seed_report().clone()).unwrap());
    let campaign: Campaign = serde_json::from_value(seed_campaign().clone()).unwrap();
    assert_eq!(campaign.problem(), None);
    crate::experiment::fuzzing::use_campaign(&campaign);
}
