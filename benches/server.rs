//! A server's throughput under phoebe's observers (DESIGN §8; issues 14 and 17): `kv-server`, a test app that
//! answers `GET KEY` on persistent TCP connections by reading a small file (a thread per connection; read,
//! openat, statx, read ×2, close and write per request), loaded by client threads of this bench that each keep
//! one connection and send the next request as soon as the previous reply arrived. What is measured is the
//! number of requests completed per second in a fixed window, after a warm-up, with the server:
//! - `native`: alone;
//! - `ebpf observe` / `ptrace observe`: under `phoebe observe --backend B -q -o FILE -- kv-server DIR`, the
//!   observer `exec`'s baseline runs (recording from the server's exec);
//! - `ebpf empty program`: alone, while the bench holds an empty eBPF program on `sys_exit`
//!   (`phoebe::backend::ebpf::EmptyProgram`): the hook's own cost, which every syscall of the machine pays (the
//!   clients' too), the floor of the eBPF lines;
//! - `ebpf monitor, histograms` / `ptrace monitor, histograms`: started alone, then watched by `phoebe monitor
//!   --backend B --pid PID --latency --prometheus ADDR -q` (latency histograms are only kept while the endpoint
//!   is on); the load starts once the endpoint shows the server's latency histogram. `ebpf monitor, counters`:
//!   the same without `--latency` (counters only, one tracepoint), to tell the histograms' cost apart.
//!
//! Every repetition runs each line once, the lines in a rotating order (interleaved, so that the machine's
//! drifts spread over all lines); the table shows medians of the repetitions, ratios against native from the
//! same run. The server is stopped by a `QUIT` request, so every wrapper must end on its own and exit 0; a line
//! that cannot run here (no eBPF, no ptrace) prints `skipped: <line>: <why>` and is left out. Not criterion: a
//! throughput over a fixed window is not a time per iteration. `--list` names the lines, `--test` (or `cargo test
//! --benches`) runs each once in a short window; the table goes to `target/phoebe-bench/server.md` for
//! `ci/bench-table`. `PHOEBE_BENCH_QUICK=1 cargo bench --bench server` (5 repetitions of a 2 s window, ~2 min) is
//! how the README's before/after of issues 14 and 17 was measured, alternating runs of two builds; a filter that
//! is a plain string keeps the lines whose label contains it (`-- ebpf`: no `native`, so no ratios).

#[allow(dead_code, reason = "common/ is shared by the benches; each uses part of it")]
mod common;

use std::{
    collections::HashMap,
    ffi::OsString,
    fs::{self, File},
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use common::{
    Mode, first_line, human_ns, margin_above, median, mode, phoebe, scratch, skipped, testapp, verdict,
};

const GROUP: &str = "server throughput";
/// Client threads, one persistent connection each.
const CLIENTS: usize = 4;
/// Keys the clients cycle through: files of 512 B to 8 KiB in the server's directory.
const KEYS: usize = 16;
/// How long a server (or its wrapper) may take to listen, and a monitor to show the server's histogram.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a wrapper may take to end once the server has (an observer writes its file).
const END_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Native,
    /// `kv-server DIR` alone while the bench holds an empty program on `sys_exit`.
    EmptyProgram,
    /// `phoebe observe --backend B -q -o FILE -- kv-server DIR`.
    Observe(&'static str),
    /// `kv-server DIR` alone, watched by `phoebe monitor --backend B --pid PID [--latency] --prometheus ADDR -q`;
    /// `true`: with `--latency` (histograms).
    Monitor(&'static str, bool),
}

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Native => "native".into(),
            Kind::EmptyProgram => "ebpf empty program".into(),
            Kind::Observe(backend) => format!("{backend} observe"),
            Kind::Monitor(backend, true) => format!("{backend} monitor, histograms"),
            Kind::Monitor(backend, false) => format!("{backend} monitor, counters"),
        }
    }

    /// The command line as the table shows it.
    fn shown(self) -> String {
        match self {
            Kind::Native => "`kv-server DIR`".into(),
            Kind::EmptyProgram => "`kv-server DIR`, an empty program on `sys_exit`".into(),
            Kind::Observe(backend) => {
                format!("`phoebe observe --backend {backend} -q -o FILE -- kv-server DIR`")
            }
            Kind::Monitor(backend, histograms) => format!(
                "`kv-server DIR` and `phoebe monitor --backend {backend} --pid PID{} --prometheus ADDR -q`",
                if histograms { " --latency" } else { "" }
            ),
        }
    }

    /// Can this machine run the line? The backend's probe from `common` (`observe` on a short storm).
    fn available(self) -> bool {
        match self {
            Kind::Native => true,
            Kind::EmptyProgram => common::Line::EmptyProgram.available(),
            Kind::Observe(backend) | Kind::Monitor(backend, _) => common::Line::Observe(backend).available(),
        }
    }
}

