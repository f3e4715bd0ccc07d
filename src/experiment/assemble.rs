//! Assembling the report: what a run's injection log sums up to (the one place plain and service runs count
//! it), and the campaign's [`Report`] from its baseline, plan and results.

use super::{Campaign, Experiment};
use crate::model::{
    Baseline, Effect, ExperimentResult, FORMAT_VERSION, InjectedCall, InjectionLog, Plan, Report,
    RunEvidence, Usage, Verdict,
    report::{FIRST_INJECTIONS, check_line, complaint_line, crash_line, error_line, tail_lines},
};

/// The (syscall, errno, shape) triples that failed naturally in the baseline.
pub(super) type NaturalShapes =
    std::collections::BTreeSet<(crate::model::Syscall, crate::model::Errno, String)>;

/// How many of a run's injections landed on a shape that failed naturally with their errno; `None` when the
/// baseline or the log has no shapes, the log is truncated (the injections after it are unknown), or it holds a
/// latency fault's calls or partial transfers (no errno: realism does not apply, the report says `-`).
fn realistic(log: Option<&InjectionLog>, natural: Option<&NaturalShapes>) -> Option<u64> {
    let (log, natural) = (log.filter(|l| l.truncated_after.is_none())?, natural?);
    let mut n = 0;
    for inj in &log.injections {
        // A partial transfer or a latency fault's call is no error: the baseline records errors only, so whether
        // either happened naturally on that shape cannot be told.
        let Effect::Errno(errno) = inj.effect else {
            return None;
        };
        // As the baseline's failed shapes are kept: as the errno sees the shape.
        let shape = crate::model::shape::for_errno(inj.shape.as_ref()?, Some(errno)).to_string();
        if natural.contains(&(inj.syscall, errno, shape)) {
            n += 1;
        }
    }
    Some(n)
}

/// What a run's injection log sums up to; zeros (and `None`) without a log.
pub(super) struct LogSums {
    pub(super) injected: u64,
    pub(super) matched: u64,
    /// Natural failures of the matched calls, when the backend saw them for every rule
    /// (`RuleStats::natural`).
    pub(super) natural: Option<u64>,
    pub(super) usage: Option<Usage>,
    /// [`realistic`].
    pub(super) realistic: Option<u64>,
    /// The signal the injections raised with their errno, as the kernel does (SIGPIPE with a write's EPIPE), if
    /// any of the logged ones did.
    pub(super) raised: Option<i32>,
    /// Calls the rules' guards kept out, by what they had, summed over the rules (`RuleStats::guarded`).
    pub(super) guarded: Vec<(String, u64)>,
}

