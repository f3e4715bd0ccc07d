//! Which test broke: a test suite's results read from a run's stdout (pure), and the tests an experiment broke —
//! those that failed in one of its runs and neither failed nor were skipped in any baseline run.
//!
//! Two formats are recognised, with no flag: libtest's (`cargo test`) `test NAME ... ok|FAILED|ignored` lines,
//! and pytest's `FAILED path::test - reason` / `ERROR path::test` short-summary lines (printed by default since
//! pytest 6, `-rfE`) and its verbose `path::test PASSED|FAILED|SKIPPED` lines (`-v`).

use std::{collections::BTreeMap, path::Path};

/// One test's result in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    Skipped,
    Failed,
}

/// What a run's stdout says about a test suite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    /// The output is a test suite's: libtest's `running N tests`, pytest's `test session starts` or its last line
    /// (`2 passed in 0.01s`), or a test's result.
    pub suite: bool,
    /// The results, by test name; a test reported twice (two test binaries with the same test path, a retried
    /// test) keeps its worst outcome.
    pub tests: BTreeMap<String, Outcome>,
}

/// The test results a run's stdout reports ([`Results`]).
pub fn results(stdout: &str) -> Results {
    let mut out: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut suite = false;
    let mut record = |name: &str, outcome: Outcome| {
        let name = name.trim();
        if !name.is_empty() {
            let e = out.entry(name.to_owned()).or_insert(outcome);
            *e = (*e).max(outcome);
        }
    };
    // libtest with one thread prints `test NAME ... ` before the test runs and the result after it: output the
    // test prints (`--nocapture`) can come between them.
    let mut pending: Option<String> = None;
    // libtest's list of failed tests (`failures:`, then `    NAME` lines, a blank line, `test result:`), the one
    // place `cargo test -q` names them; taken only when `test result:` follows, so that a test's own output
    // that looks alike is not.
    let mut failures: Option<Vec<String>> = None;
    let mut listed: Option<Vec<String>> = None;
    // Failed tests' captured output (from the first `---- NAME stdout ----` to `test result:`) is the tests',
    // not results: a test that prints `test x ... ok` names nothing; only the failures list is read there.
    let mut captured = false;
    for line in stdout.lines() {
        let line = line.trim_end();
        if line.starts_with("---- ") && (line.ends_with(" stdout ----") || line.ends_with(" stderr ----")) {
            captured = true;
            pending = None;
            failures = None;
            continue;
        }
        if let Some(names) = listed.take()
            && line.starts_with("test result: ")
        {
            for name in names {
                record(&name, Outcome::Failed);
            }
        }
        if line.starts_with("test result: ") {
            captured = false;
        }
        if line == "failures:" {
            failures = Some(Vec::new());
            continue;
        }
        if let Some(names) = &mut failures {
            match line.strip_prefix("    ") {
                Some(name) if !name.starts_with(' ') => {
                    names.push(name.to_owned());
                    continue;
                }
                _ if line.is_empty() && !names.is_empty() => listed = failures.take(),
                _ if line.is_empty() => {}
                _ => failures = None,
            }
        }
        if captured {
            continue;
        }
        if (line.starts_with("running ") && (line.ends_with(" tests") || line.ends_with(" test")))
            || (line.starts_with('=') && line.contains(" test session starts "))
            || pytest_progress(line)
        {
            suite = true;
        }
        // pytest's last line, also with -q (which drops the session header): `2 passed, 1 failed in 0.12s`.
        let bare = line.trim_matches(|c| c == '=' || c == ' ');
        let mut words = bare.split_whitespace();
        if let (Some(n), Some(what)) = (words.next(), words.next())
            && n.bytes().all(|b| b.is_ascii_digit())
            && [
                "passed",
                "failed",
                "error",
                "skipped",
                "deselected",
                "xfailed",
                "xpassed",
                "warning",
            ]
            .iter()
            .any(|w| what.trim_end_matches(',').starts_with(w))
            && bare.contains(" in ")
            && bare.ends_with('s')
        {
            suite = true;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some(at) = rest.rfind(" ...")
        {
            let name = &rest[..at];
            match libtest_outcome(&rest[at + 4..]) {
                Some(o) => {
                    record(name, o);
                    pending = None;
                }
                None => pending = Some(name.to_owned()),
            }
            continue;
        }
        if let Some(name) = &pending
            && let Some(o) = libtest_outcome(line)
        {
            record(name, o);
            pending = None;
            continue;
        }
        // pytest's short summary: `FAILED tests/test_a.py::test_x - AssertionError: …`.
        for (prefix, outcome) in [("FAILED ", Outcome::Failed), ("ERROR ", Outcome::Failed)] {
            if let Some(rest) = line.strip_prefix(prefix)
                && rest.contains("::")
            {
                let name = rest.split(" - ").next().unwrap_or(rest);
                record(name, outcome);
            }
        }
        // pytest -v: `tests/test_a.py::test_x PASSED   [ 50%]`.
        let mut words = line.split_whitespace();
        if let (Some(name), Some(word)) = (words.next(), words.next())
            && name.contains("::")
            && !line.starts_with(char::is_whitespace)
        {
            let outcome = match word {
                "PASSED" | "XPASS" => Some(Outcome::Passed),
                "FAILED" | "ERROR" => Some(Outcome::Failed),
                "SKIPPED" | "XFAIL" => Some(Outcome::Skipped),
                _ => None,
            };
            if let Some(o) = outcome {
                record(name, o);
            }
        }
    }
    Results {
        suite: suite || !out.is_empty(),
        tests: out,
    }
}

/// What a failed run's detail adds when every baseline run's output was a test suite's and the run's shows no
/// sign of one ([`Results::suite`]): the fault stopped the test runner itself, before any test.
pub const RAN_NONE: &str = "; the suite ran none of its tests (its output shows no test session, every baseline \
                            run's did): the fault stopped the test runner itself";

/// pytest's progress line without `-v` (`-q` drops the session header): a test file's name or none, then one
/// character per test run (`.` passed, `F` failed, `E` error, `s` skipped, `x`/`X` xfail/xpass), then the
/// share done: `test_six.py ....F..s   [ 42%]`, `..........   [100%]`.
fn pytest_progress(line: &str) -> bool {
    let Some(rest) = line.strip_suffix("%]") else {
        return false;
    };
    let Some((before, share)) = rest.rsplit_once('[') else {
        return false;
    };
    if !share.trim().bytes().all(|b| b.is_ascii_digit()) || share.trim().is_empty() {
        return false;
    }
    let marks = before.trim_end();
    let marks = marks.rsplit_once(' ').map_or(marks, |(_, m)| m);
    !marks.is_empty() && marks.bytes().all(|b| b".FEsxX".contains(&b))
}

/// The result word after libtest's ` ...`: `ok`, `FAILED`, `ignored` (or `ignored, reason`); `None` otherwise.
fn libtest_outcome(s: &str) -> Option<Outcome> {
    let s = s.trim();
    match s {
        "ok" => Some(Outcome::Passed),
        "FAILED" => Some(Outcome::Failed),
        _ if s == "ignored" || s.starts_with("ignored,") => Some(Outcome::Skipped),
        _ => None,
    }
}

/// The tests an experiment broke: failed in one of `runs` (each run's results), and reported in the baseline
/// without failing or being skipped in any of its runs — or, for pytest without `-v` (which names only the
/// tests that fail), not reported failing there; empty unless every baseline run's output is a test suite's.
pub fn broken(baseline: &[Results], runs: &[Results]) -> Vec<String> {
    if baseline.is_empty() || !baseline.iter().all(|b| b.suite) {
        return Vec::new();
    }
    let mut out: Vec<String> = runs
        .iter()
        .flat_map(|r| r.tests.iter())
        .filter(|(_, o)| **o == Outcome::Failed)
        .map(|(name, _)| name)
        .filter(|name| {
            baseline
                .iter()
                .all(|b| b.tests.get(*name).is_none_or(|o| *o == Outcome::Passed))
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The test results of a JUnit XML document (any of its `<testcase>`s, in `<testsuite>`s or `<testsuites>`):
/// a testcase is named `CLASSNAME.NAME` (`NAME` without a classname), failed with a `<failure>` or `<error>`,
/// skipped with `<skipped>`, passed otherwise.
pub fn junit_results(xml: &str) -> Result<Results, quick_xml::Error> {
    use quick_xml::{events::Event, reader::Reader};
    let mut reader = Reader::from_str(xml);
    let mut tests: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut current: Option<(String, Outcome)> = None;
    let attr = |tag: &quick_xml::events::BytesStart<'_>, name: &str| -> String {
        tag.try_get_attribute(name)
            .ok()
            .flatten()
            .and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .unwrap_or_default()
    };
    let mut finish = |case: (String, Outcome)| {
        let e = tests.entry(case.0).or_insert(case.1);
        *e = (*e).max(case.1);
    };
    loop {
        let event = reader.read_event()?;
        match &event {
            Event::Start(tag) | Event::Empty(tag) => match tag.name().as_ref() {
                "testcase" => {
                    let (class, name) = (attr(tag, "classname"), attr(tag, "name"));
                    let full = if class.is_empty() {
                        name
                    } else {
                        format!("{class}.{name}")
                    };
                    if let Some(case) = current.take() {
                        finish(case);
                    }
                    if matches!(event, Event::Empty(_)) {
                        finish((full, Outcome::Passed));
                    } else {
                        current = Some((full, Outcome::Passed));
                    }
                }
                "failure" | "error" => {
                    if let Some(case) = &mut current {
                        case.1 = Outcome::Failed;
                    }
                }
                "skipped" => {
                    if let Some(case) = &mut current {
                        case.1 = case.1.max(Outcome::Skipped);
                    }
                }
                _ => {}
            },
            Event::End(tag) if tag.name().as_ref() == "testcase" => {
                if let Some(case) = current.take() {
                    finish(case);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(Results { suite: true, tests })
}

/// `--tests junit:GLOB`, after a run that started at `since`: copies the JUnit files the glob matches (relative
/// to the working directory) that were written since into `<dir>/<base>.junit-N.xml`, so that the next run
/// cannot overwrite them; how many it copied.
pub(super) fn keep_junit(pattern: &str, since: std::time::SystemTime, dir: &Path, base: &str) -> usize {
    let mut n = 0;
    let Ok(paths) = glob::glob(pattern) else {
        return 0;
    };
    for path in paths.flatten() {
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if fresh && std::fs::copy(&path, dir.join(format!("{base}.junit-{}.xml", n + 1))).is_ok() {
            n += 1;
        }
    }
    if n == 0 && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "--tests junit:{pattern} matched no file written by the run (in {}); no test will be named as broken \
             from it\nhint: give the glob relative to the directory phoebe runs in, e.g. \
             junit:target/surefire-reports/*.xml, and check that the suite writes JUnit XML",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        );
    }
    n
}

/// [`keep_junit`] warns once per campaign.
static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The results of run `base` in `dir`: from the JUnit files [`keep_junit`] kept with `--tests junit:` (a file
/// that does not parse is warned about and left out), else from its stdout (`<base>.out`).
pub(super) fn run_results(dir: &Path, base: &str, junit: bool) -> Results {
    if !junit {
        let out = std::fs::read(dir.join(format!("{base}.out"))).unwrap_or_default();
        return results(&String::from_utf8_lossy(&out));
    }
    let mut all = Results::default();
    for k in 1.. {
        let path = dir.join(format!("{base}.junit-{k}.xml"));
        let Ok(bytes) = std::fs::read(&path) else {
            break;
        };
        match junit_results(&String::from_utf8_lossy(&bytes)) {
            Ok(r) => {
                all.suite = true;
                for (name, o) in r.tests {
                    let e = all.tests.entry(name).or_insert(o);
                    *e = (*e).max(o);
                }
            }
            Err(e) => tracing::warn!("{} is not JUnit XML phoebe can read: {e}", path.display()),
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Results, o: Outcome) -> Vec<&str> {
        r.tests
            .iter()
            .filter(|(_, v)| **v == o)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// pytest -q prints no session header: its progress lines say that tests ran, so that a run that shows none
    /// (the runner died before its first test) is told from one that crashed after its summary.
    #[test]
    fn pytests_progress_lines_are_a_test_session() {
        for line in [
            "test_six.py ....F..s   [ 42%]",
            "..........                                                   [100%]",
        ] {
            assert!(pytest_progress(line), "{line}");
            assert!(results(&format!("{line}\n")).suite, "{line}");
        }
        for line in [
            "[100%]",
            "download 5 files [ 50%]",
            "ImportError while loading conftest '/x/conftest.py'.",
            "....  [ab%]",
        ] {
            assert!(!pytest_progress(line), "{line}");
        }
        let died = "Traceback (most recent call last):\n  File \"/usr/bin/pytest\", line 8\nOSError: [Errno 5] \
                    Input/output error\n";
        assert!(!results(died).suite);
    }

    #[test]
    fn libtest_lines_with_failures_sections_and_interleaved_output() {
        let out = "\nrunning 4 tests\ntest tests::adds ... ok\ntest tests::reads ... FAILED\n\
            test tests::slow ... ignored, too slow\ntest tests::noisy ... hello from the test\nok\n\
            test src/lib.rs - f (line 3) ... ok\n\nfailures:\n\n---- tests::reads stdout ----\n\
            test tests::adds ... is not a result\nthread 'tests::reads' panicked\n\nfailures:\n    tests::reads\n\n\
            test result: FAILED. 3 passed; 1 failed; 1 ignored\n";
        let r = results(out);
        assert_eq!(
            names(&r, Outcome::Passed),
            ["src/lib.rs - f (line 3)", "tests::adds", "tests::noisy"]
        );
        assert_eq!(names(&r, Outcome::Failed), ["tests::reads"]);
        assert_eq!(names(&r, Outcome::Skipped), ["tests::slow"]);
    }

    #[test]
    fn libtest_quiet_output_names_only_the_failures_list() {
        let out = "\nrunning 3 tests\n.F.\nfailures:\n\n---- tests::reads stdout ----\nfailures:\n    not::this\n\n\
            test tests::printed ... FAILED\nrunning 9 tests\n\
            thread 'tests::reads' panicked\n\nfailures:\n    tests::reads\n    src/lib.rs - f (line 3)\n\n\
            test result: FAILED. 2 passed; 1 failed\n";
        let r = results(out);
        assert!(r.suite);
        assert_eq!(
            names(&r, Outcome::Failed),
            ["src/lib.rs - f (line 3)", "tests::reads"]
        );
        assert!(names(&r, Outcome::Passed).is_empty());
    }

    #[test]
    fn pytest_short_summary_and_verbose_lines() {
        let out = "tests/test_a.py::test_x PASSED     [ 50%]\ntests/test_a.py::test_y FAILED    [100%]\n\
            ==== short test summary info ====\nFAILED tests/test_a.py::test_y - FileNotFoundError: x - y\n\
            ERROR tests/test_b.py::test_z\n  tests/test_a.py::test_q PASSED\n";
        let r = results(out);
        assert_eq!(names(&r, Outcome::Passed), ["tests/test_a.py::test_x"]);
        assert_eq!(
            names(&r, Outcome::Failed),
            ["tests/test_a.py::test_y", "tests/test_b.py::test_z"]
        );
        assert_eq!(results("hello\nworld\nFAILED to start\n"), Results::default());
        let quiet =
            results("===== test session starts =====\nt.py ..  [100%]\n===== 2 passed in 0.01s =====\n");
        assert!(quiet.suite && quiet.tests.is_empty());
        let quieter = results("..                  [100%]\n2 passed in 0.01s\n");
        assert!(quieter.suite && quieter.tests.is_empty());
        assert!(results("1 failed, 1 passed in 0.03s").suite);
        assert!(!results("3 passed the test in time").suite);
    }

    #[test]
    fn junit_testcases_by_classname_and_name() {
        let xml = r#"<?xml version="1.0"?><testsuites><testsuite name="s">
            <testcase classname="com.x.FooTest" name="adds" time="0.1"/>
            <testcase classname="com.x.FooTest" name="reads &amp; writes"><failure message="boom">trace</failure></testcase>
            <testcase name="TestErr"><error/></testcase>
            <testcase classname="c" name="later"><skipped/></testcase>
            </testsuite></testsuites>"#;
        let r = junit_results(xml).unwrap();
        assert!(r.suite);
        assert_eq!(names(&r, Outcome::Passed), ["com.x.FooTest.adds"]);
        assert_eq!(
            names(&r, Outcome::Failed),
            ["TestErr", "com.x.FooTest.reads & writes"]
        );
        assert_eq!(names(&r, Outcome::Skipped), ["c.later"]);
        assert!(junit_results("<testsuite><testcase name=\"a\"></testsuite>").is_err());
    }

    #[test]
    fn broken_means_failed_under_the_fault_and_fine_in_every_baseline_run() {
        let r = |s: &str| results(s);
        let base = [
            r("test a ... ok\ntest b ... ok\ntest c ... FAILED\ntest d ... ignored\n"),
            r("test a ... ok\ntest b ... ok\ntest c ... ok\n"),
        ];
        let runs = [
            r("test a ... FAILED\ntest b ... ok\ntest c ... FAILED\ntest d ... FAILED\n"),
            r("test b ... FAILED\ntest a ... FAILED\n"),
        ];
        assert_eq!(broken(&base, &runs), ["a", "b"]);
        // pytest without -v: only failures are named; a test not failing in the baseline counts.
        let session = "=== test session starts ===\n";
        let base = [r("FAILED t.py::old - x\n"), r(session)];
        let runs = [r("FAILED t.py::new - x\nFAILED t.py::old\n")];
        assert_eq!(broken(&base, &runs), ["t.py::new"]);
        // Not a test suite in the baseline: nothing is named.
        assert!(broken(&[r("hi\n")], &runs).is_empty());
    }
}