const LINES: [Kind; 7] = [
    Kind::Native,
    Kind::EmptyProgram,
    Kind::Observe("ebpf"),
    Kind::Observe("ptrace"),
    Kind::Monitor("ebpf", false),
    Kind::Monitor("ebpf", true),
    Kind::Monitor("ptrace", true),
];

/// Repetitions, the measured window and the warm-up before it, per mode.
fn settings() -> (usize, Duration, Duration) {
    match mode() {
        Mode::Full => (7, Duration::from_secs(5), Duration::from_millis(500)),
        Mode::Quick => (5, Duration::from_secs(2), Duration::from_millis(300)),
        Mode::Test | Mode::List => (1, Duration::from_millis(300), Duration::from_millis(50)),
    }
}

/// FNV-1a 64 (as the server computes it, `phoebe_testapps::fnv1a_update`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The server's directory and, per key, the request and the reply it must get.
struct Store {
    dir: PathBuf,
    requests: Vec<(String, String)>,
}

fn store() -> Store {
    let dir = scratch().join("kv");
    fs::create_dir_all(&dir).expect("create the server's directory");
    let requests = (0..KEYS)
        .map(|k| {
            let len = 512 << (k % 5);
            let bytes: Vec<u8> = (0..len)
                .map(|i: usize| (i.wrapping_mul(2_654_435_761).wrapping_add(k) >> 7) as u8)
                .collect();
            let key = format!("key-{k}");
            fs::write(dir.join(&key), &bytes).expect("write a key's file");
            (
                format!("GET {key}\n"),
                format!("ok {} {:016x}\n", bytes.len(), fnv1a(&bytes)),
            )
        })
        .collect();
    Store { dir, requests }
}

/// A process this bench started, killed (by its own pid) if it is still running when dropped.
struct Started {
    child: Child,
    stderr: PathBuf,
    what: String,
}

impl Started {
    fn spawn(what: &str, argv: &[OsString], stdout: Stdio, tag: &str) -> Result<Started, String> {
        let stderr = scratch().join(format!("{tag}.stderr"));
        let file = File::create(&stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        let (program, args) = argv.split_first().expect("a command");
        let child = Command::new(program)
            .args(args)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("PHOEBE_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{}: {e}", program.to_string_lossy()))?;
        Ok(Started {
            child,
            stderr,
            what: what.to_owned(),
        })
    }

    /// The first line of what it wrote on stderr.
    fn said(&self) -> String {
        first_line(&fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// Its exit status if it has ended.
    fn ended(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to end; it must exit 0.
    fn finish(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.ended() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}: {}", self.what, self.said()))
                };
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{} still running {timeout:?} after the server ended",
                    self.what
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.ended().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the server (alone or under `phoebe observe`) and waits for its `listening on PORT`.
fn start_server(kind: Kind, store: &Store, tag: &str) -> Result<(Started, u16), String> {
    let server = testapp("kv-server").into_os_string();
    let mut argv: Vec<OsString> = Vec::new();
    if let Kind::Observe(backend) = kind {
        let out = scratch().join(format!("{tag}.observation.json"));
        argv.extend(
            [
                phoebe().as_os_str(),
                "observe".as_ref(),
                "--backend".as_ref(),
                backend.as_ref(),
                "-q".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
                "--".as_ref(),
            ]
            .map(OsString::from),
        );
    }
    argv.extend([server, store.dir.clone().into_os_string()]);
    let what = match kind {
        Kind::Observe(_) => "phoebe observe",
        _ => "kv-server",
    };
    let mut started = Started::spawn(what, &argv, Stdio::piped(), tag)?;
    let stdout = started.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => line,
        Err(_) => return Err(format!("{what}: no `listening on` line in {READY_TIMEOUT:?}")),
    };
    match line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
    {
        Some(port) => Ok((started, port)),
        None => Err(format!("{what}: {}", started.said())),
    }
}

/// One request and its reply on a connection.
fn exchange(conn: &mut BufReader<TcpStream>, request: &str, reply: &mut String) -> Result<(), String> {
    conn.get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    reply.clear();
    match conn.read_line(reply) {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("receive: {e}")),
    }
}

fn connect(port: u16) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    Ok(BufReader::new(stream))
}

