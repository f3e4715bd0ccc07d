//! `Report`: what a campaign (`phoebe exec`) found — the baseline, one result per experiment, a verdict per run
//! (DESIGN §7). Plain data; `phoebe::experiment` fills it, `phoebe::report` renders it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    TargetExit, Usage,
    fault::FaultSpec,
    log::Effect,
    names::Syscall,
    plan::{ErrorModel, Tier},
};

/// How the program coped with one run of one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Same exit status as the baseline, and the check passed.
    Resilient,
    /// The experiment made no injection: the program never made that call (not a pass, not a failure).
    NotExercised,
    /// Another exit status than the baseline, or the check failed.
    Failed,
    /// The run after injection stopped (a plain run and the check) failed: the damage outlived the fault.
    Corrupted,
    /// Killed by a signal (SIGSEGV, SIGABRT, …).
    Crashed,
    /// Still running at the timeout.
    Hung,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Resilient,
        Verdict::NotExercised,
        Verdict::Failed,
        Verdict::Corrupted,
        Verdict::Crashed,
        Verdict::Hung,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Resilient => "resilient",
            Verdict::NotExercised => "not-exercised",
            Verdict::Failed => "failed",
            Verdict::Corrupted => "corrupted",
            Verdict::Crashed => "crashed",
            Verdict::Hung => "hung",
        }
    }

    /// Resilient and not-exercised are not findings; everything else is.
    pub fn is_finding(self) -> bool {
        !matches!(self, Verdict::Resilient | Verdict::NotExercised)
    }

    /// The experiment's verdict from its runs: the worst run (hung > crashed > corrupted > failed > resilient),
    /// not-exercised only when no run was exercised.
    pub fn worst(runs: impl IntoIterator<Item = Verdict>) -> Verdict {
        runs.into_iter()
            .filter(|v| *v != Verdict::NotExercised)
            .max()
            .unwrap_or(Verdict::NotExercised)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
            format!("unknown verdict '{s}' (verdicts: {})", names.join(", "))
        })
    }
}

/// One entry of `--fail-on`: a verdict, in every tier (`corrupted`) or in one (`plausible:corrupted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailOn {
    /// `None`: every tier (and the faults given with `--fault`).
    pub tier: Option<Tier>,
    pub verdict: Verdict,
}

impl FailOn {
    /// Does an experiment of `tier` with `verdict` fail the campaign under this entry?
    pub fn matches(&self, tier: Tier, verdict: Verdict) -> bool {
        self.verdict == verdict && self.tier.is_none_or(|t| t == tier)
    }
}

impl From<Verdict> for FailOn {
    fn from(verdict: Verdict) -> Self {
        FailOn { tier: None, verdict }
    }
}

impl std::fmt::Display for FailOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tier {
            Some(t) => write!(f, "{t}:{}", self.verdict),
            None => write!(f, "{}", self.verdict),
        }
    }
}

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s.parse::<Tier>().is_ok() => Err(format!(
                "'{s}' is a tier, not a verdict: write {s}:VERDICT (e.g. {s}:corrupted)"
            )),
            None => Ok(FailOn {
                tier: None,
                verdict: s.parse()?,
            }),
            Some((tier, verdict)) => Ok(FailOn {
                tier: Some(tier.parse().map_err(|e| {
                    format!(
                        "{e}; write TIER:VERDICT (e.g. plausible:corrupted) or a bare verdict for every tier"
                    )
                })?),
                verdict: verdict.parse()?,
            }),
        }
    }
}

/// One run of the target without injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRun {
    /// Service mode: the workload rounds of this baseline run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<RoundStats>,
    pub exit: TargetExit,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `--check` after the run; `null` without a check.
    pub check_passed: Option<bool>,
    /// Service mode: when the workload ran, in milliseconds from the start of the run's observation — the first
    /// round's start and the last round's end. The plan rests on these intervals only; absent in plain mode (and
    /// in baselines written before it: their whole observation counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ms: Option<[u64; 2]>,
}

/// The steady state every run is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub runs: Vec<BaselineRun>,
    /// The exit status every run is compared with: `--expect-status`, or 0 (a program that fails without any
    /// injection is no steady state). In service mode, how the service ended when phoebe stopped it.
    pub exit: TargetExit,
    /// The timeout each experiment run gets, in milliseconds.
    pub timeout_ms: u64,
    /// `--expect-status N`: the user declared this status the steady state; absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<i32>,
    /// `--accept-flaky-baseline` was given: baseline runs that disagree do not stop the campaign.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_flaky: bool,
    /// What disagreed, in one sentence, when the runs disagreed and `--accept-flaky-baseline` let the campaign
    /// go on (`baseline run 2 exited 1, run 1 exited 0`); absent when the runs agreed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky: Option<String>,
    /// A plain run right after the last baseline run, without `--reset` (`baseline/rerun.*`): whether it exited
    /// with the steady status and passed `--check`. `false`: the program does not pass a run on the state a
    /// passing run leaves (zstd, gzip and `mkdir` refuse to overwrite their output), so a plain run after
    /// injection failing says nothing of damage, and no run is judged corrupted by it. Absent in service mode, and
    /// in reports written before it (where that plain run was judged anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_passed: Option<bool>,
}

impl Baseline {
    /// Whether a plain run after an experiment run says anything of the damage it left: not when a plain run
    /// after a plain run already fails ([`Baseline::rerun_passed`]).
    pub fn rerun_judges_damage(&self) -> bool {
        self.rerun_passed != Some(false)
    }

    /// `exit status 0 over 3 runs`, plus what the user declared and what disagreed: every renderer's words.
    pub fn describe(&self) -> String {
        let runs = self.runs.len();
        let mut text = format!(
            "{} over {runs} run{}",
            self.exit,
            if runs == 1 { "" } else { "s" }
        );
        if let Some(status) = self.expect_status {
            text.push_str(&format!(" (--expect-status {status})"));
        }
        match &self.flaky {
            Some(what) => text.push_str(&format!(", flaky, accepted with --accept-flaky-baseline: {what}")),
            None if self.accept_flaky => text.push_str(" (--accept-flaky-baseline; the runs agreed)"),
            None => {}
        }
        if !self.rerun_judges_damage() {
            text.push_str(
                " (a plain run right after a passing one fails without --reset, baseline/rerun.err: damage is \
                 not judged by the plain run after injection)",
            );
        }
        text
    }
}

/// One run of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// 1-based.
    pub run: u32,
    pub seed: u64,
    pub verdict: Verdict,
    /// Why, in one sentence (e.g. `exit status 1, baseline 0`).
    pub detail: String,
    /// `null` when the run was stopped at the timeout before phoebe saw the target end.
    pub exit: Option<TargetExit>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Calls the fault matched, and how many it injected.
    pub matched: u64,
    pub injected: u64,
    /// Matched calls phoebe let run that failed by themselves with one of the fault's errnos (ptrace sees each
    /// call's result at its exit stop); absent where the backend does not see the results of the calls it lets
    /// run (seccomp, eBPF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub natural: Option<u64>,
    /// What the achieved rate counts: `injected-and-natural` (the matched calls' total failure rate, on the same
    /// footing as a model's target rate) when `natural` is known, else `injected-only`.
    #[serde(default)]
    pub achieved_counts: AchievedCounts,
    /// Of the injections, those that landed on a call shape that failed naturally with the same errno in the
    /// baseline (DESIGN §6); `null` when that cannot be told (the baseline or the log has no shapes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realistic: Option<u64>,
    pub check_passed: Option<bool>,
    /// The plain run (and check) after injection; `null` when it was not needed (not exercised, hung).
    pub post_run_passed: Option<bool>,
    /// The injection log of the run, relative to the campaign directory.
    pub log: String,
    /// Service mode: the workload rounds before, during and after injection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Rounds>,
    /// Why the run went as it did, and how to run it again: for runs that are findings (failed, corrupted,
    /// crashed, hung); absent otherwise and in reports written before evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<RunEvidence>,
    /// This run settles its experiment: the fault's guards kept out every call of its class, which they would do
    /// in every run (they are decided by what the calls are), so no run after it is made, and a resume makes none
    /// either. Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settles: bool,
}

/// At most this many lines of each output stream in [`RunEvidence`].
pub const TAIL_LINES: usize = 20;
/// At most this many bytes of each output stream in [`RunEvidence`].
pub const TAIL_BYTES: usize = 4096;
/// [`RunEvidence::error_line`]'s bound.
pub const ERROR_LINE_BYTES: usize = 400;
/// At most this many injections in [`RunEvidence::first_injections`].
pub const FIRST_INJECTIONS: usize = 5;

