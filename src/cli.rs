//! The command line (clap derive; the doc comments are the `--help` text).

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use phoebe::backend::BackendKind;
use phoebe::model::IntervalChoice;

/// Realistic system-call error injection: see which syscalls fail naturally, inject those errors, watch how
/// the program copes.
#[derive(Debug, Parser)]
#[command(name = "phoebe", version, propagate_version = true, max_term_width = 110)]
#[command(
    after_help = "Exit status: observe and inject exit with the target's status (128+N when signal N killed it); \
exec exits 0 when every exercised experiment is resilient, 1 when one is not, 2 when its plan has no models \
(nothing was tested) or a run left the program failing without injection (the campaign stopped) and 128+N when \
signal N interrupted it; monitor and doctor exit 0 (monitor 128+N when signal N stopped it); every command exits 2 on a \
usage or setup error, and when its stdout cannot be written (a reader that goes away is not an error). A full or \
closed stderr changes no status.\nLogs: -v, -vv, or PHOEBE_LOG=debug; they go to stderr and never \
mix with the target's output."
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

    /// Turn an observation into realistic, amplified error models: one experiment each.
    ///
    /// For every (syscall, errno) pair, the error rate of each interval in which the syscall was called
    /// (zero-error intervals included) gives its statistics. Sporadic pairs (quantile below --sporadic-below)
    /// are injected at --fixed-rate; fluctuating ones (variance above --variance-above) at their quantile; steady
    /// ones at quantile × --factor; no target takes more than half of the calls that succeed naturally. The
    /// probability compensates for calls that fail by themselves:
    /// p = (target − natural) / (1 − natural). With --explore plausible, the catalogue's errors on the call
    /// shapes the program used follow, at --fixed-rate (a class of calls made fewer than 1/--fixed-rate times per
    /// run: one injection expected per run, at most 50 %), labelled `plausible`. Prints the models and writes the
    /// plan (JSON).
    Synthesize(SynthesizeArgs),

    /// The whole loop: observe, synthesize, inject one model per experiment, judge, report.
    ///
    /// Baseline runs (observed, 3 by default) set the steady state: they must all exit with --expect-status (0
    /// by default) and pass --check, or the campaign stops. The observation
    /// becomes realistic error models (see `phoebe synthesize --help`); each model is one experiment of --runs
    /// runs (5 by default), each run a fresh start of the command with that fault injected. A run is resilient (same exit
    /// status, check passes), failed, crashed (killed by a signal), hung (past --timeout), corrupted (a plain run
    /// after injection, and its check, fails: the damage outlived the fault; judged only when a plain run right
    /// after a baseline run passes) or not-exercised (no call matched);
    /// an experiment has its worst run's verdict, how many runs had each, and `flaky` when they disagree.
    /// A run after which the program fails even without injection twice (after --reset, if given) stops the
    /// campaign: the experiments after it would be judged on a broken program. Everything goes to the campaign
    /// directory as it happens: report.json, report.html, junit.xml, summary.md, and every run's output and
    /// injection log. Exits 0 when no experiment's verdict is in --fail-on, 1 when one is, 2 on a usage or setup
    /// error, when the plan has no models (nothing was tested) or when the campaign stopped (the report is
    /// written; restore the program's state, then --resume DIR continues), 130 when interrupted (the partial
    /// report is written; --resume DIR continues).
    #[command(after_help = EXEC_HELP)]
    Exec(Box<ExecArgs>),

    /// Re-render a campaign's report, or merge the reports of shards into one.
    #[command(args_conflicts_with_subcommands = true)]
    Report(ReportArgs),
    /// Watch processes that are already running: a live per-interval table of their syscalls and errors.
    ///
    /// Follows the processes' children from then on. Uses eBPF; where eBPF is unavailable it says why and attaches
    /// to --pid with ptrace instead, detaching when it ends (--name needs eBPF).
    #[command(
        after_help = "Examples:\n  phoebe monitor --pid 1234\n  phoebe monitor --name java --interval 500ms --latency\n  phoebe monitor --pid 1234 --json\n  phoebe monitor --pid 1234 --prometheus 127.0.0.1:9464\n  phoebe monitor --name nginx --latency --prometheus 127.0.0.1:9464 --quiet   (as a service)\n  phoebe monitor --pid 1234 --backend ptrace --duration 10s   (no eBPF needed)"
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