/// A port nobody listens on now, for the monitor's endpoint.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Starts `phoebe monitor` on the server and waits until its endpoint shows the server's latency histogram
/// (the server answering requests meanwhile, so that it makes calls to count).
fn start_monitor(
    backend: &str,
    histograms: bool,
    server_pid: u32,
    port: u16,
    store: &Store,
    tag: &str,
) -> Result<Started, String> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut argv: Vec<OsString> = [
        phoebe().as_os_str().to_os_string(),
        "monitor".into(),
        "--backend".into(),
        backend.into(),
        "--pid".into(),
        server_pid.to_string().into(),
        "--prometheus".into(),
        addr.clone().into(),
        "-q".into(),
    ]
    .into();
    if histograms {
        argv.push("--latency".into());
    }
    let mut monitor = Started::spawn("phoebe monitor", &argv, Stdio::null(), tag)?;
    let url = format!("http://{addr}/metrics");
    // Counting is live once the server's opens show (and, with histograms, their latency histogram).
    let series = if histograms {
        "phoebe_syscall_duration_seconds_count{comm=\"kv-server\",syscall=\"openat\""
    } else {
        "phoebe_syscalls_total{comm=\"kv-server\",syscall=\"openat\""
    };
    let mut conn = connect(port)?;
    let mut reply = String::new();
    let start = Instant::now();
    loop {
        if let Some(status) = monitor.ended() {
            return Err(format!("phoebe monitor exited with {status}: {}", monitor.said()));
        }
        exchange(&mut conn, &store.requests[0].0, &mut reply)?;
        let body = ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok());
        if body.is_some_and(|b| b.lines().any(|l| l.starts_with(series))) {
            return Ok(monitor);
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "phoebe monitor: no `{series}` series at {url} in {READY_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Loads the server with [`CLIENTS`] connections: after `warm_up`, the requests completed in `window`, per
/// second. Every reply is checked.
/// What one window measured.
struct Window {
    /// Requests completed per second.
    rate: f64,
    /// CPU time (user + system, every thread) of the server per request, in µs: the kernel's work for its
    /// calls included, and so the eBPF programs that run in them.
    server_us: Option<f64>,
    /// CPU time of the phoebe process (the observer or monitor itself, not its target) per second of the
    /// window, in % of one CPU.
    phoebe_pct: Option<f64>,
}

/// A process's CPU time so far (user + system of all its threads), from `/proc/PID/stat`.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // After the `(comm)`: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// The first child of `pid` (the target of `phoebe observe`).
fn first_child(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn load(
    port: u16,
    store: &Store,
    warm_up: Duration,
    window: Duration,
    server: Option<u32>,
    phoebe: Option<u32>,
) -> Result<Window, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let mut conn = connect(port)?;
        let (stop, done) = (stop.clone(), done.clone());
        let requests = store.requests.clone();
        clients.push(thread::spawn(move || -> Result<(), String> {
            let mut reply = String::new();
            let mut k = c;
            while !stop.load(Ordering::Relaxed) {
                let (request, expected) = &requests[k % requests.len()];
                exchange(&mut conn, request, &mut reply)?;
                if reply != *expected {
                    return Err(format!(
                        "{} answered {:?}, not {:?}",
                        request.trim(),
                        reply.trim(),
                        expected.trim()
                    ));
                }
                done.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
            Ok(())
        }));
    }
    thread::sleep(warm_up);
    let cpu = || (cpu_time(server), cpu_time(phoebe));
    let (before, start, cpu_before) = (done.load(Ordering::Relaxed), Instant::now(), cpu());
    thread::sleep(window);
    let (after, elapsed, cpu_after) = (done.load(Ordering::Relaxed), start.elapsed(), cpu());
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client
            .join()
            .map_err(|_| "a client thread panicked".to_owned())??;
    }
    let requests = (after - before) as f64;
    let spent = |a: Option<Duration>, b: Option<Duration>| Some(b?.checked_sub(a?)?.as_secs_f64());
    Ok(Window {
        rate: requests / elapsed.as_secs_f64(),
        server_us: spent(cpu_before.0, cpu_after.0)
            .filter(|_| requests > 0.0)
            .map(|s| s * 1e6 / requests),
        phoebe_pct: spent(cpu_before.1, cpu_after.1).map(|s| s * 100.0 / elapsed.as_secs_f64()),
    })
}

