//! The tables `phoebe observe` and `phoebe inject` print when the target ends.

use std::fmt::Write;

use phoebe_core::model::{
    Category, Draws, Effect, FaultSpec, InjectionLog, MIN_SAMPLES, Observation, Plan, SyscallStats,
    TargetExit,
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

/// `inject`'s table: per rule, how often it matched and injected, against the rule's probability; `draws`: who
/// drew the decisions (the backend's [`Draws`]), which says whether the seed is worth printing.
pub fn injections(log: &InjectionLog, draws: Draws) -> String {
    let mut out = String::new();
    let in_kernel: Vec<&str> = log
        .rules
        .iter()
        .flat_map(|r| r.in_kernel.iter().map(|sc| sc.name()))
        .collect();
    // A truncated log keeps the first injections only; the rules count them all.
    let (errors, short, delayed) = match log.truncated_after {
        Some(_) => {
            let sum = |kind: fn(&FaultSpec) -> bool| {
                log.rules
                    .iter()
                    .filter(|r| kind(&r.fault))
                    .map(|r| r.injected)
                    .sum::<u64>()
            };
            (
                sum(|f| f.short.is_none() && !f.is_delay_only()),
                sum(|f| f.short.is_some()),
                sum(FaultSpec::is_delay_only),
            )
        }
        None => {
            let count =
                |kind: fn(&Effect) -> bool| log.injections.iter().filter(|i| kind(&i.effect)).count() as u64;
            (
                count(|e| matches!(e, Effect::Errno(_))),
                count(|e| matches!(e, Effect::Short(_))),
                count(|e| matches!(e, Effect::Run)),
            )
        }
    };
    // Partial transfers are no errors, and a latency fault's calls were held, then ran: each is counted apart.
    // `injected 2 errors and 1 short transfer`, `injected 1 error and delayed 3 calls`, `delayed 3 calls`.
    let verb = if log.replayed { "replayed" } else { "injected" };
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut injected = Vec::new();
    if errors > 0 || (short == 0 && delayed == 0) {
        injected.push(plural(errors, "error"));
    }
    if short > 0 {
        injected.push(plural(short, "short transfer"));
    }
    let what = match (injected.is_empty(), delayed) {
        (false, 0) => format!("{verb} {}", injected.join(" and ")),
        (true, held) if log.replayed => format!("replayed {}", plural(held, "delay")),
        (true, held) => format!("delayed {}", plural(held, "call")),
        (false, held) => format!(
            "{verb} {} and delayed {}",
            injected.join(" and "),
            plural(held, "call")
        ),
    };
    let _ = writeln!(
        out,
        "phoebe: {what}{}{} {} '{}' ({}, {}): {}",
        match log.truncated_after {
            Some(n) => format!(" (the log keeps the first {n})"),
            None => String::new(),
        },
        if in_kernel.is_empty() {
            String::new()
        } else {
            format!(" (+ every {}, in the kernel)", in_kernel.join(", "))
        },
        // Errors and short transfers go into the target; a latency fault's calls only wait in it.
        if injected.is_empty() { "in" } else { "into" },
        log.command.join(" "),
        log.backend,
        match draws {
            Draws::Seeded => format!("seed {}", log.seed),
            Draws::InKernel => "random in the kernel".to_owned(),
        },
        ending(log.exit, log.interrupted),
    );
    // An ETIMEDOUT without a rule's `delay=` waited out what the kernel waits (`decide::timed_out_after`: a futex
    // wait's own timeout, a connect's SYN retries): the program was slower for it, and says so here rather than
    // leave the user to wonder.
    let waited: Vec<(bool, u64)> = log
        .injections
        .iter()
        .filter(|i| matches!(i.effect, Effect::Errno(e) if e.symbol() == Some("ETIMEDOUT")))
        .filter(|i| log.rules.get(i.rule).is_some_and(|r| r.fault.delay.is_none()))
        .filter_map(|i| i.delay_ns.map(|ns| (i.syscall.name() == "connect", ns)))
        .collect();
    if !waited.is_empty() {
        let (n, seconds) = (
            waited.len(),
            waited.iter().map(|(_, ns)| ns).sum::<u64>() as f64 / 1e9,
        );
        let what = match (waited.iter().any(|w| !w.0), waited.iter().any(|w| w.0)) {
            (true, false) if n == 1 => "the ETIMEDOUT was held until its wait's timeout".to_owned(),
            (true, false) => format!("{n} ETIMEDOUTs were held until their waits' timeouts"),
            (false, true) if n == 1 => "the ETIMEDOUT was held until the connect's SYN retries".to_owned(),
            (false, true) => format!("{n} ETIMEDOUTs were held until their connects' SYN retries"),
            _ => format!("{n} ETIMEDOUTs were held until their waits' timeouts or connects' SYN retries"),
        };
        let _ = writeln!(
            out,
            "phoebe: {what} had passed, as the kernel's comes ({seconds:.3} s in all)"
        );
    }
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
        "{:<width$} {:>9} {:>9} {:>9} {:>8}  achieved",
        "rule", "matched", "injected", "natural", "p"
    );
    for (id, rule) in log.rules.iter().enumerate() {
        // Where the backend saw the matched calls' results (ptrace), the total failure rate beside the
        // injected-only one; elsewhere the injected-only rate, said so.
        let achieved = crate::view::achieved_text(rule.achieved_rate(), rule.achieved_total_rate());
        // A rule failed wholly in the kernel has no counts: say so rather than print zeros.
        let uncounted = rule.matched == 0 && !rule.in_kernel.is_empty();
        let _ = writeln!(
            out,
            "{:<width$} {:>9} {:>9} {:>9} {:>7.2}%  {}",
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
            rule.natural.map_or_else(|| "-".to_owned(), |n| n.to_string()),
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
    // The calls a rule's guards kept out, and why: a rule can match nothing although its calls were made.
    for rule in log.rules.iter().filter(|r| !r.guarded.is_empty()) {
        for (had, n) in &rule.guarded {
            let why = phoebe_core::model::shape::guard_explanation(had)
                .map(|why| format!(": {why}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "note: {} kept out {n} call(s) of its class that had {had}{why}",
                rule.fault
            );
        }
    }
    if log
        .rules
        .iter()
        .any(|r| r.matched == 0 && r.in_kernel.is_empty() && r.guarded.is_empty())
    {
        let _ = writeln!(
            out,
            "note: a rule that matched no call was not exercised: the target made no call the rule describes (its \
             syscall, with the path and shape the rule asks for)"
        );
    }
    out
}

/// A sub-row of `inject`'s table: the shape some of a rule's injections landed on.
fn shape_label(shape: &phoebe_core::model::Shape) -> String {
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
            .filter(|m| m.tier == phoebe_core::model::Tier::Plausible)
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
        let rows: Vec<(&phoebe_core::model::RateStats, Category, f64, f64, &FaultSpec)> =
            if m.shapes.is_empty() {
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
                if m.tier == phoebe_core::model::Tier::Plausible {
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
        if m.tier == phoebe_core::model::Tier::Plausible {
            // Never failed naturally: a fixed rate, no statistics.
            continue;
        }
        if m.shapes.is_empty() && m.stats.too_few_samples() {
            few.push(format!("{} ({})", m.id, m.stats.sample_count()));
        }
        for s in m.shapes.iter().filter(|s| s.stats.too_few_samples()) {
            few.push(format!("{} on {} ({})", m.id, s.shape, s.stats.sample_count()));
        }
    }
    if !few.is_empty() {
        let _ = writeln!(
            out,
            "few samples: {} rest on fewer than {MIN_SAMPLES} samples (in brackets; intervals with calls, sparse ones \
             pooled): their rates are \
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
    use phoebe_core::model::shape::RegistersOnly;
    use phoebe_core::{
        decide::{Call, Decider},
        model::{Errno, FaultSpec, ObservationBuilder, ObservationMeta, Syscall},
    };

    /// Regression (issue 13, fuzzing): `observe`'s summary of an observation whose counts add past `u64::MAX`
    /// overflowed; it saturates now.
    #[test]
    fn huge_counts_saturate_in_the_observation_table() {
        let summary = observation(&phoebe_core::model::fixtures::huge_observation());
        assert!(summary.contains(&u64::MAX.to_string()), "{summary}");
    }

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
        let text = injections(&log, Draws::Seeded);
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

    #[test]
    fn injection_table_counts_delayed_calls_apart_from_errors() {
        let mut d = Decider::new(
            vec![
                FaultSpec::parse("getppid:delay=20ms").unwrap(),
                FaultSpec::parse("openat:ENOENT:nth=1").unwrap(),
            ],
            5,
        );
        let call = |name: &str| Call {
            args: [0; 6],
            syscall: Syscall::parse(name).unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        for name in ["getppid", "getppid", "getppid", "openat"] {
            d.decide(&call(name), &mut RegistersOnly);
        }
        let log = d.finish(vec!["app".into()], "seccomp", Some(TargetExit::Code(0)), false);
        let text = injections(&log, Draws::Seeded);
        assert!(
            text.starts_with("phoebe: injected 1 error and delayed 3 calls into 'app' (seccomp, seed 5)"),
            "{text}"
        );
        assert!(text.contains("getppid:delay=20ms"), "{text}");
    }

    /// Issue 14 item 5: a backend that sees the matched calls' results (ptrace) counts their natural failures with
    /// the rule's errno; achieved is then (injected + natural) / matched, beside the injected-only rate.
    #[test]
    fn injection_table_counts_natural_failures_where_the_backend_saw_them() {
        let faults = || vec![FaultSpec::parse("openat:ENOENT,EACCES:nth=1").unwrap()];
        let call = Call {
            args: [0; 6],
            syscall: Syscall::parse("openat").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        let (enoent, eperm) = (Errno::parse("ENOENT").unwrap(), Errno::parse("EPERM").unwrap());
        let mut d = Decider::new(faults(), 5);
        d.sees_results();
        assert!(
            d.decide(&call, &mut RegistersOnly).is_some(),
            "nth=1 injects the first"
        );
        for natural in [Some(enoent), Some(eperm), None, Some(enoent)] {
            assert!(d.decide(&call, &mut RegistersOnly).is_none());
            let watch = d.watch_result();
            assert_eq!(watch, [0]);
            if let Some(errno) = natural {
                d.natural_failure(&watch, errno);
            }
        }
        let log = d.finish(vec!["app".into()], "ptrace", Some(TargetExit::Code(0)), false);
        // EPERM is not one of the rule's errnos: 1 injected + 2 natural of 5 matched.
        assert_eq!(
            (log.rules[0].matched, log.rules[0].injected, log.rules[0].natural),
            (5, 1, Some(2))
        );
        let text = injections(&log, Draws::Seeded);
        assert!(text.contains("60.00% (injected 20.00%)"), "{text}");
        // The same calls where the backend cannot see results: no natural count, and the figure says so.
        let mut d = Decider::new(faults(), 5);
        for _ in 0..5 {
            d.decide(&call, &mut RegistersOnly);
        }
        let log = d.finish(vec!["app".into()], "seccomp", Some(TargetExit::Code(0)), false);
        assert_eq!(log.rules[0].natural, None);
        assert!(
            serde_json::to_value(&log.rules[0])
                .unwrap()
                .get("natural")
                .is_none(),
            "absent, not 0"
        );
        assert!(injections(&log, Draws::Seeded).contains("20.00% injected only"));
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
        let text = injections(&log, Draws::Seeded);
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
        let text = injections(&log, Draws::Seeded);
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
        let text = injections(&only_short, Draws::Seeded);
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
        let both = injections(
            &d.finish(vec!["cat".into()], "ptrace", None, false),
            Draws::Seeded,
        );
        assert!(
            both.starts_with("phoebe: injected 2 errors and 1 short transfer into 'cat'"),
            "{both}"
        );
    }

    /// Errors, partial transfers and a latency fault's held calls are counted apart in one headline.
    #[test]
    fn errors_short_transfers_and_held_calls_share_the_headline() {
        let mut d = Decider::new(
            vec![
                FaultSpec::parse("read:short=1").unwrap(),
                FaultSpec::parse("openat:ENOENT").unwrap(),
                FaultSpec::parse("write:delay=1ms").unwrap(),
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
        for (name, times) in [("read", 2), ("openat", 1), ("write", 3)] {
            call.syscall = Syscall::parse(name).unwrap();
            for _ in 0..times {
                d.decide(&call, &mut RegistersOnly);
            }
        }
        let text = injections(
            &d.finish(vec!["cat".into()], "ptrace", None, false),
            Draws::Seeded,
        );
        assert!(
            text.starts_with("phoebe: injected 1 error and 2 short transfers and delayed 3 calls into 'cat'"),
            "{text}"
        );
        let mut held = Decider::new(vec![FaultSpec::parse("write:delay=1ms").unwrap()], 5);
        held.decide(&call, &mut RegistersOnly);
        let text = injections(
            &held.finish(vec!["cat".into()], "seccomp", None, false),
            Draws::Seeded,
        );
        assert!(text.starts_with("phoebe: delayed 1 call in 'cat'"), "{text}");
    }

    /// An injected ETIMEDOUT waits out its wait's own timeout: the summary says how long the program waited so,
    /// and not for an ETIMEDOUT a rule's own `delay=` held.
    #[test]
    fn etimedouts_held_until_their_waits_timeout_are_said() {
        struct Timespec;
        impl phoebe_core::model::shape::Probe for Timespec {
            fn read_u64(&mut self, addr: u64) -> Option<u64> {
                // A relative timeout of 0.25 s at 0x1000.
                Some(if addr == 0x1000 { 0 } else { 250_000_000 })
            }
        }
        let wait = Call {
            args: [0x2000, 128, 0, 0x1000, 0, 0],
            syscall: Syscall::parse("futex").unwrap(),
            pid: 1,
            tid: 1,
            thread: None,
            t_ns: 0,
            path: None,
        };
        let mut d = Decider::new(vec![FaultSpec::parse("futex:ETIMEDOUT").unwrap()], 5);
        d.decide(&wait, &mut Timespec);
        d.decide(&wait, &mut Timespec);
        let text = injections(
            &d.finish(vec!["app".into()], "seccomp", None, false),
            Draws::Seeded,
        );
        assert!(
            text.contains("\nphoebe: 2 ETIMEDOUTs were held until their waits' timeouts had passed, as the kernel's comes (0.500 s in all)\n"),
            "{text}"
        );
        let mut own = Decider::new(vec![FaultSpec::parse("futex:ETIMEDOUT:delay=1ms").unwrap()], 5);
        own.decide(&wait, &mut Timespec);
        let text = injections(
            &own.finish(vec!["app".into()], "seccomp", None, false),
            Draws::Seeded,
        );
        assert!(!text.contains("held until"), "{text}");
    }

    #[test]
    fn decisions_drawn_in_the_kernel_print_no_seed() {
        let d = Decider::new(vec![FaultSpec::parse("openat:ENOENT:p=0.5").unwrap()], 5);
        let log = d.finish(vec!["cat".into()], "ebpf", Some(TargetExit::Code(0)), false);
        let text = injections(&log, Draws::InKernel);
        assert!(
            text.starts_with(
                "phoebe: injected 0 errors into 'cat' (ebpf, random in the kernel): exit status 0"
            ),
            "{text}"
        );
        assert!(injections(&log, Draws::Seeded).contains("(ebpf, seed 5)"));
    }
}
