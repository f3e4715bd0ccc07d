//! Synthesis (DESIGN §6): natural error rates → amplified but realistic error models. Pure functions.
//!
//! For each (syscall, errno) pair of the observation, the per-interval rate `failures_i / calls_i` is taken over
//! every interval in which the syscall was called, zero-error intervals included (the prototype kept only the
//! intervals where the error happened, which inflated rare errors). Its statistics pick a category and a target
//! rate; the injection probability then compensates for the calls that fail by themselves.
//! Does not own: running anything (see `phoebe::experiment`).

pub mod plausible;

use std::collections::BTreeMap;

use crate::model::{
    Action, Category, Errno, ErrorModel, Excluded, Explore, FORMAT_VERSION, FaultSpec, MIN_SAMPLES,
    Observation, Plan, RateStats, Shape, ShapeModel, SynthSettings, Syscall, Tier,
    observation::{MAX_SHAPES, OTHER_SHAPES},
    saturating_sum,
};

/// A setting outside its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("synthesis setting {name}={value} is out of range: expected {expected}")]
pub struct SettingError {
    pub name: &'static str,
    pub value: f64,
    pub expected: &'static str,
}

impl SynthSettings {
    /// Checks every threshold before anything is computed with it.
    pub fn validate(&self) -> Result<(), SettingError> {
        let unit = |name, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(SettingError {
                    name,
                    value,
                    expected: "a number between 0 and 1",
                })
            }
        };
        unit("sporadic-below", self.sporadic_below)?;
        unit("fixed-rate", self.fixed_rate)?;
        unit("variance-above", self.variance_above)?;
        unit("quantile", self.quantile)?;
        if self.min_calls == 0 {
            return Err(SettingError {
                name: "min-calls",
                value: 0.0,
                expected: "a whole number of calls, at least 1",
            });
        }
        if !(self.factor.is_finite() && self.factor > 0.0) {
            return Err(SettingError {
                name: "factor",
                value: self.factor,
                expected: "a positive number",
            });
        }
        Ok(())
    }
}

/// One interval in which a syscall was called: its calls, and its failures per errno.
type Called<'a> = (u64, &'a BTreeMap<Errno, u64>);

/// One shape's calls in one interval: the interval's index, the shape's text, its calls and failures per errno.
type Shaped<'a> = (usize, &'a str, u64, &'a BTreeMap<Errno, u64>);

/// Per shape text, per interval index: calls and failures per errno.
type Projected = BTreeMap<String, BTreeMap<usize, (u64, BTreeMap<Errno, u64>)>>;

