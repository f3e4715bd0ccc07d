//! `report.html`: one self-contained HTML5 page — no network, no fonts, no scripts — with inline SVG charts:
//! the natural error rate of each model per baseline interval against its target, target vs achieved
//! injection rates, and a verdict matrix of experiments × runs; plus the campaign table, the baseline,
//! every run, and notices for what is pending and what the backend could not run (skipped).
//!
//! A Content-Security-Policy of `default-src 'none'` (inline styles allowed) makes the browser itself refuse
//! any load the page might try. Light and dark follow `prefers-color-scheme`. Does not own: writing the file.

use std::fmt::Write;

use super::{
    junit::escape as esc,
    view::{Row, command_line, headline, percent, realism, row, seconds, skipped_note},
};
use phoebe_core::model::{
    ExperimentResult, Report, RunEvidence, RunResult, Tier, Verdict,
    report::{Said, faults_text},
};

const STYLE: &str = r#"
:root {
  color-scheme: light dark;
  --bg: #f6f6f3; --panel: #ffffff; --fg: #1d2126; --muted: #5f6b76; --grid: #e4e6e8; --border: #d9dcdf;
  --natural: #6a8fb8; --target: #c8742a; --p: #8c79b8; --achieved: #3d8c68;
  --c-resilient: #3d8c68; --c-not-exercised: #a3abb2; --c-failed: #d49a1c; --c-corrupted: #c8632d;
  --c-crashed: #c2453b; --c-hung: #8e5bb5;
  --on-dark: #ffffff; --on-light: #1d2126;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15181b; --panel: #1d2125; --fg: #e3e6e9; --muted: #9aa4ad; --grid: #2d3339; --border: #353c43;
    --natural: #7ea5d0; --target: #eb9a52; --p: #ad9bdb; --achieved: #5cb68e;
    --c-resilient: #4ea57d; --c-not-exercised: #69727a; --c-failed: #dcaa35; --c-corrupted: #d9773f;
    --c-crashed: #d65a4f; --c-hung: #a477cc;
    --on-light: #15181b;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 1.1rem; margin: 36px 0 12px; font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 0.88em; }
.muted { color: var(--muted); }
.headline { font-size: 1.15rem; margin: 14px 0 6px; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 8px 0 0; padding: 0; list-style: none;
  color: var(--muted); font-size: 0.9rem; }
.meta b { color: var(--fg); font-weight: 500; }
.command { display: block; padding: 10px 12px; margin: 10px 0 0; background: var(--panel);
  border: 1px solid var(--border); border-radius: 6px; overflow-x: auto; white-space: pre; }
.notice { margin: 16px 0 0; padding: 10px 14px; border-radius: 6px; border: 1px solid var(--c-failed);
  background: color-mix(in srgb, var(--c-failed) 12%, var(--panel)); }
.notice p { margin: 0; }
.evidence { margin: 12px 0 0; padding: 0 0 0 12px; border-left: 3px solid var(--border); }
.evidence p { margin: 8px 0 4px; }
pre.command { margin: 4px 0 0; }
.notice ul { margin: 6px 0 0; padding-left: 20px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0 0; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 0.85rem; white-space: nowrap;
  background: var(--v); color: var(--on); }
.counts .tier { font-weight: 600; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 14px 16px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--grid); vertical-align: top; }
th { color: var(--muted); font-weight: 500; white-space: nowrap; }
td.id, td.nowrap { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:last-child td { border-bottom: none; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 14px; }
figure { margin: 0; }
figcaption { font-size: 0.88rem; margin: 0 0 6px; }
svg.chart { display: block; max-width: 100%; height: auto; font-size: 11px; }
svg.chart text { fill: var(--muted); }
svg.chart .label { fill: var(--fg); }
svg.chart .gridline { stroke: var(--grid); stroke-width: 1; }
svg.chart .axis { stroke: var(--border); stroke-width: 1; }
svg.chart .natural { fill: var(--natural); }
svg.chart .natural-line { fill: none; stroke: var(--natural); stroke-width: 1.5; }
svg.chart .target-line { stroke: var(--target); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg.chart text.target-label { fill: var(--target); paint-order: stroke; stroke: var(--panel); stroke-width: 3px; }
svg.chart .bar-target { fill: var(--target); }
svg.chart .bar-p { fill: var(--p); }
svg.chart .bar-achieved { fill: var(--achieved); }
svg.chart .cell rect { fill: var(--v); }
svg.chart .cell text { fill: var(--on); }
svg.chart .cell.empty rect { fill: none; stroke: var(--grid); stroke-dasharray: 3 3; }
.v-resilient { --v: var(--c-resilient); --on: var(--on-dark); }
.v-not-exercised { --v: var(--c-not-exercised); --on: var(--on-light); }
.v-failed { --v: var(--c-failed); --on: var(--on-light); }
.v-corrupted { --v: var(--c-corrupted); --on: var(--on-dark); }
.v-crashed { --v: var(--c-crashed); --on: var(--on-dark); }
.v-hung { --v: var(--c-hung); --on: var(--on-dark); }
.legend { display: flex; gap: 16px; font-size: 0.85rem; color: var(--muted); margin: 0 0 8px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px;
  vertical-align: baseline; }
details { margin: 8px 0; }
summary { cursor: pointer; padding: 4px 0; }
footer { margin-top: 40px; font-size: 0.8rem; color: var(--muted); }
"#;

/// A string usable inside an `id` attribute and a CSS selector: `[A-Za-z0-9_-]`, anything else `_`.
fn html_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Shortens a label for a chart to `max` characters (the full text stays in the tooltip).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// A round upper bound for a rate axis (rates are in [0, 1]), split in four ticks.
fn axis_max(value: f64) -> f64 {
    const STEPS: [f64; 12] = [
        0.001, 0.002, 0.004, 0.01, 0.02, 0.04, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0,
    ];
    STEPS.into_iter().find(|s| *s >= value).unwrap_or(1.0)
}

/// A tick label: the percentage with no trailing zeros (`2.5%`, `10%`, `0.05%`).
fn tick(rate: f64) -> String {
    let text = format!("{:.3}", 100.0 * rate);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn class(v: Verdict) -> String {
    format!("v-{}", v.name())
}

fn pill(v: Verdict) -> String {
    format!("<span class=\"pill {}\">{v}</span>", class(v))
}

/// Width in pixels for a column of chart labels at 11 px (a generous 7 px per character).
fn label_width(labels: impl Iterator<Item = usize>) -> f64 {
    (labels.max().unwrap_or(8).min(34) as f64 * 7.0 + 16.0).max(90.0)
}

/// (a) One experiment's natural error rate per baseline interval, with its target rate as a dashed line.
fn natural_chart(out: &mut String, exp: &ExperimentResult, target: f64, rates: &[f64], interval_ms: u64) {
    const W: f64 = 360.0;
    const H: f64 = 170.0;
    let (left, right, top, bottom) = (48.0, 14.0, 14.0, 32.0);
    let (pw, ph) = (W - left - right, H - top - bottom);
    let peak = rates.iter().copied().fold(target, f64::max);
    let ymax = axis_max(peak);
    let y = |rate: f64| top + ph * (1.0 - rate.clamp(0.0, ymax) / ymax);
    let interval_s = interval_ms as f64 / 1000.0;
    let _ = write!(
        out,
        "<svg id=\"chart-natural-{id}\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         role=\"img\" aria-labelledby=\"chart-natural-{id}-title\">\
         <title id=\"chart-natural-{id}-title\">Natural error rate of {name} per {interval} interval; \
         target {target_text}</title>",
        id = html_id(&exp.id),
        name = esc(&exp.id),
        interval = seconds(interval_ms),
        target_text = percent(Some(target)),
    );
    for i in 0..=4 {
        let rate = ymax * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"gridline\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 6.0,
            y(rate) + 4.0,
            tick(rate),
            yy = y(rate),
        );
    }
    let n = rates.len().max(1) as f64;
    let step = pw / n;
    if rates.len() <= 150 {
        let gap = if step > 4.0 { 1.0 } else { 0.0 };
        for (i, rate) in rates.iter().enumerate() {
            let x = left + step * i as f64;
            let _ = write!(
                out,
                "<rect class=\"natural\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\">\
                 <title>{:.1}–{:.1} s: {}</title></rect>",
                x + gap / 2.0,
                y(*rate),
                (step - gap).max(0.5),
                top + ph - y(*rate),
                interval_s * i as f64,
                interval_s * (i + 1) as f64,
                percent(Some(*rate)),
            );
        }
    } else {
        let points: Vec<String> = rates
            .iter()
            .enumerate()
            .map(|(i, rate)| format!("{:.1},{:.1}", left + step * (i as f64 + 0.5), y(*rate)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"natural-line\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    let ty = y(target);
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"target-line\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/>\
         <text class=\"target-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">target {}</text>",
        left + pw,
        top + ph,
        top + ph,
        left + pw,
        left + pw,
        (ty - 5.0).max(top + 9.0),
        percent(Some(target)),
    );
    let end = interval_s * rates.len() as f64;
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{:.1}\">0 s</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">baseline time, {} per bar</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{end} s</text></svg>",
        top + ph + 16.0,
        left + pw / 2.0,
        top + ph + 16.0,
        seconds(interval_ms),
        left + pw,
        top + ph + 16.0,
    );
}

/// (b) Per experiment: the target rate, the injection probability and the achieved rate, as grouped bars.
fn rates_chart(out: &mut String, rows: &[Row<'_>]) {
    let label_w = label_width(rows.iter().map(|r| r.exp.id.chars().count()));
    let (plot_w, value_w) = (520.0, 120.0);
    let (bar, gap, top, bottom) = (9.0, 14.0, 8.0, 26.0);
    let group = 3.0 * bar + 4.0;
    let width = label_w + plot_w + value_w;
    let height = top + rows.len() as f64 * (group + gap) + bottom;
    let peak = rows
        .iter()
        .flat_map(|r| [r.target, Some(r.probability), r.achieved_total().or(r.achieved())])
        .flatten()
        .fold(0.0, f64::max);
    let xmax = axis_max(peak);
    let x = |rate: f64| label_w + plot_w * rate.clamp(0.0, xmax) / xmax;
    let _ = write!(
        out,
        "<svg id=\"chart-rates\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" \
         height=\"{height:.0}\" role=\"img\" aria-labelledby=\"chart-rates-title\">\
         <title id=\"chart-rates-title\">Target rate, injection probability and achieved injection rate per \
         experiment</title>"
    );
    let plot_bottom = height - bottom;
    for i in 0..=4 {
        let rate = xmax * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"gridline\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{plot_bottom:.1}\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 16.0,
            tick(rate),
            xx = x(rate),
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y0 = top + gap / 2.0 + i as f64 * (group + gap);
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{id}</title>{}</text>",
            label_w - 10.0,
            y0 + group / 2.0 + 4.0,
            esc(&clip(&r.exp.id, 34)),
            id = esc(&r.exp.id),
        );
        let bars = [
            ("bar-target", "target rate", r.target, "no target: a given fault"),
            ("bar-p", "injection probability", Some(r.probability), ""),
            match r.achieved_total() {
                Some(total) => (
                    "bar-achieved",
                    "achieved ((injected + natural) / matched)",
                    Some(total),
                    "no call matched",
                ),
                None => (
                    "bar-achieved",
                    "achieved, injected only (injected / matched)",
                    r.achieved(),
                    "no call matched",
                ),
            },
        ];
        for (j, (cls, what, value, missing)) in bars.into_iter().enumerate() {
            let yb = y0 + j as f64 * (bar + 2.0);
            match value {
                Some(v) => {
                    let _ = write!(
                        out,
                        "<rect class=\"{cls}\" x=\"{label_w:.1}\" y=\"{yb:.1}\" width=\"{:.1}\" height=\"{bar}\">\
                         <title>{}: {what} {}</title></rect>\
                         <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                        (x(v) - label_w).max(1.0),
                        esc(&r.exp.id),
                        percent(Some(v)),
                        x(v) + 5.0,
                        yb + bar - 1.0,
                        percent(Some(v)),
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-style=\"italic\">{missing}</text>",
                        label_w + 5.0,
                        yb + bar - 1.0,
                    );
                }
            }
        }
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{label_w:.1}\" x2=\"{label_w:.1}\" y1=\"{top}\" y2=\"{plot_bottom:.1}\"/></svg>"
    );
}

/// (c) Experiments × runs, one coloured cell per run with its verdict as text and the detail as a tooltip.
fn verdict_matrix(out: &mut String, report: &Report) {
    let runs = report.experiments.iter().map(|e| e.runs.len()).max().unwrap_or(0);
    let label_w = label_width(report.experiments.iter().map(|e| e.id.chars().count()));
    let (cell_w, cell_h, gap, head) = (108.0, 26.0, 4.0, 22.0);
    let width = label_w + runs as f64 * (cell_w + gap);
    let height = head + report.experiments.len() as f64 * (cell_h + gap);
    let _ = write!(
        out,
        "<svg id=\"verdict-matrix\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" \
         height=\"{height:.0}\" role=\"img\" aria-labelledby=\"verdict-matrix-title\">\
         <title id=\"verdict-matrix-title\">Verdict of every run of every experiment</title>"
    );
    for run in 0..runs {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">run {}</text>",
            label_w + run as f64 * (cell_w + gap) + cell_w / 2.0,
            run + 1,
        );
    }
    for (i, e) in report.experiments.iter().enumerate() {
        let y = head + i as f64 * (cell_h + gap);
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{id}</title>{}</text>",
            label_w - 10.0,
            y + cell_h / 2.0 + 4.0,
            esc(&clip(&e.id, 34)),
            id = esc(&e.id),
        );
        for slot in 0..runs {
            let x = label_w + slot as f64 * (cell_w + gap);
            match e.runs.get(slot) {
                Some(r) => {
                    let _ = write!(
                        out,
                        "<g class=\"cell {}\"><title>{} · run {} (seed {}): {} — {}</title>\
                         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell_w}\" height=\"{cell_h}\" rx=\"4\"/>\
                         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                        class(r.verdict),
                        esc(&e.id),
                        r.run,
                        r.seed,
                        r.verdict,
                        esc(&r.detail),
                        x + cell_w / 2.0,
                        y + cell_h / 2.0 + 4.0,
                        r.verdict,
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<g class=\"cell empty\"><title>{}: no run {}</title>\
                         <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell_w}\" height=\"{cell_h}\" rx=\"4\"/></g>",
                        esc(&e.id),
                        slot + 1,
                    );
                }
            }
        }
    }
    out.push_str("</svg>");
}

fn summary_table(out: &mut String, rows: &[Row<'_>]) {
    out.push_str(
        "<div class=\"panel scroll\"><table id=\"summary-table\"><thead><tr><th>experiment</th>\
         <th>category</th><th class=\"num\">target</th><th class=\"num\">p</th>\
         <th class=\"num\">injected / matched</th><th class=\"num\">achieved</th>\
         <th class=\"num\" title=\"injections on call shapes that failed naturally with the errno\">realism</th>\
         <th>verdict</th><th>runs</th>\
         <th class=\"num\" title=\"95 % Wilson interval of the share of exercised runs that failed\">failing (95%)</th>\
         <th>detail</th>\
         </tr></thead><tbody>",
    );
    for r in rows {
        let e = r.exp;
        let _ = write!(
            out,
            "<tr><td class=\"id\"><code title=\"{}\">{}</code></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} / {}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            esc(&faults_text(&e.faults)),
            esc(&e.id),
            esc(&r.kind),
            percent(r.target),
            percent(Some(r.probability)),
            r.injected,
            r.matched,
            esc(&r.achieved_text()),
            realism(r.realism),
            pill(e.verdict),
            if e.verdict_text() != e.verdict.name() {
                " <span class=\"muted\">flaky</span>"
            } else {
                ""
            },
            esc(&e.counts_text()),
            esc(&e.interval_text()),
            esc(&r.detail()),
        );
    }
    out.push_str("</tbody></table></div>");
}

fn baseline(out: &mut String, report: &Report) {
    let b = &report.baseline;
    let _ = write!(
        out,
        "<h2 id=\"baseline\">Baseline</h2><p>Every run is compared with <b>{}</b> ({}); a run still going after \
         <b>{}</b> is hung.</p>",
        esc(&b.exit.to_string()),
        match (&b.flaky, b.expect_status) {
            (Some(what), _) => format!(
                "<b>flaky</b>, accepted with <code>--accept-flaky-baseline</code>: {}",
                esc(what)
            ),
            (None, Some(status)) => format!(
                "declared with <code>--expect-status {status}</code>, the status of all {} baseline run{}",
                b.runs.len(),
                if b.runs.len() == 1 { "" } else { "s" }
            ),
            (None, None) => format!(
                "the status of all {} baseline run{}",
                b.runs.len(),
                if b.runs.len() == 1 { "" } else { "s" }
            ),
        },
        seconds(b.timeout_ms),
    );
    out.push_str(
        "<div class=\"panel scroll\"><table id=\"baseline-table\"><thead><tr><th class=\"num\">run</th><th>exit</th>\
         <th class=\"num\">time</th><th class=\"num\">user CPU</th><th class=\"num\">sys CPU</th>\
         <th class=\"num\">max RSS</th><th>check</th></tr></thead><tbody>",
    );
    for (i, run) in b.runs.iter().enumerate() {
        let (user, sys, rss) = match run.usage {
            Some(u) => (
                seconds(u.user_ms),
                seconds(u.sys_ms),
                format!("{} KiB", u.max_rss_kib),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let check = match run.check_passed {
            Some(true) => "passed",
            Some(false) => "failed",
            None => "-",
        };
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{user}</td>\
             <td class=\"num\">{sys}</td><td class=\"num\">{rss}</td><td>{check}</td></tr>",
            i + 1,
            esc(&run.exit.to_string()),
            seconds(run.duration_ms),
        );
    }
    out.push_str("</tbody></table></div>");
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
    out.push_str(
        "<h2 id=\"broken-tests\">Broken tests</h2><p class=\"muted\">Tests of the suite that passed in every \
         baseline run and failed under the fault.</p><ul>",
    );
    for e in broke {
        let tests: Vec<String> = e
            .broken_tests
            .iter()
            .map(|t| format!("<code>{}</code>", esc(t)))
            .collect();
        let _ = write!(
            out,
            "<li><code>{}</code> broke {}</li>",
            esc(&e.id),
            tests.join(", ")
        );
    }
    out.push_str("</ul>");
}

/// A finding run's evidence: the command that runs it again, its first injected calls, the ends of its output,
/// with links to its files (relative to the campaign directory, where report.html is).
fn evidence(out: &mut String, r: &RunResult, ev: &RunEvidence) {
    let _ = write!(
        out,
        "<div class=\"evidence\"><p><b>Run {} evidence</b> · {} · <a href=\"{log}\">injection log</a>",
        r.run,
        esc(&r.detail),
        log = esc(&r.log),
    );
    for (name, file) in [
        ("stderr", &ev.stderr_file),
        ("stdout", &ev.stdout_file),
        ("stderr after", &ev.post_stderr_file),
    ] {
        if !file.is_empty() {
            let _ = write!(out, " · <a href=\"{f}\">{name}</a>", f = esc(file));
        }
    }
    out.push_str("</p>");
    if !ev.repro_shell.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">Run it again (from the directory the campaign ran in):</p>\
             <code class=\"command\">{}</code>",
            esc(&ev.repro_shell)
        );
    }
    for (what, line, file) in ev.said() {
        let label = match what {
            Said::Error => "Where it said the injected error",
            Said::Crash => "Where it said why it stopped",
            Said::Complaint => "Where it first said something went wrong",
            Said::Hung => "What it was waiting in when the timeout came",
            Said::Round => "What the first workload round that failed said",
            Said::Check => "What the check said",
        };
        let file = if file.is_empty() {
            String::new()
        } else {
            format!(" (<code>{}</code>)", esc(file))
        };
        let _ = write!(
            out,
            "<p class=\"muted\">{label}{file}:</p><pre class=\"command\">{}</pre>",
            esc(line)
        );
    }
    if !ev.first_injections.is_empty() {
        out.push_str("<p class=\"muted\">First injected calls:</p><ul>");
        for call in &ev.first_injections {
            let _ = write!(out, "<li><code>{}</code></li>", esc(&call.to_string()));
        }
        out.push_str("</ul>");
    }
    for (name, lines) in [
        ("stderr", &ev.stderr_tail),
        ("stdout", &ev.stdout_tail),
        ("stderr of the plain run after injection", &ev.post_stderr_tail),
    ] {
        if !lines.is_empty() {
            let _ = write!(
                out,
                "<p class=\"muted\">{name}, last {} line{}:</p><pre class=\"command\">{}</pre>",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                esc(&lines.join("\n"))
            );
        }
    }
    out.push_str("</div>");
}

fn runs(out: &mut String, report: &Report) {
    out.push_str("<h2 id=\"runs\">Every run</h2>");
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "passed",
        Some(false) => "failed",
        None => "-",
    };
    for e in &report.experiments {
        let _ = write!(
            out,
            "<details class=\"panel\"{}><summary><code>{}</code> {} <span class=\"muted\">{}{} · failing \
             {} (95 %) · <code>{}</code></span></summary>",
            // Findings open, so that their runs show without a click.
            if e.verdict.is_finding() { " open" } else { "" },
            esc(&e.id),
            pill(e.verdict),
            esc(&e.counts_text()),
            if e.verdict_text() != e.verdict.name() {
                ", flaky"
            } else {
                ""
            },
            esc(&e.interval_text()),
            esc(&faults_text(&e.faults)),
        );
        if let Some(m) = &e.model {
            let _ = write!(
                out,
                "<p class=\"muted\">{} model: natural rate {} ({} failures in {} calls over {} intervals), \
                 mean {}, variance {:.5}, quantile {}. Rule: {}.</p>",
                m.category,
                percent(Some(m.stats.natural_rate())),
                m.stats.failures,
                m.stats.calls,
                m.stats.intervals,
                percent(Some(m.stats.mean)),
                m.stats.variance,
                percent(Some(m.stats.quantile)),
                esc(&m.rule),
            );
        }
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th class=\"num\">run</th><th class=\"num\">seed</th>\
             <th>verdict</th><th>exit</th><th class=\"num\">time</th><th class=\"num\">injected / matched</th>\
             <th>check</th><th>after</th><th>log</th><th>detail</th></tr></thead><tbody>",
        );
        for r in &e.runs {
            let _ = write!(
                out,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"nowrap\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td>{}</td><td>{}</td>\
                 <td><a href=\"{}\"><code>{}</code></a></td><td>{}</td></tr>",
                r.run,
                r.seed,
                pill(r.verdict),
                r.exit.map_or_else(|| "-".to_owned(), |x| esc(&x.to_string())),
                seconds(r.duration_ms),
                r.injected,
                r.matched,
                yes_no(r.check_passed),
                yes_no(r.post_run_passed),
                esc(&r.log),
                esc(&r.log),
                esc(&r.detail),
            );
        }
        out.push_str("</tbody></table></div>");
        for r in &e.runs {
            if let Some(ev) = r.evidence.as_ref().filter(|_| r.verdict.is_finding()) {
                evidence(out, r, ev);
            }
        }
        out.push_str("</details>");
    }
}