/// One run of a line: start, load, `QUIT`, and every process this started must end with status 0.
fn run_line(kind: Kind, store: &Store, rep: usize) -> Result<Window, String> {
    let (warm_up, window) = (settings().2, settings().1);
    let tag = format!("server-{}-{rep}", kind.label().replace([' ', ','], "_"));
    // Attached for this run only, before the server starts.
    let _held = match kind {
        Kind::EmptyProgram => common::Line::EmptyProgram.hold()?,
        _ => None,
    };
    let (mut server, port) = start_server(kind, store, &tag)?;
    let mut monitor = match kind {
        Kind::Monitor(backend, histograms) => Some(start_monitor(
            backend,
            histograms,
            server.child.id(),
            port,
            store,
            &format!("{tag}-monitor"),
        )?),
        _ => None,
    };
    let (server_pid, phoebe_pid) = match (kind, &monitor) {
        (Kind::Observe(_), _) => (first_child(server.child.id()), Some(server.child.id())),
        (_, Some(monitor)) => (Some(server.child.id()), Some(monitor.child.id())),
        _ => (Some(server.child.id()), None),
    };
    let measured = load(port, store, warm_up, window, server_pid, phoebe_pid)?;
    let mut conn = connect(port)?;
    let mut reply = String::new();
    exchange(&mut conn, "QUIT\n", &mut reply)?;
    if reply != "bye\n" {
        return Err(format!("QUIT answered {:?}", reply.trim()));
    }
    server.finish(END_TIMEOUT)?;
    if let Some(monitor) = &mut monitor {
        // `--pid`: the monitor ends with the process it watches.
        monitor.finish(END_TIMEOUT)?;
    }
    Ok(measured)
}

fn main() {
    let _cleanup = common::Cleanup;
    let (reps, window, _) = settings();
    let lines: Vec<Kind> = LINES
        .into_iter()
        .filter(|k| common::selected(&format!("{GROUP}/{}", k.label())))
        .collect();
    if mode() == Mode::List {
        for kind in &lines {
            println!("{GROUP}/{}: benchmark", kind.label());
        }
        return;
    }
    let store = store();
    let mut lines: Vec<Kind> = lines.into_iter().filter(|k| k.available()).collect();
    let mut rates: HashMap<Kind, Vec<f64>> = HashMap::new();
    let mut cpu: HashMap<Kind, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for rep in 0..reps {
        let n = lines.len();
        // A rotating order: each line runs first in some repetition.
        let order: Vec<Kind> = (0..n).map(|i| lines[(i + rep) % n]).collect();
        for kind in order {
            match run_line(kind, &store, rep) {
                Ok(w) => {
                    rates.entry(kind).or_default().push(w.rate);
                    let (server, phoebe) = cpu.entry(kind).or_default();
                    server.extend(w.server_us);
                    phoebe.extend(w.phoebe_pct);
                    if mode() == Mode::Test {
                        println!("Testing {GROUP}/{}\nSuccess", kind.label());
                    }
                }
                Err(why) => {
                    skipped(&format!("{GROUP}: {}", kind.label()), &why);
                    rates.remove(&kind);
                    cpu.remove(&kind);
                    lines.retain(|k| *k != kind);
                }
            }
        }
    }
    if matches!(mode(), Mode::Full | Mode::Quick) {
        common::publish("server", &table(&rates, &cpu, reps, window));
    }
}

/// `12 345 req/s`.
fn per_second(rate: f64) -> String {
    let n = rate.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    format!("{out} req/s")
}

