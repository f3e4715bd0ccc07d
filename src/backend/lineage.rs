//! Thread keys: a name for each thread of the target's tree that does not depend on how its threads interleave
//! (docs/formats.md, "Thread keys"). The decider keys its rolls and a replay on it and on the thread's own call
//! index, so the same seed, or a replayed log, fails the same calls however the scheduler ran the threads.
//!
//! A key is the thread's lineage: its process's path (`0` for the target, `0.2` for the target's second child
//! process, `0.2.1` for that one's first), a `/`, and the thread's number in its process in creation order (`0` for
//! the thread that started the process). So `0/3` is the target's third spawned thread.
//!
//! Two ways to learn it, one per backend:
//! - ptrace sees every clone, fork and vfork as an event of its parent ([`Lineage::on_clone`]): children are
//!   numbered per parent process in the order its threads created them — exact for one creating thread;
//! - seccomp sees only the caller of each notified call ([`Lineage::learn`]): when a task first calls, its process's
//!   parent comes from `/proc/PID/stat`, and its number is its rank by id among the siblings known then (listed
//!   in `/proc/PPID/task/*/children`, or seen before); a thread's number is its rank by tid among its process's
//!   threads known then (listed in `/proc/PID/task`, or seen before). Ids are handed out in creation order, so
//!   the ranks are the creation order, unless a sibling lived and died unseen before the task first called, or
//!   ids wrapped around `pid_max`.
//!
//! Either way, two threads created at the same time by different threads (or processes) are numbered in the order
//! the kernel created them, which can race: no key can name them stably, and the docs say so.
//!
//! Owns: the keys. Does not own: what is decided with them (`decide`).

use std::collections::{BTreeSet, HashMap};

use nix::unistd::Pid;

use super::facts::tgid_of;
use crate::sys::procfs;

/// More tasks than this and the per-task keys start over (tids are recycled; the map must not grow forever).
const MAX_TASKS: usize = 1 << 16;

/// How far [`Lineage::learn`] walks up unknown parent processes before calling a process an orphan.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default)]
struct Process {
    /// The process's path: `0`, `0.2`, `0.2.1`.
    path: String,
    /// Child processes numbered so far (ptrace), or the child processes known (seccomp, by pid).
    children: u32,
    known_children: BTreeSet<i32>,
    /// Threads numbered so far besides the first (ptrace), or the threads known (seccomp, by tid).
    threads: u32,
    known_threads: BTreeSet<i32>,
}

/// The keys of the target's tasks.
#[derive(Debug)]
pub struct Lineage {
    /// The target's pid (its process is `0`).
    root: i32,
    /// By thread group id.
    processes: HashMap<i32, Process>,
    /// Each task's key, by tid.
    tasks: HashMap<i32, String>,
    /// Processes whose parent is unknown (reparented to phoebe, the subreaper): numbered under `0.o`.
    orphans: u32,
}

impl Lineage {
    /// The lineage of a tree whose first task (the target) is `root`.
    pub fn new(root: i32) -> Self {
        let mut lineage = Lineage {
            root,
            processes: HashMap::new(),
            tasks: HashMap::new(),
            orphans: 0,
        };
        lineage.processes.insert(
            root,
            Process {
                path: "0".into(),
                ..Process::default()
            },
        );
        lineage.tasks.insert(root, "0/0".into());
        lineage
    }

    /// The key of task `tid`, when known.
    pub fn key(&self, tid: i32) -> Option<&str> {
        self.tasks.get(&tid).map(String::as_str)
    }

    /// ptrace: a task of process `parent_tgid` created task `child` of process `child_tgid`; numbers it.
    pub fn on_clone(&mut self, parent_tgid: i32, child: i32, child_tgid: i32) -> &str {
        self.forget_if_full();
        let parent = self.process_or_orphan(parent_tgid);
        let key = if child_tgid == parent_tgid {
            let p = self.processes.get_mut(&parent).expect("just made");
            p.threads += 1;
            format!("{}/{}", p.path, p.threads)
        } else {
            let p = self.processes.get_mut(&parent).expect("just made");
            p.children += 1;
            let path = format!("{}.{}", p.path, p.children);
            let key = format!("{path}/0");
            self.processes.insert(
                child_tgid,
                Process {
                    path,
                    ..Process::default()
                },
            );
            key
        };
        self.tasks.entry(child).insert_entry(key).into_mut()
    }

    /// ptrace: a non-leader thread `former` exec'd and now has its process's id `tgid`: it keeps its key.
    pub fn on_exec(&mut self, former: i32, tgid: i32) {
        if former != tgid
            && let Some(key) = self.tasks.remove(&former)
        {
            self.tasks.insert(tgid, key);
        }
    }

    /// Task `tid` ended (its id may be reused by an unrelated task).
    pub fn on_exit(&mut self, tid: i32) {
        self.tasks.remove(&tid);
    }

