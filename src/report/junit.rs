//! JUnit XML for CI systems: one `<testsuite>`, one `<testcase>` per experiment; findings are `<failure>`s,
//! unexercised experiments and those the backend could not run are `<skipped>`; one more failed `<testcase>`
//! per test of the suite an experiment broke, named `<experiment> broke <test>`.
//!
//! Also owns [`escape`], the markup escape the HTML report shares. Does not own: writing the file.

use std::fmt::Write;

use super::view::{command_line, lines_text, row, seconds};
use phoebe_core::model::{
    Report, RunEvidence, RunResult, Verdict,
    report::{Said, faults_text},
    saturating_sum,
};

/// Escapes text for XML 1.0 (and HTML) content and attribute values: `&<>"'` become entities, `\r` a
/// character reference (parsers would turn a raw one into `\n`), and characters XML 1.0 forbids (C0 controls
/// other than tab and newline, DEL and the C1 controls, U+FFFE, U+FFFF) become U+FFFD: a report must parse
/// whatever bytes a target printed.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
    out
}

/// [`escape`] for an attribute value, keeping tabs and newlines (a parser normalizes raw ones to spaces).
fn attr(text: &str) -> String {
    escape(text).replace('\t', "&#9;").replace('\n', "&#10;")
}

/// Seconds with millisecond precision, as JUnit's `time` attributes want them.
fn time(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// `phoebe.<basename of the program>`: CI systems group test cases by class name.
fn classname(report: &Report) -> String {
    let program = report.command.first().map_or("", String::as_str);
    let base = program.rsplit('/').find(|s| !s.is_empty()).unwrap_or("target");
    format!("phoebe.{base}")
}

fn run_line(r: &RunResult) -> String {
    format!(
        "run {} (seed {}): {}: {}; injected {} of {} matched calls; {}; log {}",
        r.run,
        r.seed,
        r.verdict,
        r.detail,
        r.injected,
        r.matched,
        seconds(r.duration_ms),
        r.log
    )
}

/// The explaining run's evidence as plain text for a failure's body: the command that runs it again, its first
/// injected calls, the lines that say something ([`RunEvidence::said`]: the injected error named, a runtime's
/// last words, the first complaint, a hung run's waits, a failed round's and a failed check's words), and the ends
/// of its stderr and stdout.
fn evidence_text(run: u32, ev: &RunEvidence) -> String {
    let mut out = format!("\nevidence of run {run}:");
    if !ev.repro_shell.is_empty() {
        let _ = write!(
            out,
            "\nrepro (from the directory the campaign ran in): {}",
            ev.repro_shell
        );
    }
    for call in &ev.first_injections {
        let _ = write!(out, "\ninjected: {call}");
    }
    for (what, line, file) in ev.said() {
        let label = match what {
            Said::Error => "said",
            Said::Crash => "stopped",
            Said::Complaint => "first complaint",
            Said::Hung => "waiting in",
            Said::Round => "workload said",
            Said::Check => "check said",
        };
        let _ = write!(out, "\n{label} ({file}): {line}");
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
        if !lines.is_empty() {
            let _ = write!(out, "\n{name} ({file}, last {}):", lines_text(lines.len()));
            for line in lines.iter() {
                let _ = write!(out, "\n  {line}");
            }
        }
    }
    out
}

fn property(out: &mut String, indent: &str, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "{indent}<property name=\"{}\" value=\"{}\"/>",
        attr(name),
        attr(value)
    );
}