impl LogSums {
    pub(super) fn of(log: Option<&InjectionLog>, natural: Option<&NaturalShapes>) -> LogSums {
        LogSums {
            injected: log.map_or(0, |l| l.rules.iter().map(|r| r.injected).sum()),
            matched: log.map_or(0, |l| l.rules.iter().map(|r| r.matched).sum()),
            natural: log.and_then(|l| l.rules.iter().map(|r| r.natural).sum()),
            usage: log.and_then(|l| l.usage),
            realistic: realistic(log, natural),
            raised: log.and_then(|l| l.injections.iter().find_map(|i| i.signal)),
            guarded: log
                .map(|l| {
                    let mut sum = std::collections::BTreeMap::<String, u64>::new();
                    for (had, n) in l.rules.iter().flat_map(|r| &r.guarded) {
                        *sum.entry(had.clone()).or_default() += n;
                    }
                    sum.into_iter().collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The backend the runs of `experiments` injected with: the campaign's, or without `--backend` the one each
/// run's `phoebe inject` chose ([`backend::for_rules`](crate::backend::for_rules): seccomp unless a rule needs ptrace), those of all
/// experiments joined with `, ` in the order they first ran; [`super::campaign::AUTO_BACKEND`] only when no
/// experiment ran.
fn backend_that_ran(campaign: &Campaign, experiments: &[ExperimentResult]) -> String {
    if campaign.backend.is_some() {
        return campaign.backend_name().to_owned();
    }
    let mut ran: Vec<&str> = Vec::new();
    for e in experiments {
        let name = crate::backend::for_rules(&e.faults).name();
        if !ran.contains(&name) {
            ran.push(name);
        }
    }
    if ran.is_empty() {
        campaign.backend_name().to_owned()
    } else {
        ran.join(", ")
    }
}

/// The campaign's report: its baseline, the natural failure rate of each model's shape per interval, and the
/// results; nothing pending, skipped or interrupted (the caller says).
pub(super) fn report(
    campaign: &Campaign,
    baseline: &Baseline,
    plan: &Plan,
    all: &[Experiment],
    intervals: &[crate::model::Interval],
    experiments: Vec<ExperimentResult>,
) -> Report {
    let natural_rates = all
        .iter()
        .filter_map(|e| e.model.as_ref().map(|m| (e, m)))
        .map(|(e, m)| {
            let rates = intervals
                .iter()
                .map(|i| match i.syscalls.get(&m.syscall) {
                    Some(s) if s.calls > 0 => {
                        m.action
                            .errno()
                            .and_then(|errno| s.errors.get(&errno))
                            .copied()
                            .unwrap_or(0) as f64
                            / s.calls as f64
                    }
                    _ => 0.0,
                })
                .collect();
            (e.id.clone(), rates)
        })
        .collect();
    Report {
        version: FORMAT_VERSION,
        command: campaign.command.clone(),
        backend: backend_that_ran(campaign, &experiments),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        seed: campaign.seed,
        shard: campaign.shard.map(|s| s.to_string()),
        fingerprint: Some(campaign.fingerprint.clone()).filter(|f| !f.is_empty()),
        baseline: baseline.clone(),
        natural_rates,
        interval_ms: plan.interval_ms,
        experiments,
        pending: Vec::new(),
        skipped: Vec::new(),
        skipped_backend: None,
        interrupted: false,
        stopped: None,
    }
}

/// Where a run's evidence comes from: its own files and how it was started.
pub(super) struct RunFiles<'a> {
    /// The experiment's directory, and the same relative to the campaign directory.
    pub(super) dir: &'a std::path::Path,
    pub(super) rel: &'a str,
    /// The run's number K: its output is `run-K.out` / `run-K.err`, its log `run-K.log.json`, the plain run
    /// after injection's `post-K.err`.
    pub(super) run: u32,
    /// The run's verdict: a corrupted run's plain run after it tells why; a hung run's log ends where the
    /// timeout stopped it, so it is not replayed.
    pub(super) verdict: Verdict,
    pub(super) log: Option<&'a InjectionLog>,
    /// The program's own log files (`--log-file`), each with its length when the run started.
    pub(super) program_logs: &'a [(std::path::PathBuf, u64)],
    /// The run's `--check` failed: what it said is evidence (`run-K.check.err`, `run-K.check.out`).
    pub(super) check_failed: bool,
    /// The lines the baseline runs printed ([`steady_lines`]), which explain no finding.
    pub(super) steady: &'a std::collections::HashSet<String>,
    /// Service mode: the first workload round that failed while injecting or after (`run-1-injected-round-3`).
    pub(super) failed_round: Option<&'a str>,
}

/// The lines, trimmed, that the baseline runs in `baseline_dir` (`run-1.err` … `run-N.err`, and their `.out`)
/// printed: a warning every run prints, or a test whose name says `error`, is not where a finding's run said what
/// went wrong ([`complaint_line`]). At most [`ERROR_LINE_SCAN`] bytes of each.
pub(super) fn steady_lines(baseline_dir: &std::path::Path, runs: usize) -> std::collections::HashSet<String> {
    (1..=runs)
        .flat_map(|k| ["err", "out"].map(|ext| baseline_dir.join(format!("run-{k}.{ext}"))))
        .filter_map(|path| scan(&path, 0))
        .flat_map(|text| text.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A finding run's evidence ([`RunEvidence`], `None` for a run that is no finding): the tails of its output files, its first injections, and the command that
/// runs it again — `inject` was the command phoebe ran (`phoebe inject … --seed N --log L -- CMD`), made into
/// `--replay L` when the log can be replayed and the run did not hang.
pub(super) fn evidence(
    files: &RunFiles<'_>,
    phoebe: &std::path::Path,
    inject: &[String],
) -> Option<RunEvidence> {
    // Only a finding is explained: a resilient or unexercised run has nothing to show.
    if !files.verdict.is_finding() {
        return None;
    }
    let base = format!("run-{}", files.run);
    let read = |name: &str| {
        let bytes = std::fs::read(files.dir.join(name)).unwrap_or_default();
        tail_lines(&String::from_utf8_lossy(&bytes))
    };
    let post = format!("post-{}.err", files.run);
    let post_stderr_tail = if files.verdict == Verdict::Corrupted {
        read(&post)
    } else {
        Vec::new()
    };
    let first_injections = files
        .log
        .map(|l| {
            l.injections
                .iter()
                .take(FIRST_INJECTIONS)
                .map(|i| InjectedCall {
                    syscall: i.syscall,
                    effect: i.effect,
                    delay_ns: i.delay_ns,
                    index: i.index,
                    shape: i.shape.as_ref().map(ToString::to_string),
                    path: i.path.clone(),
                    interrupted_by: i.interrupted_by.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    // The run's stderr, read once for every line looked for; its stdout once too, when first needed.
    let stderr = scan(&files.dir.join(format!("{base}.err")), 0);
    let stdout = std::cell::OnceCell::new();
    let stdout = || {
        stdout
            .get_or_init(|| scan(&files.dir.join(format!("{base}.out")), 0))
            .as_deref()
    };
    let (error_line, error_line_file) = error_line_of(files, &base, stderr.as_deref(), &stdout).unzip();
    // A line `find` finds in stderr, else in stdout, with its file.
    let first = |find: &dyn Fn(&str) -> Option<String>| -> (Option<String>, String) {
        match stderr.as_deref().and_then(find) {
            Some(line) => (Some(line), format!("{}/{base}.err", files.rel)),
            None => stdout()
                .and_then(find)
                .map(|line| (Some(line), format!("{}/{base}.out", files.rel)))
                .unwrap_or_default(),
        }
    };
    // A runtime's last words (HotSpot writes its fatal header on stdout), and the first complaint.
    let (crash_line, crash_file) = first(&crash_line);
    let steady = |line: &str| files.steady.contains(line.trim());
    let (complaint_line, complaint_file) = first(&|text| complaint_line(text, steady));
    // A hung run: what its threads were waiting in (`hung`).
    let hung = format!("{base}.hung");
    let hung_in = (files.verdict == Verdict::Hung)
        .then(|| scan(&files.dir.join(&hung), 0))
        .flatten()
        .and_then(|text| super::hung::summary(&text));
    let hung_file = if hung_in.is_some() {
        format!("{}/{hung}", files.rel)
    } else {
        String::new()
    };
    // What a failed check, and the first failed round of a service's workload, said.
    let said = |name: &str| {
        let stream = |ext: &str| scan(&files.dir.join(format!("{name}.{ext}")), 0).unwrap_or_default();
        check_line(&stream("err"), &stream("out"))
            .map(|(line, ext)| (Some(line), format!("{}/{name}.{ext}", files.rel)))
            .unwrap_or_default()
    };
    let (check_line, check_file) = if files.check_failed {
        said(&format!("{base}.check"))
    } else {
        (None, String::new())
    };
    let (round_line, round_file) = files.failed_round.map(said).unwrap_or_default();
    let log_path = files.dir.join(format!("{base}.log.json"));
    let log_path = std::fs::canonicalize(&log_path).unwrap_or(log_path);
    // A replay injects what the log holds and no more: a hung run's log stops at the timeout, and its replay
    // would let the calls after it succeed; the same seed decides the same way for as long as the program runs.
    let replayable =
        files.verdict != Verdict::Hung && files.log.is_some_and(|l| l.replay_problem().is_none());
    let repro = repro(phoebe, inject, &log_path.to_string_lossy(), replayable);
    // The tails from the text read already, unless it was cut at ERROR_LINE_SCAN (the end is then unread).
    let tail = |text: Option<&str>, name: &str| match text {
        Some(text) if (text.len() as u64) < ERROR_LINE_SCAN => tail_lines(text),
        _ => read(name),
    };
    Some(RunEvidence {
        stderr_tail: tail(stderr.as_deref(), &format!("{base}.err")),
        stdout_tail: tail(stdout(), &format!("{base}.out")),
        stderr_file: format!("{}/{base}.err", files.rel),
        stdout_file: format!("{}/{base}.out", files.rel),
        post_stderr_file: if post_stderr_tail.is_empty() {
            String::new()
        } else {
            format!("{}/{post}", files.rel)
        },
        post_stderr_tail,
        error_line,
        error_line_file: error_line_file.unwrap_or_default(),
        crash_line,
        crash_file,
        complaint_line,
        complaint_file,
        hung_in,
        hung_file,
        round_line,
        round_file,
        check_line,
        check_file,
        first_injections,
        repro_shell: crate::report::view::command_line(&repro),
        repro,
    })
}

/// The first line of the run's stderr, then stdout, then what the run appended to the program's own log files
/// (`--log-file`), that names an error its log says was injected, by the C library's text for it
/// ([`error_line`]), and that file (the run's relative to the campaign directory). `stderr` is the run's stderr,
/// `stdout` its stdout, which the caller reads (once, when first asked); at most [`ERROR_LINE_SCAN`] bytes of each
/// log file are read.
fn error_line_of<'s>(
    files: &RunFiles<'_>,
    base: &str,
    stderr: Option<&str>,
    stdout: &dyn Fn() -> Option<&'s str>,
) -> Option<(String, String)> {
    let mut said: Vec<String> = files
        .log?
        .injections
        .iter()
        .filter_map(|i| i.effect.errno())
        .flat_map(|e| {
            e.symbol()
                .map(str::to_owned)
                .into_iter()
                .chain(strerror(e.code()))
        })
        .collect();
    said.sort_unstable();
    said.dedup();
    if said.is_empty() {
        return None;
    }
    let said: Vec<&str> = said.iter().map(String::as_str).collect();
    if let Some(line) = stderr.and_then(|text| error_line(text, &said)) {
        return Some((line, format!("{}/{base}.err", files.rel)));
    }
    if let Some(line) = stdout().and_then(|text| error_line(text, &said)) {
        return Some((line, format!("{}/{base}.out", files.rel)));
    }
    let name = |path: &std::path::Path| match path.strip_prefix(files.dir) {
        Ok(own) => format!("{}/{}", files.rel, own.display()),
        Err(_) => path.display().to_string(),
    };
    files
        .program_logs
        .iter()
        .find_map(|(path, from)| error_line(&scan(path, *from)?, &said).map(|line| (line, name(path))))
}

/// The text of `path` from byte `from` (all of it when the file is shorter: a log rotated or truncated since the
/// run started is all the run's), at most [`ERROR_LINE_SCAN`] bytes of it; `None` when it cannot be read.
fn scan(path: &std::path::Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(std::io::SeekFrom::Start(if from <= len { from } else { 0 }))
        .ok()?;
    let mut bytes = Vec::new();
    file.take(ERROR_LINE_SCAN).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The C library's text for `errno` (`strerror`: `Input/output error`), through std, which asks `strerror_r`;
/// `None` for a number it does not know.
fn strerror(errno: i32) -> Option<String> {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {errno})"))
        .unwrap_or(&text);
    (!text.is_empty() && !text.starts_with("Unknown error")).then(|| text.to_owned())
}

/// How much of a run's output [`error_line_of`] reads.
const ERROR_LINE_SCAN: u64 = 8 << 20;

/// The command that runs a run again, from the `phoebe inject` arguments the campaign gave it (`inject -q
/// --count-all [--backend B] --fault F… --seed N --log L [--start-off --switch-ack A] -- CMD…`): `--replay LOG` instead of the
/// rules and the seed when the log can be replayed; the rules and the seed otherwise (same seed, same program:
/// the same decisions). Never `-q` (the summary says what was injected), `--log` (the run's log stays as it
/// was) nor `--switch-ack`; a service-mode run's `--start-off` only without `--replay` (then SIGUSR1 to phoebe switches injection
/// on, as the campaign did).
fn repro(phoebe: &std::path::Path, inject: &[String], log: &str, replayable: bool) -> Vec<String> {
    let split = inject.iter().position(|a| a == "--").unwrap_or(inject.len());
    let (options, target) = inject.split_at(split);
    let mut out = vec![phoebe.to_string_lossy().into_owned()];
    let mut args = options.iter();
    let mut replay_added = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-q" => {}
            // A replay injects at the logged call indices; switched off, it would inject nothing.
            "--start-off" if replayable => {}
            "--log" => {
                args.next();
            }
            // The campaign's handshake with its switch; a person switches by hand.
            "--switch-ack" => {
                args.next();
            }
            "--fault" | "--seed" if replayable => {
                args.next();
                if !replay_added {
                    out.extend(["--replay".to_owned(), log.to_owned()]);
                    replay_added = true;
                }
            }
            _ => out.push(arg.clone()),
        }
    }
    if replayable && !replay_added {
        out.extend(["--replay".to_owned(), log.to_owned()]);
    }
    out.extend(target.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn a_repro_replays_the_log_unless_it_cannot_then_it_keeps_seed_and_rules() {
        let inject = args(
            "inject -q --count-all --fault read:EIO --fault openat:ENOENT --seed 7 --log /c/run-1.log.json -- ./app 'a b'",
        );
        let phoebe = std::path::Path::new("/bin/phoebe");
        assert_eq!(
            repro(phoebe, &inject, "/c/run-1.log.json", true),
            args("/bin/phoebe inject --count-all --replay /c/run-1.log.json -- ./app 'a b'")
        );
        assert_eq!(
            repro(phoebe, &inject, "/c/run-1.log.json", false),
            args(
                "/bin/phoebe inject --count-all --fault read:EIO --fault openat:ENOENT --seed 7 -- ./app 'a b'"
            )
        );
    }

    #[test]
    fn a_service_runs_repro_leaves_out_the_campaigns_switch_handshake() {
        let inject = args(
            "inject -q --count-all --fault read:EIO --seed 7 --log /c/run-1.log.json --start-off --switch-ack /c/run-1.switch -- ./svc",
        );
        let phoebe = std::path::Path::new("/bin/phoebe");
        assert_eq!(
            repro(phoebe, &inject, "/c/run-1.log.json", true),
            args("/bin/phoebe inject --count-all --replay /c/run-1.log.json -- ./svc")
        );
        assert_eq!(
            repro(phoebe, &inject, "/c/run-1.log.json", false),
            args("/bin/phoebe inject --count-all --fault read:EIO --seed 7 --start-off -- ./svc")
        );
    }

    /// A latency fault injects no errno: realism (injections on shapes that failed naturally with their errno)
    /// does not apply, and no natural failure is counted for it even where the backend sees results.
    #[test]
    fn a_latency_faults_run_has_no_realism_and_no_natural_count() {
        use crate::{
            decide::{Call, Decider},
            model::{Errno, Syscall, shape::RegistersOnly},
        };
        let run = |fault: &str| {
            let mut d = Decider::new(vec![crate::model::FaultSpec::parse(fault).unwrap()], 1);
            d.sees_results();
            let call = Call {
                syscall: Syscall::parse("read").unwrap(),
                pid: 1,
                tid: 1,
                thread: None,
                t_ns: 0,
                path: None,
                args: [0; 6],
            };
            d.decide(&call, &mut RegistersOnly);
            d.finish(vec!["app".into()], "ptrace", None, false)
        };
        let eio = Errno::parse("EIO").unwrap();
        let read = Syscall::parse("read").unwrap();
        let error = run("read:EIO");
        let shape = error.injections[0].shape.as_ref().unwrap().to_string();
        let natural: NaturalShapes = [(read, eio, shape)].into_iter().collect();
        assert_eq!(realistic(Some(&error), Some(&natural)), Some(1));
        assert_eq!(error.rules[0].natural, Some(0));
        let latency = run("read:delay=5ms");
        assert_eq!(latency.injections.len(), 1);
        assert_eq!(realistic(Some(&latency), Some(&natural)), None);
        assert_eq!(latency.rules[0].natural, None);
        assert_eq!(LogSums::of(Some(&latency), Some(&natural)).natural, None);
    }
}
