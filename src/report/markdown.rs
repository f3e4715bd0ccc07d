//! GitHub-flavoured Markdown for CI job summaries (`$GITHUB_STEP_SUMMARY`): a one-line headline, the campaign
//! table, and collapsible sections for what the backend could not run (skipped), what proves nothing (not
//! exercised), what is still to run (pending) and every run. Does not own: writing the file.

use std::fmt::Write;

use super::view::{
    clip, command_line, headline, lines_text, percent, realism, row, seconds, skipped_note, verdict_counts,
};
use phoebe_core::model::{Report, Verdict, report::faults_text};

/// Escapes text for a GFM table cell or list item: `|` would end the cell, and `\`*_[]<>~&` and backticks
/// would start formatting, links, HTML or entities; a newline would end the row.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// An inline code span that holds `s` literally, whatever backticks it contains (outside a table).
fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced code block that holds `lines` literally: its fence is longer than any backtick run in them.
fn block(info: &str, lines: &[String]) -> String {
    let longest = lines
        .iter()
        .flat_map(|l| l.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{info}\n{}\n{fence}\n", lines.join("\n"))
}

/// Escapes text for HTML (a `<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

/// The evidence of each experiment's explaining run (the first [`MAX_EVIDENCE`]), each folded in a `<details>`:
/// the command that runs it again, the first injected calls, and the ends of its stderr and stdout.
fn evidence(out: &mut String, report: &Report) {
    let with: Vec<_> = report
        .experiments
        .iter()
        .filter_map(|e| row(e).evidence().map(|(run, ev)| (e, run, ev)))
        .collect();
    for &(e, run, ev) in with.iter().take(MAX_EVIDENCE) {
        let said = ev
            .telling_line()
            .map(|l| format!(": {}", clip(&l, 120)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<details><summary>Evidence: {} run {} ({}){}</summary>\n",
            html(&e.id),
            run.run,
            run.verdict,
            html(&said)
        );
        let _ = writeln!(out, "{}.\n", text(&run.detail));
        if !ev.repro_shell.is_empty() {
            out.push_str("Run it again (from the directory the campaign ran in):\n\n");
            out.push_str(&block("sh", std::slice::from_ref(&ev.repro_shell)));
            out.push('\n');
        }
        if !ev.first_injections.is_empty() {
            out.push_str("First injected calls:\n\n");
            for call in &ev.first_injections {
                let _ = writeln!(out, "- {}", code(&call.to_string()));
            }
            out.push('\n');
        }
        for (name, lines, file) in [
            ("stderr", &ev.stderr_tail, &ev.stderr_file),
            ("stdout", &ev.stdout_tail, &ev.stdout_file),
            (
                "stderr of the plain run after injection",
                &ev.post_stderr_tail,
                &ev.post_stderr_file,
            ),
        ] {
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "{name} (last {}, {}):\n",
                lines_text(lines.len()),
                code(file)
            );
            out.push_str(&block("text", lines));
            out.push('\n');
        }
        out.push_str("</details>\n\n");
    }
    if with.len() > MAX_EVIDENCE {
        let _ = writeln!(
            out,
            "Evidence of {} more experiments: in report.html and report.json.\n",
            with.len() - MAX_EVIDENCE
        );
    }
}

/// At most this many experiments' evidence in the summary: CI job summaries are limited in size (GitHub's to
/// 1 MiB), and each can hold about 9 KiB.
const MAX_EVIDENCE: usize = 20;

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Resilient => "✅",
        Verdict::NotExercised => "⚪",
        Verdict::Failed | Verdict::Corrupted | Verdict::Crashed | Verdict::Hung => "❌",
    }
}

