//! The subcommands: glue between the CLI, the backends and the files. Lives in the binary, so it may use anyhow.

use std::{
    collections::HashSet,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use phoebe::{
    backend::{self, BackendKind, Mode, Target},
    control::Control,
    decide::Decider,
    experiment, files,
    hint::WithHint,
    model::{
        ExperimentResult, FaultSpec, InjectionLog, IntervalChoice, Observation, ObservationBuilder,
        ObservationMeta, Report, Syscall, Usage, shape::ShapeCoverage,
    },
    report::summary,
    synth,
};

use crate::cli::{
    DoctorArgs, ExecArgs, InjectArgs, MonitorArgs, ObserveArgs, ReportArgs, ReportCommand, ReportFormat,
    SynthesizeArgs,
};

/// `eprintln!` that never panics: stderr carries phoebe's diagnostics, and a full or closed stderr must not turn a
/// finished run into a crash (its files are written; its exit status stands).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` of a whole text, as [`say!`].
fn say_text(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Writes a command's product (a report, a plan's table) to stdout. A reader that went away (`| head`) is not
/// an error; any other failure (`> /dev/full`) is, in one sentence: `main` exits 2.
fn print_out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// `phoebe observe`: returns the target's shell status.
pub fn observe(args: ObserveArgs, control: &Control) -> Result<i32> {
    if !args.ebpf_maps.is_empty() {
        // First: before this process opens any eBPF map of its own.
        if args.target.backend.map(BackendKind::from) != Some(BackendKind::Ebpf) {
            anyhow::bail!("--ebpf-maps needs --backend ebpf");
        }
        backend::ebpf::Observer::adopt(
            &args.ebpf_maps,
            backend::ebpf::ProbeOptions {
                per_process: false,
                latency: false,
                histograms: false,
            },
        )?;
    }
    let record_only: Option<HashSet<Syscall>> = if args.syscalls.is_empty() {
        None
    } else {
        let list = args
            .syscalls
            .iter()
            .map(|s| Syscall::parse(s))
            .collect::<Result<HashSet<_>, _>>();
        Some(list.context("invalid --syscalls")?)
    };
    let target = Target::resolve(&args.target.command)?;
    files::check_writable(&args.output)?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut builder = ObservationBuilder::with_interval(args.interval);
    if !args.shapes {
        builder = builder.without_shapes();
    }
    let backend = match args.target.backend {
        Some(backend) => BackendKind::from(backend),
        None => {
            let (backend, note) = backend::default_observer();
            if let Some(note) = note
                && !args.quiet
            {
                say!("phoebe: {note}");
            }
            backend
        }
    };
    let outcome = backend::backend(backend).run(
        &target,
        Mode::Observe {
            builder: &mut builder,
            record_only: record_only.as_ref(),
            latency: args.latency,
        },
        control,
    )?;
    print_warnings(&outcome.warnings);
    let mut syscalls: Option<Vec<Syscall>> = record_only.map(|s| s.into_iter().collect());
    if let Some(list) = &mut syscalls {
        list.sort();
    }
    let obs = builder.finish(
        outcome.duration,
        ObservationMeta {
            command: target.display.clone(),
            backend: backend.name().into(),
            kernel: kernel_release(),
            started_at,
            syscalls,
            exit: Some(outcome.exit),
            interrupted: control.interrupted_run(),
            usage: Some(children_usage()),
            latency_measured: backend::backend(backend).measures_latency(args.latency),
        },
    );
    files::save(&args.output, &obs)?;
    if !args.quiet {
        say_text(&summary::observation(&obs));
        say!("phoebe: observation written to {}", args.output.display());
    }
    Ok(outcome.exit.shell_status())
}

/// `phoebe inject`: returns the target's shell status.
pub fn inject(args: InjectArgs, control: &Control) -> Result<i32> {
    let target = Target::resolve(&args.target.command)?;
    if let Some(path) = &args.log {
        files::check_writable(path)?;
    }
    let mut decider = match &args.replay {
        Some(path) => {
            let log: InjectionLog = files::load(path, "injection log")?;
            if let Some(problem) = log.replay_problem() {
                let hint = if log.truncated_after.is_some() {
                    // Same seed, same program: the same decisions, at every call index.
                    format!(
                        "run it again with --seed {} and the same --fault rules instead",
                        log.seed
                    )
                } else {
                    "replay a log written by phoebe inject --log".to_owned()
                };
                anyhow::bail!(WithHint::new(
                    format!("{} cannot be replayed: {problem}", path.display()),
                    hint
                ));
            }
            if log.command != target.display {
                tracing::warn!(
                    logged = %log.command.join(" "),
                    now = %target.display.join(" "),
                    "replaying a log recorded for another command line"
                );
            }
            Decider::replay(&log)
        }
        None => {
            let faults = args
                .faults
                .iter()
                .map(|f| FaultSpec::parse(f))
                .collect::<Result<Vec<_>, _>>()?;
            Decider::new(faults, args.seed.unwrap_or_else(random_seed))
        }
    };
    // seccomp is the fast, unprivileged injector; only exit-side injection needs ptrace: the backends' answer.
    let backend = args
        .target
        .backend
        .map(BackendKind::from)
        .unwrap_or_else(|| backend::for_rules(decider.faults()));
    // What the rules really cover on this backend (eBPF: hooks are not syscalls), before running; a rule none
    // honours is refused here.
    if let Some(text) = backend::backend(backend).describe(&decider)?
        && !args.quiet
    {
        say_text(&text);
    }
    // Once the backend has taken the rules: a rule it refuses is an error, said first.
    // A replay says the same as the run it replays.
    let faults: Vec<&FaultSpec> = decider.faults().collect();
    backend::backend(backend).check_rules(&faults)?;
    warn_unrealistic(faults.iter().copied());
    let switch = decider.switch();
    switch.store(!args.start_off, std::sync::atomic::Ordering::SeqCst);
    if args.start_off || args.count_all {
        // Rules a filter ran in the kernel could be neither switched nor counted: keep every decision here.
        decider.keep_in_user_space();
    }
    // Listens until the end of this function (dropped, it stops and joins its thread).
    let _switch = phoebe::control::switch_on_signals(switch, args.switch_ack.clone())
        .context("cannot install the SIGUSR1/SIGUSR2 switch")?;
    // Which mechanism runs the eBPF hooks (BPF LSM or fmod_ret) is known once they are attached.
    let quiet = args.quiet;
    let outcome = backend::backend(backend).run(
        &target,
        Mode::Inject {
            decider: &mut decider,
            note: &mut |note| {
                if !quiet {
                    say!("{note}");
                }
            },
        },
        control,
    )?;
    print_warnings(&outcome.warnings);
    let mut log = decider.finish(
        target.display.clone(),
        backend.name(),
        Some(outcome.exit),
        control.interrupted_run(),
    );
    log.usage = Some(children_usage());
    if let Some(path) = &args.log {
        files::save(path, &log)?;
    }
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(summary::injections(&log, backend::backend(backend).draws()).as_bytes());
        if let Some(path) = &args.log {
            let _ = writeln!(
                err,
                "phoebe: injection log written to {} (replay with --replay)",
                path.display()
            );
        }
    }
    Ok(outcome.exit.shell_status())
}