/// A run's evidence, bounded: the end of what the target printed, the first injected calls, and the command that
/// runs it again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunEvidence {
    /// The last lines of the run's stderr (at most [`TAIL_LINES`] lines and [`TAIL_BYTES`] bytes): the target's
    /// messages, an abort message, glibc's fatal messages.
    #[serde(default)]
    pub stderr_tail: Vec<String>,
    /// The last lines of the run's stdout, bounded alike.
    #[serde(default)]
    pub stdout_tail: Vec<String>,
    /// The run's stderr and stdout files, relative to the campaign directory.
    #[serde(default)]
    pub stderr_file: String,
    #[serde(default)]
    pub stdout_file: String,
    /// A corrupted run: the last lines of the stderr of the plain run after injection (`post-K.err`), bounded
    /// alike — the damage that outlived the fault; left out otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_stderr_tail: Vec<String>,
    /// That file, relative to the campaign directory; left out when there is no tail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub post_stderr_file: String,
    /// The first line of the run's output (stderr, then stdout, then what it appended to a `--log-file`) that
    /// names an error phoebe injected, by the C
    /// library's text for it (`could not read block 0 in file "base/5/1259": Input/output error`): where the
    /// program said what it met, which the tails of a service's output (its shutdown) often no longer show.
    /// At most [`ERROR_LINE_BYTES`] bytes; left out when no line names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_line: Option<String>,
    /// Where [`Self::error_line`] is: the run's output relative to the campaign directory
    /// (`experiments/pread64-EIO/run-1.err`), or a `--log-file` as given; left out without it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_line_file: String,
    /// The first line of the run's stderr where a language runtime says why the program stopped ([`crash_line`]:
    /// Go's `fatal error: runtime: pipe failed`, Rust's `thread 'main' panicked at …`, Java's `Exception in
    /// thread "main" …`): a crash's dump (Go's goroutine stacks, a Java stack trace) ends far from its headline,
    /// which the tail then no longer shows. At most [`ERROR_LINE_BYTES`] bytes; left out when no line is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_line: Option<String>,
    /// Where [`Self::crash_line`] is: the run's stderr, or its stdout when stderr has none (HotSpot writes its
    /// fatal header there); left out without it, and in reports written before it (their crash line is stderr's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crash_file: String,
    /// The first line of the run's stderr (then stdout: the JVM says `Error occurred during initialization of
    /// VM` there) where the program says something went wrong ([`complaint_line`]: an error, a failure, a
    /// refusal), other than the lines the baseline runs printed too: a program that goes on after an error prints
    /// a cascade of its consequences (SQLite's `Runtime error near line 4: database or disk is full (13)`, then
    /// `cannot commit - no transaction is active`, then `no such table: t` …) whose last line says least. At most
    /// [`ERROR_LINE_BYTES`] bytes; left out when no line is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_line: Option<String>,
    /// Where [`Self::complaint_line`] is (`experiments/mmap-ENOMEM/run-1.out`); left out without it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub complaint_file: String,
    /// A hung run: what the threads of its processes were waiting in when the timeout came, summed up (`futex
    /// FUTEX_WAIT_PRIVATE without a timeout ×3, epoll_wait of an epoll instance`): read from `/proc` before the
    /// timeout signalled anything, one line per thread in [`Self::hung_file`]. Left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hung_in: Option<String>,
    /// That file (`experiments/mmap-ENOMEM/run-3.hung`: tab-separated pid, tid, command name and wait); left
    /// out without it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hung_file: String,
    /// Service mode: what the first workload round that failed while injecting or after said (the first complaint
    /// of its stderr, then of its stdout, else its last line, as [`Self::check_line`]): the client's side of a
    /// failure the service may not have logged (libuv closing a connection it could not accept). Left out when
    /// every round passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_line: Option<String>,
    /// Where [`Self::round_line`] is (`experiments/accept4-EMFILE/run-1-injected-round-3.out`); left out without
    /// it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub round_file: String,
    /// When the run's `--check` failed: what the check said — the first line of its stderr, then of its stdout,
    /// that complains ([`complaint_line`]), else its last non-empty line; the run's own output may say nothing (a
    /// program that exits 0 having done half its work). Bounded alike; left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_line: Option<String>,
    /// Where [`Self::check_line`] is (`experiments/read-EIO/run-1.check.out`); left out without it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub check_file: String,
    /// The first injected calls (at most [`FIRST_INJECTIONS`]), in the order phoebe made them.
    #[serde(default)]
    pub first_injections: Vec<InjectedCall>,
    /// The command that runs this run again, as arguments: the same phoebe binary, `inject --replay` of the run's
    /// log (or `--seed` and the rules when the log cannot be replayed), then the target command. Run it in the
    /// directory the campaign ran in.
    #[serde(default)]
    pub repro: Vec<String>,
    /// [`Self::repro`] quoted for a POSIX shell.
    #[serde(default)]
    pub repro_shell: String,
}

/// One line of [`RunEvidence`] that says something, by what it is ([`RunEvidence::said`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// [`RunEvidence::error_line`].
    Error,
    /// [`RunEvidence::crash_line`].
    Crash,
    /// [`RunEvidence::complaint_line`].
    Complaint,
    /// [`RunEvidence::hung_in`].
    Hung,
    /// [`RunEvidence::round_line`].
    Round,
    /// [`RunEvidence::check_line`].
    Check,
}

impl RunEvidence {
    /// The lines that say something, each with what it is and its file, in the order [`Self::telling_line`]
    /// prefers them; the first complaint only when it is neither the error line nor the crash line.
    pub fn said(&self) -> Vec<(Said, &str, &str)> {
        let complaint = self
            .complaint_line
            .as_ref()
            .filter(|l| self.error_line.as_ref() != Some(l) && self.crash_line.as_ref() != Some(l));
        [
            (
                Said::Error,
                self.error_line.as_ref(),
                self.error_line_file.as_str(),
            ),
            (Said::Crash, self.crash_line.as_ref(), self.crash_source()),
            (Said::Hung, self.hung_in.as_ref(), self.hung_file.as_str()),
            (Said::Complaint, complaint, self.complaint_file.as_str()),
            (Said::Check, self.check_line.as_ref(), self.check_file.as_str()),
            (Said::Round, self.round_line.as_ref(), self.round_file.as_str()),
        ]
        .into_iter()
        .filter_map(|(what, line, file)| line.map(|line| (what, line.as_str(), file)))
        .collect()
    }

    /// Where the crash line is: [`Self::crash_file`], or the run's stderr for a report written before it.
    pub fn crash_source(&self) -> &str {
        if self.crash_file.is_empty() {
            &self.stderr_file
        } else {
            &self.crash_file
        }
    }

    /// What a one-line view shows: the line that names the injected error ([`RunEvidence::error_line`]); else the
    /// line where a runtime said why the program stopped ([`RunEvidence::crash_line`]); else, for a hung run,
    /// what it was waiting in ([`RunEvidence::hung_in`]); else its first complaint,
    /// on stderr or stdout ([`RunEvidence::complaint_line`]); else the last non-empty stderr line, else what a failed check said
    /// ([`RunEvidence::check_line`]), else what a service's first failed workload round said
    /// ([`RunEvidence::round_line`]), else the last stdout line, else the
    /// post-injection run's last stderr line — with the line before it when the last is a single word, which says
    /// nothing alone (`MemoryError:`, `Aborted`, `FAILED`): `Exception ignored in thread started by: <object
    /// repr() failed> / MemoryError:`.
    pub fn telling_line(&self) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(line) = self.error_line.as_ref().or(self.crash_line.as_ref()) {
            return Some(line.as_str().into());
        }
        if let Some(waits) = &self.hung_in {
            return Some(format!("waiting in {waits}").into());
        }
        if let Some(line) = &self.complaint_line {
            return Some(line.as_str().into());
        }
        fn last(lines: &[String]) -> Option<std::borrow::Cow<'_, str>> {
            let mut found = lines.iter().rev().map(|l| l.trim()).filter(|l| !l.is_empty());
            let line = found.next()?;
            match found.next() {
                Some(before) if !line.contains(char::is_whitespace) => {
                    Some(format!("{before} / {line}").into())
                }
                _ => Some(line.into()),
            }
        }
        last(&self.stderr_tail)
            .or_else(|| {
                self.check_line
                    .as_deref()
                    .map(|line| format!("the check said: {line}").into())
            })
            .or_else(|| {
                self.round_line
                    .as_deref()
                    .map(|line| format!("the workload said: {line}").into())
            })
            .or_else(|| last(&self.stdout_tail))
            .or_else(|| last(&self.post_stderr_tail))
    }
}

/// One injected call as evidence shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedCall {
    pub syscall: Syscall,
    /// `"errno": "ENOENT"`, `"short": 1` for a partial transfer, or neither for a latency fault's call, held for
    /// `delay_ns` and then run for real (as in the log).
    #[serde(flatten)]
    pub effect: Effect,
    /// How long the call was held, in nanoseconds, when its rule has `delay=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ns: Option<u64>,
    /// 1-based index of the call among the calls of `syscall`.
    pub index: u64,
    /// The call's shape (`op=FUTEX_WAIT_PRIVATE:timeout=no`, `fd=file`), when the backend computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// The path the call was about, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// An EINTR's possible causes, as the log has them (`Injection::interrupted_by`): the caught signals whose
    /// handler would have interrupted the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<Vec<String>>,
}

