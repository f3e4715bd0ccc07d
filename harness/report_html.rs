//! report.html in a real browser: headless Chromium opens the page rendered from `fixtures/report.json`; the
//! charts must be in the DOM it built, its screenshots must be real pictures (light and dark), and the page
//! must log nothing to the console (no script errors, no blocked loads: the page's CSP forbids every fetch).
//!
//! `PHOEBE_REPORT_HTML_OUT=DIR` copies the page and both screenshots to DIR, to look at them.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use crate::common::{ebpf_report_fixture, report_fixture as fixture, skipped};

/// Debian's package (ci/setup installs it).
const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(60);
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 3000;

/// What one Chromium run left behind.
struct Browsed {
    dom: String,
    stderr: String,
}

/// Runs headless Chromium on `page` with a fresh profile, dumping the DOM and writing a screenshot; kills its
/// whole process group if it takes longer than `TIMEOUT`.
fn chromium(page: &Path, work: &Path, screenshot: &Path, dark: bool) -> Browsed {
    let profile = tempfile::tempdir_in(work).expect("profile dir");
    let (out, err) = (work.join("chromium.out"), work.join("chromium.err"));
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        // Root in a container: no user namespaces for the sandbox, no GPU.
        "--no-sandbox",
        "--disable-gpu",
        // Nothing may reach the network: no QUIC, no background fetches, no component or sync traffic.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={WIDTH},{HEIGHT}"))
    .arg(format!("--screenshot={}", screenshot.display()));
    if dark {
        // Makes `prefers-color-scheme: dark` match.
        cmd.arg("--force-dark-mode");
    }
    cmd.arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("stdout file"))
        .stderr(fs::File::create(&err).expect("stderr file"));
    // Its own process group, so that a timeout kills the renderer and GPU processes too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            // The leader is not reaped yet, so the group id is still ours.
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            panic!(
                "chromium did not finish within {TIMEOUT:?}; stderr:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = fs::read_to_string(&err).expect("chromium stderr");
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    Browsed {
        dom: fs::read_to_string(&out).expect("chromium stdout"),
        stderr,
    }
}

/// The page's console messages in Chromium's log. With `--enable-logging=stderr --v=0` the browser process
/// writes every console message of the page — `console.*` calls, uncaught exceptions, CSP violations, failed
/// loads — to stderr, whatever its level, as `[pid:tid:time:INFO:CONSOLE:LINE] "message", source: URL (LINE)`
/// (`CONSOLE(LINE)` in older releases). Everything else there is the browser's own noise in a container
/// (D-Bus, vaapi, sandbox warnings) and says nothing about the page. `console_detection_works` below proves,
/// on this very Chromium, that a page with errors does produce such lines, so an empty result is not a blind
/// spot.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// Width and height of a PNG (its IHDR chunk), after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn chromium_installed() -> bool {
    if Path::new(CHROMIUM).is_file() {
        return true;
    }
    skipped("no chromium (ci/setup installs it)");
    false
}

#[test]
fn console_detection_works() {
    if !chromium_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("probe.html");
    fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; script-src 'unsafe-inline'\"><title>probe</title>\
         <link rel=\"stylesheet\" href=\"https://example.invalid/blocked.css\"></head><body>\
         <script>console.error('phoebe-probe'); notDefined();</script></body></html>",
    )
    .unwrap();
    let seen = chromium(&page, dir.path(), &dir.path().join("probe.png"), false);
    let lines = console_lines(&seen.stderr);
    let said = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(said("phoebe-probe"), "console.error not seen:\n{}", seen.stderr);
    assert!(
        said("Uncaught ReferenceError"),
        "uncaught exception not seen:\n{}",
        seen.stderr
    );
    assert!(
        said("Content Security Policy"),
        "blocked load not seen:\n{}",
        seen.stderr
    );
}

