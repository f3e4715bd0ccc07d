//! The subcommands: glue between the CLI, the backends and the files. Lives in the binary, so it may use anyhow.

use std::{collections::HashSet, io::Write};

use anyhow::{Context, Result};
use phoebe::{
    backend::{self, BackendKind, Job, Target},
    control::Control,
    decide::Decider,
    files,
    model::{FaultSpec, InjectionLog, ObservationBuilder, ObservationMeta, Syscall},
    report::summary,
};

use crate::cli::{DoctorArgs, InjectArgs, MonitorArgs, ObserveArgs};

/// `phoebe observe`: returns the target's shell status.
pub fn observe(args: ObserveArgs, control: &Control) -> Result<i32> {
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
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut builder = ObservationBuilder::new(args.interval);
    let outcome = run(
        args.target.backend,
        Job {
            target: &target,
            observer: Some(&mut builder),
            record_only: record_only.as_ref(),
            decider: None,
            control,
            latency: args.latency,
        },
    )?;
    let mut syscalls: Option<Vec<Syscall>> = record_only.map(|s| s.into_iter().collect());
    if let Some(list) = &mut syscalls {
        list.sort();
    }
    let obs = builder.finish(
        outcome.duration,
        ObservationMeta {
            command: target.display.clone(),
            backend: args.target.backend.name().into(),
            kernel: kernel_release(),
            started_at,
            syscalls,
            exit: Some(outcome.exit),
            interrupted: control.interrupted(),
            latency_measured: args.latency || args.target.backend != BackendKind::Ebpf,
        },
    );
    files::save(&args.output, &obs)?;
    if !args.quiet {
        eprint!("{}", summary::observation(&obs));
        eprintln!("phoebe: observation written to {}", args.output.display());
    }
    Ok(outcome.exit.shell_status())
}

/// `phoebe inject`: returns the target's shell status.
pub fn inject(args: InjectArgs, control: &Control) -> Result<i32> {
    let target = Target::resolve(&args.target.command)?;
    let mut decider = match &args.replay {
        Some(path) => {
            let log: InjectionLog = files::load(path, "injection log")?;
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
    let outcome = run(
        args.target.backend,
        Job {
            target: &target,
            observer: None,
            record_only: None,
            decider: Some(&mut decider),
            control,
            latency: false,
        },
    )?;
    let log = decider.finish(
        target.display.clone(),
        args.target.backend.name(),
        Some(outcome.exit),
        control.interrupted(),
    );
    if let Some(path) = &args.log {
        files::save(path, &log)?;
    }
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(summary::injections(&log).as_bytes());
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

fn run(kind: BackendKind, job: Job<'_>) -> Result<backend::Outcome> {
    Ok(match kind {
        BackendKind::Ptrace => backend::ptrace::run(job)?,
        BackendKind::Ebpf => backend::ebpf::run(job)?,
    })
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

/// `phoebe doctor`: prints what each backend can do here; exits 0.
pub fn doctor(args: DoctorArgs) -> Result<i32> {
    let report = phoebe::doctor::diagnose();
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        phoebe::doctor::render(&report)
    };
    // A closed pipe (`phoebe doctor | head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

/// `phoebe monitor`: the live table (or JSON lines) on stdout until the processes end.
pub fn monitor(args: MonitorArgs, _control: &Control) -> Result<i32> {
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
        prometheus: args.prometheus,
        duration: args.duration,
    };
    run(options, &mut std::io::stdout().lock())?;
    Ok(0)
}