/// The report as a JUnit XML document.
pub fn render(report: &Report) -> String {
    let broken: usize = report.experiments.iter().map(|e| e.broken_tests.len()).sum();
    let tests = report.experiments.len() + report.skipped.len() + broken;
    let failures = report
        .experiments
        .iter()
        .filter(|e| e.verdict.is_finding())
        .count()
        + broken;
    let skipped = report
        .experiments
        .iter()
        .filter(|e| e.verdict == Verdict::NotExercised)
        .count()
        + report.skipped.len();
    let total_ms = saturating_sum(
        report
            .experiments
            .iter()
            .flat_map(|e| &e.runs)
            .map(|r| r.duration_ms),
    );
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\"",
        time(total_ms)
    );
    let classname = classname(report);

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"phoebe\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"phoebe\" {counts} timestamp=\"{}\">",
        attr(&report.created_at)
    );
    out.push_str("    <properties>\n");
    let indent = "      ";
    property(&mut out, indent, "command", &command_line(&report.command));
    property(&mut out, indent, "backend", &report.backend);
    property(&mut out, indent, "seed", &report.seed.to_string());
    if let Some(shard) = &report.shard {
        property(&mut out, indent, "shard", shard);
    }
    let baseline = format!(
        "{}, timeout {}",
        report.baseline.describe(),
        seconds(report.baseline.timeout_ms)
    );
    property(&mut out, indent, "baseline", &baseline);
    if let Some(what) = &report.baseline.flaky {
        property(&mut out, indent, "flaky baseline", what);
    }
    out.push_str("    </properties>\n");

    for e in &report.experiments {
        let r = row(e);
        let ms = saturating_sum(e.runs.iter().map(|r| r.duration_ms));
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">",
            attr(&classname),
            attr(&e.id),
            time(ms)
        );
        out.push_str("      <properties>\n");
        let indent = "        ";
        property(&mut out, indent, "fault", &faults_text(&e.faults));
        property(&mut out, indent, "backend", &report.backend);
        property(&mut out, indent, "seed", &report.seed.to_string());
        let seeds: Vec<String> = e.runs.iter().map(|r| r.seed.to_string()).collect();
        property(&mut out, indent, "run seeds", &seeds.join(" "));
        property(&mut out, indent, "category", &r.kind);
        if e.tier() == phoebe_core::model::Tier::Plausible {
            property(&mut out, indent, "tier", "plausible");
        }
        if let Some(target) = r.target {
            property(&mut out, indent, "target rate", &target.to_string());
        }
        property(
            &mut out,
            indent,
            "injected/matched",
            &format!("{}/{}", r.injected, r.matched),
        );
        property(&mut out, indent, "achieved", &r.achieved_text());
        if let Some(realism) = r.realism {
            property(&mut out, indent, "realism", &format!("{realism:.4}"));
        }
        property(&mut out, indent, "runs", &e.counts_text());
        property(&mut out, indent, "failing (95%)", &e.interval_text());
        if e.verdict_text() != e.verdict.name() {
            property(&mut out, indent, "flaky", "true");
        }
        out.push_str("      </properties>\n");
        match e.verdict {
            Verdict::Resilient => {}
            Verdict::NotExercised => {
                // Why: no call matched, or calls matched and none was drawn (a low p on few calls).
                let why = r.explaining.map_or_else(
                    || "no call matched the fault".to_owned(),
                    |run| run.detail.clone(),
                );
                let _ = writeln!(
                    out,
                    "      <skipped message=\"not exercised: {}\"/>",
                    escape(&why)
                );
            }
            verdict => {
                let mut body: Vec<String> = e.runs.iter().map(|r| escape(&run_line(r))).collect();
                if let Some((run, ev)) = r.evidence() {
                    body.push(escape(&evidence_text(run.run, ev)));
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{verdict}\">{}</failure>",
                    attr(&format!(
                        "{} ({}): {}",
                        e.verdict_text(),
                        e.counts_text(),
                        r.detail()
                    )),
                    body.join("\n")
                );
            }
        }
        out.push_str("    </testcase>\n");
        // One testcase per test the experiment broke, so that a CI page says `openat-ENOENT broke test_x`.
        for test in &e.broken_tests {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">",
                attr(&classname),
                attr(&format!("{} broke {test}", e.id))
            );
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"broken test\">{}</failure>",
                attr(&format!(
                    "{test} passed in every baseline run and failed under {}",
                    e.id
                )),
                escape(&faults_text(&e.faults))
            );
            out.push_str("    </testcase>\n");
        }
    }
    for s in &report.skipped {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0.000\">",
            attr(&classname),
            attr(&s.id)
        );
        out.push_str("      <properties>\n");
        let indent = "        ";
        property(&mut out, indent, "fault", &faults_text(&s.faults));
        property(&mut out, indent, "backend", &report.backend);
        out.push_str("      </properties>\n");
        let _ = writeln!(
            out,
            "      <skipped message=\"{}\"/>",
            attr(&format!(
                "not run: the {} backend cannot run it: {}",
                report.backend, s.reason
            ))
        );
        out.push_str("    </testcase>\n");
    }
    if !report.pending.is_empty() || report.interrupted || report.stopped.is_some() {
        let mut note = String::new();
        if report.interrupted {
            note.push_str("interrupted before the last experiment\n");
        }
        if let Some(why) = &report.stopped {
            let _ = writeln!(note, "stopped: {why}");
        }
        if !report.pending.is_empty() {
            let _ = writeln!(note, "pending: {}", report.pending.join(", "));
        }
        let _ = writeln!(out, "    <system-out>{}</system-out>", escape(note.trim_end()));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use quick_xml::{XmlVersion, events::Event, reader::Reader};

    use super::*;
    use phoebe_core::model::fixtures::{sample, sample_with_skipped};

    /// An element as a real XML parser saw it: name, unescaped attributes, unescaped text.
    #[derive(Debug)]
    struct Element {
        name: String,
        attrs: BTreeMap<String, String>,
        text: String,
        parent: Option<usize>,
    }

    /// Parses `xml` with quick-xml (end names checked), in document order; panics on malformed XML.
    fn parse(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}"));
            match event {
                Event::Start(ref tag) | Event::Empty(ref tag) => {
                    let attrs = tag
                        .attributes()
                        .map(|a| {
                            let a = a.expect("attribute");
                            let key = a.key.as_ref().to_owned();
                            (
                                key,
                                a.normalized_value(XmlVersion::Explicit1_0).unwrap().into_owned(),
                            )
                        })
                        .collect();
                    elements.push(Element {
                        name: tag.name().as_ref().to_owned(),
                        attrs,
                        text: String::new(),
                        parent: open.last().copied(),
                    });
                    if matches!(event, Event::Start(_)) {
                        open.push(elements.len() - 1);
                    }
                }
                Event::End(_) => {
                    open.pop();
                }
                Event::Text(t) => {
                    if let Some(&i) = open.last() {
                        elements[i].text.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().expect("char ref") {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&r)
                            .expect("predefined entity")
                            .to_owned(),
                    };
                    if let Some(&i) = open.last() {
                        elements[i].text.push_str(&resolved);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(open.is_empty(), "unclosed elements");
        elements
    }

    fn named<'a>(elements: &'a [Element], name: &str) -> Vec<&'a Element> {
        elements.iter().filter(|e| e.name == name).collect()
    }

    /// Issue 15: the `<skipped>` text said "the program never made this call" when 65 calls matched and none was
    /// drawn for injection.
    #[test]
    fn a_not_exercised_experiment_says_why_in_its_skipped_message() {
        let mut report = sample();
        let e = report
            .experiments
            .iter_mut()
            .find(|e| e.verdict == Verdict::NotExercised)
            .expect("a not-exercised experiment");
        e.runs = vec![phoebe_core::model::fixtures::run(
            1,
            Verdict::NotExercised,
            "65 matching call(s), none drawn for injection",
            65,
            0,
        )];
        let elements = parse(&render(&report));
        assert_eq!(
            named(&elements, "skipped")[0].attrs["message"],
            "not exercised: 65 matching call(s), none drawn for injection"
        );
    }

    #[test]
    fn a_broken_test_is_a_failed_testcase_of_its_own() {
        let xml = render(&phoebe_core::model::fixtures::sample_with_broken_tests());
        let elements = parse(&xml);
        let suite = &named(&elements, "testsuite")[0].attrs;
        assert_eq!((suite["tests"].as_str(), suite["failures"].as_str()), ("5", "3"));
        let names: Vec<&str> = named(&elements, "testcase")
            .iter()
            .map(|c| c.attrs["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "openat-ENOENT",
                "read-EAGAIN",
                "read-EAGAIN broke tests::reads",
                "read-EAGAIN broke t.py::test_<x>",
                "unlinkat-EACCES"
            ]
        );
        let failures = named(&elements, "failure");
        assert_eq!(failures.len(), 3);
        assert_eq!(
            failures[1].attrs["message"],
            "tests::reads passed in every baseline run and failed under read-EAGAIN"
        );
    }

    #[test]
    fn escape_handles_markup_and_characters_xml_forbids() {
        assert_eq!(escape(r#"<&>"'"#), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(
            escape("a\u{1}b\u{1b}[31mc\0d\u{7f}e\u{85}f"),
            "a\u{fffd}b\u{fffd}[31mc\u{fffd}d\u{fffd}e\u{fffd}f"
        );
        assert_eq!(escape("tab\tline\nret\r"), "tab\tline\nret&#13;");
        assert_eq!(escape("\u{fffe}\u{ffff}é→"), "\u{fffd}\u{fffd}é→");
        assert_eq!(attr("a\tb\nc"), "a&#9;b&#10;c");
    }

    #[test]
    fn parses_with_counts_time_and_one_testcase_per_experiment() {
        let xml = render(&sample());
        let elements = parse(&xml);
        assert_eq!(elements[0].name, "testsuites");
        let suites = named(&elements, "testsuite");
        assert_eq!(suites.len(), 1);
        let suite = &suites[0].attrs;
        assert_eq!(suite["name"], "phoebe");
        assert_eq!(suite["tests"], "3");
        assert_eq!(suite["failures"], "1");
        assert_eq!(suite["skipped"], "1");
        // 1.5 s + 2 × 1.5 s + 1.5 s of runs.
        assert_eq!(suite["time"], "6.000");
        let cases = named(&elements, "testcase");
        let names: Vec<&str> = cases.iter().map(|c| c.attrs["name"].as_str()).collect();
        assert_eq!(names, ["openat-ENOENT", "read-EAGAIN", "unlinkat-EACCES"]);
        assert!(cases.iter().all(|c| c.attrs["classname"] == "phoebe.my app"));
        assert_eq!(cases[1].attrs["time"], "3.000");
        assert_eq!(named(&elements, "failure").len(), 1);
        assert_eq!(named(&elements, "skipped").len(), 1);
        assert_eq!(
            named(&elements, "system-out")[0].text,
            "interrupted before the last experiment\npending: connect-ECONNREFUSED"
        );
    }

    #[test]
    fn failures_and_skips_sit_in_their_testcase_with_escaped_detail() {
        let xml = render(&sample());
        let elements = parse(&xml);
        let index = |name: &str| {
            elements
                .iter()
                .position(|e| e.attrs.get("name").is_some_and(|n| n == name))
                .unwrap()
        };
        let failure = named(&elements, "failure")[0];
        assert_eq!(failure.parent, Some(index("read-EAGAIN")));
        assert_eq!(failure.attrs["type"], "failed");
        assert_eq!(
            failure.attrs["message"],
            "failed, flaky (1/2 failed, 1/2 resilient): run 2: exit status 1, baseline 0 | see <stderr>"
        );
        let lines: Vec<&str> = failure.text.lines().collect();
        assert_eq!(lines.len(), 2, "{}", failure.text);
        assert!(
            lines[0].starts_with("run 1 (seed 1001): resilient: same exit status"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(
                "run 2 (seed 1002): failed: exit status 1, baseline 0 | see <stderr>; injected 11 of 50"
            ),
            "{}",
            lines[1]
        );
        let skipped = named(&elements, "skipped")[0];
        assert_eq!(skipped.parent, Some(index("unlinkat-EACCES")));
        assert_eq!(
            skipped.attrs["message"],
            "not exercised: no call matched the fault"
        );
        // The raw document never carries the unescaped detail.
        assert!(!xml.contains("<stderr>") && xml.contains("&lt;stderr&gt;"));
    }

    #[test]
    fn skipped_experiments_are_skipped_testcases_with_the_reason() {
        let xml = render(&sample_with_skipped());
        let elements = parse(&xml);
        let suite = &named(&elements, "testsuite")[0].attrs;
        assert_eq!(suite["tests"], "4");
        assert_eq!(suite["failures"], "1");
        assert_eq!(suite["skipped"], "2", "nothing unexercised, two skipped");
        let cases = named(&elements, "testcase");
        let names: Vec<&str> = cases.iter().map(|c| c.attrs["name"].as_str()).collect();
        assert_eq!(
            names,
            ["openat-ENOENT", "read-EAGAIN", "futex-EAGAIN", "unlinkat-EACCES"]
        );
        assert_eq!(cases[2].attrs["time"], "0.000");
        let futex = elements
            .iter()
            .position(|e| e.name == "testcase" && e.attrs["name"] == "futex-EAGAIN")
            .unwrap();
        let skipped: Vec<&Element> = named(&elements, "skipped");
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].parent, Some(futex));
        assert!(
            skipped[0].attrs["message"]
                .starts_with("not run: the ebpf backend cannot run it: no LSM hook decides 'futex'; "),
            "{}",
            skipped[0].attrs["message"]
        );
        assert!(skipped[0].attrs["message"].ends_with("use --backend seccomp"));
        let props: BTreeMap<&str, &str> = elements
            .iter()
            .filter(|e| e.name == "property" && e.parent == Some(futex + 1))
            .map(|e| (e.attrs["name"].as_str(), e.attrs["value"].as_str()))
            .collect();
        assert_eq!(props["fault"], "futex:EAGAIN:p=0.1");
        assert_eq!(props["backend"], "ebpf");
        assert!(
            named(&elements, "failure")
                .iter()
                .all(|f| f.parent != Some(futex))
        );
    }

    #[test]
    fn properties_name_seed_backend_and_fault() {
        let elements = parse(&render(&sample()));
        let props = |case: &str| -> BTreeMap<String, String> {
            let i = elements
                .iter()
                .position(|e| e.name == "testcase" && e.attrs["name"] == case)
                .unwrap();
            let props_el = elements
                .iter()
                .position(|e| e.name == "properties" && e.parent == Some(i))
                .unwrap();
            elements
                .iter()
                .filter(|e| e.name == "property" && e.parent == Some(props_el))
                .map(|e| (e.attrs["name"].clone(), e.attrs["value"].clone()))
                .collect()
        };
        let read = props("read-EAGAIN");
        assert_eq!(read["fault"], "read:EAGAIN:p=0.2");
        assert_eq!(read["seed"], "42");
        assert_eq!(read["backend"], "ptrace");
        assert_eq!(read["run seeds"], "1001 1002");
        assert_eq!(read["injected/matched"], "31/150");
        let given = props("unlinkat-EACCES");
        assert_eq!(given["category"], "given");
        assert!(!given.contains_key("target rate"));
        let suite_props: BTreeMap<&str, &str> = elements
            .iter()
            .filter(|e| e.name == "property" && e.parent == Some(2))
            .map(|e| (e.attrs["name"].as_str(), e.attrs["value"].as_str()))
            .collect();
        assert_eq!(suite_props["command"], "'/usr/bin/my app' --in '<input>.txt'");
        assert_eq!(suite_props["shard"], "1/2");
    }

    #[test]
    fn hostile_text_still_parses() {
        let mut report = sample();
        report.experiments[1].runs[1].detail =
            "stderr: \u{1b}[31mboom\u{7}\0 \"quoted\" & 'single'\r\nnext".into();
        report.experiments[1].id = "read-<EAGAIN>&\"".into();
        let xml = render(&report);
        assert!(
            xml.chars()
                .all(|c| matches!(c, '\t' | '\n') || (c >= ' ' && !('\x7f'..='\u{9f}').contains(&c))),
            "a character XML 1.0 forbids got through"
        );
        let elements = parse(&xml);
        let failure = named(&elements, "failure")[0];
        assert_eq!(
            failure.attrs["message"],
            "failed, flaky (1/2 failed, 1/2 resilient): run 2: stderr: \u{fffd}[31mboom\u{fffd}\u{fffd} \"quoted\" & 'single'\r\nnext"
        );
        assert!(
            named(&elements, "testcase")
                .iter()
                .any(|c| c.attrs["name"] == "read-<EAGAIN>&\"")
        );
    }
}
