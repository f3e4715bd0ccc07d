//! `fd-kinds [N] [--more] [--paths]` (N default 100, at least 1) — `read` on descriptors of several kinds (DESIGN §6, fd
//! shapes), for the tests of observation and injection by descriptor kind.
//!
//! Each of the N rounds reads, in this order, from:
//! - a non-blocking eventfd while its counter is 0 (the kernel says EAGAIN), then after writing 1 to it (ready):
//!   shapes `fd=eventfd:nonblock=yes:ready=no` and `…:ready=yes`;
//! - the client end of a loopback TCP connection, non-blocking, while nothing was sent (EAGAIN), then after the
//!   server end wrote a byte and `poll` said it arrived (ready): `fd=tcp:nonblock=yes:ready=no|yes`;
//! - a non-blocking UDP socket bound on loopback, empty (EAGAIN), then after it sent itself a datagram and `poll`
//!   said it arrived (ready): `fd=udp:nonblock=yes:ready=no|yes`;
//! - a blocking unix stream socket after its peer wrote a byte (ready; a blocking read never says EAGAIN):
//!   `fd=unix-stream:nonblock=no`.
//!
//! With `--more`, each round then also reads, after the four above:
//! - a blocking pipe after its write end wrote a byte (ready): `fd=pipe:nonblock=no`;
//! - a regular file (a temporary file of 8 bytes, from its start): `fd=file:nonblock=no:path=…`;
//! - a descriptor number that is not open (the kernel says EBADF, and only that): `fd=closed`.
//!
//! With `--paths`, it first makes a directory `phoebe-fd-paths-<pid>` in the temporary directory (`TMPDIR`),
//! with `sub/x`, `y` and `z`, and moves into `sub`; each round then also (paths the eBPF observer joins or walks
//! in the kernel):
//! - opens and closes `./x` and `../y` (relative to the working directory) and `z` relative to a descriptor of
//!   the directory, and fails to open `sub/../absent` relative to it (ENOENT);
//! - reads three regular files whose paths the eBPF observer does not know whole: one deleted after it was
//!   opened, one whose absolute path is longer than 256 bytes, and one 40 directories deep;
//! - reads a file that it then renames (`ma`, `mb`, … `mz`, `ma` again: round K reads it as the K-th name), and a
//!   file `late` that it removes after the reads of the first N/2 rounds: the paths an observer that keeps the
//!   paths it walked must not keep.
//!
//! The directory is left for the caller to remove (give it a `TMPDIR` of its own): removing it walks 40
//! directories, calls that an observation of this app would hold. `--more`'s directory is removed at exit.
//!
//! A ready read that fails was failed by an injection, never by the kernel: it is counted per kind. A failure the
//! kernel could not have given (a blocking read that fails, an errno other than EAGAIN or EINTR) is counted as
//! impossible and named on stderr.
//! Output, one line on stdout: `rounds=<N> impossible=<count> ready-failed=eventfd:<a>,tcp:<b>,udp:<c>,unix:<d>`;
//! exit 0, or 3 when something was impossible.

use std::{
    env, io,
    io::Write,
    net::{TcpListener, TcpStream, UdpSocket},
    os::{fd::AsRawFd, unix::net::UnixStream},
    process,
};

use phoebe_testapps::{parse_flag, usage};

const USAGE: &str = "fd-kinds [N] [--more] [--paths]";

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail(what: &str, e: io::Error) -> ! {
    eprintln!("fd-kinds: {what}: {e}");
    process::exit(1)
}

/// One `read(2)` of at most 8 bytes: `Ok(n)` or `Err(errno)`.
fn read(fd: i32) -> Result<usize, i32> {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is a live local of the length passed; a bad descriptor only makes read fail.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}

/// Waits up to 5 s for `fd` to be readable (loopback delivery is normally done when the send returns).
fn wait_readable(fd: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a live local; one entry is passed.
    let _ = unsafe { libc::poll(&raw mut pfd, 1, 5000) };
}

