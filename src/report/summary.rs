//! The tables `phoebe observe` and `phoebe inject` print when the target ends.

use std::fmt::Write;

use crate::model::{
    Category, Effect, FaultSpec, InjectionLog, MIN_SAMPLES, Observation, Plan, SyscallStats, TargetExit,
};

/// How the run ended, for the first line of a summary.
fn ending(exit: Option<TargetExit>, interrupted: bool) -> String {
    match (exit, interrupted) {
        (Some(exit), true) => format!("{exit}, interrupted"),
        (Some(exit), false) => exit.to_string(),
        (None, _) => "interrupted".into(),
    }
}

/// `observe`'s table: one row per syscall, failing ones first.
pub fn observation(obs: &Observation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phoebe: observed '{}' for {:.3} s ({} interval{} of {} ms) on {}: {}",
        obs.command.join(" "),
        obs.duration_ms as f64 / 1000.0,
        obs.intervals.len(),
        if obs.intervals.len() == 1 { "" } else { "s" },
        obs.interval_ms,
        obs.backend,
        ending(obs.exit, obs.interrupted),
    );
    let mut rows: Vec<(String, SyscallStats)> = obs
        .totals()
        .into_iter()
        .map(|(sc, stats)| (sc.name().to_owned(), stats))
        .collect();
    rows.sort_by(|a, b| {
        b.1.failures()
            .cmp(&a.1.failures())
            .then(b.1.calls.cmp(&a.1.calls))
            .then(a.0.cmp(&b.0))
    });
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>8} {:>8} {:>10} {:>10}  errors",
        "syscall", "calls", "failed", "rate", "avg µs", "max µs"
    );
    let (mut calls, mut failed) = (0u64, 0u64);
    for (name, s) in &rows {
        calls = u64::saturating_add(calls, s.calls);
        failed = u64::saturating_add(failed, s.failures());
        let errors: Vec<String> = s.errors.iter().map(|(e, n)| format!("{e}×{n}")).collect();
        let (avg, max) = if obs.latency_measured {
            (
                format!("{:.1}", s.latency_ns_sum as f64 / s.calls.max(1) as f64 / 1000.0),
                format!("{:.1}", s.latency_ns_max as f64 / 1000.0),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        let _ = writeln!(
            out,
            "{:<18} {:>10} {:>8} {:>7.2}% {:>10} {:>10}  {}",
            name,
            s.calls,
            s.failures(),
            100.0 * s.failures() as f64 / s.calls.max(1) as f64,
            avg,
            max,
            errors.join(" "),
        );
    }
    let _ = writeln!(
        out,
        "{:<18} {:>10} {:>8} {:>7.2}%",
        "total",
        calls,
        failed,
        100.0 * failed as f64 / calls.max(1) as f64
    );
    out
}

/// `inject`'s table: per rule, how often it matched and injected, against the rule's probability.
pub fn injections(log: &InjectionLog) -> String {
    let mut out = String::new();
    let in_kernel: Vec<&str> = log
        .rules
        .iter()
        .flat_map(|r| r.in_kernel.iter().map(|sc| sc.name()))
        .collect();
    // A truncated log keeps the first injections only; the rules count them all.
    let (injected, short) = match log.truncated_after {
        Some(_) => (
            log.rules.iter().map(|r| r.injected).sum::<u64>(),
            log.rules
                .iter()
                .filter(|r| r.fault.short.is_some())
                .map(|r| r.injected)
                .sum(),
        ),
        None => (
            log.injections.len() as u64,
            log.injections
                .iter()
                .filter(|i| matches!(i.effect, Effect::Short(_)))
                .count() as u64,
        ),
    };
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    // Partial transfers are no errors: `injected 1 short transfer`, `injected 2 errors and 1 short transfer`.
    let what = match (injected - short, short) {
        (errors, 0) => plural(errors, "error"),
        (0, short) => plural(short, "short transfer"),
        (errors, short) => format!(
            "{} and {}",
            plural(errors, "error"),
            plural(short, "short transfer")
        ),
    };
    let _ = writeln!(
        out,
        "phoebe: {} {what}{}{} into '{}' ({}, {}): {}",
        if log.replayed { "replayed" } else { "injected" },
        match log.truncated_after {
            Some(n) => format!(" (the log keeps the first {n})"),
            None => String::new(),
        },
        if in_kernel.is_empty() {
            String::new()
        } else {
            format!(" (+ every {}, in the kernel)", in_kernel.join(", "))
        },
        log.command.join(" "),
        log.backend,
        if log.backend == "ebpf" {
            // The kernel rolls with bpf_get_prandom_u32: the seed decided nothing.
            "random in the kernel".to_owned()
        } else {
            format!("seed {}", log.seed)
        },
        ending(log.exit, log.interrupted),
    );
    let width = log
        .rules
        .iter()
        .map(|r| r.fault.to_string().chars().count())
        .chain(
            log.injections
                .iter()
                .filter_map(|i| i.shape.as_ref())
                .map(|s| shape_label(s).chars().count()),
        )
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$} {:>9} {:>9} {:>8} {:>9}",
        "rule", "matched", "injected", "p", "achieved"
    );
    for (id, rule) in log.rules.iter().enumerate() {
        let achieved = match rule.achieved_rate() {
            Some(rate) => format!("{:.2}%", 100.0 * rate),
            None => "-".into(),
        };
        // A rule failed wholly in the kernel has no counts: say so rather than print zeros.
        let uncounted = rule.matched == 0 && !rule.in_kernel.is_empty();
        let _ = writeln!(
            out,
            "{:<width$} {:>9} {:>9} {:>7.2}% {:>9}",
            rule.fault.to_string(),
            if uncounted {
                "-".into()
            } else {
                rule.matched.to_string()
            },
            if uncounted {
                "all".into()
            } else {
                rule.injected.to_string()
            },
            100.0 * rule.fault.probability,
            achieved,
        );
        // Where the rule's injections landed: one line per call shape, most injections first.
        let mut by_shape: Vec<(String, u64)> = Vec::new();
        for inj in log.injections.iter().filter(|i| i.rule == id) {
            let Some(shape) = &inj.shape else { continue };
            let shape = shape_label(shape);
            match by_shape.iter_mut().find(|(s, _)| *s == shape) {
                Some((_, n)) => *n += 1,
                None => by_shape.push((shape, 1)),
            }
        }
        by_shape.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (label, n) in by_shape {
            let _ = writeln!(out, "{label:<width$} {:>9} {n:>9}", "");
        }
    }
    if !in_kernel.is_empty() {
        let _ = writeln!(
            out,
            "note: every call of {} failed in the kernel (SECCOMP_RET_ERRNO, no round trip to phoebe): those calls \
             are not counted",
            in_kernel.join(", ")
        );
    }
    if log.rules.iter().any(|r| r.matched == 0 && r.in_kernel.is_empty()) {
        let _ = writeln!(
            out,
            "note: a rule that matched no call was not exercised: the target never made that call"
        );
    }
    out
}