impl std::fmt::Display for InjectedCall {
    /// `openat #3 → ENOENT (path=/etc/app.conf)`, `read #6 → EIO (fd=file:nonblock=no)`, `read #4 → EINTR
    /// (fd=pipe:nonblock=no:caught=yes, needs a SIGHUP, SIGINT or SIGTERM handler that returns)`, and for a latency
    /// fault's call `read #2 → delay=50ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} → ", self.syscall, self.index)?;
        match (self.effect, self.delay_ns) {
            (Effect::Run, Some(ns)) => write!(
                f,
                "delay={}",
                humantime::format_duration(std::time::Duration::from_nanos(ns))
            )?,
            (Effect::Run, None) => f.write_str("delay")?,
            (effect, _) => write!(f, "{effect}")?,
        }
        let shape = self.shape.as_deref().filter(|s| !s.is_empty());
        let mut parts = Vec::new();
        // A shape with a path predicate names it already.
        if let Some(path) = self
            .path
            .as_ref()
            .filter(|_| !shape.is_some_and(|s| s.contains("path=")))
        {
            parts.push(format!("path={path}"));
        }
        parts.extend(shape.map(str::to_owned));
        // What an EINTR takes: a signal arriving while the call waits, and its handler returning.
        match self.interrupted_by.as_deref() {
            Some([]) => parts.push("no handler of the process would interrupt it".into()),
            Some([one]) => parts.push(format!("needs a {one} handler that returns")),
            Some([rest @ .., last]) => parts.push(format!(
                "needs a {} or {last} handler that returns",
                rest.join(", ")
            )),
            None => {}
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// The first line of `text` that names one of `said`, for [`RunEvidence::error_line`]: an errno's symbolic name
/// (`ENOSPC`, as a word: libuv's `ENOSPC: no space left on device`) or the C library's text of an injected
/// error (`Input/output error`, in any case: Go and libuv write it in lowercase); never one of phoebe's own
/// messages ([`programs_lines`]); a warning ([`is_warning`]) only when no other line names one. Trimmed, control characters
/// but tabs replaced, and at most [`ERROR_LINE_BYTES`] bytes — a longer line keeps the part that ends with what
/// it names. Pure.
pub fn error_line(text: &str, said: &[&str]) -> Option<String> {
    let symbolic = |t: &str| {
        t.len() >= 3 && t.starts_with('E') && t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    // The end of the first place `t` is named in `line`.
    let named = |line: &str, t: &str| -> Option<usize> {
        if symbolic(t) {
            line.match_indices(t)
                .find(|(at, _)| {
                    let before = line.as_bytes()[..*at].last().copied();
                    let after = line.as_bytes().get(at + t.len()).copied();
                    !before.is_some_and(word) && !after.is_some_and(word)
                })
                .map(|(at, _)| at + t.len())
        } else {
            // ASCII case folding keeps every byte where it was.
            line.to_ascii_lowercase()
                .find(&t.to_ascii_lowercase())
                .map(|at| at + t.len())
        }
    };
    let find = |warnings: bool| {
        programs_lines(text)
            .filter(|line| warnings || !is_warning(line))
            .find_map(|line| {
                said.iter()
                    .filter(|t| !t.is_empty())
                    .find_map(|t| named(line, t).map(|end| (line, end)))
            })
    };
    // A warning the program went on after is the line only when no other line names the error.
    let (line, end) = find(false).or_else(|| find(true))?;
    Some(bounded_line(line, end))
}

/// Whether `line` is a warning (`warning: unable to access '/root/.gitconfig': …`, `[WARN] …`): something the
/// program said and went on after, which explains a finding less than an error line after it.
fn is_warning(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("warning")
        || lower.contains("[warn")
        || lower.contains(" warn ")
        || lower.starts_with("warn")
}

/// The lines of a run's output that are the program's: without phoebe's own messages, which share the run's
/// stderr (`phoebe: warning: …` and the `hint: …` lines that follow one). A warning about a fault names its
/// errno, and was taken for the program saying it.
fn programs_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut ours = false;
    text.lines().filter(move |line| {
        ours = line.starts_with("phoebe: ") || (ours && line.starts_with("hint: "));
        !ours
    })
}

/// `line` trimmed, control characters but tabs replaced, and at most [`ERROR_LINE_BYTES`] bytes: a longer line
/// keeps the part that ends at byte `end` (its start, when `end` is within the bound).
fn bounded_line(line: &str, end: usize) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect()
    };
    let line = line.trim_end();
    if line.len() <= ERROR_LINE_BYTES {
        return clean(line.trim_start());
    }
    let mut start = end.saturating_sub(ERROR_LINE_BYTES - 3);
    while !line.is_char_boundary(start) {
        start += 1;
    }
    let mut stop = (start + ERROR_LINE_BYTES - 3).min(line.len());
    while !line.is_char_boundary(stop) {
        stop -= 1;
    }
    if start == 0 {
        format!("{}…", clean(&line[..stop]))
    } else {
        format!("…{}", clean(&line[start..stop]))
    }
}

/// The first line of `text` where a language runtime says why the program stopped, for
/// [`RunEvidence::crash_line`]: Go's `fatal error:` and `panic:`, Rust's `thread '…' (ID) panicked at` (with the
/// message on the line after it, where Rust ≥ 1.73 writes it), Java's `Exception in thread`, CPython's `Fatal
/// Python error:`, C++'s `terminate called after throwing` (with its `what():`), the C library's `Fatal glibc
/// error:`, a failed `assert` (`Assertion `…' failed.`), and Node's, V8's and HotSpot's, written behind `#`:
/// `Assertion failed: (uv_loop_init(&tracing_loop_)) == (0)`, `FATAL ERROR: …`, `Fatal error in …`, `There is
/// insufficient memory for the Java Runtime Environment to continue.`, `A fatal error has been detected by the
/// Java Runtime Environment:` (each of the last three with the message after it). Bounded and cleaned as
/// [`error_line`]. Pure.
pub fn crash_line(text: &str) -> Option<String> {
    // Node and V8 write their fatal messages behind `#` (`  #  Assertion failed: (uv_loop_init(…)) == (0)`).
    let bare = |line: &str| line.trim().trim_start_matches(['#', ' ', '\t']).to_owned();
    let headline = |line: &str| {
        let l = line.trim_start();
        let b = bare(line);
        b.starts_with("Assertion failed: ")
            || b.starts_with("FATAL ERROR: ")
            || b.starts_with("Fatal error in ")
            || b.starts_with(JVM_OUT_OF_MEMORY)
            || b.starts_with(JVM_FATAL)
            || l.starts_with("fatal error: ")
            || l.starts_with("panic: ")
            || (l.starts_with("thread '") && l.contains(" panicked at "))
            || l.starts_with("Exception in thread \"")
            || l.starts_with("Fatal Python error: ")
            || l.starts_with("terminate called after throwing")
            || l.starts_with("Fatal glibc error: ")
            || (l.contains("Assertion `") && l.trim_end().ends_with("' failed."))
    };
    let mut lines = programs_lines(text);
    let line = lines.find(|l| headline(l))?;
    let line = line.trim();
    let line = if line.starts_with('#') {
        bare(line)
    } else {
        line.to_owned()
    };
    // The message on the next line: Rust's panic (`panicked at src/main.rs:2:5:`), C++'s `  what():  …`; behind
    // `#`, the first line that says something after V8's `# Fatal error in , line 0` (`# Fatal process out of
    // memory: …`) and HotSpot's headers (`#  SIGSEGV (0xb) at pc=…`, past a bare `#`).
    let hashed = line.starts_with("Fatal error in ")
        || line.starts_with(JVM_OUT_OF_MEMORY)
        || line.starts_with(JVM_FATAL);
    let next = if hashed {
        lines.take(3).map(bare).find(|b| !b.is_empty())
    } else {
        lines.next().and_then(|n| {
            let trimmed = n.trim();
            ((line.starts_with("thread '") && line.ends_with(':') && !trimmed.is_empty())
                || (line.starts_with("terminate called") && trimmed.starts_with("what():")))
            .then(|| trimmed.to_owned())
        })
    };
    let joined = match next {
        Some(n) => format!("{line} {n}"),
        None => line.to_owned(),
    };
    // A longer line keeps its start: the headline says what happened first.
    Some(bounded_line(&joined, 0))
}

/// HotSpot's headline when the JVM cannot get memory (on stdout, behind `#`).
const JVM_OUT_OF_MEMORY: &str = "There is insufficient memory for the Java Runtime Environment to continue.";
/// HotSpot's headline of a crash of its own (on stdout, behind `#`; the signal on a line after it).
const JVM_FATAL: &str = "A fatal error has been detected by the Java Runtime Environment:";

/// The first line of `text` where the program says something went wrong, for [`RunEvidence::complaint_line`]:
/// one that speaks of an error, a failure, a refusal or something missing (`error`, `fatal`, `fail`, `cannot`,
/// `can't`, `could not`, `couldn't`, `unable`, `denied`, `refused`, `abort`, `not found`, `no such`, in any case), never one of phoebe's own
/// messages ([`programs_lines`]), an indented line (a stack frame, a traceback's source line: their text is code,
/// and the exception's own line follows them unindented), or a line `steady` says the steady state printed too
/// (the baseline runs' warnings are no finding's explanation); a warning only when no other line complains.
/// Bounded and cleaned as [`error_line`]. Pure.
pub fn complaint_line(text: &str, steady: impl Fn(&str) -> bool) -> Option<String> {
    const MARKERS: [&str; 13] = [
        "error",
        "fatal",
        "fail",
        "cannot",
        "can't",
        "could not",
        "couldn't",
        "unable",
        "denied",
        "refused",
        "abort",
        "not found",
        "no such",
    ];
    let complains = |line: &&str| {
        if line.is_empty() || line.starts_with(char::is_whitespace) {
            return false;
        }
        let line = line.trim_end();
        if line.starts_with("Traceback (most recent call last)") || steady(line) {
            return false;
        }
        let lower = line.to_ascii_lowercase();
        MARKERS.iter().any(|m| lower.contains(m))
    };
    // A warning only when nothing else complains.
    let line = programs_lines(text)
        .filter(|l| !is_warning(l))
        .find(complains)
        .or_else(|| programs_lines(text).find(complains))?;
    // A longer line keeps its start: a complaint says what went wrong first.
    Some(bounded_line(line, 0))
}

/// What a failed check said, for [`RunEvidence::check_line`], and which of its streams said it (`"err"` or
/// `"out"`): the first complaint ([`complaint_line`]) of its `stderr`, then of its `stdout`, else the last
/// non-empty line of either (stderr first). Pure.
pub fn check_line(stderr: &str, stdout: &str) -> Option<(String, &'static str)> {
    let streams = [(stderr, "err"), (stdout, "out")];
    streams
        .iter()
        .find_map(|(text, name)| complaint_line(text, |_| false).map(|l| (l, *name)))
        .or_else(|| {
            streams.iter().find_map(|(text, name)| {
                programs_lines(text)
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .last()
                    .map(|l| (bounded_line(l, 0), *name))
            })
        })
}