fn main() {
    let mut args: Vec<String> = env::args().skip(1).collect();
    let more = args.iter().any(|a| a == "--more");
    let paths = args.iter().any(|a| a == "--paths");
    args.retain(|a| a != "--more" && a != "--paths");
    if args.len() > 1 {
        usage(USAGE);
    }
    let rounds: u64 = match args.first() {
        Some(n) => parse_flag("N", Some(n.clone()), USAGE),
        None => 100,
    };
    if rounds == 0 {
        usage(USAGE);
    }
    // SAFETY: eventfd takes no memory.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        fail("eventfd", io::Error::last_os_error());
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind a TCP listener", e));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail("TCP listener address", e));
    let tcp = TcpStream::connect(addr).unwrap_or_else(|e| fail("connect over loopback", e));
    let (mut server, _) = listener.accept().unwrap_or_else(|e| fail("accept", e));
    tcp.set_nonblocking(true)
        .unwrap_or_else(|e| fail("make the TCP client non-blocking", e));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind a UDP socket", e));
    udp.set_nonblocking(true)
        .unwrap_or_else(|e| fail("make the UDP socket non-blocking", e));
    let udp_addr = udp.local_addr().unwrap_or_else(|e| fail("UDP socket address", e));
    let (mut unix_a, unix_b) = UnixStream::pair().unwrap_or_else(|e| fail("socketpair", e));

    let extra = more.then(Extra::new);
    let paths = paths.then(Paths::new);

    let mut impossible = 0u64;
    // eventfd, tcp, udp, unix.
    let mut ready_failed = [0u64; 4];
    let mut report = |what: &str, e: i32| {
        impossible += 1;
        eprintln!(
            "fd-kinds: impossible: {what} failed with {}",
            io::Error::from_raw_os_error(e)
        );
    };
    let one: u64 = 1;
    for round in 0..rounds {
        // Empty non-blocking descriptors: EAGAIN is what the kernel says, and the only thing it can say.
        for (what, fd) in [
            ("read of an empty eventfd", efd),
            ("read of an empty TCP socket", tcp.as_raw_fd()),
            ("read of an empty UDP socket", udp.as_raw_fd()),
        ] {
            if let Err(e) = read(fd)
                && !matches!(e, libc::EAGAIN | libc::EINTR)
            {
                report(what, e);
            }
        }
        // SAFETY: `one` is a live 8-byte local, the size an eventfd write takes.
        if unsafe { libc::write(efd, (&raw const one).cast(), 8) } != 8 {
            fail("write to the eventfd", io::Error::last_os_error());
        }
        server
            .write_all(b"x")
            .unwrap_or_else(|e| fail("write on the TCP server end", e));
        udp.send_to(b"x", udp_addr)
            .unwrap_or_else(|e| fail("send a datagram to itself", e));
        unix_a
            .write_all(b"x")
            .unwrap_or_else(|e| fail("write on the unix socket pair", e));
        wait_readable(tcp.as_raw_fd());
        wait_readable(udp.as_raw_fd());
        // Ready descriptors: only an injection fails these reads.
        for (i, fd) in [efd, tcp.as_raw_fd(), udp.as_raw_fd(), unix_b.as_raw_fd()]
            .into_iter()
            .enumerate()
        {
            if let Err(e) = read(fd) {
                ready_failed[i] += 1;
                // A blocking read waits instead of saying EAGAIN; any other errno is impossible everywhere.
                if i == 3 || !matches!(e, libc::EAGAIN | libc::EINTR) {
                    report("a ready read", e);
                }
                // Drain what the injection left unread, so the next round starts empty.
                let _ = read(fd);
            }
        }
        if let Some(extra) = &extra {
            extra.round(&mut report);
        }
        if let Some(paths) = &paths {
            paths.round(round, rounds, &mut report);
        }
    }
    println!(
        "rounds={rounds} impossible={impossible} ready-failed=eventfd:{},tcp:{},udp:{},unix:{}",
        ready_failed[0], ready_failed[1], ready_failed[2], ready_failed[3]
    );
    // process::exit runs no destructor: `--more`'s directory goes first. `--paths` leaves its tree in TMPDIR for
    // the caller to remove: removing it here walks 40 directories, calls an observation of this app would hold.
    drop(extra);
    process::exit(if impossible > 0 { 3 } else { 0 });
}

/// The descriptors `--more` reads: a pipe, a regular file, and a number that is not open.
struct Extra {
    pipe: (std::io::PipeReader, std::io::PipeWriter),
    file: std::fs::File,
    /// Kept so that the file is removed at exit.
    _dir: TempDir,
    closed: i32,
}

/// A directory removed on drop (the test apps have no tempfile dependency).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Extra {
    fn new() -> Self {
        let pipe = io::pipe().unwrap_or_else(|e| fail("pipe", e));
        let dir = env::temp_dir().join(format!("phoebe-fd-kinds-{}", process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail("create a temporary directory", e));
        let dir = TempDir(dir);
        let path = dir.0.join("data");
        std::fs::write(&path, b"01234567").unwrap_or_else(|e| fail("write a temporary file", e));
        let file = std::fs::File::open(&path).unwrap_or_else(|e| fail("open the temporary file", e));
        // A number above every open descriptor: never open while the app runs.
        let closed = 1000;
        Extra {
            pipe,
            file,
            _dir: dir,
            closed,
        }
    }

    fn round(&self, report: &mut impl FnMut(&str, i32)) {
        (&self.pipe.1)
            .write_all(b"x")
            .unwrap_or_else(|e| fail("write to the pipe", e));
        if let Err(e) = read(self.pipe.0.as_raw_fd()) {
            report("a ready read of a pipe", e);
        }
        // SAFETY: lseek takes no memory; a bad descriptor only makes it fail.
        unsafe { libc::lseek(self.file.as_raw_fd(), 0, libc::SEEK_SET) };
        if let Err(e) = read(self.file.as_raw_fd()) {
            report("a read of a regular file", e);
        }
        match read(self.closed) {
            Err(libc::EBADF) => {}
            Err(e) => report("a read of a descriptor that is not open", e),
            Ok(_) => report("a read of a descriptor that is not open", 0),
        }
    }
}