/// CPU time and peak RSS of every process phoebe waited for: one phoebe process runs one target, and the
/// target's descendants are reaped into it, so this is the target's whole tree.
fn children_usage() -> Usage {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let ms = |tv: nix::sys::time::TimeVal| (tv.tv_sec() as u64) * 1000 + (tv.tv_usec() as u64) / 1000;
            Usage {
                user_ms: ms(u.user_time()),
                sys_ms: ms(u.system_time()),
                max_rss_kib: u.max_rss() as u64,
            }
        }
        Err(_) => Usage::default(),
    }
}

/// `phoebe synthesize`: observation → plan.
pub fn synthesize(args: SynthesizeArgs) -> Result<i32> {
    let obs: Observation = files::load(&args.observation, "observation")?;
    let settings = args.settings.to_settings();
    // An observer that records only what its programs learn in the kernel (eBPF), by the backend's own answer.
    let registers_only = BackendKind::from_name(&obs.backend)
        .is_some_and(|k| backend::backend(k).observed_shapes() == ShapeCoverage::InKernel);
    if settings.shapes
        && obs.failed_shapes().is_none()
        && obs.intervals.iter().any(|i| !i.syscalls.is_empty())
    {
        say!(
            "phoebe: warning: {} has no call shapes ({}), so each model is one rule per syscall and errno, \
             which can inject where the kernel never returns that error (a futex wake, a file read)\nhint: \
             observe with --backend ptrace to record shapes",
            args.observation.display(),
            if registers_only {
                "it was recorded by an eBPF observer that did not record them yet"
            } else {
                "it was recorded without them"
            }
        );
    }
    let plan = synth::synthesize(&obs, &settings)?;
    // What eBPF could not learn (epoll_ctl's registration, close's descriptor, a deleted file's path) left errors
    // out: said when it did, not for every eBPF observation.
    let unlearned = plan
        .excluded
        .iter()
        .filter(|e| e.shape.as_deref().is_some_and(|s| s.contains("=unknown")))
        .count();
    if registers_only && unlearned > 0 {
        say!(
            "phoebe: warning: {unlearned} error(s) of {} are left out because eBPF could not learn part of \
             their calls' shape ({} lists each with the component)\nhint: observe with --backend ptrace to \
             record every component",
            args.observation.display(),
            args.output.display()
        );
    }
    files::save(&args.output, &plan)?;
    if !args.quiet {
        print_out(&summary::plan(&plan))?;
        say!("phoebe: plan written to {}", args.output.display());
    }
    Ok(0)
}

