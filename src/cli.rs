//! The command line (clap derive; the doc comments are the `--help` text).

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use phoebe::backend::BackendKind;

/// Realistic system-call error injection: see which syscalls fail naturally, inject those errors, watch how
/// the program copes.
#[derive(Debug, Parser)]
#[command(name = "phoebe", version, propagate_version = true, max_term_width = 110)]
#[command(
    after_help = "Exit status: observe and inject exit with the target's status (128+N when signal N killed it); \
monitor and doctor exit 0; 2 on a usage or setup error.\nLogs: -v, -vv, or PHOEBE_LOG=debug; they go to stderr and never mix with the target's output."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More diagnostics on stderr (-v: info, -vv: debug); PHOEBE_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command and record which system calls it makes and how they fail, per interval.
    ///
    /// Writes the observation (JSON, see docs/formats.md) and prints a summary table on stderr: per syscall the calls,
    /// failures by errno, failure rate, and average and maximum latency. Recording starts at the command's
    /// exec and follows every thread and child process.
    #[command(
        after_help = "Examples:\n  phoebe observe -- ls /nonexistent\n  phoebe observe -o java.json --interval 500ms -- java -jar app.jar\n  phoebe observe --syscalls openat,read -- ./app"
    )]
    Observe(ObserveArgs),

    /// Run a command while injecting system-call errors as the --fault rules say.
    ///
    /// Prints, per rule, how many calls it matched and injected and the achieved rate. Decisions are
    /// reproducible: the same --seed on the same program injects the same calls; --replay injects exactly what
    /// a saved --log injected.
    #[command(after_help = FAULT_HELP)]
    Inject(InjectArgs),

    /// Watch processes that are already running: a live per-interval table of their syscalls and errors.
    ///
    /// Follows the processes' children from then on. Uses eBPF; where eBPF is unavailable it says so and exits
    /// (ptrace attach is not implemented yet).
    #[command(
        after_help = "Examples:\n  phoebe monitor --pid 1234\n  phoebe monitor --name java --interval 500ms --latency\n  phoebe monitor --pid 1234 --json\n  phoebe monitor --pid 1234 --prometheus 127.0.0.1:9464"
    )]
    Monitor(MonitorArgs),

    /// Tell what each backend can do on this machine, per mode (observe, inject), and exactly why not.
    ///
    /// Every answer comes from a real probe: eBPF programs are loaded and attached, a child is seized with
    /// ptrace, a seccomp listener is created in a forked child. Exits 0 whatever it finds.
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Unit of the latency column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unit {
    Ms,
    Us,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["pid", "name"])))]
pub struct MonitorArgs {
    /// Watch this process (and the children it starts from now on).
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,

    /// Watch every process whose command name (comm, as in `ps -o comm`) is this, now and as they appear.
    #[arg(long, value_name = "COMM")]
    pub name: Option<String>,

    /// Length of one interval (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Time every call (adds a second tracepoint per call).
    #[arg(long)]
    pub latency: bool,

    /// Unit of the latency column.
    #[arg(long, value_enum, default_value = "us")]
    pub unit: Unit,

    /// Print one JSON line per interval instead of the table: per process its pid, comm and each syscall's
    /// calls, errors by errno and latency.
    #[arg(long)]
    pub json: bool,

    /// Serve cumulative counters in Prometheus' text format at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,

    /// Stop after this long (default: until the processes end or Ctrl-C).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub duration: Option<Duration>,
}

const FAULT_HELP: &str = "Fault rules (--fault, repeatable):
  SYSCALL[,SYSCALL…]:ERRNO[=WEIGHT][,ERRNO=WEIGHT…][:OPTION=VALUE…]
  p=PROB       probability that an eligible call fails (0..1 or 5%; default 1)
  nth=N        only the N-th matching call
  after=N      only the calls after the first N matching ones
  every=N      every N-th of the eligible calls
  max=N        at most N injections
  path=GLOB    only calls whose path argument matches (made absolute, . and .. resolved;
               * stops at /, ** crosses it)
  when=entry   the call is skipped and returns the error (default)
  when=exit    the call runs, then returns the error (its side effects happen)
  delay=DUR    hold the call this long (e.g. 10ms) before failing it
  strace's form works too: inject=SET:error=ERRNO[:when=FIRST[..LAST][+STEP]]
  Names are the kernel's (openat, ENOENT); numbers work too.

Examples:
  phoebe inject --fault openat:ENOENT:p=0.2 --seed 7 --log run.json -- ./app
  phoebe inject --replay run.json -- ./app
  phoebe inject --fault 'write:EIO:nth=1:when=exit' -- ./writer out.txt
  phoebe inject --fault 'inject=openat:error=EACCES:when=3+' -- cat /etc/hostname";

/// Options every command that launches a target shares.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The mechanism that runs the target.
    #[arg(long, value_enum, default_value = "ptrace")]
    pub backend: BackendKind,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Where to write the observation (JSON).
    #[arg(short, long, value_name = "FILE", default_value = "observation.json")]
    pub output: PathBuf,

    /// Length of one monitoring interval (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Record only these syscalls (comma-separated names or numbers); the others then run at native speed.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub syscalls: Vec<String>,

    /// Time every call (entry to exit). ptrace always does; eBPF then attaches a second tracepoint, which
    /// roughly doubles its cost per call.
    #[arg(long)]
    pub latency: bool,

    /// Print no summary table.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// A fault rule (repeatable); see below for the grammar.
    #[arg(
        short,
        long = "fault",
        value_name = "SPEC",
        required_unless_present = "replay"
    )]
    pub faults: Vec<String>,

    /// Seed of the injection decisions (default: random, printed in the summary).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write the injection log (JSON) here, for --replay.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Inject exactly what this injection log injected (same syscalls, same call indices, same errnos).
    #[arg(long, value_name = "LOG", conflicts_with_all = ["faults", "seed"])]
    pub replay: Option<PathBuf>,

    /// Print no summary table.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub target: TargetArgs,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 1s, 500ms)"))?;
    if d < Duration::from_millis(1) {
        return Err("the interval must be at least 1ms".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
