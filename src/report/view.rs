//! The view model every campaign renderer shares: one [`Row`] per experiment, the headline, the verdict
//! counts, the skipped note, the command line as a shell would show it, and the number formats, so that the
//! terminal, Markdown, HTML and JUnit views say the same thing. Pure: model → values and strings.
//! Does not own: any rendering's layout (`terminal`, `markdown`, `html`, `junit`), or deciding verdicts.

use std::fmt::Write;

use phoebe_core::model::{
    ExperimentResult, Report, RunEvidence, RunResult, Tier, Verdict, achieved_rates, saturating_sum,
};

/// One experiment, summed over its runs: what every campaign table shows.
pub(crate) struct Row<'a> {
    pub exp: &'a ExperimentResult,
    /// The model's category, `plausible` for a model of the plausible tier (`--explore plausible`), or `given`
    /// for a fault given with `--fault`.
    pub kind: String,
    /// The error rate the experiment aims at (natural failures included); `None` for a given fault.
    pub target: Option<f64>,
    /// The injection probability of the fault.
    pub probability: f64,
    pub injected: u64,
    pub matched: u64,
    /// Natural failures of the matched calls (with the fault's errnos), when every run's backend saw them
    /// ([`RunResult::natural`]).
    pub natural: Option<u64>,
    /// The run that explains the verdict: the first run with the experiment's (worst) verdict, when that is a
    /// finding or not-exercised; for a resilient service, the first run whose rounds failed while injecting (within
    /// `--tolerance`, or a peer's failure the workload itself met), whose detail says why they did not count.
    pub explaining: Option<&'a RunResult>,
    /// The share of injections on shapes that failed naturally with the errno ([`ExperimentResult::realism`]);
    /// `None` (`-`) for a plausible experiment, whose errors by definition never happened in the baseline.
    pub realism: Option<f64>,
}

impl<'a> Row<'a> {
    /// The explaining run and its evidence, when it is a finding that has evidence (reports written before
    /// evidence have none).
    pub fn evidence(&self) -> Option<(&'a RunResult, &'a RunEvidence)> {
        self.explaining
            .filter(|r| r.verdict.is_finding())
            .and_then(|r| r.evidence.as_ref().map(|e| (r, e)))
    }

    /// Injected / matched over all runs; `None` when no call matched.
    pub fn achieved(&self) -> Option<f64> {
        achieved_rates(self.matched, self.injected, self.natural).0
    }

    /// (Injected + natural failures) / matched over all runs: the matched calls' total failure rate, on the same
    /// footing as the target rate; `None` when no call matched or a backend could not see the natural failures.
    pub fn achieved_total(&self) -> Option<f64> {
        achieved_rates(self.matched, self.injected, self.natural).1
    }

    /// The achieved cell every campaign table shows ([`achieved_text`]).
    pub fn achieved_text(&self) -> String {
        achieved_text(self.achieved(), self.achieved_total())
    }

    /// `run 2: exit status 1, baseline 0`, or empty when every run was resilient; in service mode followed by the
    /// run's round latency per phase (of the first run when every run was resilient).
    pub fn detail(&self) -> String {
        let detail = self.explaining.map(|r| format!("run {}: {}", r.run, r.detail));
        let latency = self
            .explaining
            .or_else(|| self.exp.runs.first())
            .and_then(|r| r.rounds.map(|rounds| (r.run, rounds.latency_text())));
        let text = match (detail, latency) {
            (Some(detail), Some((_, latency))) => format!("{detail}; {latency}"),
            (Some(detail), None) => detail,
            (None, Some((run, latency))) => format!("run {run}: {latency}"),
            (None, None) => String::new(),
        };
        match self.broke() {
            None => text,
            Some(broke) if text.is_empty() => broke,
            Some(broke) => format!("{text}; {broke}"),
        }
    }

    /// `broke: tests::adds, tests::reads` when the experiment broke tests of the suite
    /// ([`ExperimentResult::broken_tests`]); `None` otherwise.
    pub fn broke(&self) -> Option<String> {
        (!self.exp.broken_tests.is_empty()).then(|| format!("broke: {}", self.exp.broken_tests.join(", ")))
    }
}