/// A warning per hand-written rule that lands on calls the kernel could never fail that way (the realism table):
/// what such a rule breaks is phoebe's artifact, not the program's weakness. The rule still runs, as asked.
fn warn_unrealistic<'a>(faults: impl IntoIterator<Item = &'a FaultSpec>) {
    let warnings: Vec<String> = faults
        .into_iter()
        .filter_map(|fault| {
            let reasons = phoebe::model::realism::refusals(fault);
            (!reasons.is_empty()).then(|| {
                format!(
                    "fault '{fault}': {}\nhint: what it breaks there says nothing about the program; narrow it \
                     with shape predicates (op=, timeout=, fd=, nonblock=, … in `phoebe inject --help`) to the calls \
                     that can fail so, or let `phoebe exec` learn where errors really happen",
                    reasons.join("; ")
                )
            })
        })
        .collect();
    print_warnings(&warnings);
}

/// `phoebe: warning: …` for each warning of the run, its `hint:` lines as they are.
fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        let mut lines = warning.lines();
        say!("phoebe: warning: {}", lines.next().unwrap_or_default());
        for line in lines {
            say!("{line}");
        }
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A seed for runs that did not ask for one; printed in the summary so the run can be repeated.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now()))
}

/// Shows a campaign's progress on stderr: a bar on a terminal, one line per experiment otherwise.
struct Bar {
    bar: indicatif::ProgressBar,
    quiet: bool,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Bar { bar, quiet }
    }

    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            say!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

impl experiment::Progress for Bar {
    fn total(&self, runs: u64) {
        self.bar.set_position(0);
        self.bar.set_length(runs);
    }

    fn message(&self, text: &str) {
        self.bar.set_message(text.to_owned());
        if self.bar.is_hidden() && !self.quiet {
            say!("phoebe: {text}…");
        }
    }

    fn run_done(&self) {
        self.bar.inc(1);
    }

    fn experiment_done(&self, result: &ExperimentResult, resumed: bool) {
        let injected: u64 = result.runs.iter().map(|r| r.injected).sum();
        let broke = match result.broken_tests.len() {
            0 => String::new(),
            1 => format!("; broke {}", result.broken_tests[0]),
            n => format!("; broke {n} tests"),
        };
        self.line(format!(
            "phoebe: {:<24} {:<13} ({}; {injected} injection{}{broke}){}",
            result.id,
            result.verdict_text(),
            result.counts_text(),
            if injected == 1 { "" } else { "s" },
            if resumed { " [from an earlier run]" } else { "" }
        ));
    }