/// A sub-row of `inject`'s table: the shape some of a rule's injections landed on.
fn shape_label(shape: &crate::model::Shape) -> String {
    if shape.is_empty() {
        "  on the syscall alone".to_owned()
    } else {
        format!("  on {shape}")
    }
}

/// `synthesize`'s table: one row per model, then the excluded pairs with their reasons.
pub fn plan(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phoebe: {} error model{} for '{}'{} ({} excluded)",
        plan.models.len(),
        if plan.models.len() == 1 { "" } else { "s" },
        plan.command.join(" "),
        match plan
            .models
            .iter()
            .filter(|m| m.tier == crate::model::Tier::Plausible)
            .count()
        {
            0 => String::new(),
            n => format!(": {} observed, {n} plausible", plan.models.len() - n),
        },
        plan.excluded.len()
    );
    let width = plan.models.iter().map(|m| m.id.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(
        out,
        "{:<width$} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}  fault",
        "model", "category", "failures", "natural", "quantile", "target", "p"
    );
    for m in &plan.models {
        // A model by shape: one row per shape's rule, the model's id on the first.
        let rows: Vec<(&crate::model::RateStats, Category, f64, f64, &FaultSpec)> = if m.shapes.is_empty() {
            vec![(&m.stats, m.category, m.target_rate, m.probability, &m.fault)]
        } else {
            m.shapes
                .iter()
                .map(|s| (&s.stats, s.category, s.target_rate, s.probability, &s.fault))
                .collect()
        };
        for (i, (stats, category, target, p, fault)) in rows.into_iter().enumerate() {
            let _ = writeln!(
                out,
                "{:<width$} {:>11} {:>9} {:>8.3}% {:>8.3}% {:>8.3}% {:>8.3}%  {}",
                if i == 0 { m.id.as_str() } else { "" },
                if m.tier == crate::model::Tier::Plausible {
                    m.tier.to_string()
                } else {
                    category.to_string()
                },
                stats.failures,
                100.0 * stats.natural_rate(),
                100.0 * stats.quantile,
                100.0 * target,
                100.0 * p,
                fault
            );
        }
    }
    // Exclusions by shape come in numbers (every path a program probes for): one line per pair and reason.
    let mut grouped: Vec<(String, &str, usize, Option<&str>)> = Vec::new();
    for e in &plan.excluded {
        let pair = format!("{}-{}", e.syscall, e.action.id_part());
        match grouped
            .iter_mut()
            .find(|(p, r, _, _)| *p == pair && *r == e.reason)
        {
            Some(group) => group.2 += 1,
            None => grouped.push((pair, &e.reason, 1, e.shape.as_deref())),
        }
    }
    for (pair, reason, n, shape) in grouped {
        match shape {
            Some(shape) if n > 1 => {
                let _ = writeln!(out, "excluded {pair} on {n} shapes (e.g. {shape}): {reason}");
            }
            Some(shape) => {
                let _ = writeln!(out, "excluded {pair} on {shape}: {reason}");
            }
            None => {
                let _ = writeln!(out, "excluded {pair}: {reason}");
            }
        }
    }
    let mut few: Vec<String> = Vec::new();
    for m in &plan.models {
        // A plausible model has no rate statistics: its rate is the fixed rate, whatever the samples.
        if m.tier == crate::model::Tier::Plausible {
            // Never failed naturally: a fixed rate, no statistics.
            continue;
        }
        if m.shapes.is_empty() && m.stats.too_few_samples() {
            few.push(format!("{} ({})", m.id, m.stats.intervals));
        }
        for s in m.shapes.iter().filter(|s| s.stats.too_few_samples()) {
            few.push(format!("{} on {} ({})", m.id, s.shape, s.stats.intervals));
        }
    }
    if !few.is_empty() {
        let _ = writeln!(
            out,
            "few samples: {} rest on fewer than {MIN_SAMPLES} intervals with calls (in brackets): their rates are \
             uncertain\nhint: observe a longer run, or several (exec --baseline-runs), or with --interval auto",
            few.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::shape::RegistersOnly;
    use crate::{
        decide::{Call, Decider},
        model::{Errno, FaultSpec, ObservationBuilder, ObservationMeta, Syscall},
    };

    #[test]
    fn observation_table_lists_failures_first() {
        let mut b = ObservationBuilder::new(Duration::from_secs(1));
        let sc = |n| Syscall::parse(n).unwrap();
        for _ in 0..10 {
            b.record(Duration::ZERO, sc("read"), None, Ok(()), Duration::from_micros(2));
        }
        b.record(
            Duration::ZERO,
            sc("openat"),
            None,
            Err(Errno::parse("ENOENT").unwrap()),
            Duration::from_micros(4),
        );
        b.record(
            Duration::ZERO,
            sc("openat"),
            None,
            Ok(()),
            Duration::from_micros(4),
        );
        let obs = b.finish(
            Duration::from_millis(5),
            ObservationMeta {
                command: vec!["ls".into()],
                backend: "ptrace".into(),
                exit: Some(TargetExit::Code(2)),
                ..Default::default()
            },
        );
        let text = observation(&obs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("'ls'") && lines[0].ends_with("exit status 2"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("openat") && lines[2].contains("50.00%") && lines[2].ends_with("ENOENT×1"),
            "{text}"
        );
        assert!(lines[3].starts_with("read"), "{text}");
        assert!(lines[4].starts_with("total") && lines[4].contains("12"), "{text}");
    }

    #[test]
    fn injection_table_shows_achieved_rate() {
        let mut d = Decider::new(
            vec![
                FaultSpec::parse("openat:ENOENT:nth=2").unwrap(),
                FaultSpec::parse("read:EIO").unwrap(),
            ],
            5,
        );
        let call = Call {
            args: [0; 6],
            syscall: Syscall::parse("openat").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        d.decide(&call, &mut RegistersOnly);
        d.decide(&call, &mut RegistersOnly);
        let log = d.finish(
            vec!["cat".into(), "f".into()],
            "ptrace",
            Some(TargetExit::Code(1)),
            false,
        );
        let text = injections(&log);
        assert!(
            text.starts_with("phoebe: injected 1 error into 'cat f' (ptrace, seed 5): exit status 1"),
            "{text}"
        );
        assert!(
            text.contains("openat:ENOENT:nth=2") && text.contains("50.00%"),
            "{text}"
        );
        assert!(text.contains("not exercised"), "{text}");
    }

    /// Regression (issue 13, fuzzing): the table indexed the rules by each injection's `rule`, so a log whose
    /// injection names a rule it does not have panicked (index out of bounds). Its injection is counted under no
    /// rule now.
    #[test]
    fn a_log_whose_injection_names_a_missing_rule_is_summarized_without_panic() {
        let mut d = Decider::new(vec![FaultSpec::parse("openat:ENOENT").unwrap()], 5);
        let call = Call {
            args: [0; 6],
            syscall: Syscall::parse("openat").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        d.decide(&call, &mut RegistersOnly);
        let mut log = d.finish(vec!["cat".into()], "ptrace", Some(TargetExit::Code(1)), false);
        log.injections[0].rule = 3;
        let text = injections(&log);
        assert!(text.starts_with("phoebe: injected 1 error into 'cat'"), "{text}");
        assert!(!text.contains("on the syscall alone"), "{text}");
    }

    /// A log truncated at its cap keeps the first injections only: the summary counts them all (the rules'
    /// counters) and says the log keeps fewer.
    #[test]
    fn a_truncated_log_is_summarized_with_its_full_count() {
        let mut d = Decider::new(vec![FaultSpec::parse("openat:ENOENT").unwrap()], 5);
        let call = Call {
            args: [0; 6],
            syscall: Syscall::parse("openat").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        for _ in 0..3 {
            d.decide(&call, &mut RegistersOnly);
        }
        let mut log = d.finish(vec!["cat".into()], "ptrace", Some(TargetExit::Code(1)), false);
        log.injections.truncate(1);
        log.truncated_after = Some(1);
        let text = injections(&log);
        assert!(
            text.starts_with("phoebe: injected 3 errors (the log keeps the first 1) into 'cat'"),
            "{text}"
        );
    }

    /// A partial transfer is no error: the headline counts them apart, the table names the rule as `short=`.
    #[test]
    fn short_transfers_are_counted_apart_from_errors() {
        let mut d = Decider::new(
            vec![
                FaultSpec::parse("read:short=1").unwrap(),
                FaultSpec::parse("openat:ENOENT").unwrap(),
            ],
            5,
        );
        let mut call = Call {
            args: [3, 0, 64, 0, 0, 0],
            syscall: Syscall::parse("read").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        d.decide(&call, &mut RegistersOnly);
        let only_short = d.finish(vec!["cat".into()], "ptrace", Some(TargetExit::Code(1)), false);
        let text = injections(&only_short);
        assert!(
            text.starts_with("phoebe: injected 1 short transfer into 'cat'"),
            "{text}"
        );
        assert!(text.contains("read:short=1"), "{text}");
        let mut d = Decider::new(only_short.rules.iter().map(|r| r.fault.clone()).collect(), 5);
        d.decide(&call, &mut RegistersOnly);
        call.syscall = Syscall::parse("openat").unwrap();
        d.decide(&call, &mut RegistersOnly);
        d.decide(&call, &mut RegistersOnly);
        let both = injections(&d.finish(vec!["cat".into()], "ptrace", None, false));
        assert!(
            both.starts_with("phoebe: injected 2 errors and 1 short transfer into 'cat'"),
            "{both}"
        );
    }
}