/// The mechanisms phoebe can use (`--backend`); the library's is `BackendKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// ptrace (+ a seccomp RET_TRACE filter when only some syscalls matter): observes and injects, entry or exit.
    Ptrace,
    /// seccomp user notification: injects at entry only; a targeted call makes one round trip to phoebe, the
    /// others run at native speed; cannot observe.
    Seccomp,
    /// eBPF, in the kernel (root): observes with raw tracepoints at near-native speed; injects with BPF LSM
    /// programs where the kernel allows them (file opens, reads, writes and socket calls only).
    Ebpf,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Ptrace => BackendKind::Ptrace,
            Backend::Seccomp => BackendKind::Seccomp,
            Backend::Ebpf => BackendKind::Ebpf,
        }
    }
}

/// Where `monitor`'s counters come from (`--backend`); the library's is `monitor::Backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MonitorBackend {
    /// Raw tracepoints counting in the kernel.
    Ebpf,
    /// PTRACE_SEIZE of every thread of the process; every call stops twice, so the process runs slower.
    Ptrace,
}

impl From<MonitorBackend> for phoebe::monitor::Backend {
    fn from(b: MonitorBackend) -> Self {
        match b {
            MonitorBackend::Ebpf => phoebe::monitor::Backend::Ebpf,
            MonitorBackend::Ptrace => phoebe::monitor::Backend::Ptrace,
        }
    }
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

    /// Watch every process whose command name (comm, as in `ps -o comm`; at most 15 characters) is this, now and
    /// as they appear.
    #[arg(long, value_name = "COMM", value_parser = parse_comm)]
    pub name: Option<String>,

    /// Length of one interval (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Duration,

    /// Time every call (eBPF: adds a second tracepoint per call; ptrace always times them).
    #[arg(long)]
    pub latency: bool,

    /// Unit of the latency column.
    #[arg(long, value_enum, default_value = "us")]
    pub unit: Unit,

    /// Print one JSON line per interval instead of the table: per process its pid, comm and each syscall's
    /// calls, errors by errno and (with --latency) latency.
    #[arg(long)]
    pub json: bool,

    /// Serve cumulative counters at http://ADDR/metrics (Prometheus' text format, or OpenMetrics when the
    /// scraper asks for it; latency histograms with --latency) and a live page at http://ADDR/.
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,

    /// Label the metrics' series by pid too, instead of summing the processes of one command name (a pid
    /// changes at every restart: each restart starts new series).
    #[arg(long, requires = "prometheus")]
    pub per_pid: bool,

    /// Print nothing per interval: only the endpoint of --prometheus (long-running use, e.g. as a service).
    #[arg(short, long, requires = "prometheus", conflicts_with = "json")]
    pub quiet: bool,

    /// Stop after this long (default: until the processes end or Ctrl-C).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    /// Where the counts come from [default: ebpf, or ptrace (saying so) where eBPF is unavailable]. ptrace
    /// attaches to --pid only, stops every call twice (the process runs slower) and detaches at the end.
    #[arg(long, value_enum, value_name = "BACKEND")]
    pub backend: Option<MonitorBackend>,
}

const EXEC_HELP: &str = "Examples:
  phoebe exec -- java -jar app.jar
  phoebe exec --runs 3 --check './verify.sh' --timeout 30s -- ./service-job
  phoebe exec --expect-status 1 -- ./suite-with-a-known-failure  (its steady state is exit 1)
  phoebe exec --explore plausible --check './verify-log.sh' -- ./server-job  (+ the errors it never met)
  phoebe exec --explore plausible --fail-on observed:failed,crashed,hung,corrupted -- cargo test
  phoebe exec --fault 'read:EAGAIN:p=0.3' --fault 'openat:ENOENT:p=0.1' -- ./app   (no synthesis)
  phoebe exec -- cargo test   (names the tests each fault broke; pytest alike)
  phoebe exec --tests 'junit:target/surefire-reports/*.xml' -- mvn -q test  (tests from JUnit XML)
  phoebe exec --shard 2/4 --plan plan.json --out shard-2 -- cargo test  (+ phoebe report merge)
  phoebe exec --resume phoebe-runs/2026-11-24-21-30-00  (continue an interrupted campaign)
  phoebe exec --service --ready 'curl -sf localhost:8080/health' --workload './load-once.sh' \\
      --check './verify-db.sh' -- ./server --port 8080  (service mode)
  phoebe exec --service --ready './ready.sh' --workload 'curl -sf -m 1 localhost:8080/' \\
      --fault 'openat:delay=2s:path=/srv/data/*' -- ./server --port 8080  (a latency fault)";