/// The Markdown table of this run's medians, and the targets that follow from it.
fn table(
    rates: &HashMap<Kind, Vec<f64>>,
    cpu: &HashMap<Kind, (Vec<f64>, Vec<f64>)>,
    reps: usize,
    window: Duration,
) -> String {
    let native = rates.get(&Kind::Native).and_then(|r| median(r));
    // Each repetition's ratio to native's run of the same repetition (a line that failed once has no runs, so
    // the runs of every line left are aligned by repetition).
    let paired = |kind: Kind| -> Option<(f64, f64, f64)> {
        let (runs, native) = (rates.get(&kind)?, rates.get(&Kind::Native)?);
        let ratios: Vec<f64> = runs.iter().zip(native).map(|(r, n)| r / n).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        Some((median(&ratios)?, lo, hi))
    };
    let mut md = String::from(
        "| workload | line | command | median | range | × native | × native per repetition | server CPU per \
         request | phoebe CPU |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for kind in LINES {
        let Some(runs) = rates.get(&kind) else { continue };
        let Some(m) = median(runs) else { continue };
        let lo = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = runs.iter().copied().fold(0.0, f64::max);
        let ratio = native.map_or("—".into(), |n| format!("{:.2}×", m / n));
        let per_rep = match paired(kind) {
            Some((m, lo, hi)) if kind != Kind::Native => format!("{m:.2}× ({lo:.2}–{hi:.2})"),
            _ => "—".into(),
        };
        let (server_us, phoebe_pct) = cpu
            .get(&kind)
            .map_or((None, None), |(s, p)| (median(s), median(p)));
        let server_cpu = server_us.map_or("—".into(), |us| human_ns(us * 1e3));
        let phoebe_cpu = phoebe_pct.map_or("—".into(), |p| format!("{p:.1} %"));
        md.push_str(&format!(
            "| kv-server, {CLIENTS} connections | {} | {} | {} | {}–{} | {ratio} | {per_rep} | {server_cpu} | \
             {phoebe_cpu} |\n",
            kind.label(),
            kind.shown(),
            per_second(m),
            per_second(lo).trim_end_matches(" req/s"),
            per_second(hi).trim_end_matches(" req/s"),
        ));
    }
    md.push_str(&format!(
        "\nRequests completed per second by {CLIENTS} client threads, each with one persistent connection sending \
         the next `GET` as soon as the previous reply arrived (each request: the server reads it, reads a 512 B–8 \
         KiB file, writes the reply), over a {} window after a warm-up; median and range of {reps} interleaved \
         repetitions, the lines in a rotating order. × native: this line's median ÷ native's, in the same run; per \
         repetition: the median (and range) of each repetition's ratio to native's run in the same repetition. \
         Server CPU per request: the server process's user + system time (all threads, from `/proc/PID/stat`) in \
         the window ÷ the requests, which includes the kernel's work for its calls and so the eBPF programs run in \
         them, and depends less on the other load of the machine than the throughput does; phoebe CPU: the \
         observer's or monitor's own process in the window, in % of one CPU (medians).\n",
        humantime::format_duration(window)
    ));
    md.push_str("\nDESIGN §8 and issue targets in this run:\n\n");
    let mut any = false;
    let ratio = |kind: Kind| Some(median(rates.get(&kind)?)? / native?);
    // What the hook alone costs, for the eBPF lines.
    let context = |kind: Kind| {
        let mut text = paired(kind).map_or(String::new(), |(m, lo, hi)| {
            format!("; per repetition {m:.2}× ({lo:.2}–{hi:.2})")
        });
        if let Some(floor) = ratio(Kind::EmptyProgram) {
            text.push_str(&format!("; the empty program on `sys_exit` alone: {floor:.2}×"));
        }
        text
    };
    if let Some(r) = ratio(Kind::Observe("ebpf")) {
        any = true;
        md.push_str(&format!(
            "- eBPF observation of a server (`exec`'s baseline observer) ≥ 0.95× native throughput (issue 14; \
             DESIGN §8: costs ≤ 5 %): {r:.2}× — {}{}{}\n",
            verdict(r >= 0.95),
            margin_above(r, 0.95),
            context(Kind::Observe("ebpf"))
        ));
    }
    if let Some(r) = ratio(Kind::Monitor("ebpf", true)) {
        any = true;
        let cost = (1.0 - r) * 100.0;
        md.push_str(&format!(
            "- eBPF monitoring of a server under load, latency histograms on, costs ≤ 3 % of its throughput (issue \
             17): {r:.2}×, a cost of {cost:.1} % — {}{}{}{}\n",
            verdict(cost <= 3.0),
            if cost > 3.0 {
                format!(" (over by {:.1} points)", cost - 3.0)
            } else {
                format!(" ({:.1} points under)", 3.0 - cost)
            },
            context(Kind::Monitor("ebpf", true)),
            ratio(Kind::Monitor("ebpf", false)).map_or(String::new(), |c| format!(
                "; counters only (no `--latency`): {c:.2}×"
            ))
        ));
    }
    for (kind, what) in [
        (Kind::Observe("ptrace"), "ptrace observation of the server"),
        (
            Kind::Monitor("ptrace", true),
            "ptrace monitoring of the server (histograms on)",
        ),
    ] {
        if let Some(r) = ratio(kind) {
            any = true;
            md.push_str(&format!(
                "- {what}: {r:.2}× native, a cost of {:.0} % (reported, no target)\n",
                (1.0 - r) * 100.0
            ));
        }
    }
    if !any {
        md.push_str("- none measured in this run\n");
    }
    md
}