pub(crate) fn row(exp: &ExperimentResult) -> Row<'_> {
    let explaining = exp
        .worst_run()
        .filter(|r| r.verdict.is_finding() || r.verdict == Verdict::NotExercised)
        .or_else(|| {
            exp.runs
                .iter()
                .find(|r| r.rounds.is_some_and(|rounds| !rounds.injected.all_ok()))
        });
    Row {
        exp,
        kind: exp.model.as_ref().map_or_else(
            || "given".to_owned(),
            |m| match m.tier {
                Tier::Plausible => Tier::Plausible.to_string(),
                Tier::Observed => m.category.to_string(),
            },
        ),
        target: exp.model.as_ref().map(|m| m.target_rate),
        probability: exp.model.as_ref().map_or_else(
            || exp.faults.first().map_or(0.0, |f| f.probability),
            |m| m.probability,
        ),
        injected: saturating_sum(exp.runs.iter().map(|r| r.injected)),
        matched: saturating_sum(exp.runs.iter().map(|r| r.matched)),
        natural: exp
            .runs
            .iter()
            .map(|r| r.natural)
            .collect::<Option<Vec<u64>>>()
            .map(saturating_sum),
        explaining,
        // A plausible error never failed naturally: its realism is its catalogue entry's, not the baseline's.
        realism: if exp.tier() == Tier::Plausible {
            None
        } else {
            exp.realism()
        },
    }
}

/// `text` cut to `max` characters, with `…` when cut: one line of evidence in a table.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// `1 line`, `3 lines`.
pub(crate) fn lines_text(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

/// An achieved rate as every table shows it: the total failure rate of the matched calls next to the injected-only
/// rate where the backend saw the natural failures (`35.00% (injected 20.00%)`), else the injected-only rate, said
/// so (`20.00% injected only`); `-` when no call matched.
pub(crate) fn achieved_text(injected_only: Option<f64>, total: Option<f64>) -> String {
    match (injected_only, total) {
        (None, _) => "-".to_owned(),
        (Some(injected), Some(total)) => {
            format!("{} (injected {})", percent(Some(total)), percent(Some(injected)))
        }
        (Some(injected), None) => format!("{} injected only", percent(Some(injected))),
    }
}

/// A rate as a percentage with two decimals (`5.00%`), `-` when there is none.
pub(crate) fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.2}%", 100.0 * r))
}

/// Realism as a whole percentage (`100%`), `-` when it cannot be told.
pub(crate) fn realism(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", 100.0 * r))
}

/// Milliseconds as seconds, `1.250 s`.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{:.3} s", ms as f64 / 1000.0)
}