const FAULT_HELP: &str = "Fault rules (--fault, repeatable):
  SYSCALL[,SYSCALL…]:ERRNO[=WEIGHT][,ERRNO=WEIGHT…][:OPTION=VALUE…]
  SYSCALL[,SYSCALL…]:delay=DUR[:OPTION=VALUE…]   a latency fault: no error, the call is held
               DUR, then runs for real (seccomp, ptrace)
  p=PROB       probability that an eligible call fails (0..1 or 5%; default 1)
  nth=N        only the N-th matching call
  after=N      only the calls after the first N matching ones
  every=N      every N-th of the eligible calls
  max=N        at most N injections
  path=GLOB    only calls whose path argument matches (made absolute, . and .. resolved;
               * stops at /, ** crosses it)
  when=entry   the call is skipped and returns the error (default)
  when=exit    the call runs, then returns the error (its side effects happen); either way,
               a write's EPIPE raises SIGPIPE in the caller, as the kernel's does (a send
               with MSG_NOSIGNAL excepted), on every backend
  delay=DUR    hold the call this long (e.g. 10ms, at most 24h) before failing it; without
               it, an ETIMEDOUT of a futex wait is held until the wait's own timeout has
               passed, and a blocking TCP connect's until its SYN retries have run out
               (127 s by default; TCP_SYNCNT), as the kernel's comes (eBPF cannot hold
               a connect, and refuses its ETIMEDOUT)
  short=N|P%   in place of the errno: the read or write runs with its count lowered to N
               bytes or P% of it, so it transfers less (read, pread64, recvfrom, write,
               pwrite64, sendto; ptrace only)
  Call-shape predicates (the rule matches only calls of that shape; `|` lists several values):
  op=OP        futex operation, e.g. FUTEX_WAIT_PRIVATE, FUTEX_WAKE, FUTEX_WAIT_BITSET_PRIVATE
  timeout=yes|no   futex wait with or without a timeout
  within=1ms|10ms|100ms|1s|10s|long  a timed futex wait's timeout, as the call starts (an
               ETIMEDOUT comes once it has passed; models fail only waits as short as the ones
               that timed out)
  fd=KIND      the descriptor's kind: file, dir, pipe, tcp, tcp6, udp, udp6, unix-stream,
               unix-dgram, unix-seqpacket, netlink, eventfd, timerfd, signalfd, epoll, pidfd,
               inotify, tty, chr, blk, closed, …; groups: socket, inet, unix
  nonblock=yes|no  the descriptor has O_NONBLOCK
  ready=yes|no  reads, writes, accepts on a non-blocking descriptor: it is ready as the call starts
               (EAGAIN needs no; EAGAIN on a ready one loses an edge-triggered poller's wake-up)
  req=REQ      ioctl request (TCGETS, FIONREAD, or hex)
  family=F type=T  socket/socketpair (inet, inet6, unix, netlink / stream, dgram, seqpacket, raw)
  map=M prot=P advice=A  mmap (private-anon, shared-file, …) / mprotect (r, rw, rx, none, …) /
               madvise (MADV_DONTNEED, …)
  loader=yes|no  mmap: made by the dynamic loader's own code (ld.so mapping libraries); a failure
               there ends any program before its code runs, so models say loader=no
  clone=thread|process  nohang=yes|no  option=PR_…  clone/clone3, wait4/waitid, prctl
  lock=sh|ex|sh-nb|ex-nb|un  flock operation (only -nb says EWOULDBLOCK/EAGAIN, only sh
               and ex wait and get EINTR, an unlock neither)
  held=yes|no  flock -nb: another holds a conflicting lock as the call starts (its EWOULDBLOCK
               is that state: models never fail a lock nobody else held)
  cmd=CMD      fcntl command (F_GETFL, F_SETLK, F_SETLKW, …, or the number): only F_SETLK and
               F_OFD_SETLK conflict into EAGAIN, only the -W ones wait and get EINTR
  sleeps=yes|no  epoll_wait, epoll_pwait, poll: a timeout other than 0 (only those can get EINTR)
  ctl=add|mod|del  epoll_ctl operation (fd= is then the descriptor added, modified or removed)
  registered=yes|no  epoll_ctl: the descriptor is already in the epoll instance (ENOENT needs no,
               EEXIST yes)
  exists=yes|no  path calls: the name exists as the call starts (ENOENT needs no, EEXIST yes;
               ENOENT on a name that exists simulates a deletion)
  creates=yes|no  open, openat, openat2, creat: O_CREAT (a creating open's ENOENT is a missing
               directory, a plain one's a missing name)
  directory=yes|no  open, openat, openat2, creat: O_DIRECTORY (ENOTDIR needs yes, or a name
               that does not exist)
  parent=yes|no  mkdir, mknod, creating opens: the directory the name is created in exists
               (ENOENT needs no)
  dest_exists=yes|no  rename, link: the new name exists as the call starts (EEXIST, ENOTEMPTY)
  empty=yes|no   rmdir, unlinkat with AT_REMOVEDIR: the directory has no entries as the call
               starts (ENOTEMPTY needs no; on an empty one it simulates another's new file)
  readers=yes|no  write, writev on a pipe: the pipe has a reader as the call starts (EPIPE
               needs no; EPIPE on a pipe that is read simulates its reader's death)
  atomic=yes|no  write, writev on a pipe: at most PIPE_BUF (4096) bytes, which a pipe writes
               whole or not at all (a short write needs no)
  caught=yes|no  read, write, futex, wait4, nanosleep, poll, connect, accept, close, …: a
               signal the process catches would interrupt the call (a handler; for calls
               SA_RESTART restarts, one without it) (EINTR needs yes; every EINTR model says so)
  peer=self|other  reads and writes on a pipe or socket: the process holds the other end
               itself (a self-pipe: EPIPE and ECONNRESET need other; their models say so)
  edge=yes|no  reads and writes on a pipe or socket: an epoll instance of the process watches
               it edge-triggered (a short transfer needs no: its rest would never wake the
               program; short models say so)
  flush=yes|no  close: the file's file system flushes at close (NFS, CIFS, FUSE, …; not a
               local disk's or tmpfs) (close's EINTR needs yes; its models say so)
  loopback=yes|no  connect on an IPv4 or IPv6 socket: the destination is a loopback address
               (127.0.0.0/8, ::1) (ENETUNREACH and EHOSTUNREACH need no; their models say so)
  cow=yes|no   ftruncate: the file's file system is copy-on-write (btrfs, bcachefs, zfs)
               (ENOSPC and EDQUOT need yes; their plausible models say so)
  cwd=live|deleted  getcwd: the working directory was removed (ENOENT needs deleted)
  child=yes|no  wait4, waitid: the caller has a child the wait waits for (ECHILD needs no)
  For calls on a descriptor, path=GLOB matches the file it refers to.
  template=T   the path's template exactly, as shapes write it (/proc/*/stat): what synthesized
               rules use (a glob's tmp* would also match a name such as tmpaaa)
  strace's form works too: inject=SET:error=ERRNO[:when=FIRST[..LAST][+STEP]]
  Names are the kernel's (openat, ENOENT); numbers work too.

Examples:
  phoebe inject --fault openat:ENOENT:p=0.2 --seed 7 --log run.json -- ./app
  phoebe inject --replay run.json -- ./app
  phoebe inject --fault 'write:EIO:nth=1:when=exit' -- ./writer out.txt
  phoebe inject --fault 'read:delay=50ms:p=0.1:fd=socket' -- ./client
  phoebe inject --fault 'inject=openat:error=EACCES:when=3+' -- cat /etc/hostname";

/// Options every command that launches a target shares.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The mechanism that runs the target [default: observe: ebpf where it can observe here, else ptrace, saying
    /// why; inject: seccomp, or ptrace when a rule has when=exit].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Where to write the observation (JSON).
    #[arg(short, long, value_name = "FILE", default_value = "observation.json")]
    pub output: PathBuf,

    /// Length of one monitoring interval (e.g. 1s, 500ms), or `auto`: start at 8 ms and double (up to 1024 ms)
    /// as the run goes on, so that even a short run gives 20 to 40 intervals, the samples `synthesize` rests on.
    #[arg(long, value_name = "DURATION|auto", default_value = "1s", value_parser = parse_interval_choice, allow_hyphen_values = true)]
    pub interval: IntervalChoice,

    /// Record only these syscalls (comma-separated names or numbers); the others then run at native speed.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub syscalls: Vec<String>,

    /// Time every call (entry to exit). ptrace always does; eBPF then attaches a second tracepoint, which
    /// roughly doubles its cost per call.
    #[arg(long)]
    pub latency: bool,

    /// Record each call's shape (on): futex operation and timeout, path template, descriptor kind and
    /// O_NONBLOCK, … (see docs/formats.md), so that synthesis injects only where an error really happened.
    /// eBPF records the register components, paths (relative ones joined to their base, and files' behind
    /// descriptors, walked in the kernel), and descriptor kind and nonblock (a deleted file's path, or one over
    /// 254 bytes or 32 components, is `unknown`).
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub shapes: bool,

    /// Print no summary table.
    #[arg(short, long)]
    pub quiet: bool,

    /// phoebe's own: the descriptors of the eBPF maps of an observer that `phoebe exec` loaded once and lends
    /// to the `phoebe observe` of each baseline run (with --backend ebpf).
    #[arg(long, hide = true, value_name = "FD,...", value_delimiter = ',')]
    pub ebpf_maps: Vec<i32>,

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

    /// Start with injection switched off; SIGUSR1 to phoebe switches it on, SIGUSR2 off again (at any time,
    /// whatever this flag says). Calls are counted either way, so call indices and --replay stay exact.
    #[arg(long)]
    pub start_off: bool,

    /// Once each SIGUSR1/SIGUSR2 switch is in effect, append `on` or `off` and a newline to FILE (a signal takes
    /// effect a moment after kill(2) returns; a supervisor waits for the line before it goes on).
    #[arg(long, value_name = "FILE")]
    pub switch_ack: Option<PathBuf>,

    /// Count every injection: never let the seccomp filter fail calls by itself (rules that fail every call
    /// otherwise run in the kernel — faster, but their calls are not counted). `phoebe exec` always sets it.
    #[arg(long)]
    pub count_all: bool,

    /// Inject exactly what this injection log injected (same syscalls, same call indices, same errnos).
    #[arg(long, value_name = "LOG", conflicts_with_all = ["faults", "seed"])]
    pub replay: Option<PathBuf>,

    /// Print no summary table.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Runs per experiment: the verdict says how many runs had each verdict (3/5 failed), with a 95 % interval
    /// for the share of runs that failed, and `flaky` when they disagree. One only when the fault's guards
    /// (flush=, caught=, …) keep out every call of the first run: they would in every run.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// Baseline runs (observed, without injection). They must agree, and exit with --expect-status (0 by
    /// default) and pass --check: otherwise the campaign stops (exit 2) saying what disagreed.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub baseline_runs: u32,

    /// The exit status of the program's steady state, when it is not 0 (e.g. a test suite that fails
    /// without any injection, known and accepted): every baseline run must have it, and experiment runs are
    /// compared with it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=255), conflicts_with = "service")]
    pub expect_status: Option<i32>,

    /// Go on when the baseline runs disagree (some exit with the expected status or pass --check, some do
    /// not; in service mode, some pass every workload round and the check, some do not); every report says the
    /// baseline was flaky and what disagreed. A baseline that never matches still stops the campaign.
    #[arg(long)]
    pub accept_flaky_baseline: bool,

    /// Where the test suite's results are, for "which test broke" (every report names, per experiment, the
    /// tests that passed in every baseline run and failed under the fault): `junit:GLOB`, the JUnit XML files
    /// the suite writes (Maven's target/surefire-reports/*.xml, Gradle's build/test-results/**/*.xml, gotestsum
    /// --junitfile, pytest --junitxml), relative to the working directory and read after each run (the files
    /// written since the run started). Without it, phoebe reads the runs' stdout: libtest's `test NAME ... ok`
    /// lines and failures list (cargo test, also -q) and pytest's `FAILED path::test` summary lines and
    /// session lines (any pytest command, -q and -v included).
    #[arg(long, value_name = "junit:GLOB", value_parser = parse_tests, conflicts_with = "service")]
    pub tests: Option<String>,

    /// A file the program writes its own log to (nginx's error_log, PostgreSQL's log file, a Java app's log):
    /// each finding's evidence also reads what the run appended to it, for the line that names the injected
    /// error, as it reads the run's stderr and stdout. Repeatable; relative to the working directory.
    #[arg(long = "log-file", value_name = "FILE")]
    pub log_file: Vec<PathBuf>,

    /// Per run; a run still going then is `hung` (default: 5× the slowest baseline run, at least 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, allow_hyphen_values = true)]
    pub timeout: Option<Duration>,

    /// Shell command that validates the target's output or state after each run (exit 0 = good); its output
    /// goes to run-K.check.out/.err beside the run's run-K.out/.err.
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,

    /// Shell command that restores the target's state before each run (output: run-K.reset.out/.err), and
    /// before the plain run that checks whether a run left damage behind (health-K.reset.out/.err).
    #[arg(long, value_name = "CMD")]
    pub reset: Option<String>,

    /// Service mode: start the target once per run and keep it running; play --workload rounds against it
    /// before, during and after injection (switched on and off while it runs, no restart).
    #[arg(long, requires_all = ["ready", "workload"])]
    pub service: bool,

    /// Service mode: shell command that succeeds once the service accepts work (polled; the last probe's output
    /// in run-K.ready.out/.err, the service's in run-K.out/.err).
    #[arg(long, value_name = "CMD", requires = "service")]
    pub ready: Option<String>,

    /// Service mode: shell command that plays one round of the workload (exit 0 = the round succeeded).
    #[arg(long, value_name = "CMD", requires = "service")]
    pub workload: Option<String>,

    /// Service mode: workload rounds per phase (steady, injecting, after).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,

    /// Service mode: up to N rounds may fail while injecting and the run is still `resilient` (an error a
    /// client retries costs a round now and then); rounds after injection must all pass. Default 0.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "service")]
    pub tolerance: u32,

    /// Service mode: wait this long after switching injection off before the "after" rounds and the check, so
    /// that a service that recovers in its own time (a reconnect, a back-off, a crash recovery) passes every
    /// round after. Without it, rounds after that fail at first and then all pass say how long it took.
    #[arg(long, value_name = "DURATION", value_parser = parse_interval, allow_hyphen_values = true, requires = "service")]
    pub recovery: Option<Duration>,

    /// Inject these faults, one experiment each, instead of synthesizing models (see `phoebe inject --help`).
    /// A latency fault (`read:delay=50ms`, no errno) is named after its delay (`read-delay50ms`); in service
    /// mode it is judged by the rounds that fail while injecting and by each phase's round latency.
    #[arg(short, long = "fault", value_name = "SPEC", conflicts_with = "plan")]
    pub faults: Vec<String>,

    /// Run the models of this plan (`phoebe synthesize`) instead of synthesizing new ones; shards need one
    /// shared plan (or --fault) so that they split the same experiments.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Monitoring interval of the baseline observation. The default, `auto`, adapts it to the baseline: it starts
    /// at 8 ms and doubles (up to 1024 ms) so that each baseline run gives 20 to 40 intervals; the intervals of all
    /// baseline runs pool into the statistics, and the plan says when a model rests on too few of them.
    #[arg(long, value_name = "DURATION|auto", default_value = "auto", value_parser = parse_interval_choice, allow_hyphen_values = true)]
    pub interval: IntervalChoice,

    /// The campaign directory (default: phoebe-runs/<date-time>): the reports, and every process's output in
    /// files of its own. One directory holds one campaign: a directory that already holds one is refused
    /// (continue it with --resume DIR).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,

    /// Continue the campaign in DIR: experiments with a result are not run again. Its settings are the saved
    /// ones; a flag given with --resume must say the same, or phoebe refuses, naming it.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    /// Run only the K-th of N slices of the experiments (join them with `phoebe report merge`); needs --plan
    /// or --fault.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<phoebe::experiment::Shard>,

    /// Verdicts that make `phoebe exec` exit 1. A bare verdict counts in every tier; TIER:VERDICT only in that
    /// tier (observed or plausible, see --explore; a --fault experiment counts as observed), so the tiers can be
    /// treated differently: e.g.
    /// `--fail-on observed:failed,crashed,hung,corrupted` fails on a plausible experiment only when it crashed,
    /// hung or corrupted state.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "failed,crashed,hung,corrupted"
    )]
    pub fail_on: Vec<phoebe::model::FailOn>,

    /// Campaign seed; each run's seed derives from it, so the same seed gives the same injections (default:
    /// random; printed at the start and written into the campaign and its report).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// No progress bar (lines per experiment instead).
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub settings: SynthArgs,

    /// What observes the baseline runs [default: ebpf where it can observe here (root or CAP_BPF +
    /// CAP_PERFMON), else ptrace, saying why]. `ebpf`: in the kernel, at a small fraction of ptrace's cost, but
    /// a few components are unknown there (epoll_ctl's registration, close's descriptor, a deleted file's path),
    /// so models of calls shaped by them are excluded, with the reason in the plan. `ptrace`: every call with its
    /// whole shape, but two stops per call slow a busy program and inflate what depends on timing (futex
    /// contention: ~10× on a Java server).
    #[arg(long, value_name = "ptrace|ebpf", value_parser = parse_observer)]
    pub observer: Option<phoebe::experiment::Observer>,

    /// The backend that injects in the experiments [default: as `phoebe inject` chooses: seccomp, or ptrace when
    /// a rule has when=exit]. The baseline is observed as --observer says. On ebpf, the
    /// experiments whose fault no LSM hook can honour are skipped before any runs, and listed in the report.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,

    /// The command to run, after `--` (not needed with --resume).
    #[arg(last = true, value_name = "CMD", required_unless_present = "resume")]
    pub command: Vec<OsString>,

    /// The ids of the arguments given on the command line (not defaulted): what `--resume` compares.
    #[arg(skip)]
    pub given: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub merge: Option<ReportCommand>,

    /// The campaign directory (holding report.json).
    #[arg(value_name = "DIR", required = true)]
    pub dir: Option<PathBuf>,

    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: ReportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Join the reports of shards (`phoebe exec --shard K/N`) of one campaign into one report directory.
    Merge {
        /// Campaign directories of the shards.
        #[arg(value_name = "DIR", required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,

        /// Where the merged report goes.
        #[arg(short, long, value_name = "DIR", default_value = "phoebe-merged")]
        output: PathBuf,

        /// Verdicts that make the merge exit 1, as `phoebe exec` does for a whole campaign (a CI merge job fails
        /// when a shard found something); TIER:VERDICT counts in one tier only, as there.
        #[arg(
            long,
            value_name = "VERDICTS",
            value_delimiter = ',',
            default_value = "failed,crashed,hung,corrupted"
        )]
        fail_on: Vec<phoebe::model::FailOn>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Terminal,
    Json,
    Junit,
    Markdown,
    Html,
}

