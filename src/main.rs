//! The `phoebe` binary: parses the command line, installs logging and signal forwarding, runs the command, and
//! maps errors to the documented exit codes (2 on a usage or setup error).

mod cli;
mod commands;

use std::{io::Write, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
    // `exec --resume` compares the flags given with the saved campaign: it needs to know which were given.
    if let (Command::Exec(args), Some(("exec", sub))) = (&mut cli.command, matches.subcommand()) {
        args.given = sub
            .ids()
            .filter(|id| sub.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.to_string())
            .collect();
    }
    init_logging(cli.verbose);
    let control = phoebe::control::Control::new();
    // A stop signal while nothing runs (before the target starts, after it is saved): nothing to save, stop now.
    let idle = |signal: i32| std::process::exit(128 + signal);
    if let Err(e) = phoebe::control::forward_signals(control.clone(), idle) {
        let _ = writeln!(std::io::stderr(), "phoebe: cannot install signal forwarding: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Observe(args) => commands::observe(args, &control),
        Command::Inject(args) => commands::inject(args, &control),
        Command::Synthesize(args) => commands::synthesize(args),
        Command::Exec(args) => commands::exec(*args, &control),
        Command::Report(args) => commands::report(args),
        Command::Doctor(args) => commands::doctor(args),
        Command::Monitor(args) => commands::monitor(args, &control),
    };
    match result {
        Ok(status) => ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(1)),
        Err(e) => {
            print_error(&e);
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr (the target owns stdout); PHOEBE_LOG takes an env-filter directive.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("PHOEBE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a CI log or a file gets plain `WARN` lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// `phoebe: <error>: <cause>…`, then a `hint:` line per hint the chain's errors give (`phoebe::sys::error::Chain`).
fn print_error(e: &anyhow::Error) {
    let chain = phoebe::hint::chain(e.as_ref());
    // A full or closed stderr leaves only the exit status to tell: never a panic.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "phoebe: {}", chain.message());
    for hint in chain.hints() {
        let _ = writeln!(stderr, "hint: {hint}");
    }
}