/// The command as a shell would take it back: arguments with spaces or shell syntax in single quotes.
pub fn command_line(command: &[String]) -> String {
    let quote = |arg: &String| {
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c));
        if plain {
            arg.clone()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    command.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// `1 resilient, 1 not-exercised, 1 failed`: the non-zero verdict counts, in `Verdict::ALL` order. A report with
/// plausible experiments counts each tier apart: `observed: 2 resilient; plausible: 1 corrupted`.
pub(crate) fn verdict_counts(report: &Report) -> String {
    let text = |counts: &std::collections::BTreeMap<Verdict, usize>| {
        let parts: Vec<String> = Verdict::ALL
            .iter()
            .filter_map(|v| counts.get(v).map(|n| format!("{n} {v}")))
            .collect();
        if parts.is_empty() {
            "no experiments".to_owned()
        } else {
            parts.join(", ")
        }
    };
    if report.has_plausible() {
        Tier::ALL
            .iter()
            .map(|t| format!("{t}: {}", text(&report.counts_of(*t))))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        text(&report.counts())
    }
}

/// One sentence that says how the campaign went, for headlines.
pub(crate) fn headline(report: &Report) -> String {
    let total = report.experiments.len();
    let findings = report
        .experiments
        .iter()
        .filter(|e| e.verdict.is_finding())
        .count();
    let unexercised = report
        .experiments
        .iter()
        .filter(|e| e.verdict == Verdict::NotExercised)
        .count();
    let mut line = if total == 0 && !report.skipped.is_empty() {
        "no experiment ran".to_owned()
    } else if total == 0 {
        "no experiment has run yet".to_owned()
    } else if findings > 0 {
        format!(
            "{findings} of {total} experiment{} not resilient",
            if total == 1 { "" } else { "s" }
        )
    } else if unexercised == total {
        format!(
            "{total} experiment{} not exercised: the program never made the injected calls",
            if total == 1 { "" } else { "s" }
        )
    } else {
        let exercised = total - unexercised;
        format!(
            "{} resilient",
            if exercised == 1 {
                "the exercised experiment is".to_owned()
            } else {
                format!("all {exercised} exercised experiments are")
            }
        )
    };
    if !report.pending.is_empty() {
        let _ = write!(line, ", {} pending", report.pending.len());
    }
    if !report.skipped.is_empty() {
        let _ = write!(line, ", {} skipped", report.skipped.len());
    }
    if report.interrupted {
        line.push_str(" (interrupted)");
    } else if report.stopped.is_some() {
        line.push_str(" (stopped)");
    }
    line
}

/// `the ebpf backend cannot run these 2 experiments (--backend seccomp runs them)`: what every renderer says
/// about the skipped experiments before listing them.
pub(crate) fn skipped_note(report: &Report) -> String {
    let n = report.skipped.len();
    let runs = match &report.skipped_backend {
        Some(backend) => format!(
            " (--backend {backend} runs {})",
            if n == 1 { "it" } else { "them" }
        ),
        None => String::new(),
    };
    format!(
        "the {} backend cannot run {}{runs}",
        report.backend,
        if n == 1 {
            "this experiment".to_owned()
        } else {
            format!("these {n} experiments")
        },
    )
}

#[cfg(test)]
mod tests {
    use phoebe_core::model::fixtures::{sample, sample_with_evidence};

    use crate::{html, junit, markdown, terminal};

    #[test]
    fn every_renderer_shows_the_worst_runs_evidence_escaped() {
        let report = sample_with_evidence();
        let evidence = report.experiments[1].runs[1].evidence.as_ref().unwrap();
        assert_eq!(
            evidence.repro_shell,
            super::command_line(&evidence.repro),
            "the fixture's repro line is command_line's"
        );
        let repro = "/opt/phoebe inject --count-all --replay /c/experiments/read-EAGAIN/run-2.log.json -- \
                     '/usr/bin/my app'";
        let abort = "fatal: read failed | EAGAIN <script>x</script>";

        // Terminal: compact, the last stderr line and the repro command only.
        let text = terminal::render(&report, false);
        assert!(
            text.contains(&format!("read-EAGAIN run 2: {abort}\n  repro: {repro}\n")),
            "{text}"
        );
        assert!(!text.contains("partial output") && !text.contains("reading <input>"));

        // Markdown: folded in <details>, the output in a fence the ``` line cannot close.
        let md = markdown::render(&report);
        let start = md
            .find("<details><summary>Evidence: read-EAGAIN run 2 (failed): ")
            .unwrap();
        let section = &md[start..start + md[start..].find("</details>").unwrap()];
        assert!(
            section.contains("&lt;script&gt;"),
            "the summary line is HTML: {section}"
        );
        assert!(section.contains(&format!("```sh\n{repro}\n```")));
        assert!(section.contains(&format!("````text\nreading <input>.txt\n```\n{abort}\n````")));
        assert!(section.contains("- `read #4 → EAGAIN (fd=pipe:nonblock=yes)`"));
        assert!(section.contains("stdout (last 1 line, `experiments/read-EAGAIN/run-2.out`)"));

        // HTML: escaped, with links to the run's files.
        let page = html::render(&report);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("fatal: read failed | EAGAIN &lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("<a href=\"experiments/read-EAGAIN/run-2.err\">stderr</a>"));
        assert!(page.contains("<a href=\"runs/2.json\">injection log</a>"));
        assert!(page.contains("&#39;/usr/bin/my app&#39;") || page.contains("&apos;/usr/bin/my app&apos;"));

        // JUnit: in the failure's body, escaped.
        let xml = junit::render(&report);
        assert!(xml.contains("evidence of run 2:"));
        assert!(xml.contains("EAGAIN &lt;script&gt;x&lt;/script&gt;"));
        assert!(xml.contains("injected: read #4 → EAGAIN (fd=pipe:nonblock=yes)"));

        // A report without evidence (written before it) renders as before.
        let plain = sample();
        assert!(!markdown::render(&plain).contains("Evidence:"));
        assert!(!html::render(&plain).contains("class=\"evidence\""));
        assert!(!junit::render(&plain).contains("evidence of run"));
    }

    #[test]
    fn every_renderer_shows_where_a_runtime_said_why_it_stopped() {
        let mut report = sample_with_evidence();
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.crash_line = Some("fatal error: runtime: pipe failed <x>".into());
        let line = "fatal error: runtime: pipe failed <x>";
        let text = terminal::render(&report, false);
        assert!(text.contains(&format!("read-EAGAIN run 2: {line}\n")), "{text}");
        let md = markdown::render(&report);
        assert!(
            md.contains("(failed): fatal error: runtime: pipe failed &lt;x&gt;</summary>"),
            "{md}"
        );
        let page = html::render(&report);
        assert!(page.contains(
            "Where it said why it stopped (<code>experiments/read-EAGAIN/run-2.err</code>):</p>\
             <pre class=\"command\">fatal error: runtime: pipe failed &lt;x&gt;</pre>"
        ));
        let xml = junit::render(&report);
        assert!(xml.contains(
            "stopped (experiments/read-EAGAIN/run-2.err): fatal error: runtime: pipe failed &lt;x&gt;"
        ));
        // The line that names the injected error still comes first in the one-line views.
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.error_line = Some("read: Resource temporarily unavailable".into());
        ev.error_line_file = "experiments/read-EAGAIN/run-2.err".into();
        let text = terminal::render(&report, false);
        assert!(
            text.contains("read-EAGAIN run 2: read: Resource temporarily unavailable\n"),
            "{text}"
        );
        assert!(
            junit::render(&report)
                .contains("said (experiments/read-EAGAIN/run-2.err): read: Resource temporarily unavailable")
        );
    }

    #[test]
    fn every_renderer_shows_the_first_complaint_and_what_a_failed_check_said() {
        let mut report = sample_with_evidence();
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.complaint_line = Some("Runtime error near line 4: database or disk is full <13>".into());
        ev.complaint_file = "experiments/read-EAGAIN/run-2.err".into();
        let text = terminal::render(&report, false);
        assert!(
            text.contains("read-EAGAIN run 2: Runtime error near line 4: database or disk is full <13>\n"),
            "{text}"
        );
        let md = markdown::render(&report);
        assert!(
            md.contains("database or disk is full &lt;13&gt;</summary>"),
            "{md}"
        );
        let page = html::render(&report);
        assert!(page.contains(
            "Where it first said something went wrong (<code>experiments/read-EAGAIN/run-2.err</code>):</p>\
             <pre class=\"command\">Runtime error near line 4: database or disk is full &lt;13&gt;</pre>"
        ));
        let xml = junit::render(&report);
        assert!(xml.contains(
            "first complaint (experiments/read-EAGAIN/run-2.err): Runtime error near line 4: database or disk is \
             full &lt;13&gt;"
        ));

        // A hung run: what it was waiting in comes before its first complaint.
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.hung_in = Some("futex FUTEX_WAIT_PRIVATE without a timeout ×3, read of a pipe".into());
        ev.hung_file = "experiments/read-EAGAIN/run-2.hung".into();
        let text = terminal::render(&report, false);
        assert!(
            text.contains(
                "read-EAGAIN run 2: waiting in futex FUTEX_WAIT_PRIVATE without a timeout ×3, read of a pipe\n"
            ),
            "{text}"
        );
        assert!(html::render(&report).contains(
            "What it was waiting in when the timeout came (<code>experiments/read-EAGAIN/run-2.hung</code>):</p>\
             <pre class=\"command\">futex FUTEX_WAIT_PRIVATE without a timeout ×3, read of a pipe</pre>"
        ));
        assert!(junit::render(&report).contains(
            "waiting in (experiments/read-EAGAIN/run-2.hung): futex FUTEX_WAIT_PRIVATE without a timeout ×3"
        ));
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.hung_in = None;

        // A run that printed nothing and whose check failed: the check's words are the telling line.
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.complaint_line = None;
        ev.stderr_tail.clear();
        ev.check_line = Some("Error: in prepare, no such table: t".into());
        ev.check_file = "experiments/read-EAGAIN/run-2.check.out".into();
        let text = terminal::render(&report, false);
        assert!(
            text.contains("read-EAGAIN run 2: the check said: Error: in prepare, no such table: t\n"),
            "{text}"
        );
        assert!(html::render(&report).contains(
            "What the check said (<code>experiments/read-EAGAIN/run-2.check.out</code>):</p>\
             <pre class=\"command\">Error: in prepare, no such table: t</pre>"
        ));
        assert!(junit::render(&report).contains(
            "check said (experiments/read-EAGAIN/run-2.check.out): Error: in prepare, no such table: t"
        ));

        // A service that said nothing: what its first failed workload round said comes before its stdout.
        let ev = report.experiments[1].runs[1].evidence.as_mut().unwrap();
        ev.check_line = None;
        ev.round_line = Some("f7.txt: wrong or missing".into());
        ev.round_file = "experiments/read-EAGAIN/run-2-injected-round-3.out".into();
        let text = terminal::render(&report, false);
        assert!(
            text.contains("read-EAGAIN run 2: the workload said: f7.txt: wrong or missing\n"),
            "{text}"
        );
        assert!(html::render(&report).contains(
            "What the first workload round that failed said \
             (<code>experiments/read-EAGAIN/run-2-injected-round-3.out</code>):</p>\
             <pre class=\"command\">f7.txt: wrong or missing</pre>"
        ));
        assert!(junit::render(&report).contains(
            "workload said (experiments/read-EAGAIN/run-2-injected-round-3.out): f7.txt: wrong or missing"
        ));
    }

    #[test]
    fn evidence_is_optional_in_report_json() {
        let report = sample_with_evidence();
        let json = serde_json::to_value(&report).unwrap();
        let run = &json["experiments"][1]["runs"][1]["evidence"];
        assert_eq!(run["first_injections"][0]["syscall"], "read");
        assert_eq!(run["repro"][6], "/usr/bin/my app");
        assert!(
            json["experiments"][1]["runs"][0].get("evidence").is_none(),
            "only on findings"
        );
        // Written before evidence: loads, with none.
        let mut old = json;
        old["experiments"][1]["runs"][1]
            .as_object_mut()
            .unwrap()
            .remove("evidence");
        let old: phoebe_core::model::Report = serde_json::from_value(old).unwrap();
        assert_eq!(old, sample());
    }
}