#[derive(Debug, Args)]
pub struct SynthesizeArgs {
    /// The observation to synthesize from (`phoebe observe -o`).
    #[arg(value_name = "OBSERVATION")]
    pub observation: PathBuf,

    /// Where to write the plan (JSON).
    #[arg(short, long, value_name = "FILE", default_value = "plan.json")]
    pub output: PathBuf,

    /// Print no models and no exclusions (warnings still go to stderr): the plan file says it all.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub settings: SynthArgs,
}

/// The amplification thresholds (DESIGN §6); defaults are the paper's.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// A pair whose rate quantile is below this is sporadic.
    #[arg(long, value_name = "RATE", default_value_t = 0.05)]
    pub sporadic_below: f64,

    /// Sporadic pairs are injected at this fixed rate.
    #[arg(long, value_name = "RATE", default_value_t = 0.05)]
    pub fixed_rate: f64,

    /// A pair whose rate variance is above this is fluctuating (injected at its quantile).
    #[arg(long, value_name = "VARIANCE", default_value_t = 0.001)]
    pub variance_above: f64,

    /// Steady pairs are injected at quantile × this factor (capped at 1).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.2)]
    pub factor: f64,

    /// The quantile of the per-interval rates that stands for "max" (1 = the true max).
    #[arg(long, value_name = "Q", default_value_t = 0.95)]
    pub quantile: f64,

    /// A rate is taken over at least N calls: consecutive intervals with fewer calls of a shape are pooled into
    /// one sample (a rate over one or two calls is 0 or 1, and the quantile of such rates is 1).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub min_calls: u64,

    /// Models by call shape (on): one rule per shape that failed naturally with the errno (a futex wait, not a
    /// wake; a non-blocking socket, not a file; the path templates that failed), so nothing is injected where
    /// the kernel could not return it. `off`: one rule per (syscall, errno) over all its calls, for comparison.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub shapes: bool,

    /// `observed`: the realistic models of the errors the program met in the baseline. `plausible`: after them,
    /// one experiment per catalogue error whose call shape the program used (fsync-EIO of the files it fsynced,
    /// never of files it did not; write-ENOSPC of the files it wrote, …), at --fixed-rate (raised for a class of
    /// calls made fewer than 1/--fixed-rate times per run to one injection expected per run, at most 50 %), most-called first,
    /// labelled `plausible` in the plan and every report and counted apart (see --fail-on).
    #[arg(long, value_name = "observed|plausible", default_value = "observed", value_parser = parse_explore)]
    pub explore: phoebe::model::Explore,
}