/// The shapes of a syscall as `errno` sees them (`shape::for_errno`: without the state components that do not
/// decide it), each with its calls and failures per interval: shapes that differ only there are one.
fn as_errno_sees(shaped: &[Shaped<'_>], errno: Errno) -> Projected {
    let mut out = Projected::new();
    for &(i, text, calls, errors) in shaped {
        // The pooled shapes and a text that does not parse stay as they are: `by_shape` says why it skips them.
        let key = match Shape::parse(text) {
            Ok(shape) if text != OTHER_SHAPES => {
                crate::model::shape::for_errno(&shape, Some(errno)).to_string()
            }
            _ => text.to_owned(),
        };
        let (sum, failures) = out.entry(key).or_default().entry(i).or_default();
        *sum += calls;
        for (e, n) in errors {
            *failures.entry(*e).or_default() += n;
        }
    }
    out
}

/// Turns an observation into a plan: one model per realistic (syscall, errno) pair, the others excluded with
/// their reason.
pub fn synthesize(obs: &Observation, settings: &SynthSettings) -> Result<Plan, SettingError> {
    settings.validate()?;
    // Per syscall: (calls, failures per errno) of each interval in which it was called.
    let mut per_syscall: BTreeMap<Syscall, Vec<Called<'_>>> = BTreeMap::new();
    for interval in &obs.intervals {
        for (sc, stats) in &interval.syscalls {
            if stats.calls > 0 {
                per_syscall
                    .entry(*sc)
                    .or_default()
                    .push((stats.calls, &stats.errors));
            }
        }
    }
    let mut models = Vec::new();
    let mut excluded = Vec::new();
    // An observation by shape records the shapes of every syscall that has components; one of those without any
    // (the eBPF observer's shape counters were full) is not a syscall alone, and its per-syscall counts are no
    // model: they would inject into shapes that never failed.
    let shaped_observation = settings.shapes
        && obs
            .intervals
            .iter()
            .any(|i| i.syscalls.values().any(|s| !s.shapes.is_empty()));
    for (sc, intervals) in &per_syscall {
        let mut errnos: Vec<Errno> = intervals.iter().flat_map(|(_, e)| e.keys().copied()).collect();
        errnos.sort();
        errnos.dedup();
        // Per interval and shape: (calls, failures per errno).
        let mut shaped: Vec<Shaped<'_>> = Vec::new();
        if settings.shapes {
            for (i, interval) in obs.intervals.iter().enumerate() {
                for (shape, stats) in interval.syscalls.get(sc).map(|s| &s.shapes).into_iter().flatten() {
                    if stats.calls > 0 {
                        shaped.push((i, shape.as_str(), stats.calls, &stats.errors));
                    }
                }
            }
        }
        for errno in errnos {
            // Per shape as the errno sees it: (calls, failures per errno) of each interval in which it was called.
            let projected = as_errno_sees(&shaped, errno);
            let per_shape: BTreeMap<&str, Vec<Called<'_>>> = projected
                .iter()
                .map(|(text, intervals)| {
                    (
                        text.as_str(),
                        intervals
                            .values()
                            .map(|(calls, errors)| (*calls, errors))
                            .collect(),
                    )
                })
                .collect();
            // An observation made before phoebe knew: rt_sigreturn's apparent errors are the interrupted call's.
            if !crate::model::names::returns_a_result(*sc) {
                excluded.push(Excluded {
                    syscall: *sc,
                    action: Action::Errno(errno),
                    shape: None,
                    reason: format!(
                        "{} restores the interrupted context: its return register is the interrupted call's, \
                         never an error of its own",
                        sc.name()
                    ),
                });
                continue;
            }
            if per_shape.is_empty() && shaped_observation && !crate::model::shape::keys_of(*sc).is_empty() {
                excluded.push(Excluded {
                    syscall: *sc,
                    action: Action::Errno(errno),
                    shape: None,
                    reason: format!(
                        "its calls' shapes were not recorded when it was observed (the observer lost {} update(s): \
                         its shape counters were full): phoebe injects only where it can tell the shape",
                        obs.lost
                    ),
                });
            } else if per_shape.is_empty() {
                let stats = rate_stats(intervals, errno, settings);
                match model(*sc, errno, stats, settings) {
                    Ok(m) => models.push(m),
                    Err(reason) => excluded.push(Excluded {
                        syscall: *sc,
                        action: Action::Errno(errno),
                        shape: None,
                        reason,
                    }),
                }
            } else {
                by_shape(*sc, errno, &per_shape, settings, &mut models, &mut excluded);
            }
        }
    }
    models.sort_by(|a, b| b.stats.failures.cmp(&a.stats.failures).then(a.id.cmp(&b.id)));
    if settings.explore == Explore::Plausible {
        plausible_models(obs, settings, &mut models, &mut excluded)?;
    }
    Ok(Plan {
        version: FORMAT_VERSION,
        command: obs.command.clone(),
        interval_ms: obs.interval_ms,
        settings: *settings,
        models,
        excluded,
    })
}

/// `--explore plausible`: the plausible tier ([`plausible::plausible`]) appended after the observed models, most
/// called first; the entries it leaves out go to `excluded`, their reason saying so.
fn plausible_models(
    obs: &Observation,
    settings: &SynthSettings,
    models: &mut Vec<ErrorModel>,
    excluded: &mut Vec<Excluded>,
) -> Result<(), SettingError> {
    let tier = plausible::plausible(obs, settings)?;
    for p in tier.experiments {
        let entry = p.entry;
        // Ids are unique in a plan: a catalogue id an observed model already has (its errno on another shape)
        // is told apart.
        let mut id = entry.id.clone();
        if models.iter().any(|m| m.id == id) {
            id.push_str("-plausible");
        }
        let rate = p.rate;
        let why = plausible_rate_text(settings.fixed_rate, rate, p.calls, obs.runs);
        let rules = plausible_rules(&p, rate, &why);
        models.push(ErrorModel {
            id,
            syscall: entry.syscall,
            action: entry.action,
            stats: RateStats {
                mean: 0.0,
                variance: 0.0,
                p5: 0.0,
                quantile: 0.0,
                max: 0.0,
                failures: 0,
                calls: p.calls,
                intervals: 0,
                intervals_with_error: 0,
                samples: 0,
            },
            category: Category::Sporadic,
            rule: plausible_model_rule(&entry.condition, p.calls, &why),
            target_rate: rate,
            probability: rate,
            // The main shape's rule, as for an observed model.
            fault: rules.first().map_or(p.fault, |r| r.fault.clone()),
            shapes: rules,
            tier: Tier::Plausible,
        });
    }
    for l in tier.left_out {
        excluded.push(Excluded {
            syscall: l.entry.syscall,
            action: l.entry.action,
            shape: None,
            reason: format!("plausible tier ({}): {}", l.entry.id, l.reason),
        });
    }
    Ok(())
}

/// Sets a plausible model's rate again from the calls of the shapes it still has, after some were taken out of it
/// (`phoebe exec` leaves out the files it captures the program's stdout and stderr in, whose writes counted among
/// the class's calls and so kept a rarely made write of the program's own at the fixed rate). `runs`: how many
/// runs the observation pooled. A model of the observed tier, or without shapes, is left as it is.
pub fn rerate_plausible(model: &mut ErrorModel, settings: &SynthSettings, runs: u32) {
    if model.tier != Tier::Plausible || model.shapes.is_empty() {
        return;
    }
    // The model's catalogue entry: its id, or its id with `-plausible` when an observed model had it.
    let id = model.id.strip_suffix("-plausible").unwrap_or(&model.id);
    let Some(entry) = crate::model::catalogue::entries().iter().find(|e| e.id == id) else {
        return;
    };
    let calls = model.shapes.iter().map(|s| s.stats.calls).sum::<u64>();
    let rate = plausible::rate(settings.fixed_rate, calls, runs);
    let why = plausible_rate_text(settings.fixed_rate, rate, calls, runs);
    for s in &mut model.shapes {
        s.target_rate = rate;
        s.probability = rate;
        s.fault.probability = rate;
        s.rule = plausible_shape_rule(&entry.condition, &why);
    }
    model.rule = plausible_model_rule(&entry.condition, calls, &why);
    model.stats.calls = calls;
    model.target_rate = rate;
    model.probability = rate;
    model.fault.probability = rate;
}

/// A plausible model's `rule`: the entry's condition, the calls of its class and how its rate was chosen (`why`).
fn plausible_model_rule(condition: &str, calls: u64, why: &str) -> String {
    format!("plausible ({condition}): {calls} calls of this class, never failed; {why}")
}

/// The `rule` of one shape of a plausible model.
fn plausible_shape_rule(condition: &str, why: &str) -> String {
    format!("plausible ({condition}): {why}")
}

/// How a plausible experiment's rate was chosen: `fixed rate 0.05`, or `rate 0.142857, raised from the fixed rate
/// 0.05 (so that a run expects one injection: 7 call(s) of the class per run)`.
fn plausible_rate_text(fixed: f64, rate: f64, calls: u64, runs: u32) -> String {
    if rate <= fixed {
        return format!("fixed rate {}", fmt(rate));
    }
    let per_run = calls as f64 / f64::from(runs.max(1));
    let why = if per_run * plausible::MAX_RAISED_RATE < 1.0 {
        format!("capped at {}", fmt(plausible::MAX_RAISED_RATE))
    } else {
        "so that a run expects one injection".to_owned()
    };
    let per_run = if per_run.fract() == 0.0 {
        format!("{per_run:.0}")
    } else {
        format!("{per_run:.1}")
    };
    format!(
        "rate {}, raised from the fixed rate {} ({why}: {per_run} call(s) of the class per run)",
        fmt(rate),
        fmt(fixed)
    )
}

/// At most this many rules (the most called shapes) per plausible experiment.
const MAX_PLAUSIBLE_RULES: usize = 32;

/// A plausible experiment's rules: one per shape of the class the program used (its own files, never the
/// loader's: [`plausible::loader_file`]), the most called first, each the entry's error at `rate` on that exact
/// shape (`why`: how the rate was chosen); none when the syscall has no shapes, and then the entry's rule is the
/// experiment's only one.
fn plausible_rules(p: &plausible::Plausible, rate: f64, why: &str) -> Vec<ShapeModel> {
    let when = if p.fault.when == crate::model::When::Exit {
        ":when=exit"
    } else {
        ""
    };
    p.shapes
        .iter()
        .take(MAX_PLAUSIBLE_RULES)
        .filter_map(|(shape, calls)| {
            let fault = FaultSpec::parse(&format!(
                "{}:{}:p={rate}:{}{}{when}",
                p.entry.syscall,
                p.entry.action,
                shape.as_rule(),
                crate::model::shape::plausible_guards(p.entry.syscall, p.entry.action)
            ))
            .ok()?;
            Some(ShapeModel {
                shape: shape.clone(),
                stats: RateStats {
                    mean: 0.0,
                    variance: 0.0,
                    p5: 0.0,
                    quantile: 0.0,
                    max: 0.0,
                    failures: 0,
                    calls: *calls,
                    intervals: 0,
                    intervals_with_error: 0,
                    samples: 0,
                },
                category: Category::Sporadic,
                rule: plausible_shape_rule(&p.entry.condition, why),
                target_rate: rate,
                probability: rate,
                fault,
            })
        })
        .collect()
}

/// Statistics of the per-interval rate of `errno` over `intervals` (every interval in which the calls were made).
/// A rate over one or two calls is 0 or 1 and nothing in between, so consecutive intervals are pooled into samples
/// of at least `settings.min_calls` calls each before rates are taken ([`samples`]).
fn rate_stats(intervals: &[Called<'_>], errno: Errno, settings: &SynthSettings) -> RateStats {
    let samples = samples(intervals, errno, settings.min_calls);
    let rates: Vec<f64> = samples
        .iter()
        .map(|(calls, failures)| *failures as f64 / *calls as f64)
        .collect();
    RateStats {
        samples: samples.len() as u64,
        mean: mean(&rates),
        variance: variance(&rates),
        p5: quantile(&rates, 0.05),
        quantile: quantile(&rates, settings.quantile),
        max: rates.iter().copied().fold(0.0, f64::max),
        failures: saturating_sum(intervals.iter().map(|(_, e)| e.get(&errno).copied().unwrap_or(0))),
        calls: saturating_sum(intervals.iter().map(|(c, _)| *c)),
        intervals: intervals.len() as u64,
        intervals_with_error: intervals
            .iter()
            .filter(|(_, e)| e.get(&errno).is_some_and(|n| *n > 0))
            .count() as u64,
    }
}

/// (calls, failures with `errno`) per sample: consecutive intervals pooled until a sample has at least `min_calls`
/// calls; what is left at the end joins the last sample (or is the only one, when all the calls were fewer). An
/// interval with that many calls is a sample by itself, so busy calls keep their per-interval rates.
fn samples(intervals: &[Called<'_>], errno: Errno, min_calls: u64) -> Vec<(u64, u64)> {
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut open = (0u64, 0u64);
    for (calls, errors) in intervals {
        open.0 = open.0.saturating_add(*calls);
        open.1 = open.1.saturating_add(errors.get(&errno).copied().unwrap_or(0));
        if open.0 >= min_calls.max(1) {
            samples.push(std::mem::take(&mut open));
        }
    }
    if open.0 > 0 {
        match samples.last_mut() {
            Some(last) => {
                last.0 = last.0.saturating_add(open.0);
                last.1 = last.1.saturating_add(open.1);
            }
            None => samples.push(open),
        }
    }
    samples
}

/// One (syscall, errno) by shape (DESIGN §6): a rule per shape that failed naturally with `errno`, each with its
/// own statistics and compensated probability; a shape that never failed with it gets no rule at all. The model's
/// headline figures (category, target, probability, `fault`) are those of its shape with the most failures.
fn by_shape(
    syscall: Syscall,
    errno: Errno,
    per_shape: &BTreeMap<&str, Vec<Called<'_>>>,
    settings: &SynthSettings,
    models: &mut Vec<ErrorModel>,
    excluded: &mut Vec<Excluded>,
) {
    let mut rules: Vec<ShapeModel> = Vec::new();
    for (text, intervals) in per_shape {
        let stats = rate_stats(intervals, errno, settings);
        if stats.failures == 0 {
            continue;
        }
        let mut exclude = |reason: String| {
            excluded.push(Excluded {
                syscall,
                action: Action::Errno(errno),
                shape: Some((*text).to_owned()),
                reason,
            })
        };
        if *text == OTHER_SHAPES {
            exclude(format!(
                "calls of more than {MAX_SHAPES} shapes are pooled: phoebe cannot tell which of them failed"
            ));
            continue;
        }
        let shape = match Shape::parse(text) {
            Ok(shape) => shape,
            Err(problem) => {
                exclude(problem);
                continue;
            }
        };
        if let Some(key) = shape.unknown().next() {
            exclude(format!(
                "its {} could not be learned when it was observed: phoebe injects only where it can tell the shape",
                key.name()
            ));
            continue;
        }
        let (category, target_rate, rule, probability) = match rule_for(errno, &stats, settings) {
            Ok(r) => r,
            Err(reason) => {
                // Calls of the template that succeeded with their state unlearned (eBPF: a creating open's
                // success does not say whether it created its file) may have been of this shape.
                let unlearned: u64 = unknown_state_twins(&shape)
                    .iter()
                    .filter_map(|twin| per_shape.get(twin.as_str()))
                    .flatten()
                    .map(|(calls, errors)| calls.saturating_sub(errors.values().sum()))
                    .sum();
                exclude(match state_note(&shape, errno) {
                    Some(_) if unlearned > 0 && stats.natural_rate() >= 1.0 => format!(
                        "every call known to be of this shape failed with it, but {unlearned} call(s) of the same \
                         template succeeded with a state the observer could not learn (eBPF reads a name's state \
                         from the call's result, and a success does not always tell it: a creating open's does not \
                         say whether it created its file, a rename's whether it replaced its new name, nor an \
                         unlinkat's whether it removed a directory): phoebe \
                         cannot tell how often it fails; observe with --backend ptrace (exec: --observer ptrace) to \
                         model it"
                    ),
                    Some(note) if stats.natural_rate() >= 1.0 => format!("{reason} ({note})"),
                    _ => reason,
                });
                continue;
            }
        };
        // The rule names its shape exactly: its path template as `template=`, not as a glob; an EINTR model, only
        // processes that catch a signal (`caught=yes`).
        let guards = crate::model::shape::model_guards(syscall, crate::model::Action::Errno(errno));
        let text = if text.is_empty() {
            format!("{}:{}:p={probability}{guards}", syscall.name(), errno.code())
        } else {
            format!(
                "{}:{}:p={probability}:{}{guards}",
                syscall.name(),
                errno.code(),
                shape.as_rule()
            )
        };
        let fault = match FaultSpec::parse(&text) {
            Ok(fault) => fault,
            Err(e) => {
                exclude(format!("its rule cannot be written: {e}"));
                continue;
            }
        };
        rules.push(ShapeModel {
            shape,
            stats,
            category,
            rule,
            target_rate,
            probability,
            fault,
        });
    }
    rules.sort_by(|a, b| {
        b.stats
            .failures
            .cmp(&a.stats.failures)
            .then(a.shape.cmp(&b.shape))
    });
    let Some(main) = rules.first() else {
        return;
    };
    models.push(ErrorModel {
        id: format!("{}-{errno}", syscall.name()),
        syscall,
        action: Action::Errno(errno),
        stats: main.stats,
        category: main.category,
        rule: main.rule.clone(),
        target_rate: main.target_rate,
        probability: main.probability,
        fault: main.fault.clone(),
        shapes: rules,
        tier: Tier::Observed,
    });
}

/// The texts of `shape` with some of its names' states unknown: each known one alone, and all of them (none when
/// it has no such component or they are unknown already). eBPF learns a state from a call's result, which a
/// success does not always tell: an unlinkat's, whether it removed a directory, and so whether it was empty.
fn unknown_state_twins(shape: &Shape) -> Vec<String> {
    use crate::model::shape::{Key, UNKNOWN};
    let known: Vec<Key> = [Key::Exists, Key::DestExists, Key::Empty]
        .into_iter()
        .filter(|key| shape.get(*key).is_some_and(|v| v != UNKNOWN))
        .collect();
    let mut all = shape.clone();
    let mut twins: Vec<String> = known
        .iter()
        .map(|key| {
            all.set(*key, UNKNOWN);
            let mut twin = shape.clone();
            twin.set(*key, UNKNOWN);
            twin.to_string()
        })
        .collect();
    if known.len() > 1 {
        twins.push(all.to_string());
    }
    twins
}

/// Why a shape whose state decides `errno` fails every time is no error to amplify, in words.
fn state_note(shape: &Shape, errno: Errno) -> Option<&'static str> {
    use crate::model::shape::Key;
    let (exists, dest) = (shape.get(Key::Exists), shape.get(Key::DestExists));
    match errno.code() {
        libc::ENOENT if shape.get(Key::Cwd) == Some("deleted") => Some(
            "the working directory had been removed: getcwd says so every time, and never while it exists",
        ),
        libc::ENOENT if shape.get(Key::Parent) == Some("no") => Some(
            "the directory of the name was absent at every call: ENOENT is the state of the file system, not a \
             failure; injecting it where the directory exists would simulate a deletion the baseline never saw",
        ),
        libc::ENOENT if exists == Some("no") => Some(
            "the name was absent at every call: ENOENT is the state of the file system, not a failure; injecting \
             it where the name exists would simulate a deletion the baseline never saw",
        ),
        libc::ECHILD if shape.get(Key::Child) == Some("no") => Some(
            "the caller had no child to wait for at every call: ECHILD is the state of the process, not a failure; \
             injecting it into a wait for a live child would simulate a child that vanished, which the kernel never \
             does",
        ),
        libc::EAGAIN if shape.get(Key::Held) == Some("yes") => Some(
            "another open file description held a conflicting lock at every call: EWOULDBLOCK is the state of the \
             lock, not a failure; injecting it where the lock is free would simulate a contender the baseline never \
             saw (a test that locks a fresh file and asserts it got the lock fails for a reason no user can meet)",
        ),
        libc::EAGAIN if shape.get(Key::Ready) == Some("no") => Some(
            "the descriptor was not ready at every call (nothing to read, no room to write, no connection waiting): \
             EAGAIN is its state, not a failure; injecting it where the descriptor is ready would lose the wake-up \
             an edge-triggered poller waits for (a Go or Tokio program, nginx), which then hangs for an error the \
             kernel never returns there",
        ),
        libc::ENOTDIR if exists == Some("no") => Some(
            "a directory of the path was something else at every call, so the name did not exist: ENOTDIR is the \
             state of the file system, not a failure; injecting it where the path leads through directories would \
             simulate a change the baseline never saw",
        ),
        libc::ENOTDIR if shape.get(Key::Directory) == Some("yes") => Some(
            "the open asked for a directory (O_DIRECTORY) and the name was something else at every call: ENOTDIR \
             is its answer, not a failure (a probe such as rsync's before it opens a file); an open without \
             O_DIRECTORY of a name that exists never says ENOTDIR",
        ),
        libc::EPIPE if shape.get(Key::Readers) == Some("no") => Some(
            "the pipe had no reader left at every call: EPIPE is the state of the pipe, not a failure; injecting it \
             where the pipe is read would simulate a reader's death the baseline never saw",
        ),
        libc::ENOTEMPTY | libc::EEXIST if shape.get(Key::Empty) == Some("no") => Some(
            "the directory still had entries at every call: ENOTEMPTY is the state of the directory, not a failure; \
             injecting it where the directory is empty would simulate a file someone created in it meanwhile (Node's \
             fs.rm empties a directory on ENOTEMPTY and removes it again, a removal that cannot fail so)",
        ),
        libc::EEXIST | libc::ENOTEMPTY if exists == Some("yes") || dest == Some("yes") => Some(
            "the name was there at every call: this is the state of the file system, not a failure; injecting it \
             where the name is absent would simulate a creation the baseline never saw",
        ),
        _ => None,
    }
}

/// The model for one pair without shapes, or why there is none.
fn model(syscall: Syscall, errno: Errno, stats: RateStats, s: &SynthSettings) -> Result<ErrorModel, String> {
    let (category, target, rule, probability) = rule_for(errno, &stats, s)?;
    let fault = FaultSpec::parse(&format!("{}:{}:p={probability}", syscall.name(), errno.code()))
        .expect("a syscall, an errno and a probability in [0, 1] always make a valid rule");
    Ok(ErrorModel {
        id: format!("{}-{errno}", syscall.name()),
        syscall,
        action: Action::Errno(errno),
        stats,
        category,
        rule,
        target_rate: target,
        probability,
        fault,
        shapes: Vec::new(),
        tier: Tier::Observed,
    })
}

/// Category, target rate, the rule in words and the compensated probability, or why there is none.
fn rule_for(
    errno: Errno,
    stats: &RateStats,
    s: &SynthSettings,
) -> Result<(Category, f64, String, f64), String> {
    if errno.is_kernel_internal() {
        return Err(format!(
            "{errno} is a kernel-internal restart code (≥ 512): it never reaches the program"
        ));
    }
    let natural = stats.natural_rate();
    if natural >= 1.0 {
        return Err("every call already fails with it: injection adds nothing".into());
    }
    let q = stats.quantile;
    let qname = quantile_name(s.quantile);
    let (category, target, rule) = if q < s.sporadic_below {
        (
            Category::Sporadic,
            s.fixed_rate,
            format!(
                "{qname} {} < {}: fixed rate {}",
                fmt(q),
                fmt(s.sporadic_below),
                fmt(s.fixed_rate)
            ),
        )
    } else if stats.variance > s.variance_above {
        (
            Category::Fluctuating,
            q,
            format!(
                "{qname} {} ≥ {} and variance {} > {}: target = {qname}",
                fmt(q),
                fmt(s.sporadic_below),
                fmt(stats.variance),
                fmt(s.variance_above)
            ),
        )
    } else {
        let target = (q * s.factor).min(1.0);
        (
            Category::Steady,
            target,
            format!(
                "{qname} {} ≥ {} and variance {} ≤ {}: target = min({qname} × {}, 1)",
                fmt(q),
                fmt(s.sporadic_below),
                fmt(stats.variance),
                fmt(s.variance_above),
                fmt(s.factor)
            ),
        )
    };
    // A call that succeeded in the baseline keeps at least half its share of successes: amplifying a 99.9 %
    // failure rate to 100 % turns a retry loop that always got through into one that never can, a permanent
    // condition the program never met (tempfile's test binding a socket until a free name: `failed`, an artifact).
    let cap = 1.0 - (1.0 - natural) * MIN_SUCCESS_SHARE;
    let (target, rule) = if target > cap {
        (
            cap,
            format!(
                "{rule}; at most 1 − (1 − natural {}) × {MIN_SUCCESS_SHARE} = {}: calls that succeed naturally keep \
                 half their share",
                fmt(natural),
                fmt(cap)
            ),
        )
    } else {
        (target, rule)
    };
    let rule = if stats.too_few_samples() {
        format!(
            "{rule} (rests on {} sample(s), fewer than {MIN_SAMPLES}: too few samples for a stable rate)",
            stats.sample_count()
        )
    } else {
        rule
    };
    let probability = round6(((target - natural) / (1.0 - natural)).clamp(0.0, 1.0));
    if probability <= 0.0 {
        return Err(format!(
            "natural rate {} is already at or above the target {}: injection adds nothing",
            fmt(natural),
            fmt(target)
        ));
    }
    Ok((category, target, rule, probability))
}

/// The least share of a syscall's natural successes a model leaves (see [`rule_for`]).
const MIN_SUCCESS_SHARE: f64 = 0.5;

fn quantile_name(q: f64) -> String {
    if q >= 1.0 {
        "max".into()
    } else {
        format!("p{}", fmt(q * 100.0))
    }
}

/// Short, stable number formatting for rule texts.
fn fmt(x: f64) -> String {
    let s = format!("{:.6}", x);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Population variance.
fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64
    }
}

/// The `q` quantile with linear interpolation between closest ranks (numpy's default), so p95 of few intervals
/// does not jump to the max.
fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::model::{Interval, SyscallStats};

    /// Regression (issue 13, fuzzing): synthesis over an observation whose counts add past `u64::MAX`
    /// overflowed; it saturates now.
    #[test]
    fn huge_counts_saturate_in_synthesis() {
        let plan = synthesize(
            &crate::model::fixtures::huge_observation(),
            &crate::model::SynthSettings::default(),
        )
        .unwrap();
        assert!(plan.models.iter().all(|m| m.stats.calls == u64::MAX), "{plan:?}");
    }

    /// An observation of one syscall: per interval (calls, failures with `errno`).
    fn obs(syscall: &str, errno: &str, intervals: &[(u64, u64)]) -> Observation {
        let sc = Syscall::parse(syscall).unwrap();
        let e = Errno::parse(errno).unwrap();
        let intervals = intervals
            .iter()
            .map(|&(calls, failures)| {
                let mut interval = Interval::default();
                if calls > 0 {
                    let mut stats = SyscallStats {
                        calls,
                        ..Default::default()
                    };
                    if failures > 0 {
                        stats.errors.insert(e, failures);
                    }
                    interval.syscalls.insert(sc, stats);
                }
                interval
            })
            .collect();
        Observation {
            version: 1,
            command: vec!["app".into()],
            backend: "test".into(),
            kernel: String::new(),
            started_at: String::new(),
            interval_ms: 1000,
            duration_ms: 0,
            syscalls: None,
            intervals,
            exit: None,
            interrupted: false,
            usage: None,
            latency_measured: true,
            runs: 1,
            lost: 0,
        }
    }

    fn plan(o: &Observation) -> Plan {
        synthesize(o, &SynthSettings::default()).unwrap()
    }

    /// A shape's calls per interval, and its failures with an errno.
    type ShapeCalls<'a> = (&'a str, u64, Option<(&'a str, u64)>);

    /// An observation of `syscall` by shape: in each of `n` intervals, per shape, its calls and its failures
    /// with an errno.
    fn shaped(syscall: &str, n: usize, shapes: &[ShapeCalls<'_>]) -> Observation {
        let mut o = obs(syscall, "ENOENT", &vec![(0, 0); n]);
        let sc = Syscall::parse(syscall).unwrap();
        for interval in &mut o.intervals {
            let stats = interval.syscalls.entry(sc).or_default();
            for &(shape, calls, failures) in shapes {
                let st = stats.shapes.entry(shape.to_owned()).or_default();
                st.calls += calls;
                stats.calls += calls;
                if let Some((errno, k)) = failures {
                    let errno = Errno::parse(errno).unwrap();
                    *st.errors.entry(errno).or_default() += k;
                    *stats.errors.entry(errno).or_default() += k;
                }
            }
        }
        o
    }

    /// pip installing a wheel, observed with eBPF: its thousands of distinct paths filled the observer's path
    /// counters (1 478 updates lost), so statx had per-syscall counts and no shapes, and synthesis made a
    /// shapeless `statx:ENOENT` model that injected into `stat` of paths that exist (realism 0 %). A syscall with
    /// components whose shapes an observation by shape did not record is excluded, saying why.
    #[test]
    fn regression_a_syscall_whose_shapes_were_lost_became_a_shapeless_model() {
        let mut o = shaped(
            "openat",
            30,
            &[("creates=no:directory=no:exists=yes:path=/etc/x", 5, None)],
        );
        let statx = Syscall::parse("statx").unwrap();
        let getrandom = Syscall::parse("getrandom").unwrap();
        let enoent = Errno::parse("ENOENT").unwrap();
        let eagain = Errno::parse("EAGAIN").unwrap();
        for interval in &mut o.intervals {
            for (sc, errno) in [(statx, enoent), (getrandom, eagain)] {
                let stats = interval.syscalls.entry(sc).or_default();
                stats.calls += 10;
                *stats.errors.entry(errno).or_default() += 1;
            }
        }
        o.lost = 1478;
        let p = plan(&o);
        assert!(!p.models.iter().any(|m| m.syscall == statx), "{:?}", p.models);
        let why = p
            .excluded
            .iter()
            .find(|e| e.syscall == statx)
            .expect("statx excluded");
        assert!(
            why.reason
                .contains("shapes were not recorded when it was observed (the observer lost 1478 update(s)"),
            "{}",
            why.reason
        );
        // A syscall that has no components is the syscall alone, shapes or not.
        assert!(p.models.iter().any(|m| m.syscall == getrandom), "{:?}", p.models);
        // Without shapes asked for, the per-syscall model as before.
        let off = synthesize(
            &o,
            &SynthSettings {
                shapes: false,
                ..SynthSettings::default()
            },
        )
        .unwrap();
        assert!(off.models.iter().any(|m| m.syscall == statx));
        // The field is left out of a file when 0, and an observation written before it loads.
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["lost"], 1478);
        let mut old = json;
        old.as_object_mut().unwrap().remove("lost");
        let old: Observation = serde_json::from_value(old).unwrap();
        assert_eq!(old.lost, 0);
        assert!(serde_json::to_string(&old).unwrap().find("\"lost\"").is_none());
    }

    /// Rust's tempfile suite: lookups of deleted temp files (ENOENT every time) shared the template `/tmp/.tmp*`
    /// with lookups of live ones (never ENOENT), and the model injected ENOENT into the live ones. With whether
    /// the name exists in the shape, the absent names fail every time (excluded, saying why) and the present ones
    /// never did: no model. An errno the state does not decide (EACCES) pools every state of the template, the
    /// unknown ones included (eBPF knows a name's state only where a result tells it).
    #[test]
    fn regression_enoent_of_deleted_temp_files_became_a_model_for_live_ones() {
        let o = shaped(
            "newfstatat",
            30,
            &[
                ("exists=no:path=/tmp/.tmp*", 5, Some(("ENOENT", 5))),
                ("exists=yes:path=/tmp/.tmp*", 10, Some(("EACCES", 1))),
                // eBPF: a failure with an errno that does not say whether the name existed.
                ("exists=unknown:path=/tmp/.tmp*", 1, Some(("EACCES", 1))),
            ],
        );
        let p = plan(&o);
        assert!(
            !p.models.iter().any(|m| m.id == "newfstatat-ENOENT"),
            "{:?}",
            p.models
        );
        let enoent = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "ENOENT")
            .expect("ENOENT excluded");
        assert_eq!(enoent.shape.as_deref(), Some("exists=no:path=/tmp/.tmp*"));
        assert!(
            enoent.reason.contains("would simulate a deletion"),
            "{}",
            enoent.reason
        );
        let eacces = p
            .models
            .iter()
            .find(|m| m.id == "newfstatat-EACCES")
            .expect("EACCES model");
        let shapes: Vec<String> = eacces.shapes.iter().map(|r| r.shape.to_string()).collect();
        assert_eq!(shapes, ["path=/tmp/.tmp*"]);
        assert_eq!(
            eacces.shapes[0].stats.calls,
            30 * 16,
            "every state of the template"
        );
        assert!(
            eacces.fault.to_string().ends_with(":template=/tmp/.tmp*"),
            "{}",
            eacces.fault
        );
        // CPython's test_tempfile: a creating call fails with ENOENT when its directory is gone, every time, and
        // never when it is there: no model either, however the names fall in templates.
        let o = shaped(
            "mkdir",
            30,
            &[
                ("exists=no:parent=no:path=/tmp/tmp*/tmp*", 2, Some(("ENOENT", 2))),
                ("exists=no:parent=yes:path=/tmp/tmp*/tmp*", 8, None),
            ],
        );
        let p = plan(&o);
        assert!(p.models.is_empty(), "{:?}", p.models);
        assert!(
            p.excluded[0]
                .reason
                .contains("the directory of the name was absent at every call"),
            "{}",
            p.excluded[0].reason
        );
        // CPython's reap_children: waitpid(-1, WNOHANG) until ECHILD, every time without children.
        let o = shaped(
            "wait4",
            30,
            &[
                ("nohang=yes:child=no", 1, Some(("ECHILD", 1))),
                ("nohang=yes:child=yes", 3, None),
            ],
        );
        let p = plan(&o);
        assert!(p.models.is_empty(), "{:?}", p.models);
        assert!(
            p.excluded[0]
                .reason
                .contains("the caller had no child to wait for at every call"),
            "{}",
            p.excluded[0].reason
        );
        // An observation from before parent= (or a creating call whose directory's state was not learned
        // alike): absent names that fail now and then, a model.
        let o = shaped(
            "mkdir",
            30,
            &[("exists=no:path=/srv/spool/*", 10, Some(("ENOENT", 2)))],
        );
        let m = &plan(&o).models[0];
        assert_eq!(
            m.fault.to_string(),
            format!("mkdir:ENOENT:p={}:exists=no:template=/srv/spool/*", m.probability)
        );
        // On eBPF a rename's success leaves its new name's state unknown: the renames onto an existing name that
        // failed are not all the calls, and the exclusion says so instead of calling it the file system's state.
        let o = shaped(
            "renameat2",
            30,
            &[
                (
                    "exists=yes:dest_exists=yes:path=/srv/spool/*",
                    2,
                    Some(("EEXIST", 2)),
                ),
                ("exists=yes:dest_exists=unknown:path=/srv/spool/*", 8, None),
            ],
        );
        let p = plan(&o);
        assert!(p.models.is_empty(), "{:?}", p.models);
        assert_eq!(
            p.excluded[0].shape.as_deref(),
            Some("dest_exists=yes:path=/srv/spool/*")
        );
        assert!(
            p.excluded[0].reason.contains(
                "240 call(s) of the same template succeeded with a state the observer could not learn"
            ),
            "{}",
            p.excluded[0].reason
        );
    }

    /// CPython's suite run through pyenv's shell shims: `echo … | head -1`-style pipelines wrote to pipes whose
    /// reader had gone (EPIPE every time), and the model injected EPIPE into writes to pipes that were read, so
    /// bash's `echo` said "write error: Broken pipe" and the shim failed: the report blamed pyenv for a reader's
    /// death that never happened. With whether the pipe has a reader in the shape, no model; a pipe's EAGAIN pools
    /// both states, the unknown ones (eBPF: a result that says nothing of the readers) too.
    #[test]
    fn regression_epipe_of_pipes_without_readers_was_injected_into_pipes_that_were_read() {
        let o = shaped(
            "write",
            30,
            &[
                ("fd=pipe:nonblock=no:readers=no", 2, Some(("EPIPE", 2))),
                ("fd=pipe:nonblock=no:readers=yes", 20, None),
                ("fd=pipe:nonblock=yes:readers=yes", 10, None),
                ("fd=pipe:nonblock=yes:readers=unknown", 3, Some(("EAGAIN", 3))),
            ],
        );
        let p = plan(&o);
        assert!(!p.models.iter().any(|m| m.id == "write-EPIPE"), "{:?}", p.models);
        let epipe = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "EPIPE")
            .expect("EPIPE excluded");
        assert_eq!(epipe.shape.as_deref(), Some("fd=pipe:nonblock=no:readers=no"));
        assert!(epipe.reason.contains("a reader's death"), "{}", epipe.reason);
        let eagain = p
            .models
            .iter()
            .find(|m| m.id == "write-EAGAIN")
            .expect("EAGAIN model");
        let shapes: Vec<String> = eagain.shapes.iter().map(|r| r.shape.to_string()).collect();
        assert_eq!(shapes, ["fd=pipe:nonblock=yes"]);
        assert_eq!(
            eagain.shapes[0].stats.calls,
            30 * 13,
            "both states of the non-blocking pipe"
        );
    }

    /// rsync: each file's `O_PATH | O_DIRECTORY` probe said ENOTDIR, and the plain open of the same file that follows
    /// never does; with the path alone in the shape, half the opens of each file failed, the model injected
    /// ENOTDIR into the plain opens, and rsync's "some files/attrs were not transferred" (exit 23) was reported
    /// as a finding. Whether the open asks for a directory is in the shape: the probes fail every time (their
    /// state), and the plain opens never.
    #[test]
    fn regression_enotdir_of_directory_probes_was_injected_into_plain_opens() {
        let o = shaped(
            "openat",
            30,
            &[
                (
                    "creates=no:directory=yes:exists=yes:path=/src/cli.rs",
                    1,
                    Some(("ENOTDIR", 1)),
                ),
                ("creates=no:directory=no:exists=yes:path=/src/cli.rs", 1, None),
            ],
        );
        let p = plan(&o);
        assert!(p.models.is_empty(), "{:?}", p.models);
        let enotdir = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "ENOTDIR")
            .expect("ENOTDIR excluded");
        assert_eq!(
            enotdir.shape.as_deref(),
            Some("directory=yes:exists=yes:path=/src/cli.rs")
        );
        assert!(enotdir.reason.contains("O_DIRECTORY"), "{}", enotdir.reason);
    }

    /// Prometheus (a Go server) in service mode: reads of its non-blocking sockets said EAGAIN whenever nothing had
    /// arrived, and the model injected EAGAIN into reads of sockets that had data; Go's netpoller then waits for an
    /// edge of readiness that never comes, and a workload round hung. With readiness in the shape, no model: EAGAIN
    /// is the state of a descriptor that is not ready. eBPF reads readiness from the result, as ptrace polls it.
    #[test]
    fn regression_eagain_of_unready_sockets_was_injected_into_ready_ones() {
        let o = shaped(
            "read",
            30,
            &[
                ("fd=tcp:nonblock=yes:ready=no", 4, Some(("EAGAIN", 4))),
                ("fd=tcp:nonblock=yes:ready=yes", 6, None),
            ],
        );
        let p = plan(&o);
        assert!(!p.models.iter().any(|m| m.id == "read-EAGAIN"), "{:?}", p.models);
        let eagain = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "EAGAIN")
            .expect("EAGAIN excluded");
        assert_eq!(eagain.shape.as_deref(), Some("fd=tcp:nonblock=yes:ready=no"));
        assert!(
            eagain.reason.contains("edge-triggered poller"),
            "{}",
            eagain.reason
        );
        // Another thread emptied the socket between a wake-up and the read: EAGAIN on a ready one, now and then,
        // is the kernel's too, and a model of that shape.
        let o = shaped(
            "read",
            30,
            &[("fd=tcp:nonblock=yes:ready=yes", 20, Some(("EAGAIN", 1)))],
        );
        let m = &plan(&o).models[0];
        assert!(
            m.fault.to_string().ends_with(":fd=tcp:nonblock=yes:ready=yes"),
            "{}",
            m.fault
        );
    }

    /// filelock's suite (4.3.2, `pytest tests/native`): its contenders' `LOCK_EX | LOCK_NB` requests said
    /// EWOULDBLOCK on the locks its tests held, and the model failed the holders' requests on the same files (5/5
    /// runs failed, 5 tests broken). With `held=` in the shape, no model: EWOULDBLOCK is the state of a held lock.
    #[test]
    fn regression_flock_ewouldblock_of_held_locks_was_injected_into_free_ones() {
        let shape =
            |held| format!("fd=file:nonblock=no:lock=ex-nb:held={held}:path=/tmp/pytest-of-root/a.lock");
        let o = shaped(
            "flock",
            30,
            &[
                (&shape("yes"), 66, Some(("EAGAIN", 66))),
                (&shape("no"), 18, None),
            ],
        );
        let p = plan(&o);
        assert!(!p.models.iter().any(|m| m.id == "flock-EAGAIN"), "{:?}", p.models);
        let eagain = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "EAGAIN")
            .expect("EAGAIN excluded");
        assert_eq!(eagain.shape.as_deref(), Some(shape("yes").as_str()));
        assert!(
            eagain.reason.contains("simulate a contender"),
            "{}",
            eagain.reason
        );
    }

    /// Node's `fs.rm({recursive: true})` of its output directory: the first `rmdir` said ENOTEMPTY (the
    /// directory had entries), the second, of the emptied directory, succeeded; the model failed the second too.
    /// With `empty=` in the shape, no model: ENOTEMPTY is the state of a directory with entries.
    #[test]
    fn regression_enotempty_was_injected_into_the_removal_of_an_emptied_directory() {
        let shape = |empty| format!("exists=yes:empty={empty}:path=/work/try/node/out");
        let o = shaped(
            "rmdir",
            10,
            &[
                (&shape("no"), 6, Some(("ENOTEMPTY", 6))),
                (&shape("yes"), 4, None),
            ],
        );
        let p = plan(&o);
        assert!(
            !p.models.iter().any(|m| m.id == "rmdir-ENOTEMPTY"),
            "{:?}",
            p.models
        );
        let excluded = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "ENOTEMPTY")
            .expect("ENOTEMPTY excluded");
        assert_eq!(excluded.shape.as_deref(), Some(shape("no").as_str()));
        assert!(
            excluded.reason.contains("still had entries at every call"),
            "{}",
            excluded.reason
        );

        // eBPF: a removal that succeeded says it found the directory empty; an unlinkat that succeeded does not
        // say whether it removed a directory at all, and those calls are counted as unlearned.
        let unlinkat = |state: &str| format!("exists=yes:{state}:path=/srv/spool/*");
        let o = shaped(
            "unlinkat",
            10,
            &[
                (&unlinkat("empty=no"), 3, Some(("ENOTEMPTY", 3))),
                (&unlinkat("empty=unknown"), 7, None),
            ],
        );
        let p = plan(&o);
        let excluded = p
            .excluded
            .iter()
            .find(|e| e.action.to_string() == "ENOTEMPTY")
            .expect("ENOTEMPTY excluded");
        assert!(
            excluded
                .reason
                .contains("call(s) of the same template succeeded with a state")
                && excluded
                    .reason
                    .contains("an unlinkat's whether it removed a directory"),
            "{}",
            excluded.reason
        );
    }

    /// `--explore plausible`: the observed models, then the catalogue's errors on the calls the program made,
    /// most called first, each labelled; the undecidable entries are excluded saying why. Plans written before
    /// the tiers load as observed.
    #[test]
    fn explore_plausible_appends_the_plausible_tier_after_the_observed_models() {
        let mut o = obs("openat", "ENOENT", &[(10, 2), (10, 1)]);
        let fsync = o.intervals[0]
            .syscalls
            .entry(Syscall::parse("fsync").unwrap())
            .or_default();
        fsync.calls = 40;
        fsync.shapes.insert(
            "fd=file:nonblock=no:path=/srv/log".into(),
            crate::model::observation::ShapeStats {
                calls: 40,
                ..Default::default()
            },
        );
        o.intervals[1]
            .syscalls
            .entry(Syscall::parse("pipe2").unwrap())
            .or_default()
            .calls = 3;
        let observed = plan(&o);
        assert!(observed.models.iter().all(|m| m.tier == Tier::Observed));
        let settings = SynthSettings {
            explore: Explore::Plausible,
            ..SynthSettings::default()
        };
        let p = synthesize(&o, &settings).unwrap();
        assert_eq!(p.models[..observed.models.len()], observed.models[..]);
        let plausible: Vec<&str> = p.models[observed.models.len()..]
            .iter()
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(
            plausible,
            [
                "fsync-EIO",
                "fsync-ENOSPC",
                "fsync-EDQUOT",
                "openat-EMFILE",
                "openat-ENFILE",
                "pipe2-EMFILE",
                "pipe2-ENFILE"
            ]
        );
        let eio = &p.models[observed.models.len()];
        assert_eq!(eio.tier, Tier::Plausible);
        assert_eq!((eio.probability, eio.stats.calls), (0.05, 40));
        // The rule of its main shape: the file the program fsynced.
        assert!(
            eio.fault.to_string().starts_with("fsync:EIO:p=0.05:fd=file:")
                && eio.fault.to_string().ends_with(":when=exit"),
            "{}",
            eio.fault
        );
        assert!(
            eio.shapes
                .iter()
                .all(|s| s.fault.when == crate::model::When::Exit)
        );
        // pipe2, made 3 times: at 5 % most runs would inject nothing; one injection is expected per run instead.
        let pipe2 = p.models.iter().find(|m| m.id == "pipe2-EMFILE").unwrap();
        assert!(
            (pipe2.probability - 1.0 / 3.0).abs() < 1e-9,
            "{}",
            pipe2.probability
        );
        assert!(
            pipe2.rule.ends_with(
                "never failed; rate 0.333333, raised from the fixed rate 0.05 (so that a run expects one injection: 3 \
                 call(s) of the class per run)"
            ),
            "{}",
            pipe2.rule
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["settings"]["explore"], "plausible");
        assert_eq!(json["models"][observed.models.len()]["tier"], "plausible");
        // Old plans: no tier, no explore.
        let old = serde_json::to_value(&observed).unwrap();
        assert!(old["settings"].get("explore").is_none() && old["models"][0].get("tier").is_none());
        let loaded: Plan = serde_json::from_value(old).unwrap();
        assert_eq!(loaded, observed);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Found on CPython's test_epoll: a signal interrupted `epoll_wait`, the handler's `rt_sigreturn` "returned"
    /// -EINTR (the interrupted call's result, restored), the observation counted it as a failure, and the
    /// campaign injected EINTR into rt_sigreturn, crashing Python: an artifact reported as a finding.
    #[test]
    fn rt_sigreturn_eintr_is_never_a_model() {
        let p = plan(&obs("rt_sigreturn", "EINTR", &[(10, 1), (10, 2)]));
        assert!(p.models.is_empty(), "{:?}", p.models);
        assert!(p.excluded[0].reason.contains("restores the interrupted context"));
        let mut builder = crate::model::ObservationBuilder::new(Duration::from_millis(10));
        let sc = Syscall::parse("rt_sigreturn").unwrap();
        let eintr = Errno::parse("EINTR").unwrap();
        builder.record(Duration::ZERO, sc, None, Err(eintr), Duration::ZERO);
        builder.record_many(Duration::ZERO, sc, Err(eintr), 3, 0, 0);
        let observed = builder.finish(Duration::ZERO, Default::default());
        let totals = &observed.intervals[0].syscalls[&sc];
        assert_eq!((totals.calls, totals.errors.len()), (4, 0));
    }

    /// tempfile's own test suite binds a unix socket until it finds a free name: 99.9 % of its binds fail with
    /// EADDRINUSE, a few get through. The model took p95 = 1 to a target of 1 and p = 1, so no bind ever got
    /// through and the test failed: a permanent condition the program never met, reported as a finding. The target
    /// now leaves half the natural successes.
    #[test]
    fn regression_a_retry_loop_that_always_got_through_was_made_to_fail_for_ever() {
        // 9990 of 10000 fail, in 10 samples of 1000 calls (rates .998–1).
        let intervals: Vec<(u64, u64)> = (0..10).map(|i| (1000, if i < 5 { 1000 } else { 998 })).collect();
        let p = plan(&obs("bind", "EADDRINUSE", &intervals));
        let m = &p.models[0];
        assert!(close(m.stats.natural_rate(), 0.999), "{}", m.stats.natural_rate());
        // At most 1 − 0.001 × 0.5 = 0.9995: p = (0.9995 − 0.999) / 0.001 = 0.5.
        assert!(close(m.target_rate, 0.9995), "{}", m.target_rate);
        assert!(close(m.probability, 0.5), "{}", m.probability);
        assert!(
            m.rule
                .contains("calls that succeed naturally keep half their share"),
            "{}",
            m.rule
        );
        // A rate far from 1 is not touched.
        let low = plan(&obs(
            "openat",
            "ENOENT",
            &[(100, 10), (100, 12), (100, 11), (100, 10)],
        ));
        assert!(
            !low.models[0].rule.contains("half their share"),
            "{}",
            low.models[0].rule
        );
    }

    #[test]
    fn sporadic_pair_gets_the_fixed_rate() {
        // rates 0.01, 0.02, 0.0, 0.01 (calls 100 each): p95 = 0.02 - 0.05·(0.02-0.01)·… < 0.05
        let p = plan(&obs(
            "openat",
            "ENOENT",
            &[(100, 1), (100, 2), (100, 0), (100, 1)],
        ));
        let m = &p.models[0];
        assert_eq!(m.category, Category::Sporadic);
        assert_eq!(m.id, "openat-ENOENT");
        // sorted 0, .01, .01, .02; h = 3·0.95 = 2.85 → .01 + .85·.01 = .0185
        assert!(close(m.stats.quantile, 0.0185), "{}", m.stats.quantile);
        assert!(close(m.stats.mean, 0.01));
        assert_eq!(
            (
                m.stats.failures,
                m.stats.calls,
                m.stats.intervals,
                m.stats.intervals_with_error
            ),
            (4, 400, 4, 3)
        );
        assert!(close(m.target_rate, 0.05));
        // natural 4/400 = 0.01: p = (0.05 - 0.01) / 0.99 = 0.040404…
        assert!(close(m.probability, 0.040404), "{}", m.probability);
        assert_eq!(m.fault.to_string(), "openat:ENOENT:p=0.040404");
        assert_eq!(
            m.rule,
            "p95 0.0185 < 0.05: fixed rate 0.05 (rests on 4 sample(s), fewer than 20: too few samples for a \
             stable rate)"
        );
    }

    #[test]
    fn fluctuating_pair_targets_its_quantile() {
        // rates 0.0, 0.5, 0.1, 0.4 → mean 0.25, variance ((.25²+.25²+.15²+.15²)/4) = 0.0425
        let p = plan(&obs("futex", "EAGAIN", &[(10, 0), (10, 5), (10, 1), (10, 4)]));
        let m = &p.models[0];
        assert_eq!(m.category, Category::Fluctuating);
        assert!(close(m.stats.variance, 0.0425), "{}", m.stats.variance);
        // sorted 0, .1, .4, .5; h = 2.85 → .4 + .85·.1 = .485
        assert!(close(m.stats.quantile, 0.485));
        assert!(close(m.target_rate, 0.485));
        // natural 10/40 = 0.25: p = (0.485 - 0.25)/0.75 = 0.313333…
        assert!(close(m.probability, 0.313333), "{}", m.probability);
        assert_eq!(
            m.rule,
            "p95 0.485 ≥ 0.05 and variance 0.0425 > 0.001: target = p95 (rests on 4 sample(s), fewer than 20: \
             too few samples for a stable rate)"
        );
    }

    #[test]
    fn steady_pair_is_amplified_by_the_factor() {
        // rates 0.2, 0.2, 0.21, 0.2 → variance tiny
        let p = plan(&obs(
            "read",
            "EAGAIN",
            &[(100, 20), (100, 20), (100, 21), (100, 20)],
        ));
        let m = &p.models[0];
        assert_eq!(m.category, Category::Steady);
        // sorted .2 .2 .2 .21; h = 2.85 → .2 + .85·.01 = .2085; × 1.2 = .2502
        assert!(close(m.target_rate, 0.2502), "{}", m.target_rate);
        // natural 81/400 = 0.2025: p = (0.2502 - 0.2025)/0.7975 = 0.059812…
        assert!(close(m.probability, 0.059812), "{}", m.probability);
    }

    #[test]
    fn a_rare_error_seen_once_in_many_intervals_stays_rare() {
        // 100 intervals of 50 calls; one failure in one interval. Zero-error intervals count: p95 is 0.
        let mut intervals = vec![(50, 0); 100];
        intervals[37] = (50, 1);
        let p = plan(&obs("connect", "ECONNREFUSED", &intervals));
        let m = &p.models[0];
        assert_eq!(m.stats.intervals, 100);
        assert_eq!(m.stats.intervals_with_error, 1);
        assert!(close(m.stats.max, 0.02));
        assert!(close(m.stats.quantile, 0.0));
        assert!(close(m.stats.mean, 0.0002));
        assert_eq!(m.category, Category::Sporadic);
        assert!(close(m.target_rate, 0.05));
        assert!(!m.rule.contains("too few samples"), "{}", m.rule);
    }

    /// CPython's test suite: 4 `epoll_wait` EINTRs in 78 calls, one or two calls per interval. Rates over one or
    /// two calls are 0, 0.5 or 1, so p95 was 1, the model injected EINTR at p = 1 and the run hung: an artifact.
    #[test]
    fn regression_a_few_calls_per_interval_gave_p95_one_and_a_hang() {
        let mut intervals: Vec<(u64, u64)> = (0..52).map(|i| (1 + i % 2, 0)).collect();
        for i in [4, 16, 30, 44] {
            intervals[i].1 = 1;
        }
        assert_eq!(intervals.iter().map(|i| i.0).sum::<u64>(), 78);
        let p = plan(&obs("epoll_wait", "EINTR", &intervals));
        let m = &p.models[0];
        assert_eq!((m.stats.intervals, m.stats.failures, m.stats.calls), (52, 4, 78));
        // 78 calls pooled into samples of at least 10: 7 of them, rates of 0 or about 0.1.
        assert_eq!(m.stats.samples, 7);
        assert!(m.stats.quantile < 0.2, "{:?}", m.stats);
        assert!(m.probability < 0.2, "{}", m.probability);
        assert!(m.rule.contains("rests on 7 sample(s)"), "{}", m.rule);
        // Without pooling (--min-calls 1) the same observation gives p95 = 1, as before.
        let unpooled = synthesize(
            &obs("epoll_wait", "EINTR", &intervals),
            &SynthSettings {
                min_calls: 1,
                ..SynthSettings::default()
            },
        )
        .unwrap();
        assert!(close(unpooled.models[0].stats.quantile, 1.0));
        assert_eq!(unpooled.models[0].stats.samples, 52);
    }

    #[test]
    fn sparse_intervals_are_pooled_and_busy_ones_stay_samples() {
        let errors = |n: u64| BTreeMap::from([(Errno::parse("EIO").unwrap(), n)]);
        let e = [errors(1), errors(0), errors(2), errors(0), errors(1)];
        let intervals: Vec<Called<'_>> = vec![(4, &e[0]), (7, &e[1]), (12, &e[2]), (3, &e[3]), (2, &e[4])];
        let eio = Errno::parse("EIO").unwrap();
        // 4+7 pooled; 12 alone; the last 3+2 are too few, so they join the 12.
        assert_eq!(samples(&intervals, eio, 10), [(11, 1), (17, 3)]);
        assert_eq!(
            samples(&intervals, eio, 1),
            [(4, 1), (7, 0), (12, 2), (3, 0), (2, 1)]
        );
        // Fewer calls than min_calls in all: one sample of them all.
        assert_eq!(samples(&intervals, eio, 1000), [(28, 4)]);
        assert!(samples(&[], eio, 10).is_empty());
    }

    #[test]
    fn min_calls_zero_is_refused() {
        let err = synthesize(
            &obs("read", "EIO", &[(10, 1)]),
            &SynthSettings {
                min_calls: 0,
                ..SynthSettings::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.name, "min-calls");
    }

    #[test]
    fn intervals_where_the_syscall_was_not_called_do_not_count() {
        let p = plan(&obs("openat", "ENOENT", &[(0, 0), (10, 5), (0, 0), (10, 5)]));
        assert_eq!(p.models[0].stats.intervals, 2);
        assert!(close(p.models[0].stats.mean, 0.5));
    }

    #[test]
    fn a_pair_that_always_fails_is_excluded() {
        let p = plan(&obs("access", "ENOENT", &[(2, 2), (3, 3)]));
        assert!(p.models.is_empty());
        assert_eq!(p.excluded.len(), 1);
        assert_eq!(
            p.excluded[0].reason,
            "every call already fails with it: injection adds nothing"
        );
    }

    #[test]
    fn restart_codes_are_excluded() {
        let p = plan(&obs("wait4", "512", &[(10, 1)]));
        assert!(p.models.is_empty());
        assert!(
            p.excluded[0].reason.contains("kernel-internal restart code"),
            "{}",
            p.excluded[0].reason
        );
    }

    #[test]
    fn natural_rate_above_target_is_excluded() {
        // steady at 0.9 with factor 1.0: target 0.9 = natural → nothing to add
        let settings = SynthSettings {
            factor: 1.0,
            ..Default::default()
        };
        let p = synthesize(&obs("read", "EAGAIN", &[(10, 9), (10, 9)]), &settings).unwrap();
        assert!(p.models.is_empty());
        assert!(
            p.excluded[0]
                .reason
                .starts_with("natural rate 0.9 is already at or above the target 0.9")
        );
    }

    #[test]
    fn settings_are_written_and_validated() {
        let settings = SynthSettings {
            quantile: 1.0,
            ..Default::default()
        };
        let p = synthesize(&obs("futex", "EAGAIN", &[(10, 0), (10, 5)]), &settings).unwrap();
        assert_eq!(p.settings.quantile, 1.0);
        assert!(p.models[0].rule.starts_with("max 0.5"), "{}", p.models[0].rule);
        let bad = SynthSettings {
            fixed_rate: 1.5,
            ..Default::default()
        };
        assert_eq!(
            synthesize(&obs("read", "EIO", &[(1, 0)]), &bad)
                .unwrap_err()
                .to_string(),
            "synthesis setting fixed-rate=1.5 is out of range: expected a number between 0 and 1"
        );
    }

    #[test]
    fn models_are_ordered_by_failures() {
        let mut o = obs("futex", "EAGAIN", &[(10, 1), (10, 1)]);
        let sc = Syscall::parse("openat").unwrap();
        let mut stats = SyscallStats {
            calls: 10,
            ..Default::default()
        };
        stats.errors.insert(Errno::parse("ENOENT").unwrap(), 5);
        o.intervals[0].syscalls.insert(sc, stats);
        let p = plan(&o);
        let ids: Vec<&str> = p.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["openat-ENOENT", "futex-EAGAIN"]);
    }

    #[test]
    fn quantile_interpolates() {
        assert!(close(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0));
        assert!(close(quantile(&[0.0, 10.0], 0.95), 9.5));
        assert!(close(quantile(&[7.0], 0.95), 7.0));
    }
}
