//! The table `phoebe exec` prints at the end of a campaign: a header line, one row per experiment, the
//! verdict counts and what is still pending. Its rows, headline and formats are the shared view model's
//! (`super::view`).
//! Does not own: printing, or deciding verdicts (`crate::experiment`).

use std::fmt::Write;

pub use super::view::command_line;
use super::view::{clip, percent, realism, row, seconds, skipped_note, verdict_counts};
use phoebe_core::model::{Report, Verdict, report::faults_text};

/// The first line: what ran, how, and the baseline every run is compared with.
fn header(report: &Report) -> String {
    let mut how = format!("{}, seed {}", report.backend, report.seed);
    if let Some(shard) = &report.shard {
        let _ = write!(how, ", shard {shard}");
    }
    let mut line = format!(
        "phoebe exec -- {} ({how}): baseline {}, timeout {}",
        command_line(&report.command),
        report.baseline.describe(),
        seconds(report.baseline.timeout_ms),
    );
    if report.interrupted {
        line.push_str(", interrupted");
    }
    if let Some(why) = &report.stopped {
        let _ = write!(line, "\nstopped: {why}");
    }
    line
}

/// ANSI SGR code for a verdict: resilient green, not-exercised dim, failed yellow, the rest red.
fn sgr(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Resilient => "32",
        Verdict::NotExercised => "2",
        Verdict::Failed => "33",
        Verdict::Corrupted | Verdict::Crashed | Verdict::Hung => "1;31",
    }
}

/// The campaign table. With `color`, verdict names are coloured with ANSI escapes (widths are unaffected).
pub fn render(report: &Report, color: bool) -> String {
    const HEADS: [&str; 11] = [
        "experiment",
        "category",
        "target",
        "p",
        "injected/matched",
        "achieved",
        "realism",
        "verdict",
        "runs",
        "failing (95%)",
        "detail",
    ];
    let rows: Vec<(Verdict, [String; 11])> = report
        .experiments
        .iter()
        .map(|e| {
            let r = row(e);
            (
                e.verdict,
                [
                    e.id.clone(),
                    r.kind.clone(),
                    percent(r.target),
                    percent(Some(r.probability)),
                    format!("{}/{}", r.injected, r.matched),
                    r.achieved_text(),
                    realism(r.realism),
                    e.verdict_text(),
                    e.counts_text(),
                    e.interval_text(),
                    r.detail(),
                ],
            )
        })
        .collect();
    let mut widths = HEADS.map(|h| h.chars().count());
    for (_, cells) in &rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Text columns are left-aligned, numbers right-aligned; the last column is not padded.
    let left = [
        true, true, false, false, false, false, false, true, true, false, true,
    ];
    let line = |cells: &[String; 11], verdict: Option<Verdict>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i == cells.len() - 1;
            let padded = match (left[i], last) {
                (_, true) => cell.clone(),
                (true, false) => format!("{cell}{}", " ".repeat(pad)),
                (false, false) => format!("{}{cell}", " ".repeat(pad)),
            };
            match verdict {
                Some(v) if color && i == 7 => {
                    let _ = write!(out, "\x1b[{}m{cell}\x1b[0m{}", sgr(v), " ".repeat(pad));
                }
                _ => out.push_str(&padded),
            }
            if !last {
                out.push_str("  ");
            }
        }
        out.trim_end().to_owned()
    };

    let mut out = String::new();
    let _ = writeln!(out, "{}", header(report));
    let _ = writeln!(out, "{}", line(&HEADS.map(str::to_owned), None));
    for (verdict, cells) in &rows {
        let _ = writeln!(out, "{}", line(cells, Some(*verdict)));
    }
    let _ = writeln!(out, "verdicts: {}", verdict_counts(report));
    if !report.pending.is_empty() {
        let _ = writeln!(
            out,
            "pending ({}): {}",
            report.pending.len(),
            report.pending.join(", ")
        );
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(
            out,
            "skipped ({}): {}:",
            report.skipped.len(),
            skipped_note(report)
        );
        for s in &report.skipped {
            let _ = writeln!(out, "  {} ({}): {}", s.id, faults_text(&s.faults), s.reason);
        }
    }
    // Compact evidence, last: the explaining run's telling line of output (`RunEvidence::telling_line`), and the command that runs it again.
    let mut heading = false;
    for e in &report.experiments {
        let r = row(e);
        let Some((run, evidence)) = r.evidence() else {
            continue;
        };
        if !heading {
            out.push_str(EVIDENCE_HEADING);
            out.push('\n');
            heading = true;
        }
        let said = evidence
            .telling_line()
            .map_or_else(|| "no output".to_owned(), |l| clip(&l, 160));
        let _ = writeln!(out, "{} run {}: {said}", e.id, run.run);
        if !evidence.repro_shell.is_empty() {
            let _ = writeln!(out, "  repro: {}", evidence.repro_shell);
        }
    }
    out
}