/// The end of `text`: its last [`TAIL_LINES`] lines, within [`TAIL_BYTES`] bytes (a longer last line keeps its
/// end), with control characters but tabs replaced, so that no renderer gets terminal escapes.
pub fn tail_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut bytes = 0;
    // Trailing blank lines say nothing.
    for line in text.trim_end().lines().rev() {
        if lines.len() == TAIL_LINES || bytes >= TAIL_BYTES {
            break;
        }
        let clean: String = line
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        let room = TAIL_BYTES - bytes;
        let clean = if clean.len() > room {
            let mut start = clean.len() - room;
            while !clean.is_char_boundary(start) {
                start += 1;
            }
            format!("…{}", &clean[start..])
        } else {
            clean
        };
        bytes += clean.len() + 1;
        lines.push(clean);
    }
    lines.reverse();
    lines
}

/// Workload rounds of a service-mode run: steady state, injection switched on, switched off again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rounds {
    pub steady: RoundStats,
    pub injected: RoundStats,
    pub after: RoundStats,
}

/// How a batch of workload rounds went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundStats {
    pub ok: u32,
    pub total: u32,
    /// Mean latency of the rounds (successful or not), in milliseconds.
    pub mean_ms: f64,
    /// Median round latency, in milliseconds (0 in results written before it).
    #[serde(default)]
    pub p50_ms: f64,
    /// 99th-percentile round latency (nearest rank: the slowest of fewer than 100 rounds), in milliseconds.
    #[serde(default)]
    pub p99_ms: f64,
    /// The rounds failed at first and then every one passed: the service came back by itself
    /// ([`RoundStats::with_recovery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovery>,
    /// Rounds not played because the service had ended (counted in `total`, not in `ok`; the latencies are the
    /// played rounds'). Left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unplayed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Rounds that failed at first and then all passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// How many rounds failed before the first that passed.
    pub failed: u32,
    /// Their wall time in all, in milliseconds: about how long the service took to come back.
    pub ms: f64,
}

impl RoundStats {
    pub fn all_ok(&self) -> bool {
        self.ok == self.total
    }

    /// `ok`/`total` and the latencies from the rounds' wall times in milliseconds (one per round played).
    pub fn from_rounds(ok: u32, latencies_ms: &[f64]) -> RoundStats {
        let mut sorted = latencies_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest latency at least q of the rounds do not exceed.
        let rank = |q: f64| {
            let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
            sorted.get(k - 1).copied().unwrap_or(0.0)
        };
        RoundStats {
            ok,
            total: latencies_ms.len() as u32,
            mean_ms: if sorted.is_empty() {
                0.0
            } else {
                sorted.iter().sum::<f64>() / sorted.len() as f64
            },
            p50_ms: rank(0.5),
            p99_ms: rank(0.99),
            recovered: None,
            unplayed: 0,
        }
    }

    /// These stats with `n` rounds in all, the ones beyond those played not played (the service had ended).
    pub fn out_of(self, n: u32) -> RoundStats {
        RoundStats {
            unplayed: n.saturating_sub(self.total),
            total: n.max(self.total),
            ..self
        }
    }

    /// With [`RoundStats::recovered`] from each round's outcome (`true`: it passed) in the order played, beside its
    /// latency: set when at least one round failed, the last one passed, and none failed after one passed.
    pub fn with_recovery(self, passed: &[bool], latencies_ms: &[f64]) -> RoundStats {
        let failed = passed.iter().take_while(|ok| !**ok).count();
        let recovered =
            (failed > 0 && failed < passed.len() && passed[failed..].iter().all(|ok| *ok)).then(|| {
                Recovery {
                    failed: failed as u32,
                    ms: latencies_ms.iter().take(failed).sum(),
                }
            });
        RoundStats { recovered, ..self }
    }
}

impl Rounds {
    /// Per phase, the rounds' latency in milliseconds: `steady 12/11/20 ms, injecting …, after …` (mean/p50/p99).
    pub fn latency_text(&self) -> String {
        let phase = |name: &str, r: &RoundStats| match r.unplayed {
            0 => format!("{name} {:.0}/{:.0}/{:.0} ms", r.mean_ms, r.p50_ms, r.p99_ms),
            n if n >= r.total => format!("{name} not played (the service had ended)"),
            n => format!(
                "{name} {:.0}/{:.0}/{:.0} ms ({n} not played: the service had ended)",
                r.mean_ms, r.p50_ms, r.p99_ms
            ),
        };
        format!(
            "round latency mean/p50/p99: {}, {}, {}",
            phase("steady", &self.steady),
            phase("injecting", &self.injected),
            phase("after", &self.after)
        )
    }
}

/// What an achieved rate counts among the matched calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AchievedCounts {
    /// Injections only: the backend does not see the results of the calls it lets run (seccomp, eBPF), and
    /// reports written before natural failures were counted.
    #[default]
    InjectedOnly,
    /// Injections and the natural failures (with the fault's errnos) of the matched calls phoebe let run.
    InjectedAndNatural,
}

impl AchievedCounts {
    /// `Some(natural)` counts them, `None` cannot.
    pub fn of(natural: Option<u64>) -> AchievedCounts {
        match natural {
            Some(_) => AchievedCounts::InjectedAndNatural,
            None => AchievedCounts::InjectedOnly,
        }
    }
}

/// Injected / matched and, when the natural failures are known, (injected + natural) / matched; `None` when no
/// call matched.
pub fn achieved_rates(matched: u64, injected: u64, natural: Option<u64>) -> (Option<f64>, Option<f64>) {
    if matched == 0 {
        return (None, None);
    }
    let rate = |n: u64| n as f64 / matched as f64;
    (
        Some(rate(injected)),
        natural.map(|natural| rate(injected.saturating_add(natural))),
    )
}

impl RunResult {
    /// Injected / matched: the injections alone.
    pub fn achieved_rate(&self) -> Option<f64> {
        achieved_rates(self.matched, self.injected, self.natural).0
    }

    /// (Injected + natural failures) / matched, where the backend saw the natural failures.
    pub fn achieved_total_rate(&self) -> Option<f64> {
        achieved_rates(self.matched, self.injected, self.natural).1
    }
}

/// One experiment: one fault, several runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// Stable name (`openat-ENOENT`), unique in the campaign.
    pub id: String,
    /// The rules injected together: one per call shape for a synthesized model, the one `--fault` otherwise.
    #[serde(alias = "fault", deserialize_with = "one_or_many")]
    pub faults: Vec<FaultSpec>,
    /// The synthesized model the faults come from; `null` for a fault given with `--fault`.
    pub model: Option<ErrorModel>,
    /// The worst run's verdict ([`Verdict::worst`]).
    pub verdict: Verdict,
    /// How many runs had each verdict (every verdict that some run had).
    #[serde(default)]
    pub counts: BTreeMap<Verdict, u32>,
    /// The share of the exercised runs that were findings, with its 95 % interval; `null` when no run was
    /// exercised.
    #[serde(default)]
    pub failures: Option<FailureShare>,
    /// The exercised runs disagree: they had more than one verdict.
    #[serde(default)]
    pub flaky: bool,
    pub runs: Vec<RunResult>,
    /// The target is a test suite (libtest's or pytest's output): the tests that failed in a run of this
    /// experiment but passed in every baseline run, sorted; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken_tests: Vec<String>,
}

/// Of the exercised runs of an experiment, how many were findings (failed, corrupted, crashed, hung), and the
/// 95 % Wilson score interval of that fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailureShare {
    pub failed: u32,
    /// Exercised runs (every run but the not-exercised ones).
    pub of: u32,
    pub low: f64,
    pub high: f64,
}

/// The 95 % Wilson score interval of a proportion: `k` successes in `n` trials. Unlike `k/n ± 1.96 σ`, it stays
/// within [0, 1] and is not empty at 0/n or n/n, which matters with 5 runs. `(0, 1)` when `n` is 0.
pub fn wilson(k: u32, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054; // the 97.5th percentile of the standard normal
    let (k, n) = (f64::from(k.min(n)), f64::from(n));
    let p = k / n;
    let z2 = Z * Z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0/n and n/n one bound is exactly 0 or 1; the subtraction would leave a rounding error.
    let low = if k == 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if k == n { 1.0 } else { (centre + half).min(1.0) };
    (low, high)
}

/// The worst verdict, the count of each verdict, the failure share of the exercised runs and whether they
/// disagree.
fn summary(runs: &[RunResult]) -> (Verdict, BTreeMap<Verdict, u32>, Option<FailureShare>, bool) {
    let verdict = Verdict::worst(runs.iter().map(|r| r.verdict));
    let mut counts = BTreeMap::new();
    for r in runs {
        *counts.entry(r.verdict).or_default() += 1;
    }
    let exercised: Vec<Verdict> = runs
        .iter()
        .map(|r| r.verdict)
        .filter(|v| *v != Verdict::NotExercised)
        .collect();
    let of = exercised.len() as u32;
    let failed = exercised.iter().filter(|v| v.is_finding()).count() as u32;
    let failures = (of > 0).then(|| {
        let (low, high) = wilson(failed, of);
        FailureShare {
            failed,
            of,
            low,
            high,
        }
    });
    let flaky = exercised.iter().any(|v| *v != exercised[0]);
    (verdict, counts, failures, flaky)
}