    fn skipped(&self, backend: &str, skipped: &[phoebe::model::Skipped], of: usize) {
        const SHOWN: usize = 10;
        let mut ids: Vec<String> = skipped.iter().take(SHOWN).map(|s| s.id.clone()).collect();
        if skipped.len() > SHOWN {
            ids.push(format!("{} more", skipped.len() - SHOWN));
        }
        // Not hidden by -q: these experiments will have no verdict.
        let (they, them) = if skipped.len() == 1 {
            ("it is", "it")
        } else {
            ("they are", "them")
        };
        self.line(format!(
            "phoebe: the {backend} backend cannot run {} of {of} experiments ({}); {they} skipped: --backend {} \
             runs {them}",
            skipped.len(),
            ids.join(", "),
            experiment::fallback_backend(skipped)
        ));
    }
}

/// `phoebe exec`: 0 when no verdict is in --fail-on, 1 when one is, 130 when interrupted, 2 when the campaign
/// stopped because a run left the program failing without injection.
pub fn exec(args: ExecArgs, control: &Control) -> Result<i32> {
    let (campaign, out) = match &args.resume {
        Some(dir) => {
            let saved: experiment::Campaign = files::load(&dir.join("campaign.json"), "campaign")
                .with_context(|| format!("cannot resume {}", dir.display()))?;
            if let Some(problem) = saved.problem() {
                anyhow::bail!(WithHint::new(
                    format!(
                        "cannot resume {}: {} in {}",
                        dir.display(),
                        problem,
                        dir.join("campaign.json").display()
                    ),
                    "start the campaign again with --out"
                ));
            }
            // A command after `--` must be the campaign's: resuming runs the saved one, never silently another.
            let given: Vec<String> = args
                .command
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if !given.is_empty() && given != saved.command {
                return Err(experiment::ExperimentError::OtherCampaign {
                    dir: dir.clone(),
                    found: saved.command,
                    wanted: given,
                }
                .into());
            }
            // So must every other flag given: a campaign whose settings differ from the saved ones is refused,
            // naming the first that does (`experiment::run` checks it again against the directory). The shard is
            // not a setting of the campaign (shards share one) but of this directory: compared on its own.
            let requested = requested_campaign(&args, Some(&saved))?;
            if let Some(difference) = saved.difference(&requested) {
                return Err(experiment::ExperimentError::OtherSettings {
                    dir: dir.clone(),
                    difference,
                }
                .into());
            }
            if requested.shard != saved.shard {
                let shown =
                    |s: Option<experiment::Shard>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
                return Err(experiment::ExperimentError::OtherSettings {
                    dir: dir.clone(),
                    difference: experiment::Difference {
                        flag: "--shard",
                        saved: shown(saved.shard),
                        given: shown(requested.shard),
                    },
                }
                .into());
            }
            (requested, dir.clone())
        }
        None => {
            let campaign = requested_campaign(&args, None)?;
            let out = args.out.clone().unwrap_or_else(|| {
                let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
                PathBuf::from("phoebe-runs").join(stamp.replace([':', 'T'], "-").trim_end_matches('Z'))
            });
            // One directory, one campaign: a second one there would reuse the first one's results as its own.
            let saved = out.join("campaign.json");
            if saved.exists() {
                let found = files::load::<experiment::Campaign>(&saved, "campaign").map_or_else(
                    |_| String::new(),
                    |c| {
                        format!(
                            " (phoebe exec -- {}, seed {})",
                            phoebe::report::terminal::command_line(&c.command),
                            c.seed
                        )
                    },
                );
                anyhow::bail!(WithHint::new(
                    format!(
                        "{} already holds a campaign{found}; another one there would mix their results",
                        out.display()
                    ),
                    format!(
                        "continue it with --resume {}, or give another --out",
                        out.display()
                    )
                ));
            }
            (campaign, out)
        }
    };
    let phoebe = std::env::current_exe().context("cannot find the phoebe binary to run experiments with")?;
    let bar = Bar::new(args.quiet);
    // Not hidden by -q: the seed is what repeats the campaign.
    say!(
        "phoebe: campaign directory {} (seed {})",
        out.display(),
        campaign.seed
    );
    let result = experiment::run(&campaign, &out, &phoebe, control, &bar);
    bar.bar.finish_and_clear();
    let report = result?;
    write_report(&report, &out)?;
    print_out(&phoebe::report::terminal::render(
        &report,
        std::io::stdout().is_terminal(),
    ))?;
    say!(
        "phoebe: report in {} (report.html, junit.xml, summary.md, report.json){}",
        out.display(),
        if report.interrupted {
            format!("; continue with: phoebe exec --resume {}", out.display())
        } else {
            String::new()
        }
    );
    if report.interrupted {
        return Ok(128 + control.signal().unwrap_or(libc::SIGINT));
    }
    if let Some(why) = &report.stopped {
        // The verdicts so far stand; those after would not have: exit 2, not hidden by -q (the report is written).
        anyhow::bail!(WithHint::new(
            format!("the campaign stopped: {why}"),
            format!(
                "restore what the run left behind (the files it did not clean up, a database) by hand, then \
                 continue with: phoebe exec --resume {} (a plain run checks the program first); or start a new \
                 campaign whose --reset CMD restores it before every run{}",
                out.display(),
                if campaign.reset.is_some() {
                    " (this one's --reset did not)"
                } else {
                    ""
                }
            )
        ));
    }
    if report.experiments.is_empty()
        && report.pending.is_empty()
        && report.skipped.is_empty()
        && report.shard.is_none()
    {
        // A campaign that tested nothing must not pass: exit 2, not hidden by -q (the report is written).
        anyhow::bail!(WithHint::new(
            format!(
                "the plan has no models: the baseline failed no call worth injecting, so nothing was tested ({} \
                 lists the errors left out and why)",
                out.join("plan.json").display()
            ),
            format!(
                "{}give --fault SPEC to test chosen errors",
                if campaign.settings.explore.is_observed() {
                    "--explore plausible tries the errors production meets on the calls the program made, or "
                } else {
                    ""
                }
            )
        ));
    }
    Ok(i32::from(report.fails_on_tiers(&args.fail_on)))
}