/// The report as one self-contained HTML page.
pub fn render(report: &Report) -> String {
    let rows: Vec<Row<'_>> = report.experiments.iter().map(row).collect();
    let command = command_line(&report.command);
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"generator\" content=\"phoebe {}\">\
         <title>phoebe report: {}</title><style>{STYLE}</style></head><body><main>",
        env!("CARGO_PKG_VERSION"),
        esc(&clip(&command, 80)),
    );

    // Header: what ran, how, and the one-line outcome.
    let _ = write!(
        out,
        "<header><h1>phoebe report</h1><code class=\"command\">{}</code>",
        esc(&command)
    );
    let _ = write!(
        out,
        "<ul class=\"meta\"><li>backend <b>{}</b></li><li>seed <b>{}</b></li>",
        esc(&report.backend),
        report.seed
    );
    if let Some(shard) = &report.shard {
        let _ = write!(out, "<li>shard <b>{}</b></li>", esc(shard));
    }
    let _ = write!(
        out,
        "<li>baseline <b>{}</b>, timeout <b>{}</b></li><li>created <b>{}</b></li></ul>",
        esc(&report.baseline.describe()),
        seconds(report.baseline.timeout_ms),
        esc(&report.created_at),
    );
    let _ = write!(
        out,
        "<p class=\"headline\" id=\"headline\">{}</p><div class=\"counts\">",
        esc(&headline(report))
    );
    // With plausible experiments, each tier is counted apart.
    let tiers: Vec<(Option<Tier>, _)> = if report.has_plausible() {
        Tier::ALL
            .iter()
            .map(|t| (Some(*t), report.counts_of(*t)))
            .collect()
    } else {
        vec![(None, report.counts())]
    };
    for (tier, counts) in tiers {
        if let Some(tier) = tier {
            let _ = write!(out, "<span class=\"tier\">{tier}:</span>");
        }
        for v in Verdict::ALL {
            if let Some(n) = counts.get(&v) {
                let _ = write!(out, "<span class=\"pill {}\">{n} {v}</span>", class(v));
            }
        }
    }
    out.push_str("</div>");
    if report.interrupted || !report.pending.is_empty() {
        let stopped;
        let _ = write!(
            out,
            "<p class=\"notice\" id=\"pending\">{} {} experiment{} pending: {}</p>",
            if report.interrupted {
                "The campaign was interrupted before its last experiment."
            } else if let Some(reason) = &report.stopped {
                stopped = format!(
                    "The campaign stopped before its last experiment: {}.",
                    esc(reason)
                );
                &stopped
            } else {
                "This report holds part of the campaign."
            },
            report.pending.len(),
            if report.pending.len() == 1 { "" } else { "s" },
            report
                .pending
                .iter()
                .map(|id| format!("<code>{}</code>", esc(id)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !report.skipped.is_empty() {
        let _ = write!(
            out,
            "<div class=\"notice\" id=\"skipped\"><p>{} skipped: {}.</p><ul>",
            report.skipped.len(),
            esc(&skipped_note(report)),
        );
        for s in &report.skipped {
            let _ = write!(
                out,
                "<li><code>{}</code> <span class=\"muted\">· <code>{}</code></span> — {}</li>",
                esc(&s.id),
                esc(&faults_text(&s.faults)),
                esc(&s.reason),
            );
        }
        out.push_str("</ul></div>");
    }
    out.push_str("</header>");

    if !rows.is_empty() {
        out.push_str("<h2 id=\"experiments\">Experiments</h2>");
        summary_table(&mut out, &rows);
        broken_tests(&mut out, report);

        out.push_str(
            "<h2 id=\"rates\">Target and achieved rates</h2><div class=\"legend\">\
             <span><span class=\"swatch\" style=\"background: var(--target)\"></span>target rate \
             (natural failures included)</span>\
             <span><span class=\"swatch\" style=\"background: var(--p)\"></span>injection probability p</span>\
             <span><span class=\"swatch\" style=\"background: var(--achieved)\"></span>achieved: (injected + \
             natural failures) / matched where the backend sees the matched calls' results (ptrace), otherwise \
             injected / matched (injected only)</span></div><div class=\"panel scroll\">",
        );
        rates_chart(&mut out, &rows);
        out.push_str("</div>");

        out.push_str("<h2 id=\"verdicts\">Verdict of every run</h2><div class=\"panel scroll\">");
        verdict_matrix(&mut out, report);
        out.push_str("</div>");
    }

    let natural: Vec<_> = report
        .experiments
        .iter()
        .filter_map(|e| e.model.as_ref().map(|m| (e, m)))
        .collect();
    if !natural.is_empty() {
        let _ = write!(
            out,
            "<h2 id=\"natural\">Natural error rates in the baseline</h2><p class=\"muted\">Per {} interval, the \
             share of the calls that failed with the model's errno by themselves; the dashed line is the rate the \
             experiment aims at.</p><div class=\"grid\">",
            seconds(report.interval_ms),
        );
        for (e, m) in natural {
            let _ = write!(
                out,
                "<figure class=\"panel\"><figcaption><code>{}</code> <span class=\"muted\">· {} · natural {} · \
                 target {}</span></figcaption>",
                esc(&e.id),
                m.category,
                percent(Some(m.stats.natural_rate())),
                percent(Some(m.target_rate)),
            );
            match report.natural_rates.get(&e.id).filter(|r| !r.is_empty()) {
                Some(rates) => natural_chart(&mut out, e, m.target_rate, rates, report.interval_ms),
                None => out.push_str("<p class=\"muted\">No per-interval rates were recorded.</p>"),
            }
            out.push_str("</figure>");
        }
        out.push_str("</div>");
    }

    baseline(&mut out, report);
    if !report.experiments.is_empty() {
        runs(&mut out, report);
    }
    let _ = writeln!(
        out,
        "<footer>phoebe {} · report format version {}</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        report.version
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use phoebe_core::model::fixtures::{sample, sample_with_skipped};

    /// The text of the element that starts with `open` (up to the matching `close`, not nested).
    fn element<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
        let start = html.find(open).unwrap_or_else(|| panic!("no {open}"));
        let end = start
            + html[start..]
                .find(close)
                .unwrap_or_else(|| panic!("no {close} after {open}"));
        &html[start..end + close.len()]
    }

    #[test]
    fn self_contained_no_scripts_no_network() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.trim_end().ends_with("</html>"));
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "no JavaScript");
        for url in ["http://", "https://", "//fonts", "@import", "url("] {
            assert!(!lower.contains(url), "{url} would reach outside the page");
        }
        assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
        assert!(html.contains("prefers-color-scheme: dark"));
    }

    #[test]
    fn charts_have_ids_and_one_natural_chart_per_model() {
        let html = render(&sample());
        assert_eq!(html.matches("<svg ").count(), 4, "2 natural + rates + matrix");
        assert_eq!(html.matches("class=\"chart\"").count(), 4);
        for id in [
            "chart-natural-openat-ENOENT",
            "chart-natural-read-EAGAIN",
            "chart-rates",
            "verdict-matrix",
        ] {
            assert_eq!(
                html.matches(&format!("<svg id=\"{id}\" class=\"chart\"")).count(),
                1,
                "{id}"
            );
        }
        assert!(
            !html.contains("chart-natural-unlinkat"),
            "a given fault has no natural rates"
        );
        // read-EAGAIN: 3 intervals, 3 bars, 30% target line on a 40% axis.
        let read = element(&html, "<svg id=\"chart-natural-read-EAGAIN\"", "</svg>");
        assert_eq!(read.matches("<rect class=\"natural\"").count(), 3);
        assert!(read.contains("<title>1.0–2.0 s: 30.00%</title>"), "{read}");
        assert!(
            read.contains(">target 30.00%</text>") && read.contains(">40%</text>"),
            "{read}"
        );
        assert!(
            read.contains(">3 s</text>"),
            "x axis ends at 3 intervals × 1 s: {read}"
        );
    }

    /// Issue 14 item 5: where the natural failures are known, the achieved bar is the matched calls' total failure
    /// rate (comparable with the target bar); the table cell has the injected-only rate beside it.
    #[test]
    fn the_achieved_bar_counts_natural_failures_where_they_are_known() {
        let mut report = sample();
        for r in &mut report.experiments[1].runs {
            r.natural = Some(10);
            r.achieved_counts = phoebe_core::model::AchievedCounts::InjectedAndNatural;
        }
        let html = render(&report);
        let chart = element(&html, "<svg id=\"chart-rates\"", "</svg>");
        // (31 injected + 20 natural) / 150 matched over the two runs.
        assert!(
            chart.contains("<title>read-EAGAIN: achieved ((injected + natural) / matched) 34.00%</title>"),
            "{chart}"
        );
        assert!(chart.contains("openat-ENOENT: achieved, injected only (injected / matched) 3.50%"));
        let table = element(&html, "<table id=\"summary-table\"", "</table>");
        assert!(table.contains("34.00% (injected 20.67%)"), "{table}");
    }

    #[test]
    fn rates_chart_groups_target_p_and_achieved() {
        let html = render(&sample());
        let chart = element(&html, "<svg id=\"chart-rates\"", "</svg>");
        assert_eq!(
            chart.matches("<rect class=\"bar-target\"").count(),
            2,
            "the given fault has no target"
        );
        assert_eq!(chart.matches("<rect class=\"bar-p\"").count(), 3);
        assert_eq!(
            chart.matches("<rect class=\"bar-achieved\"").count(),
            2,
            "nothing matched for unlinkat"
        );
        assert!(
            chart.contains("<title>read-EAGAIN: achieved, injected only (injected / matched) 20.67%</title>"),
            "{chart}"
        );
        assert!(chart.contains("no target: a given fault") && chart.contains("no call matched"));
    }

    #[test]
    fn verdict_matrix_has_a_cell_per_run_and_marks_missing_runs() {
        let html = render(&sample());
        let matrix = element(&html, "<svg id=\"verdict-matrix\"", "</svg>");
        assert_eq!(matrix.matches("<g class=\"cell v-").count(), 4, "4 runs in all");
        assert_eq!(
            matrix.matches("<g class=\"cell empty\"").count(),
            2,
            "2 experiments have 1 of 2 runs"
        );
        assert_eq!(matrix.matches(">run ").count(), 2, "two run columns");
        assert!(
            matrix.contains(
                "<g class=\"cell v-failed\"><title>read-EAGAIN · run 2 (seed 1002): failed — exit status 1, \
                 baseline 0 | see &lt;stderr&gt;</title>"
            ),
            "{matrix}"
        );
        assert!(matrix.contains(">not-exercised</text></g>"));
    }

    #[test]
    fn summary_baseline_runs_and_pending() {
        let html = render(&sample());
        let table = element(&html, "<table id=\"summary-table\"", "</table>");
        assert_eq!(table.matches("<tr>").count(), 4, "header + 3 experiments");
        assert!(
            table.contains("<td class=\"num\">31 / 150</td><td class=\"num\">20.67% injected only</td>"),
            "{table}"
        );
        assert!(table.contains("<span class=\"pill v-failed\">failed</span>"));
        assert!(
            table.contains("<code title=\"read:EAGAIN:p=0.2\">read-EAGAIN</code>"),
            "{table}"
        );
        let baseline = element(&html, "<table id=\"baseline-table\"", "</table>");
        assert_eq!(baseline.matches("<tr>").count(), 3);
        assert!(baseline.contains("<td class=\"num\">1.300 s</td>"));
        assert_eq!(html.matches("<details class=\"panel\"").count(), 3);
        assert_eq!(
            html.matches("<details class=\"panel\" open>").count(),
            1,
            "the failed experiment"
        );
        assert!(html.contains(
            "interrupted before its last experiment. 1 experiment pending: <code>connect-ECONNREFUSED</code>"
        ));
        assert!(html.contains(
            "<p class=\"headline\" id=\"headline\">1 of 3 experiments not resilient, 1 pending (interrupted)</p>"
        ));
    }

    #[test]
    fn skipped_experiments_get_a_notice_with_their_reasons() {
        let html = render(&sample()).replace("\n", "");
        assert!(
            !html.contains("id=\"skipped\""),
            "no notice without skipped experiments"
        );
        let html = render(&sample_with_skipped());
        let notice = element(&html, "<div class=\"notice\" id=\"skipped\">", "</div>");
        assert!(
            notice.starts_with(
                "<div class=\"notice\" id=\"skipped\"><p>2 skipped: the ebpf backend cannot run these 2 experiments \
                 (--backend seccomp runs them).</p><ul><li><code>futex-EAGAIN</code> <span class=\"muted\">· \
                 <code>futex:EAGAIN:p=0.1</code></span> — no LSM hook decides &apos;futex&apos;; "
            ),
            "{notice}"
        );
        assert_eq!(notice.matches("<li>").count(), 2);
        assert!(notice.contains("<code>unlinkat-EACCES</code>"));
        // In the header, beside the pending notice; skipped experiments have no row, chart or runs.
        assert!(html.find("id=\"pending\"").unwrap() < html.find("id=\"skipped\"").unwrap());
        assert!(html.find("id=\"skipped\"").unwrap() < html.find("</header>").unwrap());
        let table = element(&html, "<table id=\"summary-table\"", "</table>");
        assert!(!table.contains("futex-EAGAIN") && !table.contains("unlinkat-EACCES"));
        assert!(html.contains(">1 of 2 experiments not resilient, 1 pending, 2 skipped (interrupted)</p>"));
    }

    #[test]
    fn broken_tests_are_listed_escaped() {
        let html = render(&phoebe_core::model::fixtures::sample_with_broken_tests());
        assert!(html.contains("id=\"broken-tests\""));
        assert!(
            html.contains("<li><code>read-EAGAIN</code> broke <code>tests::reads</code>, <code>t.py::test_&lt;x&gt;</code></li>"),
            "{html}"
        );
        assert!(!render(&sample()).contains("broken-tests"));
    }

    #[test]
    fn every_text_is_escaped() {
        let mut report = sample();
        report.command = vec![
            "sh".into(),
            "-c".into(),
            "cat </etc/passwd && echo \"<script>alert(1)</script>\"".into(),
        ];
        report.experiments[1].runs[1].log = "runs/<b>.json".into();
        report.experiments[2].id = "x<svg onload=alert(1)>".into();
        let html = render(&report);
        assert!(!html.contains("<script>") && !html.contains("<svg onload") && !html.contains("<b>.json"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<code>runs/&lt;b&gt;.json</code>"));
        // Ids with markup still give a valid element id.
        assert_eq!(html_id("x<svg onload=alert(1)>"), "x_svg_onload_alert_1__");
    }

    #[test]
    fn axis_and_labels() {
        assert_eq!(axis_max(0.0), 0.001);
        assert_eq!(axis_max(0.05), 0.1);
        assert_eq!(axis_max(0.3), 0.4);
        assert_eq!(axis_max(1.0), 1.0);
        assert_eq!(tick(0.025), "2.5%");
        assert_eq!(tick(0.1), "10%");
        assert_eq!(tick(0.0005), "0.05%");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