impl ExperimentResult {
    /// An experiment's result from its runs: the worst verdict, the count of each, the failure share and
    /// whether the runs disagree.
    pub fn from_runs(
        id: String,
        faults: Vec<FaultSpec>,
        model: Option<ErrorModel>,
        runs: Vec<RunResult>,
    ) -> Self {
        let mut result = ExperimentResult {
            id,
            faults,
            model,
            verdict: Verdict::NotExercised,
            counts: BTreeMap::new(),
            failures: None,
            flaky: false,
            runs,
            broken_tests: Vec::new(),
        };
        result.summarize();
        result
    }

    /// Recomputes `verdict`, `counts`, `failures` and `flaky` from the runs.
    pub fn summarize(&mut self) {
        let (verdict, counts, failures, flaky) = summary(&self.runs);
        (self.verdict, self.counts, self.failures, self.flaky) = (verdict, counts, failures, flaky);
    }

    /// The tier of the experiment's model; `observed` for a fault given with `--fault`.
    pub fn tier(&self) -> Tier {
        self.model.as_ref().map_or(Tier::Observed, |m| m.tier)
    }

    /// The run that explains the verdict: the first run with the experiment's (worst) verdict whose damage
    /// outlived it (its plain run after failed: a crash that left files behind), else the first with the verdict.
    pub fn worst_run(&self) -> Option<&RunResult> {
        self.runs
            .iter()
            .find(|r| r.verdict == self.verdict && r.post_run_passed == Some(false))
            .or_else(|| self.runs.iter().find(|r| r.verdict == self.verdict))
    }

    /// `3/5 failed, 2/5 resilient`: how many runs had each verdict, the experiment's verdict first, then in
    /// [`Verdict::ALL`] order.
    /// Computed from the runs, so that reports written before the counts render alike.
    pub fn counts_text(&self) -> String {
        let (verdict, counts, _, _) = summary(&self.runs);
        let total = self.runs.len();
        let mut order = vec![verdict];
        order.extend(Verdict::ALL.iter().copied().filter(|v| *v != verdict));
        order
            .into_iter()
            .filter_map(|v| counts.get(&v).map(|n| format!("{n}/{total} {v}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `23–88%`: the failure share's 95 % interval in whole percents; `-` when no run was exercised.
    pub fn interval_text(&self) -> String {
        summary(&self.runs).2.map_or_else(
            || "-".to_owned(),
            |f| format!("{:.0}–{:.0}%", 100.0 * f.low, 100.0 * f.high),
        )
    }

    /// `failed`, or `failed, flaky` when the exercised runs disagree.
    pub fn verdict_text(&self) -> String {
        if summary(&self.runs).3 {
            format!("{}, flaky", self.verdict)
        } else {
            self.verdict.to_string()
        }
    }

    /// The share of the experiment's injections that landed on a call shape that failed naturally with the same
    /// errno in the baseline, over the runs where that could be told; `None` when it never could or nothing was
    /// injected.
    pub fn realism(&self) -> Option<f64> {
        let (realistic, injected) = self
            .runs
            .iter()
            .filter_map(|r| r.realistic.map(|n| (n, r.injected)))
            .fold((0u64, 0u64), |(a, b), (n, i)| {
                (a.saturating_add(n), b.saturating_add(i))
            });
        (injected > 0).then(|| realistic as f64 / injected as f64)
    }
}

/// An experiment of the plan that the campaign's backend cannot run, so it was not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The experiment's id, as in `experiments`.
    pub id: String,
    #[serde(alias = "fault", deserialize_with = "one_or_many")]
    pub faults: Vec<FaultSpec>,
    /// Why the backend cannot run it, in one sentence naming the backend that can.
    pub reason: String,
}

/// A whole campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub command: Vec<String>,
    pub backend: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The campaign seed every run's seed derives from.
    pub seed: u64,
    /// `K/N` when this report holds one shard of the experiments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The campaign's fingerprint (its settings but the shard, as `campaign.json` says): `report merge` joins
    /// only reports that carry the same one. `null` in reports written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub baseline: Baseline,
    /// Natural error rate per baseline interval, per experiment id (for the charts); interval length below.
    #[serde(default)]
    pub natural_rates: BTreeMap<String, Vec<f64>>,
    pub interval_ms: u64,
    pub experiments: Vec<ExperimentResult>,
    /// Experiments the plan has but this report does not (interrupted, or other shards).
    #[serde(default)]
    pub pending: Vec<String>,
    /// Experiments of this report's part of the plan that the backend cannot run, in plan order; not run, never
    /// a verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// The backend that runs every one of `skipped` (`--backend X runs them`), as the backends' own rule checks
    /// name it when the report is made, merged or loaded; absent when nothing was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_backend: Option<String>,
    /// True when the campaign was interrupted before its last experiment.
    #[serde(default)]
    pub interrupted: bool,
    /// Why the campaign stopped on its own before its last experiment: a run left the program failing even
    /// without injection, so the experiments after it (`pending`) would have been judged on a broken program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl Report {
    /// How many experiments got each verdict.
    pub fn counts(&self) -> BTreeMap<Verdict, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.experiments {
            *counts.entry(e.verdict).or_default() += 1;
        }
        counts
    }

    /// Did an experiment get one of these verdicts (`phoebe exec --fail-on`)? Skipped experiments have no
    /// verdict, so they never fail a campaign.
    pub fn fails_on(&self, verdicts: &[Verdict]) -> bool {
        self.experiments.iter().any(|e| verdicts.contains(&e.verdict))
    }

    /// Did an experiment get a verdict that `--fail-on` lists for its tier?
    pub fn fails_on_tiers(&self, rules: &[FailOn]) -> bool {
        self.experiments
            .iter()
            .any(|e| rules.iter().any(|r| r.matches(e.tier(), e.verdict)))
    }

    /// Does the report hold experiments of the plausible tier (then every renderer counts the tiers apart)?
    pub fn has_plausible(&self) -> bool {
        self.experiments.iter().any(|e| e.tier() == Tier::Plausible)
    }

    /// How many experiments of `tier` got each verdict.
    pub fn counts_of(&self, tier: Tier) -> BTreeMap<Verdict, usize> {
        let mut counts = BTreeMap::new();
        for e in self.experiments.iter().filter(|e| e.tier() == tier) {
            *counts.entry(e.verdict).or_default() += 1;
        }
        counts
    }
}

/// A list of rules, or one rule as reports before call shapes wrote it (`"fault": "…"`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FaultSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(FaultSpec),
        Many(Vec<FaultSpec>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(f) => vec![f],
        OneOrMany::Many(v) => v,
    })
}