/// The line before the evidence of the findings, at the end of the table.
pub const EVIDENCE_HEADING: &str =
    "evidence (the worst run of each finding; repro: run it again from the directory the campaign ran in):";

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::{
        RunResult,
        fixtures::{sample, sample_with_skipped},
    };

    use crate::view::headline;

    /// Regression (issue 13, fuzzing): a report whose runs' injection counts add past `u64::MAX` made every
    /// renderer panic (an overflowing sum in the shared row), and durations that do made the JUnit renderer
    /// panic; the sums saturate now, as does realism's.
    #[test]
    fn a_report_with_huge_counts_or_durations_renders_without_overflow() {
        let mut report = sample();
        let first = report.experiments[0].runs[0].clone();
        report.experiments[0].runs.push(first);
        for run in report.experiments.iter_mut().flat_map(|e| e.runs.iter_mut()) {
            run.injected = u64::MAX;
            run.matched = u64::MAX;
            run.realistic = Some(u64::MAX);
            run.duration_ms = u64::MAX;
        }
        assert_eq!(row(&report.experiments[0]).injected, u64::MAX);
        assert_eq!(report.experiments[0].realism(), Some(1.0));
        assert!(render(&report, false).contains("100.00%"));
        let _ = crate::html::render(&report);
        let _ = crate::junit::render(&report);
        let _ = crate::markdown::render(&report);
    }

    #[test]
    fn broken_tests_are_named_in_the_detail() {
        let text = render(&phoebe_core::model::fixtures::sample_with_broken_tests(), false);
        assert!(text.contains("broke: tests::reads, t.py::test_<x>"), "{text}");
    }

    #[test]
    fn skipped_experiments_are_listed_with_their_reason_after_the_verdicts() {
        let report = sample_with_skipped();
        let text = render(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + 2 + 2 + 3, "{text}");
        assert_eq!(
            lines[4], "verdicts: 1 resilient, 1 failed",
            "skipped is not a verdict"
        );
        assert_eq!(
            lines[6],
            "skipped (2): the ebpf backend cannot run these 2 experiments (--backend seccomp runs them):"
        );
        assert!(
            lines[7].starts_with("  futex-EAGAIN (futex:EAGAIN:p=0.1): no LSM hook decides 'futex'; "),
            "{text}"
        );
        assert!(
            lines[8].starts_with("  unlinkat-EACCES (unlinkat:EACCES:p=0.5): no LSM hook decides 'unlinkat'")
        );
        assert_eq!(
            headline(&report),
            "1 of 2 experiments not resilient, 1 pending, 2 skipped (interrupted)"
        );
        let mut none_ran = report.clone();
        none_ran.experiments.clear();
        none_ran.pending.clear();
        none_ran.interrupted = false;
        assert_eq!(headline(&none_ran), "no experiment ran, 2 skipped");
        none_ran.skipped.truncate(1);
        assert_eq!(
            skipped_note(&none_ran),
            "the ebpf backend cannot run this experiment (--backend seccomp runs it)"
        );
    }

    #[test]
    fn header_names_command_backend_seed_shard_baseline_and_interruption() {
        let text = render(&sample(), false);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "phoebe exec -- '/usr/bin/my app' --in '<input>.txt' (ptrace, seed 42, shard 1/2): \
             baseline exit status 0 over 2 runs, timeout 10.000 s, interrupted"
        );
    }

    #[test]
    fn one_row_per_experiment_with_sums_over_runs() {
        let text = render(&sample(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + 3 + 2, "{text}");
        // Cells are separated by two spaces or more (a cell may hold one space: `failed, flaky`).
        let cols = |l: &str| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cols(lines[1]),
            [
                "experiment",
                "category",
                "target",
                "p",
                "injected/matched",
                "achieved",
                "realism",
                "verdict",
                "runs",
                "failing (95%)",
                "detail"
            ]
        );
        assert_eq!(
            cols(lines[2]),
            [
                "openat-ENOENT",
                "sporadic",
                "5.00%",
                "3.45%",
                "7/200",
                "3.50% injected only",
                "100%",
                "resilient",
                "1/1 resilient",
                "0–79%"
            ]
        );
        // 20 + 11 injected of 100 + 50 matched over the two runs; they disagree, and the detail is the failing
        // run's.
        assert_eq!(
            cols(lines[3]),
            [
                "read-EAGAIN",
                "fluctuating",
                "30.00%",
                "20.00%",
                "31/150",
                "20.67% injected only",
                "100%",
                "failed, flaky",
                "1/2 failed, 1/2 resilient",
                "9–91%",
                "run 2: exit status 1, baseline 0 | see <stderr>"
            ]
        );
        assert_eq!(
            cols(lines[4]),
            [
                "unlinkat-EACCES",
                "given",
                "-",
                "50.00%",
                "0/0",
                "-",
                "-",
                "not-exercised",
                "1/1 not-exercised",
                "-",
                "run 1: no call matched the fault"
            ]
        );
        assert_eq!(lines[5], "verdicts: 1 resilient, 1 not-exercised, 1 failed");
        assert_eq!(lines[6], "pending (1): connect-ECONNREFUSED");
    }

    /// Regression (issue 14): runs 1 and 3 failed, run 2 crashed, and the table named run 1 only; the detail
    /// names the worst run.
    /// Issue 14 item 5: where the backend saw the natural failures of the matched calls (ptrace), the achieved
    /// rate is their total failure rate, next to the injected-only rate; elsewhere the cell says "injected only".
    #[test]
    fn achieved_counts_natural_failures_where_the_backend_saw_them() {
        let mut report = sample();
        let e = &mut report.experiments[0];
        for r in &mut e.runs {
            r.natural = Some(17);
            r.achieved_counts = phoebe_core::model::AchievedCounts::InjectedAndNatural;
        }
        let text = render(&report, false);
        // 7 injected + 17 natural of 200 matched; the other experiments ran where natural failures are unseen.
        assert!(
            text.lines().nth(2).unwrap().contains("12.00% (injected 3.50%)"),
            "{text}"
        );
        assert!(
            text.lines().nth(3).unwrap().contains("20.67% injected only"),
            "{text}"
        );
        // One run whose backend could not see them makes the whole experiment's figure injected-only.
        report.experiments[0].runs[0].natural = None;
        let text = render(&report, false);
        assert!(
            text.lines().nth(2).unwrap().contains("3.50% injected only"),
            "{text}"
        );
    }

    #[test]
    fn the_detail_names_the_worst_run_not_run_1() {
        let mut report = sample();
        let e = &mut report.experiments[1];
        e.runs.push(RunResult {
            run: 3,
            verdict: Verdict::Crashed,
            detail: "killed by SIGABRT after 2 injection(s)".into(),
            ..e.runs[1].clone()
        });
        e.summarize();
        let text = render(&report, false);
        let line = text.lines().nth(3).unwrap();
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells[7..],
            [
                "crashed, flaky",
                "1/3 crashed, 1/3 resilient, 1/3 failed",
                "21–94%",
                "run 3: killed by SIGABRT after 2 injection(s)"
            ],
            "{text}"
        );
    }

    #[test]
    fn a_flaky_baseline_accepted_by_the_user_is_said_in_the_header() {
        let mut report = sample();
        report.baseline.accept_flaky = true;
        report.baseline.flaky = Some("baseline run 2 exited 1, run 1 exited 0".into());
        let first = render(&report, false).lines().next().unwrap().to_owned();
        assert!(
            first.contains(
                "baseline exit status 0 over 2 runs, flaky, accepted with --accept-flaky-baseline: baseline run 2 \
                 exited 1, run 1 exited 0, timeout"
            ),
            "{first}"
        );
        report.baseline.flaky = None;
        report.baseline.expect_status = Some(0);
        let first = render(&report, false).lines().next().unwrap().to_owned();
        assert!(
            first.contains(
                "over 2 runs (--expect-status 0) (--accept-flaky-baseline; the runs agreed), timeout"
            ),
            "{first}"
        );
    }

    #[test]
    fn columns_line_up_and_widths_follow_content() {
        let mut report = sample();
        report.experiments[0].id = "openat-ENOENT-with-a-much-longer-name".into();
        let text = render(&report, false);
        let lines: Vec<&str> = text.lines().skip(1).take(4).collect();
        // Every row's category column starts at the same offset, right after the longest id.
        let starts: Vec<usize> = lines
            .iter()
            .zip(["category", "sporadic", "fluctuating", "given"])
            .map(|(l, word)| l.find(word).unwrap())
            .collect();
        assert!(
            starts
                .iter()
                .all(|s| *s == "openat-ENOENT-with-a-much-longer-name".len() + 2),
            "{text}"
        );
        // Right-aligned numbers end at the same column.
        let ends: Vec<usize> = lines
            .iter()
            .zip(["injected/matched", "7/200", "31/150", "0/0"])
            .map(|(l, word)| l.find(word).unwrap() + word.len())
            .collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
    }

    #[test]
    fn colour_only_when_asked_and_only_on_verdicts() {
        let plain = render(&sample(), false);
        assert!(!plain.contains('\x1b'));
        let coloured = render(&sample(), true);
        assert!(coloured.contains("\x1b[32mresilient\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains("\x1b[2mnot-exercised\x1b[0m"), "{coloured:?}");
        assert!(coloured.contains("\x1b[33mfailed, flaky\x1b[0m"), "{coloured:?}");
        assert_eq!(coloured.matches('\x1b').count(), 6, "{coloured:?}");
        // Stripping the escapes gives the plain table back: colour does not shift the columns.
        let stripped = coloured
            .replace("\x1b[32m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[33m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn headline_counts_findings_pending_and_interruption() {
        let mut report = sample();
        assert_eq!(
            headline(&report),
            "1 of 3 experiments not resilient, 1 pending (interrupted)"
        );
        report.experiments.remove(1);
        report.pending.clear();
        report.interrupted = false;
        assert_eq!(headline(&report), "the exercised experiment is resilient");
        report.experiments.remove(0);
        assert_eq!(
            headline(&report),
            "1 experiment not exercised: the program never made the injected calls"
        );
        report.experiments.clear();
        assert_eq!(headline(&report), "no experiment has run yet");
        assert_eq!(verdict_counts(&report), "no experiments");
    }

    /// `--explore plausible`: the category column names the tier, and the verdict line counts the tiers apart.
    #[test]
    fn plausible_experiments_are_labelled_and_counted_apart() {
        let mut report = sample();
        let plain = verdict_counts(&report);
        assert!(!plain.contains("observed:"), "{plain}");
        report.experiments[1].model.as_mut().expect("a model").tier = phoebe_core::model::Tier::Plausible;
        assert_eq!(
            verdict_counts(&report),
            "observed: 1 resilient, 1 not-exercised; plausible: 1 failed"
        );
        let text = render(&report, false);
        let row = text
            .lines()
            .find(|l| l.starts_with("read-EAGAIN"))
            .expect("the row");
        assert!(row.contains("plausible"), "{row}");
        assert!(
            row.contains(" - "),
            "no realism for what never failed naturally: {row}"
        );
        let md = crate::markdown::render(&report);
        assert!(md.contains("| plausible |"), "{md}");
        let html = crate::html::render(&report);
        assert!(html.contains("<span class=\"tier\">plausible:</span>"));
        let junit = crate::junit::render(&report);
        assert!(junit.contains("name=\"tier\" value=\"plausible\""), "{junit}");
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let cmd = |args: &[&str]| command_line(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(cmd(&["cargo", "test", "--", "-q"]), "cargo test -- -q");
        assert_eq!(cmd(&["sh", "-c", "echo it's"]), r"sh -c 'echo it'\''s'");
        assert_eq!(cmd(&["a", ""]), "a ''");
    }
}