/// The campaign the command line asks for. For a new campaign, every setting comes from its flag (or its
/// default); when resuming (`saved`), a flag that was not given takes the saved campaign's value, so that the
/// result differs from `saved` only where the user asked for something else.
fn requested_campaign(args: &ExecArgs, saved: Option<&experiment::Campaign>) -> Result<experiment::Campaign> {
    let given = |id: &str| saved.is_none() || args.given.iter().any(|g| g == id);
    // `from_args` when the flag was given (or for a new campaign), the saved value otherwise.
    fn pick<T: Clone>(given: bool, from_args: T, saved: Option<T>) -> T {
        match saved {
            Some(saved) if !given => saved,
            _ => from_args,
        }
    }
    let command = match saved {
        Some(s) => s.command.clone(),
        None => Target::resolve(&args.command)?.display.clone(),
    };
    let faults = if given("faults") {
        let faults = args
            .faults
            .iter()
            .map(|f| FaultSpec::parse(f))
            .collect::<Result<Vec<_>, _>>()?;
        warn_unrealistic(&faults);
        faults
    } else {
        saved.map(|s| s.faults.clone()).unwrap_or_default()
    };
    let a = args.settings.to_settings();
    let b = saved.map(|s| s.settings);
    let settings = phoebe::model::SynthSettings {
        sporadic_below: pick(
            given("sporadic_below"),
            a.sporadic_below,
            b.map(|b| b.sporadic_below),
        ),
        fixed_rate: pick(given("fixed_rate"), a.fixed_rate, b.map(|b| b.fixed_rate)),
        variance_above: pick(
            given("variance_above"),
            a.variance_above,
            b.map(|b| b.variance_above),
        ),
        factor: pick(given("factor"), a.factor, b.map(|b| b.factor)),
        quantile: pick(given("quantile"), a.quantile, b.map(|b| b.quantile)),
        min_calls: pick(given("min_calls"), a.min_calls, b.map(|b| b.min_calls)),
        shapes: pick(given("shapes"), a.shapes, b.map(|b| b.shapes)),
        explore: pick(given("explore"), a.explore, b.map(|b| b.explore)),
    };
    settings.validate()?;
    if given("explore") && settings.explore == phoebe::model::Explore::Plausible {
        if !args.faults.is_empty() {
            anyhow::bail!(WithHint::new(
                "--explore plausible with --fault: the plausible tier is synthesized from the baseline, and --fault \
                 replaces synthesis",
                "drop --fault to run the observed and plausible models, or drop --explore"
            ));
        }
        if args.plan.is_some() {
            anyhow::bail!(WithHint::new(
                "--explore plausible with --plan: the plan's models are run as they are",
                "make the plan with `phoebe synthesize --explore plausible OBSERVATION -o plan.json`"
            ));
        }
    }
    if saved.is_none() && args.shard.is_some() && args.plan.is_none() && faults.is_empty() {
        anyhow::bail!(WithHint::new(
            "--shard needs --plan FILE or --fault SPEC: every shard must split the same experiments, and shards \
             that synthesized their own plans would not",
            "make one plan first (phoebe observe, then phoebe synthesize) and give it to every shard"
        ));
    }
    let plan = if given("plan") {
        let plan: Option<phoebe::model::Plan> =
            args.plan.as_deref().map(|p| files::load(p, "plan")).transpose()?;
        if let (Some(plan), Some(path)) = (&plan, &args.plan) {
            experiment::check_ids(plan, path)?;
            if plan.models.is_empty() {
                anyhow::bail!(WithHint::new(
                    format!(
                        "{} has no models, so the campaign would test nothing",
                        path.display()
                    ),
                    "synthesize a plan from an observation in which the target fails some calls, or give --fault SPEC"
                ));
            }
        }
        plan
    } else {
        saved.and_then(|s| s.plan.clone())
    };
    let service = match saved {
        Some(s) if !given("service") => s.service.clone().map(|mut spec| {
            if given("rounds") {
                spec.rounds = args.rounds;
            }
            if given("tolerance") {
                spec.tolerance = args.tolerance;
            }
            if given("recovery") {
                spec.recovery_ms = args
                    .recovery
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            }
            spec
        }),
        _ => args.service.then(|| experiment::service::ServiceSpec {
            ready: args.ready.clone().unwrap_or_default(),
            workload: args.workload.clone().unwrap_or_default(),
            rounds: args.rounds,
            tolerance: args.tolerance,
            recovery_ms: args
                .recovery
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }),
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(experiment::Campaign {
        version: phoebe::model::FORMAT_VERSION,
        command,
        backend: pick(
            given("backend"),
            args.backend.map(BackendKind::from),
            saved.map(|s| s.backend),
        ),
        runs: pick(given("runs"), args.runs, saved.map(|s| s.runs)),
        baseline_runs: pick(
            given("baseline_runs"),
            args.baseline_runs,
            saved.map(|s| s.baseline_runs),
        ),
        timeout_ms: pick(
            given("timeout"),
            args.timeout.map(millis),
            saved.map(|s| s.timeout_ms),
        ),
        check: pick(given("check"), args.check.clone(), saved.map(|s| s.check.clone())),
        reset: pick(given("reset"), args.reset.clone(), saved.map(|s| s.reset.clone())),
        seed: match saved {
            Some(s) if !given("seed") => s.seed,
            _ => args.seed.unwrap_or_else(random_seed),
        },
        interval_ms: pick(
            given("interval"),
            match args.interval {
                IntervalChoice::Fixed(d) => Some(millis(d)),
                IntervalChoice::Auto => None,
            },
            saved.map(|s| s.interval_ms),
        ),
        settings,
        faults,
        plan,
        service,
        shard: pick(given("shard"), args.shard, saved.map(|s| s.shard)),
        expect_status: pick(
            given("expect_status"),
            args.expect_status,
            saved.map(|s| s.expect_status),
        ),
        accept_flaky_baseline: pick(
            given("accept_flaky_baseline"),
            args.accept_flaky_baseline,
            saved.map(|s| s.accept_flaky_baseline),
        ),
        tests: pick(given("tests"), args.tests.clone(), saved.map(|s| s.tests.clone())),
        log_files: pick(
            given("log_file"),
            args.log_file.clone(),
            saved.map(|s| s.log_files.clone()),
        ),
        observer: match (args.observer, saved) {
            (Some(observer), _) => observer,
            (None, Some(saved)) => saved.observer,
            (None, None) => {
                let (kind, note) = backend::default_observer();
                if let Some(note) = note {
                    say!("phoebe: {note}");
                }
                if kind == BackendKind::Ebpf {
                    experiment::Observer::Ebpf
                } else {
                    experiment::Observer::Ptrace
                }
            }
        },
        fingerprint: String::new(),
    })
}

/// Writes every rendering of a report into `dir`, each atomically.
fn write_report(report: &Report, dir: &Path) -> Result<()> {
    files::save(&dir.join("report.json"), report)?;
    for (name, text) in [
        ("report.html", phoebe::report::html::render(report)),
        ("junit.xml", phoebe::report::junit::render(report)),
        ("summary.md", phoebe::report::markdown::render(report)),
    ] {
        files::save_text(&dir.join(name), &text)?;
    }
    Ok(())
}

/// `phoebe report DIR` and `phoebe report merge DIR…`.
pub fn report(args: ReportArgs) -> Result<i32> {
    if let Some(ReportCommand::Merge {
        dirs,
        output,
        fail_on,
    }) = args.merge
    {
        let mut reports: Vec<Report> = Vec::new();
        for dir in &dirs {
            let r: Report = files::load(&dir.join("report.json"), "report")?;
            // The same shard twice would count its baseline and experiments twice.
            if let Some(j) = reports.iter().position(|earlier| earlier.shard == r.shard) {
                anyhow::bail!(WithHint::new(
                    format!(
                        "{} is {} again, as {} is: its baseline would count twice",
                        dir.display(),
                        r.shard
                            .as_deref()
                            .map_or_else(|| "a whole campaign".to_owned(), |s| format!("shard {s}")),
                        dirs[j].display()
                    ),
                    "give each shard's directory once"
                ));
            }
            reports.push(r);
        }
        let mut merged = phoebe::report::merge(reports)?;
        merged.skipped_backend = phoebe::backend::runs_skipped(&merged.skipped);
        std::fs::create_dir_all(&output).with_context(|| format!("cannot create {}", output.display()))?;
        write_report(&merged, &output)?;
        print_out(&phoebe::report::terminal::render(
            &merged,
            std::io::stdout().is_terminal(),
        ))?;
        say!(
            "phoebe: merged report of {} shard(s) in {}",
            dirs.len(),
            output.display()
        );
        return Ok(i32::from(merged.fails_on_tiers(&fail_on)));
    }
    let dir = args.dir.expect("clap requires DIR without a subcommand");
    let mut report: Report = files::load(&dir.join("report.json"), "report")?;
    // Named again, by this phoebe's rule checks (a report written before the field has none).
    report.skipped_backend = phoebe::backend::runs_skipped(&report.skipped);
    let text = match args.format {
        ReportFormat::Terminal => phoebe::report::terminal::render(&report, std::io::stdout().is_terminal()),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Junit => phoebe::report::junit::render(&report),
        ReportFormat::Markdown => phoebe::report::markdown::render(&report),
        ReportFormat::Html => phoebe::report::html::render(&report),
    };
    print_out(&text)?;
    Ok(0)
}

/// `phoebe doctor`: prints what each backend can do here; exits 0.
pub fn doctor(args: DoctorArgs) -> Result<i32> {
    let report = phoebe::doctor::diagnose();
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        phoebe::doctor::render(&report)
    };
    print_out(&text)?;
    Ok(0)
}

/// `phoebe monitor`: the live table (or JSON lines) on stdout until the processes end.
pub fn monitor(args: MonitorArgs, control: &Control) -> Result<i32> {
    use phoebe::monitor::{Options, Who, run};
    let who = match (args.pid, args.name) {
        (Some(pid), _) => Who::Pid(pid),
        (None, Some(name)) => Who::Name(name),
        (None, None) => unreachable!("clap requires --pid or --name"),
    };
    let (unit_ns, unit_name) = match args.unit {
        crate::cli::Unit::Ms => (1_000_000, "ms"),
        crate::cli::Unit::Us => (1_000, "µs"),
    };
    let options = Options {
        who,
        interval: args.interval,
        latency: args.latency,
        unit_ns,
        unit_name,
        json: args.json,
        quiet: args.quiet,
        prometheus: args.prometheus,
        per_pid: args.per_pid,
        duration: args.duration,
        backend: args.backend.map(Into::into),
    };
    let stopped_by = run(
        options,
        control,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    )?;
    // Stopped by a signal: the shell's convention, as when eBPF monitoring is ended by it.
    Ok(stopped_by.map_or(0, |signal| 128 + signal))
}