fn parse_observer(s: &str) -> Result<phoebe::experiment::Observer, String> {
    match s {
        "ptrace" => Ok(phoebe::experiment::Observer::Ptrace),
        "ebpf" => Ok(phoebe::experiment::Observer::Ebpf),
        _ => Err(
            "expected ptrace (every call with its whole shape) or ebpf (in the kernel, cheaper; shapes from \
                  registers, absolute paths and descriptor kinds only)"
                .into(),
        ),
    }
}

fn parse_explore(s: &str) -> Result<phoebe::model::Explore, String> {
    match s {
        "observed" => Ok(phoebe::model::Explore::Observed),
        "plausible" => Ok(phoebe::model::Explore::Plausible),
        _ => Err(
            "expected observed (the errors the program met) or plausible (those, then the catalogue's \
                  errors on the calls it made)"
                .into(),
        ),
    }
}

impl SynthArgs {
    pub fn to_settings(&self) -> phoebe::model::SynthSettings {
        phoebe::model::SynthSettings {
            sporadic_below: self.sporadic_below,
            fixed_rate: self.fixed_rate,
            variance_above: self.variance_above,
            factor: self.factor,
            quantile: self.quantile,
            min_calls: self.min_calls,
            shapes: self.shapes,
            explore: self.explore,
        }
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("expected on or off".into()),
    }
}