/// Rules as one line for people: `a; b`.
pub fn faults_text(faults: &[FaultSpec]) -> String {
    faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_latencies_per_phase() {
        let r = super::RoundStats::from_rounds(3, &[30.0, 10.0, 20.0, 400.0]);
        assert_eq!((r.ok, r.total), (3, 4));
        assert_eq!((r.mean_ms, r.p50_ms, r.p99_ms), (115.0, 20.0, 400.0));
        let none = super::RoundStats::from_rounds(0, &[]);
        assert_eq!(
            (none.total, none.mean_ms, none.p50_ms, none.p99_ms),
            (0, 0.0, 0.0, 0.0)
        );
        let rounds = super::Rounds {
            steady: r,
            injected: r,
            after: none,
        };
        assert_eq!(
            rounds.latency_text(),
            "round latency mean/p50/p99: steady 115/20/400 ms, injecting 115/20/400 ms, after 0/0/0 ms"
        );
    }

    /// Redis exited on an injected AOF write error; the rounds left were not played, and the report said
    /// `after 0/0/0 ms`, as if they had been played in no time.
    #[test]
    fn regression_rounds_not_played_read_as_played_in_no_time() {
        let played = super::RoundStats::from_rounds(0, &[38.0]).out_of(5);
        assert_eq!((played.ok, played.total, played.unplayed), (0, 5, 4));
        let none = super::RoundStats::from_rounds(0, &[]).out_of(5);
        assert_eq!((none.ok, none.total, none.unplayed), (0, 5, 5));
        let steady = super::RoundStats::from_rounds(5, &[20.0; 5]);
        assert_eq!(steady.out_of(5), steady, "every round played");
        let rounds = super::Rounds {
            steady,
            injected: played,
            after: none,
        };
        assert_eq!(
            rounds.latency_text(),
            "round latency mean/p50/p99: steady 20/20/20 ms, injecting 38/38/38 ms (4 not played: the service had \
             ended), after not played (the service had ended)"
        );
        let json = serde_json::to_string(&steady).unwrap();
        assert!(!json.contains("unplayed"), "{json}");
    }

    use super::*;

    #[test]
    fn worst_verdict_wins_and_unexercised_runs_do_not_hide_findings() {
        use Verdict::*;
        assert_eq!(Verdict::worst([Resilient, Failed, Resilient]), Failed);
        assert_eq!(Verdict::worst([Corrupted, Crashed]), Crashed);
        assert_eq!(Verdict::worst([Hung, Crashed]), Hung);
        assert_eq!(Verdict::worst([NotExercised, Resilient]), Resilient);
        assert_eq!(Verdict::worst([NotExercised, NotExercised]), NotExercised);
        assert_eq!(Verdict::worst([]), NotExercised);
    }

    #[test]
    fn skipped_experiments_are_optional_in_the_file_and_never_fail_a_campaign() {
        let mut report = crate::model::fixtures::sample();
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("skipped").is_none(), "not written when empty");
        // A report written before the field existed still loads.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("skipped");
        assert_eq!(serde_json::from_value::<Report>(old).unwrap(), report);

        report.skipped.push(Skipped {
            id: "futex-EAGAIN".into(),
            faults: vec![FaultSpec::parse("futex:EAGAIN").unwrap()],
            reason: "no LSM hook decides 'futex'".into(),
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["skipped"],
            serde_json::json!([{
                "id": "futex-EAGAIN",
                "faults": ["futex:EAGAIN"],
                "reason": "no LSM hook decides 'futex'"
            }])
        );
        assert_eq!(serde_json::from_value::<Report>(json.clone()).unwrap(), report);
        // Reports from before call shapes name one rule, as "fault".
        let mut old = json;
        old["skipped"][0].as_object_mut().unwrap().remove("faults");
        old["skipped"][0]["fault"] = "futex:EAGAIN".into();
        assert_eq!(serde_json::from_value::<Report>(old).unwrap(), report);

        report.experiments.clear();
        assert!(
            !report.fails_on(&Verdict::ALL),
            "a skipped experiment has no verdict to fail on"
        );
        report.experiments = crate::model::fixtures::sample().experiments;
        assert!(report.fails_on(&[Verdict::Failed]));
        assert!(!report.fails_on(&[Verdict::Crashed, Verdict::Hung]));
        let rule = |s: &str| s.parse::<FailOn>().unwrap();
        assert!(report.fails_on_tiers(&[rule("failed")]));
        assert!(report.fails_on_tiers(&[rule("observed:failed")]));
        assert!(!report.fails_on_tiers(&[rule("plausible:failed")]));
        assert_eq!(rule("plausible:corrupted").to_string(), "plausible:corrupted");
        let err = "plausable:failed".parse::<FailOn>().unwrap_err();
        assert!(err.contains("unknown tier 'plausable'"), "{err}");
        let err = "plausible".parse::<FailOn>().unwrap_err();
        assert!(err.contains("write plausible:VERDICT"), "{err}");
    }

    #[test]
    fn wilson_interval_matches_published_values_and_stays_in_0_1() {
        let close = |(lo, hi): (f64, f64), (elo, ehi): (f64, f64)| {
            assert!(
                (lo - elo).abs() < 5e-4 && (hi - ehi).abs() < 5e-4,
                "({lo}, {hi}) vs ({elo}, {ehi})"
            );
        };
        // Reference values (z = 1.96) as R's prop.test(correct = FALSE) and Wilson (1927) give them.
        close(wilson(0, 5), (0.0, 0.4345));
        close(wilson(5, 5), (0.5655, 1.0));
        close(wilson(3, 5), (0.2307, 0.8824));
        close(wilson(1, 10), (0.0179, 0.4041));
        close(wilson(50, 100), (0.4038, 0.5962));
        assert_eq!(wilson(0, 0), (0.0, 1.0), "no runs: nothing is known");
        // Symmetric: k of n failing is n-k of n passing, mirrored.
        for n in 1..=20 {
            for k in 0..=n {
                let (lo, hi) = wilson(k, n);
                let (mlo, mhi) = wilson(n - k, n);
                assert!((lo - (1.0 - mhi)).abs() < 1e-12 && (hi - (1.0 - mlo)).abs() < 1e-12);
                let p = f64::from(k) / f64::from(n);
                assert!(
                    (0.0..=p).contains(&lo) && (p..=1.0).contains(&hi),
                    "{k}/{n}: ({lo}, {hi})"
                );
            }
        }
        // More runs, narrower interval.
        let width = |k, n| {
            let (lo, hi) = wilson(k, n);
            hi - lo
        };
        assert!(width(5, 10) < width(1, 2) && width(50, 100) < width(5, 10));
    }

    fn run(run: u32, verdict: Verdict, detail: &str) -> RunResult {
        RunResult {
            run,
            seed: u64::from(run),
            verdict,
            detail: detail.into(),
            exit: Some(TargetExit::Code(0)),
            duration_ms: 1,
            usage: None,
            matched: 1,
            injected: u64::from(verdict != Verdict::NotExercised),
            natural: None,
            achieved_counts: AchievedCounts::InjectedOnly,
            realistic: None,
            check_passed: None,
            post_run_passed: None,
            log: String::new(),
            rounds: None,
            evidence: None,
            settles: false,
        }
    }

    /// tempfile's `mmap-ENOMEM`: three crashed runs, the third left sockets behind that broke the suite, and the
    /// report's detail and evidence named run 1.
    #[test]
    fn regression_the_worst_run_was_not_the_crash_that_left_damage() {
        use Verdict::*;
        let mut damaging = run(3, Crashed, "killed by SIGABRT");
        damaging.post_run_passed = Some(false);
        let result = ExperimentResult::from_runs(
            "mmap-ENOMEM".into(),
            vec![FaultSpec::parse("mmap:ENOMEM:p=0.05").unwrap()],
            None,
            vec![
                run(1, Crashed, "killed by SIGABRT"),
                run(2, Crashed, "killed by SIGABRT"),
                damaging,
            ],
        );
        assert_eq!(result.worst_run().unwrap().run, 3);
    }

    #[test]
    fn an_experiment_counts_each_verdict_and_names_its_worst_run() {
        use Verdict::*;
        let result = ExperimentResult::from_runs(
            "read-EIO".into(),
            vec![FaultSpec::parse("read:EIO:p=0.5").unwrap()],
            None,
            vec![
                run(1, Resilient, "like the baseline"),
                run(2, Failed, "exit status 1"),
                run(3, NotExercised, "none drawn"),
                run(4, Crashed, "killed by SIGABRT"),
                run(5, Failed, "exit status 1"),
            ],
        );
        assert_eq!(result.verdict, Crashed);
        assert_eq!(
            result.worst_run().unwrap().run,
            4,
            "the worst run, not run 1 nor the first finding"
        );
        assert_eq!(
            result.counts,
            BTreeMap::from([(Resilient, 1), (NotExercised, 1), (Failed, 2), (Crashed, 1)])
        );
        assert_eq!(
            result.counts_text(),
            "1/5 crashed, 1/5 resilient, 1/5 not-exercised, 2/5 failed"
        );
        let share = result.failures.unwrap();
        assert_eq!(
            (share.failed, share.of),
            (3, 4),
            "not-exercised runs tell nothing about coping"
        );
        assert!(result.flaky);
        assert_eq!(result.verdict_text(), "crashed, flaky");
        assert_eq!(result.interval_text(), "30–95%");
        // Unanimous runs are not flaky; unexercised runs do not make them so.
        let steady = ExperimentResult::from_runs(
            "x".into(),
            vec![],
            None,
            vec![
                run(1, Failed, "a"),
                run(2, NotExercised, "b"),
                run(3, Failed, "c"),
            ],
        );
        assert!(!steady.flaky);
        assert_eq!(steady.counts_text(), "2/3 failed, 1/3 not-exercised");
        let never = ExperimentResult::from_runs("y".into(), vec![], None, vec![run(1, NotExercised, "n")]);
        assert_eq!((never.failures, never.interval_text()), (None, "-".to_owned()));
        // The fields are in the file, and a report written before them still loads and renders alike.
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["counts"]["failed"], 2);
        assert_eq!(json["failures"]["of"], 4);
        assert_eq!(json["flaky"], true);
        let mut old = json.clone();
        for field in ["counts", "failures", "flaky"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let old: ExperimentResult = serde_json::from_value(old).unwrap();
        assert_eq!(old.counts_text(), result.counts_text());
        assert_eq!(old.verdict_text(), result.verdict_text());
    }

    #[test]
    fn regression_a_go_programs_fatal_error_was_explained_by_a_stack_frame() {
        // promtool under `pipe2:EMFILE`: Go's runtime names the errno by number, then its headline, then 110
        // lines of goroutine stacks; the tail's last line (a frame) was the evidence.
        let go = "runtime: pipe failed with 24\nfatal error: runtime: pipe failed\n\ngoroutine 1 [running]:\n\
                  runtime.throw({0x1faf0f3?, 0xc000000004?})\n\truntime/panic.go:1047 +0x5d\n\
                  created by runtime.createfing\n\truntime/mfinal.go:157 +0x45\n";
        assert_eq!(
            crash_line(go).as_deref(),
            Some("fatal error: runtime: pipe failed")
        );
        let evidence = RunEvidence {
            stderr_tail: tail_lines(go),
            crash_line: crash_line(go),
            ..crate::model::fixtures::sample_with_evidence().experiments[1].runs[1]
                .evidence
                .clone()
                .unwrap()
        };
        assert_eq!(
            evidence.telling_line().as_deref(),
            Some("fatal error: runtime: pipe failed")
        );
        // A line that names the injected error comes first.
        let named = RunEvidence {
            error_line: Some("open prom.yml: too many open files".into()),
            ..evidence.clone()
        };
        assert_eq!(
            named.telling_line().as_deref(),
            Some("open prom.yml: too many open files")
        );
        // Each runtime's headline; Rust's and C++'s message on the next line joins it.
        for (text, line) in [
            (
                "note: x\nthread 'main' panicked at src/main.rs:2:5:\ncalled `Result::unwrap()` on an `Err` value\n",
                "thread 'main' panicked at src/main.rs:2:5: called `Result::unwrap()` on an `Err` value",
            ),
            (
                "thread 'main' (12586) panicked at src/main.rs:2:5:\nboom\nstack backtrace:\n",
                "thread 'main' (12586) panicked at src/main.rs:2:5: boom",
            ),
            (
                "thread 'main' panicked at 'boom', src/main.rs:2:5\nnote: …\n",
                "thread 'main' panicked at 'boom', src/main.rs:2:5",
            ),
            (
                "terminate called after throwing an instance of 'std::runtime_error'\n  what():  disk full\nAborted\n",
                "terminate called after throwing an instance of 'std::runtime_error' what():  disk full",
            ),
            (
                "panic: runtime error: index out of range [3]\n\ngoroutine 1",
                "panic: runtime error: index out of range [3]",
            ),
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: x\n\tat A.b(A.java:1)",
                "Exception in thread \"main\" java.lang.OutOfMemoryError: x",
            ),
            (
                "Fatal Python error: init_fs_encoding: failed\nPython runtime state",
                "Fatal Python error: init_fs_encoding: failed",
            ),
            (
                "app: main.c:12: main: Assertion `fd >= 0' failed.\nAborted",
                "app: main.c:12: main: Assertion `fd >= 0' failed.",
            ),
            (
                "Fatal glibc error: pthread_mutex_lock.c:94 failed\n",
                "Fatal glibc error: pthread_mutex_lock.c:94 failed",
            ),
        ] {
            assert_eq!(crash_line(text).as_deref(), Some(line), "{text}");
        }
        // No headline, no line: a program's own error messages are the tails' and error_line's business.
        assert_eq!(crash_line("error: cannot open x\npanicking is not this\n"), None);
        // A longer headline keeps its start.
        let long = format!("fatal error: {}\n", "x".repeat(1000));
        let line = crash_line(&long).unwrap();
        assert!(
            line.starts_with("fatal error: xxx") && line.ends_with('…'),
            "{line}"
        );
        assert!(line.len() <= ERROR_LINE_BYTES, "{}", line.len());
        // In report.json only when found; a report written before it loads.
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["crash_line"], "fatal error: runtime: pipe failed");
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("crash_line");
        let old: RunEvidence = serde_json::from_value(old).unwrap();
        assert_eq!(old.crash_line, None);
    }

    /// Node 20 under `pipe2-EMFILE`: libuv could not make its tracing loop, Node's CHECK printed its assertion
    /// behind `#`, then a native stack, and the evidence was the stack's last frame (`7: 0xbb835e _start [node]`).
    #[test]
    fn regression_nodes_failed_assertion_was_explained_by_its_last_stack_frame() {
        for (text, line) in [
            (
                "\n  #  node[22130]: node::tracing::Agent::Agent() at ../src/tracing/agent.cc:55\n  #  Assertion \
                 failed: (uv_loop_init(&tracing_loop_)) == (0)\n\n----- Native stack trace -----\n\n 1: 0xcb5167 \
                 node::Assert(node::AssertionInfo const&) [node]\n 7: 0xbb835e _start [node]\n",
                "Assertion failed: (uv_loop_init(&tracing_loop_)) == (0)",
            ),
            (
                "\n<--- Last few GCs --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out \
                 of memory\n 1: 0xb8 node::Abort() [node]\n",
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            ),
            (
                "\n#\n# Fatal error in , line 0\n# Fatal process out of memory: Failed to reserve memory for new V8 \
                 Isolate\n#\n#\n",
                "Fatal error in , line 0 Fatal process out of memory: Failed to reserve memory for new V8 Isolate",
            ),
        ] {
            assert_eq!(crash_line(text).as_deref(), Some(line), "{text}");
        }
    }

    /// javac (JDK 17) under `mmap-ENOMEM`: HotSpot said why it stopped on stdout, behind `#`, and the evidence was
    /// a warning of stderr. Its headers are crash lines, looked for in stdout too (`crash_file` says where).
    #[test]
    fn regression_hotspots_fatal_header_was_passed_over_for_a_warning() {
        for (text, line) in [
            (
                "#\n# There is insufficient memory for the Java Runtime Environment to continue.\n# Native memory \
                 allocation (mmap) failed to map 16384 bytes. Error detail: committing reserved memory.\n# An \
                 error report file with more information is saved as:\n",
                "There is insufficient memory for the Java Runtime Environment to continue. Native memory \
                 allocation (mmap) failed to map 16384 bytes. Error detail: committing reserved memory.",
            ),
            (
                "#\n# A fatal error has been detected by the Java Runtime Environment:\n#\n#  SIGSEGV (0xb) at \
                 pc=0x00007f, pid=12, tid=13\n#\n",
                "A fatal error has been detected by the Java Runtime Environment: SIGSEGV (0xb) at pc=0x00007f, \
                 pid=12, tid=13",
            ),
        ] {
            assert_eq!(crash_line(text).as_deref(), Some(line), "{text}");
        }
    }

    #[test]
    fn regression_phoebes_own_warning_was_taken_for_the_programs_error_line() {
        // A hand-written fault's realism warning names its errno, and it is in the run's stderr before the
        // program's output.
        let err = "phoebe: warning: fault 'read:EIO:path=/t/in': read on fd=dir never returns EIO: only a file …\n\
                   hint: what it breaks there says nothing about the program; … EIO …\n\
                   app: /t/in: Input/output error\nhint: git's own hint, EIO\n";
        assert_eq!(
            error_line(err, &["EIO", "Input/output error"]).as_deref(),
            Some("app: /t/in: Input/output error")
        );
        assert_eq!(error_line("phoebe: warning: EIO\nhint: EIO\n", &["EIO"]), None);
        // A `hint:` line that follows the program's own line is the program's.
        assert_eq!(
            error_line("phoebe: x\napp: ok\nhint: EIO\n", &["EIO"]).as_deref(),
            Some("hint: EIO")
        );
    }

    #[test]
    fn regression_a_cascade_of_errors_was_explained_by_its_last_consequence() {
        // SQLite's shell goes on after a failed statement: the first line says what happened, the last says least.
        let sqlite = "Runtime error near line 2: disk I/O error (10)\nParse error near line 4: no such table: t\n\
                      Parse error near line 10: no such table: t\n";
        let first = complaint_line(sqlite, |_| false);
        assert_eq!(
            first.as_deref(),
            Some("Runtime error near line 2: disk I/O error (10)")
        );
        let evidence = RunEvidence {
            stderr_tail: tail_lines(sqlite),
            complaint_line: first,
            ..RunEvidence::default()
        };
        assert_eq!(
            evidence.telling_line().as_deref(),
            Some("Runtime error near line 2: disk I/O error (10)")
        );
        // What every baseline run printed is no explanation; neither are phoebe's own lines nor indented ones.
        let text = "warning: cache unavailable, cannot speed up\nphoebe: warning: fault x never fails\n\
                    Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n    \
                    raise_error()\nsqlite3.OperationalError: disk I/O error\n";
        let steady = |l: &str| l == "warning: cache unavailable, cannot speed up";
        assert_eq!(
            complaint_line(text, steady).as_deref(),
            Some("sqlite3.OperationalError: disk I/O error")
        );
        assert_eq!(complaint_line("wal\n20000\n", |_| false), None);
        assert_eq!(complaint_line("", |_| false), None);
        // A long line keeps its start.
        let long = format!("error: {}", "x".repeat(2 * ERROR_LINE_BYTES));
        assert!(
            complaint_line(&long, |_| false)
                .unwrap()
                .starts_with("error: xxx")
        );
    }

    #[test]
    fn regression_a_warning_the_program_went_on_after_was_taken_for_why_it_failed() {
        // git under openat-ENFILE: a warning about its config, then cp's errors, which failed the script.
        let text = "warning: unable to access '/root/.gitconfig': Too many open files in system\n\
                    cp: cannot open 'src/f106.txt' for reading: Too many open files in system\n";
        let said = ["ENFILE", "Too many open files in system"];
        assert_eq!(
            error_line(text, &said).as_deref(),
            Some("cp: cannot open 'src/f106.txt' for reading: Too many open files in system")
        );
        assert_eq!(
            complaint_line("[WARN] slow disk, cannot cache\nerror: gave up\n", |_| false).as_deref(),
            Some("error: gave up")
        );
        // A warning is still the line when it is the only one.
        let only = "warning: unable to access '/root/.gitconfig': Too many open files in system\n";
        assert_eq!(error_line(only, &said).as_deref(), Some(only.trim()));
        assert_eq!(
            complaint_line("[WARN] slow disk, cannot cache\n", |_| false).as_deref(),
            Some("[WARN] slow disk, cannot cache")
        );
    }

    #[test]
    fn regression_a_failed_check_was_explained_by_no_output() {
        // stderr's complaint first, then stdout's, else the last line.
        assert_eq!(
            check_line("", "check: Error: in prepare, no such table: t\nok\n"),
            Some(("check: Error: in prepare, no such table: t".into(), "out"))
        );
        assert_eq!(
            check_line("diff: missing file\n", "Only in a: b\n"),
            Some(("diff: missing file".into(), "err"))
        );
        assert_eq!(
            check_line("", "3c3\n< x\n---\n> y\n"),
            Some(("> y".into(), "out"))
        );
        assert_eq!(check_line("", "\n"), None);
        let evidence = RunEvidence {
            check_line: Some("Only in a: b".into()),
            stdout_tail: vec!["done".into()],
            ..RunEvidence::default()
        };
        assert_eq!(
            evidence.telling_line().as_deref(),
            Some("the check said: Only in a: b")
        );
        // The program's own stderr still comes first.
        let evidence = RunEvidence {
            stderr_tail: vec!["write: short".into()],
            ..evidence
        };
        assert_eq!(evidence.telling_line().as_deref(), Some("write: short"));
        // Reports written before these fields load.
        let json = serde_json::to_value(&evidence).unwrap();
        assert!(json.get("complaint_line").is_none() && json["check_line"] == "Only in a: b");
        let old: RunEvidence = serde_json::from_str(r#"{"stderr_tail": ["x"]}"#).unwrap();
        assert_eq!(
            (old.complaint_line, old.check_line, old.check_file),
            (None, None, String::new())
        );
    }

    #[test]
    fn error_line_is_the_first_line_that_names_an_injected_error() {
        let log = "LOG:  starting\nERROR:  could not read block 0 in file \"base/5/1259\": Input/output error\n\
                   ERROR:  again: Input/output error\nLOG:  database system is shut down\n";
        assert_eq!(
            error_line(log, &["No space left on device", "Input/output error"]).as_deref(),
            Some("ERROR:  could not read block 0 in file \"base/5/1259\": Input/output error")
        );
        assert_eq!(error_line(log, &["Too many open files"]), None);
        // libuv (Node.js) and Go write their own texts: the symbolic name, as a word, or the text in lowercase.
        let node = "listening on 8091\nhit: ENOSPC: no space left on device, write\n";
        assert_eq!(
            error_line(node, &["ENOSPC"]).as_deref(),
            Some("hit: ENOSPC: no space left on device, write")
        );
        assert_eq!(
            error_line("open x: no space left on device\n", &["No space left on device"]).as_deref(),
            Some("open x: no space left on device")
        );
        assert_eq!(error_line("XENOSPCY and ENOSPC_2\n", &["ENOSPC"]), None);
        assert_eq!(error_line(log, &[""]), None);
        // A long line keeps the part that ends with the text, within the bound.
        let long = format!("{}: No space left on device trailing", "x".repeat(1000));
        let line = error_line(&long, &["No space left on device"]).unwrap();
        assert!(line.len() <= ERROR_LINE_BYTES, "{}", line.len());
        assert!(
            line.starts_with('…') && line.contains("x: No space left on device"),
            "{line}"
        );
        let ev = RunEvidence {
            error_line: Some("said it".into()),
            stderr_tail: vec!["last".into()],
            ..RunEvidence::default()
        };
        assert_eq!(ev.telling_line().as_deref(), Some("said it"));
    }

    #[test]
    fn tails_keep_the_last_lines_within_their_bounds() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect::<String>() + "\n\n";
        let tail = tail_lines(&text);
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(
            (tail[0].as_str(), tail[19].as_str()),
            ("line 11", "line 30"),
            "trailing blanks dropped"
        );
        let long = format!("start\n{}end", "é".repeat(3000));
        let tail = tail_lines(&long);
        assert_eq!(tail.len(), 1, "one line fills the bytes");
        assert!(tail[0].starts_with('…') && tail[0].ends_with("end") && tail[0].len() <= TAIL_BYTES + 3);
        assert_eq!(tail_lines("a\x1b[31mred\tb\r\n"), ["a\u{fffd}[31mred\tb"]);
        assert!(tail_lines("").is_empty());
        let ev = RunEvidence {
            stderr_tail: vec!["boom".into(), "  ".into()],
            ..RunEvidence::default()
        };
        assert_eq!(ev.telling_line().as_deref(), Some("boom"));
    }

    /// Python's `http.server` under `mmap:ENOMEM`: the evidence line was `MemoryError:`, the last of the run's
    /// stderr; the line before it says where (a thread that died starting).
    #[test]
    fn regression_a_one_word_last_line_was_shown_without_the_line_that_explains_it() {
        let ev = RunEvidence {
            stderr_tail: vec![
                "127.0.0.1 - - \"GET /p2.txt HTTP/1.1\" 200 -".into(),
                "Exception ignored in thread started by: <object repr() failed>".into(),
                "MemoryError: ".into(),
                "".into(),
            ],
            ..RunEvidence::default()
        };
        assert_eq!(
            ev.telling_line().as_deref(),
            Some("Exception ignored in thread started by: <object repr() failed> / MemoryError:")
        );
        // A last line of several words says something alone.
        let said = RunEvidence {
            stderr_tail: vec!["first".into(), "ValueError: bad input".into()],
            ..RunEvidence::default()
        };
        assert_eq!(said.telling_line().as_deref(), Some("ValueError: bad input"));
        // A single word with nothing before it is shown alone; stdout is read when stderr is empty.
        let alone = RunEvidence {
            stdout_tail: vec!["FAILED".into()],
            ..RunEvidence::default()
        };
        assert_eq!(alone.telling_line().as_deref(), Some("FAILED"));
    }

    #[test]
    fn an_injected_call_names_its_path_once() {
        let call = InjectedCall {
            syscall: Syscall::parse("openat").unwrap(),
            effect: Effect::Errno(crate::model::Errno::parse("ENOENT").unwrap()),
            delay_ns: None,
            index: 3,
            shape: None,
            path: Some("/etc/app.conf".into()),
            interrupted_by: None,
        };
        assert_eq!(call.to_string(), "openat #3 → ENOENT (path=/etc/app.conf)");
        let with_shape = InjectedCall {
            shape: Some("fd=file:path=/etc/app.conf".into()),
            ..call.clone()
        };
        assert_eq!(
            with_shape.to_string(),
            "openat #3 → ENOENT (fd=file:path=/etc/app.conf)"
        );
        let short = InjectedCall {
            syscall: Syscall::parse("read").unwrap(),
            effect: Effect::Short(1),
            delay_ns: None,
            index: 2,
            shape: Some("fd=unix-stream".into()),
            path: None,
            interrupted_by: None,
        };
        assert_eq!(short.to_string(), "read #2 → short=1 (fd=unix-stream)");
        let json = serde_json::to_string(&short).unwrap();
        assert!(json.contains(r#""short":1"#) && !json.contains("errno"), "{json}");
        assert_eq!(serde_json::from_str::<InjectedCall>(&json).unwrap(), short);
        let held = InjectedCall {
            syscall: Syscall::parse("read").unwrap(),
            effect: Effect::Run,
            delay_ns: Some(50_000_000),
            index: 2,
            shape: None,
            path: None,
            interrupted_by: None,
        };
        assert_eq!(held.to_string(), "read #2 → delay=50ms");
        let json = serde_json::to_string(&held).unwrap();
        assert!(!json.contains("errno") && !json.contains("short"), "{json}");
        assert_eq!(serde_json::from_str::<InjectedCall>(&json).unwrap(), held);
    }

    /// tar | gzip: the plausible `read-EINTR` failed gzip ("gzip: stdin: Interrupted system call"), whose handlers
    /// of SIGHUP, SIGINT, SIGPIPE, SIGTERM, SIGXCPU and SIGXFSZ remove its output and re-raise the signal: they
    /// never return, so no read of gzip's ever sees EINTR. phoebe cannot know what a handler does, but the
    /// finding now says which handlers its EINTR needs, so that whoever reads it can tell.
    #[test]
    fn regression_an_eintr_finding_did_not_say_which_handler_it_needs() {
        let call = InjectedCall {
            syscall: Syscall::parse("read").unwrap(),
            effect: Effect::Errno(crate::model::Errno::parse("EINTR").unwrap()),
            delay_ns: None,
            index: 4,
            shape: Some("fd=pipe:nonblock=no:caught=yes".into()),
            path: None,
            interrupted_by: Some(vec!["SIGHUP".into(), "SIGINT".into(), "SIGTERM".into()]),
        };
        assert_eq!(
            call.to_string(),
            "read #4 → EINTR (fd=pipe:nonblock=no:caught=yes, needs a SIGHUP, SIGINT or SIGTERM handler that returns)"
        );
        let one = InjectedCall {
            interrupted_by: Some(vec!["SIGCHLD".into()]),
            ..call.clone()
        };
        assert!(
            one.to_string()
                .ends_with(", needs a SIGCHLD handler that returns)")
        );
        let none = InjectedCall {
            interrupted_by: Some(vec![]),
            shape: None,
            ..call.clone()
        };
        assert_eq!(
            none.to_string(),
            "read #4 → EINTR (no handler of the process would interrupt it)"
        );
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["interrupted_by"][1], "SIGINT");
        let unknown = InjectedCall {
            interrupted_by: None,
            ..call
        };
        assert!(
            !serde_json::to_string(&unknown)
                .unwrap()
                .contains("interrupted_by")
        );
    }

    /// Issue 14 item 5: achieved = (injected + natural failures) / matched beside injected / matched.
    #[test]
    fn achieved_rates_count_natural_failures_when_known() {
        assert_eq!(achieved_rates(200, 7, Some(17)), (Some(0.035), Some(0.12)));
        assert_eq!(achieved_rates(200, 7, None), (Some(0.035), None));
        assert_eq!(achieved_rates(0, 0, Some(0)), (None, None));
        assert_eq!(achieved_rates(4, 0, Some(4)), (Some(0.0), Some(1.0)));
        assert_eq!(
            achieved_rates(2, u64::MAX, Some(1)).1,
            Some(u64::MAX as f64 / 2.0),
            "saturates"
        );
        assert_eq!(AchievedCounts::of(Some(0)), AchievedCounts::InjectedAndNatural);
        assert_eq!(AchievedCounts::of(None), AchievedCounts::InjectedOnly);
        assert_eq!(
            serde_json::to_string(&AchievedCounts::InjectedOnly).unwrap(),
            "\"injected-only\""
        );
    }

    #[test]
    fn verdict_names() {
        assert_eq!(
            serde_json::to_string(&Verdict::NotExercised).unwrap(),
            "\"not-exercised\""
        );
        assert_eq!("corrupted".parse::<Verdict>().unwrap(), Verdict::Corrupted);
        assert!(
            "broken"
                .parse::<Verdict>()
                .unwrap_err()
                .contains("resilient, not-exercised")
        );
        assert!(Verdict::Failed.is_finding() && !Verdict::NotExercised.is_finding());
    }
}