    /// seccomp: the key of task `tid`, learnt from /proc the first time it calls (see the module's docs).
    pub fn learn(&mut self, tid: i32) -> &str {
        if !self.tasks.contains_key(&tid) {
            self.forget_if_full();
            let tgid = tgid_of(Pid::from_raw(tid));
            let tgid = self.process_of(tgid, 0);
            let key = {
                let p = self.processes.get_mut(&tgid).expect("just made");
                let number = if tid == tgid {
                    0
                } else {
                    let listed = procfs::threads(tgid as u32).into_iter().map(Pid::as_raw);
                    p.known_threads.extend(listed.filter(|t| *t != tgid));
                    p.known_threads.insert(tid);
                    p.known_threads.range(..tid).count() + 1
                };
                format!("{}/{number}", p.path)
            };
            self.tasks.insert(tid, key);
        }
        &self.tasks[&tid]
    }

    /// seccomp: makes sure process `tgid` has a path, learning its parents from /proc as needed; returns it.
    fn process_of(&mut self, tgid: i32, depth: usize) -> i32 {
        if self.processes.contains_key(&tgid) {
            return tgid;
        }
        let ppid = procfs::stat(tgid as u32).map(|s| s.ppid as i32);
        let parent = match ppid {
            Some(ppid) if self.processes.contains_key(&ppid) => Some(ppid),
            Some(ppid)
                if depth < MAX_DEPTH
                    && ppid > 1
                    && ppid != std::process::id() as i32
                    && procfs::exists(ppid as u32) =>
            {
                Some(self.process_of(ppid, depth + 1))
            }
            _ => None,
        };
        let path = match parent {
            Some(ppid) => {
                let p = self.processes.get_mut(&ppid).expect("known");
                p.known_children.extend(children_of(ppid));
                p.known_children.insert(tgid);
                format!("{}.{}", p.path, p.known_children.range(..tgid).count() + 1)
            }
            None => {
                self.orphans += 1;
                format!("0.o{}", self.orphans)
            }
        };
        self.processes.insert(
            tgid,
            Process {
                path,
                ..Process::default()
            },
        );
        tgid
    }

    /// ptrace: the process of a creating task; one never seen (which ptrace should not show) is numbered as an
    /// orphan.
    fn process_or_orphan(&mut self, tgid: i32) -> i32 {
        if !self.processes.contains_key(&tgid) {
            self.orphans += 1;
            let path = format!("0.o{}", self.orphans);
            self.processes.insert(
                tgid,
                Process {
                    path,
                    ..Process::default()
                },
            );
        }
        tgid
    }

    /// Past [`MAX_TASKS`] tasks, forgets the per-task keys (processes keep their numbering).
    fn forget_if_full(&mut self) {
        if self.tasks.len() >= MAX_TASKS {
            let root = self.tasks.remove(&self.root);
            self.tasks.clear();
            if let Some(root) = root {
                self.tasks.insert(self.root, root);
            }
        }
    }
}

/// The child processes of process `pid` now, from each of its threads' `/proc/PID/task/TID/children` (empty where
/// the kernel lacks the file).
fn children_of(pid: i32) -> Vec<i32> {
    procfs::threads(pid as u32)
        .into_iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/task/{t}/children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ptrace numbers children per parent process in creation order, threads and processes apart.
    #[test]
    fn clones_are_numbered_per_parent() {
        let mut l = Lineage::new(100);
        assert_eq!(l.key(100), Some("0/0"));
        assert_eq!(l.on_clone(100, 101, 100), "0/1");
        assert_eq!(l.on_clone(100, 102, 100), "0/2");
        // Thread 101 forks: its process, 100, is the parent.
        assert_eq!(
            l.on_clone(100, 103, 103),
            "0.1/0",
            "a fork by a thread is the process's child"
        );
        assert_eq!(l.on_clone(103, 104, 103), "0.1/1");
        assert_eq!(l.on_clone(100, 105, 100), "0/3");
        assert_eq!(
            l.on_clone(999, 107, 107),
            "0.o1.1/0",
            "an unknown parent is numbered as an orphan"
        );
        assert_eq!(l.on_clone(100, 106, 106), "0.2/0");
        l.on_exit(101);
        assert_eq!(l.key(101), None);
        l.on_exec(104, 103);
        assert_eq!(l.key(103), Some("0.1/1"), "the exec'ing thread keeps its key");
    }

    /// seccomp learns keys from /proc: this test's own threads, spawned in order, rank in creation order
    /// whichever calls first.
    #[test]
    fn threads_rank_by_creation_order_whichever_calls_first() {
        use std::sync::{Arc, Barrier, mpsc};
        let me = std::process::id() as i32;
        let barrier = Arc::new(Barrier::new(4));
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (barrier, tx) = (Arc::clone(&barrier), tx.clone());
                std::thread::spawn(move || {
                    tx.send((i, nix::unistd::gettid().as_raw())).unwrap();
                    barrier.wait();
                })
            })
            .collect();
        let mut tids: Vec<(i32, i32)> = (0..3).map(|_| rx.recv().unwrap()).collect();
        tids.sort();
        // The test's threads are not the process's first ones (the test runner has its own): rank relative.
        let mut l = Lineage::new(me);
        let keys: Vec<String> = tids.iter().rev().map(|(_, t)| l.learn(*t).to_owned()).collect();
        barrier.wait();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let numbers: Vec<usize> = keys
            .iter()
            .rev()
            .map(|k| k.strip_prefix("0/").unwrap().parse().unwrap())
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] > w[0]),
            "spawned in order, numbered in order though learnt last first: {keys:?}"
        );
        assert_eq!(l.learn(me), "0/0");
    }
}