/// A command name as the kernel keeps it (`/proc/PID/comm`): 1 to 15 bytes.
fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a command name cannot be empty (e.g. --name java)".into());
    }
    if s.len() > 15 {
        let kept: String = s
            .char_indices()
            .take_while(|(i, c)| i + c.len_utf8() <= 15)
            .map(|(_, c)| c)
            .collect();
        return Err(format!(
            "'{s}' is longer than the 15 characters the kernel keeps of a command name (comm), so no process has \
             it; use --name {kept}"
        ));
    }
    Ok(s.to_owned())
}

fn parse_interval_choice(s: &str) -> Result<IntervalChoice, String> {
    if s == "auto" {
        Ok(IntervalChoice::Auto)
    } else {
        parse_interval(s)
            .map(IntervalChoice::Fixed)
            .map_err(|e| format!("{e}, or auto"))
    }
}

/// `--tests junit:GLOB` → the glob.
fn parse_tests(s: &str) -> Result<String, String> {
    let Some(pattern) = s.strip_prefix("junit:") else {
        return Err(format!(
            "unknown test results `{s}`: the one kind is junit:GLOB (e.g. junit:target/surefire-reports/*.xml); \
             libtest's and pytest's results are read from the output without --tests"
        ));
    };
    if pattern.trim().is_empty() {
        return Err(
            "junit: needs a glob of the suite's JUnit XML files (e.g. junit:build/test-results/**/*.xml)"
                .into(),
        );
    }
    glob::Pattern::new(pattern).map_err(|e| format!("junit:{pattern} is not a valid glob: {e}"))?;
    Ok(pattern.to_owned())
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err("a duration cannot be negative (e.g. 1s, 500ms)".into());
    }
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