#[test]
fn report_renders_with_its_charts_and_no_console_errors() {
    if !chromium_installed() {
        return;
    }
    let report = fixture();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    fs::write(&page, phoebe::report::html::render(&report)).unwrap();

    let (light_png, dark_png) = (dir.path().join("light.png"), dir.path().join("dark.png"));
    let light = chromium(&page, dir.path(), &light_png, false);
    let dark = chromium(&page, dir.path(), &dark_png, true);
    if let Some(out) = std::env::var_os("PHOEBE_REPORT_HTML_OUT").map(PathBuf::from) {
        fs::create_dir_all(&out).unwrap();
        for file in [&page, &light_png, &dark_png] {
            fs::copy(file, out.join(file.file_name().unwrap())).unwrap();
        }
    }

    for seen in [&light, &dark] {
        let console = console_lines(&seen.stderr);
        assert!(
            console.is_empty(),
            "the page logged to the console:\n{}",
            console.join("\n")
        );
    }

    // The DOM Chromium built from the page: every chart, by id.
    let dom = &light.dom;
    let models: Vec<&str> = report
        .experiments
        .iter()
        .filter(|e| e.model.is_some())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(models.len(), 4, "the fixture has 4 models and 2 given faults");
    for id in models
        .iter()
        .map(|m| format!("chart-natural-{m}"))
        .chain(["chart-rates".into(), "verdict-matrix".into()])
    {
        assert!(
            dom.contains(&format!("<svg id=\"{id}\" class=\"chart\"")),
            "no {id} in the DOM"
        );
    }
    assert_eq!(
        dom.matches("<svg ").count(),
        models.len() + 2,
        "one natural chart per model, rates, matrix"
    );
    let runs: usize = report.experiments.iter().map(|e| e.runs.len()).sum();
    assert_eq!(
        dom.matches("<g class=\"cell v-").count(),
        runs,
        "one matrix cell per run"
    );
    // The command's `<` and `&` arrive escaped, as text.
    assert!(dom.contains(
        "<title>phoebe report: java -jar build/libs/mail-server.jar --config 'conf/&lt;dev&gt; &amp; \
         test.toml'</title>"
    ));
    assert!(!dom.contains("<script"), "the page has no scripts");
    // The crashed run's evidence: its output, escaped, and links to its files that the browser resolved.
    assert_eq!(
        dom.matches("<div class=\"evidence\">").count(),
        1,
        "the fixture's one run with evidence"
    );
    assert!(dom.contains("# A fatal error has been detected by the Java Runtime Environment:"));
    assert!(dom.contains("--config 'conf/&lt;dev&gt; &amp; test.toml'</code>"));
    assert!(dom.contains("<a href=\"experiments/openat-ENOENT/run-1.err\">stderr</a>"));

    // The screenshots are real pictures of the whole window, and the dark one differs from the light one.
    let (light_bytes, dark_bytes) = (fs::read(&light_png).unwrap(), fs::read(&dark_png).unwrap());
    for png in [&light_bytes, &dark_bytes] {
        assert_eq!(png_size(png), (WIDTH, HEIGHT));
        // A blank page of this size compresses to a few KiB; text, tables and charts take far more.
        assert!(
            png.len() > 100_000,
            "screenshot is nearly empty ({} bytes)",
            png.len()
        );
    }
    assert_ne!(
        light_bytes, dark_bytes,
        "prefers-color-scheme: dark changed nothing"
    );
}

#[test]
fn skipped_experiments_show_as_a_notice_in_the_browser() {
    if !chromium_installed() {
        return;
    }
    let report = ebpf_report_fixture();
    assert_eq!(
        report.skipped.len(),
        2,
        "futex-ETIMEDOUT and fsync-EIO (no hook; sendto-EPIPE runs: eBPF raises its SIGPIPE too)"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    fs::write(&page, phoebe::report::html::render(&report)).unwrap();
    let seen = chromium(&page, dir.path(), &dir.path().join("skipped.png"), false);
    let console = console_lines(&seen.stderr);
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );
    let dom = &seen.dom;
    let start = dom
        .find("<div class=\"notice\" id=\"skipped\">")
        .expect("the skipped notice in the DOM");
    let notice = &dom[start..start + dom[start..].find("</div>").unwrap()];
    assert!(
        notice.contains(
            "<p>2 skipped: the ebpf backend cannot run these 2 experiments (--backend seccomp runs them).</p>"
        ),
        "{notice}"
    );
    assert_eq!(notice.matches("<li>").count(), 2, "{notice}");
    for id in ["futex-ETIMEDOUT", "fsync-EIO"] {
        assert!(notice.contains(&format!("<code>{id}</code>")), "{id}: {notice}");
        assert!(!dom.contains(&format!("chart-natural-{id}")), "{id} has no chart");
    }
    // The rest of the report is still there: one matrix cell per run of what ran.
    let runs: usize = report.experiments.iter().map(|e| e.runs.len()).sum();
    assert_eq!(dom.matches("<g class=\"cell v-").count(), runs);
}