/// What `--paths` opens and reads.
struct Paths {
    /// The directory, open (for `openat` relative to it).
    dir: std::fs::File,
    /// Read each round: deleted, a path longer than 256 bytes, 40 directories deep.
    files: [std::fs::File; 3],
    /// Read each round, then renamed to the next name.
    moving: std::fs::File,
    /// Read each round, removed after the reads of the first half of the rounds.
    late: std::fs::File,
    root: std::path::PathBuf,
}

/// The name of the moving file in round `k`: `ma` … `mz`, then `ma` again.
fn moving_name(k: u64) -> String {
    format!("m{}", char::from(b'a' + (k % 26) as u8))
}

impl Paths {
    fn new() -> Self {
        let root = env::temp_dir().join(format!("phoebe-fd-paths-{}", process::id()));
        let mkdir = |p: &std::path::Path| {
            std::fs::create_dir_all(p).unwrap_or_else(|e| fail("create a temporary directory", e))
        };
        let write = |p: &std::path::Path| {
            std::fs::write(p, b"01234567").unwrap_or_else(|e| fail("write a temporary file", e))
        };
        let open =
            |p: &std::path::Path| std::fs::File::open(p).unwrap_or_else(|e| fail("open a temporary file", e));
        mkdir(&root.join("sub"));
        for name in ["sub/x", "y", "z", "gone", "late", &moving_name(0)] {
            write(&root.join(name));
        }
        let gone = open(&root.join("gone"));
        std::fs::remove_file(root.join("gone")).unwrap_or_else(|e| fail("remove a temporary file", e));
        let long = ["l".repeat(100), "l".repeat(100), "l".repeat(60)]
            .iter()
            .fold(root.clone(), |p, c| p.join(c));
        mkdir(&long);
        write(&long.join("f"));
        let deep = (0..40).fold(root.clone(), |p, _| p.join("d"));
        mkdir(&deep);
        write(&deep.join("f"));
        let files = [gone, open(&long.join("f")), open(&deep.join("f"))];
        let moving = open(&root.join(moving_name(0)));
        let late = open(&root.join("late"));
        let dir = open(&root);
        env::set_current_dir(root.join("sub"))
            .unwrap_or_else(|e| fail("move into the temporary directory", e));
        Paths {
            dir,
            files,
            moving,
            late,
            root,
        }
    }

    /// `openat(dirfd, path)`, closed at once: `Ok(())` or `Err(errno)`.
    fn open_close(dirfd: i32, path: &std::ffi::CStr) -> Result<(), i32> {
        // SAFETY: `path` is a live NUL-terminated string; a bad descriptor only makes openat fail.
        let fd = unsafe { libc::openat(dirfd, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(errno());
        }
        // SAFETY: `fd` was just opened by this thread and is closed once.
        unsafe { libc::close(fd) };
        Ok(())
    }

    fn round(&self, k: u64, rounds: u64, report: &mut impl FnMut(&str, i32)) {
        let dirfd = self.dir.as_raw_fd();
        for (what, base, path) in [
            ("an open of ./x", libc::AT_FDCWD, c"./x"),
            ("an open of ../y", libc::AT_FDCWD, c"../y"),
            ("an open of z in the directory", dirfd, c"z"),
        ] {
            if let Err(e) = Self::open_close(base, path) {
                report(what, e);
            }
        }
        match Self::open_close(dirfd, c"sub/../absent") {
            Err(libc::ENOENT) => {}
            Err(e) => report("an open of an absent file", e),
            Ok(()) => report("an open of an absent file", 0),
        }
        for file in self.files.iter().chain([&self.moving, &self.late]) {
            // SAFETY: lseek takes no memory; a bad descriptor only makes it fail.
            unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_SET) };
            if let Err(e) = read(file.as_raw_fd()) {
                report("a read of a regular file", e);
            }
        }
        let (from, to) = (self.root.join(moving_name(k)), self.root.join(moving_name(k + 1)));
        std::fs::rename(&from, &to).unwrap_or_else(|e| fail("rename a temporary file", e));
        if k + 1 == rounds / 2 {
            std::fs::remove_file(self.root.join("late"))
                .unwrap_or_else(|e| fail("remove a temporary file", e));
        }
    }
}