/// The tests each experiment broke (passed in every baseline run, failed under the fault), as a list; nothing
/// when none broke.
fn broken_tests(out: &mut String, report: &Report) {
    let broke: Vec<_> = report
        .experiments
        .iter()
        .filter(|e| !e.broken_tests.is_empty())
        .collect();
    if broke.is_empty() {
        return;
    }
    out.push_str("**Broken tests** (passed in every baseline run, failed under the fault):\n\n");
    for e in broke {
        let tests: Vec<String> = e.broken_tests.iter().map(|t| code(t)).collect();
        let _ = writeln!(out, "- {} broke {}", text(&e.id), tests.join(", "));
    }
    out.push('\n');
}

/// The report as a Markdown summary.
pub fn render(report: &Report) -> String {
    let findings = report.experiments.iter().any(|e| e.verdict.is_finding());
    let exercised = report
        .experiments
        .iter()
        .any(|e| e.verdict != Verdict::NotExercised);
    let icon = if findings {
        "❌"
    } else if !exercised || report.interrupted || !report.pending.is_empty() || !report.skipped.is_empty() {
        "⚠️"
    } else {
        "✅"
    };
    let mut out = String::new();
    let _ = writeln!(out, "### {icon} phoebe: {}\n", text(&headline(report)));
    let mut how = format!("{}, seed {}", text(&report.backend), report.seed);
    if let Some(shard) = &report.shard {
        let _ = write!(how, ", shard {}", text(shard));
    }
    let _ = writeln!(
        out,
        "{} ({how}) · baseline {}, timeout {}\n",
        code(&command_line(&report.command)),
        text(&report.baseline.describe()),
        seconds(report.baseline.timeout_ms)
    );

    if !report.experiments.is_empty() {
        out.push_str(
            "| experiment | category | target | p | injected/matched | achieved | realism | verdict | runs | failing (95%) | detail |\n",
        );
        out.push_str("|---|---|--:|--:|--:|--:|--:|---|---|--:|---|\n");
        for e in &report.experiments {
            let r = row(e);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}/{} | {} | {} | {} {} | {} | {} | {} |",
                text(&e.id),
                r.kind,
                percent(r.target),
                percent(Some(r.probability)),
                r.injected,
                r.matched,
                r.achieved_text(),
                realism(r.realism),
                mark(e.verdict),
                e.verdict_text(),
                e.counts_text(),
                e.interval_text(),
                text(&r.detail()),
            );
        }
        let _ = writeln!(out, "\n**Verdicts:** {}\n", verdict_counts(report));
        broken_tests(&mut out, report);
        evidence(&mut out, report);
    }

    if !report.skipped.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Skipped ({}): not run on {}</summary>\n",
            report.skipped.len(),
            text(&report.backend)
        );
        let _ = writeln!(out, "Not run: {}.\n", text(&skipped_note(report)));
        for s in &report.skipped {
            let _ = writeln!(
                out,
                "- {}: {} — {}",
                text(&s.id),
                code(&faults_text(&s.faults)),
                text(&s.reason)
            );
        }
        out.push_str("\n</details>\n\n");
    }

    let unexercised: Vec<_> = report
        .experiments
        .iter()
        .filter(|e| e.verdict == Verdict::NotExercised)
        .collect();
    if !unexercised.is_empty() || !report.pending.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Not exercised ({}) and pending ({})</summary>\n",
            unexercised.len(),
            report.pending.len()
        );
        if !unexercised.is_empty() {
            out.push_str(
                "Not exercised: the program never made these calls, so the experiments prove nothing.\n\n",
            );
            for e in &unexercised {
                let _ = writeln!(out, "- {}: {}", text(&e.id), code(&faults_text(&e.faults)));
            }
            out.push('\n');
        }
        if !report.pending.is_empty() {
            let stopped;
            let why = if report.interrupted {
                "the campaign was interrupted before these ran"
            } else if let Some(reason) = &report.stopped {
                stopped = format!("the campaign stopped before these ran: {}", text(reason));
                &stopped
            } else {
                "not in this report (other shards, or not run yet)"
            };
            let _ = writeln!(out, "Pending: {why}.\n");
            for id in &report.pending {
                let _ = writeln!(out, "- {}", text(id));
            }
            out.push('\n');
        }
        out.push_str("</details>\n\n");
    }

    if report.experiments.iter().any(|e| !e.runs.is_empty()) {
        out.push_str("<details><summary>Every run</summary>\n\n");
        out.push_str("| experiment | run | seed | verdict | injected/matched | time | detail |\n");
        out.push_str("|---|--:|--:|---|--:|--:|---|\n");
        for e in &report.experiments {
            for r in &e.runs {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} {} | {}/{} | {} | {} |",
                    text(&e.id),
                    r.run,
                    r.seed,
                    mark(r.verdict),
                    r.verdict,
                    r.injected,
                    r.matched,
                    seconds(r.duration_ms),
                    text(&r.detail)
                );
            }
        }
        out.push_str("\n</details>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::fixtures::{sample, sample_with_skipped};

    /// The cells of a table row, split on unescaped `|` as GFM does.
    fn cells(line: &str) -> Vec<String> {
        let inner = line.trim().strip_prefix('|').unwrap().strip_suffix('|').unwrap();
        let mut cells = vec![String::new()];
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cells.last_mut().unwrap().push(c);
                    cells.last_mut().unwrap().extend(chars.next());
                }
                '|' => cells.push(String::new()),
                _ => cells.last_mut().unwrap().push(c),
            }
        }
        cells.iter().map(|c| c.trim().to_owned()).collect()
    }

    #[test]
    fn headline_then_command_then_table() {
        let md = render(&sample());
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "### ❌ phoebe: 1 of 3 experiments not resilient, 1 pending (interrupted)"
        );
        assert_eq!(
            lines[2],
            "`'/usr/bin/my app' --in '<input>.txt'` (ptrace, seed 42, shard 1/2) · baseline exit status 0 \
             over 2 runs, timeout 10.000 s"
        );
        let table: Vec<&str> = lines
            .iter()
            .skip_while(|l| !l.starts_with("| experiment"))
            .copied()
            .collect();
        let header = cells(table[0]);
        assert_eq!(header.len(), 11);
        let rows: Vec<Vec<String>> = table[2..5].iter().map(|l| cells(l)).collect();
        assert!(rows.iter().all(|r| r.len() == header.len()), "{md}");
        assert_eq!(
            rows[0][..10],
            [
                "openat-ENOENT",
                "sporadic",
                "5.00%",
                "3.45%",
                "7/200",
                "3.50% injected only",
                "100%",
                "✅ resilient",
                "1/1 resilient",
                "0–79%"
            ]
        );
        assert_eq!(
            rows[1][7..10],
            ["❌ failed, flaky", "1/2 failed, 1/2 resilient", "9–91%"]
        );
        // The `|` and `<` of the detail are escaped, so the row keeps its eleven cells.
        assert_eq!(rows[1][10], r"run 2: exit status 1, baseline 0 \| see \<stderr\>");
        assert_eq!(rows[2][..4], ["unlinkat-EACCES", "given", "-", "50.00%"]);
        assert!(md.contains("**Verdicts:** 1 resilient, 1 not-exercised, 1 failed"));
    }

    #[test]
    fn broken_tests_are_listed_per_experiment() {
        let md = render(&phoebe_core::model::fixtures::sample_with_broken_tests());
        assert!(
            md.contains("- read-EAGAIN broke `tests::reads`, `t.py::test_<x>`"),
            "{md}"
        );
        assert!(!render(&sample()).contains("Broken tests"));
    }

    #[test]
    fn details_hold_unexercised_pending_and_every_run() {
        let md = render(&sample());
        let open = md.matches("<details>").count();
        assert_eq!(open, 2);
        assert_eq!(md.matches("</details>").count(), open);
        let first = &md[md.find("<details>").unwrap()..md.find("</details>").unwrap()];
        assert!(
            first.starts_with("<details><summary>Not exercised (1) and pending (1)</summary>\n\n"),
            "{first}"
        );
        assert!(
            first.contains("- unlinkat-EACCES: `unlinkat:EACCES:p=0.5`"),
            "{first}"
        );
        assert!(
            first.contains("interrupted before these ran.\n\n- connect-ECONNREFUSED"),
            "{first}"
        );
        let runs = &md[md.rfind("<details>").unwrap()..];
        let run_rows: Vec<&str> = runs
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| experiment"))
            .collect();
        assert_eq!(run_rows.len(), 4, "{runs}");
        assert_eq!(
            cells(run_rows[2])[..5],
            ["read-EAGAIN", "2", "1002", "❌ failed", "11/50"]
        );
    }

    #[test]
    fn skipped_experiments_get_a_collapsible_section_with_their_reasons() {
        let md = render(&sample_with_skipped());
        assert!(
            md.starts_with(
                "### ❌ phoebe: 1 of 2 experiments not resilient, 1 pending, 2 skipped (interrupted)\n"
            ),
            "{md}"
        );
        assert_eq!(md.matches("<details>").count(), 3, "skipped, pending, every run");
        let section = &md[md.find("<details><summary>Skipped").unwrap()..];
        let section = &section[..section.find("</details>").unwrap()];
        assert!(
            section.starts_with(
                "<details><summary>Skipped (2): not run on ebpf</summary>\n\nNot run: the ebpf backend cannot run \
                 these 2 experiments (--backend seccomp runs them).\n\n- futex-EAGAIN: `futex:EAGAIN:p=0.1` — no LSM \
                 hook decides 'futex'; "
            ),
            "{section}"
        );
        assert!(
            section.contains("- unlinkat-EACCES: `unlinkat:EACCES:p=0.5` — no LSM hook decides 'unlinkat'")
        );
        assert!(
            !md.contains("| unlinkat-EACCES |"),
            "a skipped experiment has no row: {md}"
        );

        // Skipped experiments alone never make a green headline.
        let mut clean = sample_with_skipped();
        clean.experiments.truncate(1);
        clean.pending.clear();
        clean.interrupted = false;
        assert!(
            render(&clean).starts_with("### ⚠️ phoebe: the exercised experiment is resilient, 2 skipped\n"),
            "{}",
            render(&clean)
        );
    }

    #[test]
    fn the_summary_holds_the_evidence_of_20_experiments_and_counts_the_rest() {
        let mut report = phoebe_core::model::fixtures::sample_with_evidence();
        let failed = report.experiments[1].clone();
        report.experiments = (0..23)
            .map(|i| {
                let mut e = failed.clone();
                e.id = format!("read-EAGAIN-{i}");
                e
            })
            .collect();
        let md = render(&report);
        assert_eq!(md.matches("<details><summary>Evidence: ").count(), MAX_EVIDENCE);
        assert!(md.contains("<details><summary>Evidence: read-EAGAIN-19 run 2"));
        assert!(!md.contains("Evidence: read-EAGAIN-20 "));
        assert!(md.contains("Evidence of 3 more experiments: in report.html and report.json."));
    }

    #[test]
    fn clean_campaign_has_a_green_headline_and_no_details_of_exclusions() {
        let mut report = sample();
        report.experiments.truncate(1);
        report.pending.clear();
        report.interrupted = false;
        let md = render(&report);
        assert!(
            md.starts_with("### ✅ phoebe: the exercised experiment is resilient\n"),
            "{md}"
        );
        assert!(!md.contains("Not exercised ("), "{md}");
        assert_eq!(md.matches("<details>").count(), 1);
    }

    #[test]
    fn escaping_keeps_cells_and_code_spans_intact() {
        assert_eq!(text("a|b\\c*d_e`f<g>h\ni&j"), r"a\|b\\c\*d\_e\`f\<g\>h i\&j");
        assert_eq!(code("ls"), "`ls`");
        assert_eq!(code("echo `date`"), "`` echo `date` ``");
        assert_eq!(code("a``b"), "```a``b```");
    }
}
