//! What a run was waiting in when its timeout came: before the first signal of the timeout, every thread of
//! every process below the run's own (the target's tree, under the inner phoebe) is read from `/proc` — its
//! system call, a futex's operation, a descriptor's kind — into `<base>.hung`, one line per thread, which a hung
//! run's evidence sums up (`futex FUTEX_WAIT_PRIVATE without a timeout ×3, read of a pipe ×1`). A hang is a
//! wait nothing ends; what it waits in is where a maintainer starts.

use std::{collections::BTreeMap, path::Path};

use crate::{
    model::{Syscall, names::fd_arg, shape::futex_op_name},
    sys::procfs::{self, TaskCall},
};

/// One thread of a hung run, as the timeout found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Waiting {
    pub(super) pid: u32,
    pub(super) tid: i32,
    pub(super) comm: String,
    /// What it was doing, in words ([`describe`]).
    pub(super) what: String,
}

/// Every thread below process `root` (not `root`'s own: the inner phoebe, or a check's shell), now.
pub(super) fn snapshot(root: u32) -> Vec<Waiting> {
    let mut found = Vec::new();
    for pid in procfs::descendants(root) {
        for tid in procfs::threads(pid) {
            let tid = tid.as_raw();
            let Some(call) = procfs::task_call(pid, tid) else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default();
            found.push(Waiting {
                pid,
                tid,
                comm,
                what: describe(call, |fd| procfs::fd_target(pid, fd)),
            });
        }
    }
    found
}

/// Writes `threads` to `path`, one `PID\tTID\tCOMM\tWHAT` line each (a command name may hold spaces
/// and colons); nothing when there are none.
pub(super) fn write(path: &Path, threads: &[Waiting]) {
    if threads.is_empty() {
        return;
    }
    let text: String = threads
        .iter()
        .map(|w| {
            format!(
                "{}\t{}\t{}\t{}\n",
                w.pid,
                w.tid,
                w.comm.replace('\t', " "),
                w.what
            )
        })
        .collect();
    // Evidence, not a result: a file that cannot be written leaves the run without it.
    let _ = std::fs::write(path, text);
}

/// One thread's call in words: `futex FUTEX_WAIT_PRIVATE without a timeout`, `read of a pipe`, `epoll_wait of
/// an epoll instance`, `wait4`, `running`. `target` names what a descriptor refers to (`/proc/PID/fd/FD`).
pub(super) fn describe(call: TaskCall, mut target: impl FnMut(i32) -> Option<String>) -> String {
    let (nr, args) = match call {
        TaskCall::Running => return "running".into(),
        TaskCall::Outside => return "stopped outside a system call".into(),
        TaskCall::In { nr, args } => (nr, args),
    };
    let Some(sc) = Syscall::from_number(nr) else {
        return format!("system call {nr}");
    };
    let name = sc.name();
    if name == "futex" {
        // The kernel takes `int op`.
        let op = futex_op_name(u64::from(args[1] as u32));
        let timeout = if args[3] == 0 {
            "without a timeout"
        } else {
            "with a timeout"
        };
        return format!("futex {op} {timeout}");
    }
    match fd_arg(sc).and_then(|i| target(args[i] as i32)) {
        Some(what) => format!("{name} of {}", kind(&what)),
        None => name.to_owned(),
    }
}

/// What `/proc/PID/fd/FD` names, in words: `a pipe`, `a socket`, `an epoll instance`, or the path.
fn kind(target: &str) -> String {
    if target.starts_with("pipe:") {
        return "a pipe".into();
    }
    if target.starts_with("socket:") {
        return "a socket".into();
    }
    if let Some(inode) = target.strip_prefix("anon_inode:") {
        let inode = inode.trim_matches(['[', ']']);
        return match inode {
            "eventpoll" => "an epoll instance".into(),
            "eventfd" => "an eventfd".into(),
            "timerfd" => "a timerfd".into(),
            "signalfd" => "a signalfd".into(),
            "inotify" => "an inotify instance".into(),
            other => format!("an anonymous inode ({other})"),
        };
    }
    target.to_owned()
}

/// What a `<base>.hung` file says, summed up: each distinct wait with how many threads were in it, most first
/// (`futex FUTEX_WAIT_PRIVATE without a timeout ×3, read of a pipe`); `None` for an empty file.
pub(super) fn summary(text: &str) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(what) = line.splitn(4, '\t').nth(3) {
            *counts.entry(what).or_default() += 1;
        }
    }
    let mut waits: Vec<(&str, usize)> = counts.into_iter().collect();
    // Most threads first; equal counts in the order of their words.
    waits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = waits
        .into_iter()
        .map(|(what, n)| {
            if n == 1 {
                what.to_owned()
            } else {
                format!("{what} ×{n}")
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threads_wait_is_said_in_words() {
        let futex = |op: u64, timeout: u64| TaskCall::In {
            nr: libc::SYS_futex as u64,
            args: [0x7f00, op, 0, timeout, 0, 0],
        };
        let none = |_| None;
        assert_eq!(
            describe(futex(0x80, 0), none),
            "futex FUTEX_WAIT_PRIVATE without a timeout"
        );
        assert_eq!(
            describe(futex(0x89, 0x7ffc), none),
            "futex FUTEX_WAIT_BITSET_PRIVATE with a timeout"
        );
        let read = TaskCall::In {
            nr: libc::SYS_read as u64,
            args: [5, 0x1000, 4096, 0, 0, 0],
        };
        assert_eq!(
            describe(read, |fd| (fd == 5).then(|| "pipe:[4242]".to_owned())),
            "read of a pipe"
        );
        assert_eq!(
            describe(read, |_| Some("/srv/data.db".to_owned())),
            "read of /srv/data.db"
        );
        assert_eq!(describe(read, none), "read", "a descriptor gone by then");
        let wait = TaskCall::In {
            nr: libc::SYS_epoll_wait as u64,
            args: [3, 0, 64, u64::MAX, 0, 0],
        };
        assert_eq!(
            describe(wait, |_| Some("anon_inode:[eventpoll]".to_owned())),
            "epoll_wait of an epoll instance"
        );
        assert_eq!(describe(TaskCall::Running, none), "running");
        assert_eq!(describe(TaskCall::Outside, none), "stopped outside a system call");
        assert_eq!(
            describe(
                TaskCall::In {
                    nr: 100_000,
                    args: [0; 6]
                },
                none
            ),
            "system call 100000"
        );
    }

    #[test]
    fn a_hung_runs_threads_are_summed_up_most_first() {
        let text = "10\t10\tnode\tepoll_wait of an epoll instance\n\
                    10\t11\tnode\tfutex FUTEX_WAIT_PRIVATE without a timeout\n\
                    10\t12\tnode\tfutex FUTEX_WAIT_PRIVATE without a timeout\n\
                    10\t13\tV8 Worker\tfutex FUTEX_WAIT_PRIVATE without a timeout\n";
        assert_eq!(
            summary(text).as_deref(),
            Some("futex FUTEX_WAIT_PRIVATE without a timeout ×3, epoll_wait of an epoll instance")
        );
        assert_eq!(summary(""), None);
        // The file as `write` makes it reads back.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run-1.hung");
        let threads = [Waiting {
            pid: 7,
            tid: 8,
            comm: "app: worker".into(),
            what: "read of a pipe".into(),
        }];
        write(&path, &threads);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "7\t8\tapp: worker\tread of a pipe\n");
        assert_eq!(summary(&text).as_deref(), Some("read of a pipe"));
    }
}
