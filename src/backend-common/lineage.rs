//! Thread keys: a name for each task (thread or process) of the target's tree that does not depend on how its
//! threads interleave (docs/formats.md, "Thread keys"). The decider keys its rolls and a replay on it and on the
//! thread's own call index, so the same seed, or a replayed log, fails the same calls however the scheduler ran
//! the threads.
//!
//! A key is the task's **thread path**: `0` for the target, and for any other task its creator's key, a dot, and
//! the number of this clone among its creator's successful clones (threads and processes alike, from 1). So `0.2`
//! is the second task the target's main thread created, and `0.2.1` the first one that task created.
//!
//! Both backends see which task created which, and number the same way:
//! - ptrace sees every clone, fork and vfork as an event of the creating task ([`Lineage::on_clone`]);
//! - seccomp has the filter send it every clone, clone3, fork and vfork, lets the call run, and looks in /proc for
//!   the task it created ([`family`]: the caller's threads and child processes) before it answers anything else,
//!   so every clone is found before the next one can start.
//!
//! Owns: the keys. Does not own: what is decided with them (`decide`).

use std::collections::{BTreeSet, HashMap};

use phoebe_sys::procfs;

/// More tasks than this and the keys start over (the map must not grow forever): seccomp forgets a task at its
/// `exit`, but not one ended by another thread's `exit_group` or by a signal.
const MAX_TASKS: usize = 1 << 16;

#[derive(Debug)]
struct Task {
    key: String,
    /// The task's successful clones so far.
    clones: u32,
}

/// The keys of the target's tasks.
#[derive(Debug)]
pub struct Lineage {
    /// The target's pid (its key is `0`).
    root: i32,
    /// By tid.
    tasks: HashMap<i32, Task>,
    /// Tasks whose creator phoebe missed, numbered `0.xN` in the order they first called.
    unknown: u32,
}

impl Lineage {
    /// The lineage of a tree whose first task (the target) is `root`.
    pub fn new(root: i32) -> Self {
        let mut tasks = HashMap::new();
        tasks.insert(
            root,
            Task {
                key: "0".into(),
                clones: 0,
            },
        );
        Lineage {
            root,
            tasks,
            unknown: 0,
        }
    }

    /// The key of task `tid`, when known.
    pub fn key(&self, tid: i32) -> Option<&str> {
        self.tasks.get(&tid).map(|t| t.key.as_str())
    }

    /// The key of task `tid`, numbered as a task whose creator phoebe missed (`0.xN`) if it has none.
    pub fn key_or_unknown(&mut self, tid: i32) -> &str {
        if !self.tasks.contains_key(&tid) {
            self.forget_if_full();
            self.unknown += 1;
            let key = format!("0.x{}", self.unknown);
            self.tasks.insert(tid, Task { key, clones: 0 });
        }
        &self.tasks[&tid].key
    }

    /// Task `parent` created task `child` (a thread or a process): numbers it.
    pub fn on_clone(&mut self, parent: i32, child: i32) -> &str {
        self.forget_if_full();
        self.key_or_unknown(parent);
        let p = self.tasks.get_mut(&parent).expect("just made");
        p.clones += 1;
        let key = format!("{}.{}", p.key, p.clones);
        &self
            .tasks
            .entry(child)
            .insert_entry(Task { key, clones: 0 })
            .into_mut()
            .key
    }

    /// A non-leader thread `former` exec'd and now has its process's id `tgid`: it keeps its key.
    pub fn on_exec(&mut self, former: i32, tgid: i32) {
        if former != tgid
            && let Some(task) = self.tasks.remove(&former)
        {
            self.tasks.insert(tgid, task);
        }
    }

    /// Task `tid` ended (its id may be reused by an unrelated task).
    pub fn on_exit(&mut self, tid: i32) {
        self.tasks.remove(&tid);
    }

    /// Past [`MAX_TASKS`] tasks, forgets every key but the target's.
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

/// The tasks a clone by thread `tid` of process `tgid` can create, now: the process's threads (`/proc/PID/task`)
/// and the thread's child processes (`/proc/PID/task/TID/children`, where the kernel has it: a forked process is
/// the child of the thread that forked it). Two reads, whatever the number of threads.
pub fn family(tgid: i32, tid: i32) -> BTreeSet<i32> {
    let children = std::fs::read_to_string(format!("/proc/{tgid}/task/{tid}/children")).unwrap_or_default();
    procfs::threads(tgid as u32)
        .into_iter()
        .map(nix::unistd::Pid::as_raw)
        .chain(children.split_whitespace().filter_map(|c| c.parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each task numbers its own clones, threads and processes alike, whoever else creates tasks meanwhile.
    #[test]
    fn clones_are_numbered_per_creating_task() {
        let mut l = Lineage::new(100);
        assert_eq!(l.key(100), Some("0"));
        assert_eq!(l.on_clone(100, 101), "0.1");
        assert_eq!(
            l.on_clone(101, 103),
            "0.1.1",
            "a thread's clone is numbered by that thread"
        );
        assert_eq!(l.on_clone(100, 102), "0.2", "the main thread's count is its own");
        assert_eq!(l.on_clone(103, 104), "0.1.1.1");
        assert_eq!(l.on_clone(100, 105), "0.3");
        assert_eq!(
            l.on_clone(999, 107),
            "0.x1.1",
            "an unknown creator is numbered as unknown"
        );
        assert_eq!(l.key_or_unknown(108), "0.x2");
        l.on_exit(101);
        assert_eq!(l.key(101), None);
        l.on_exec(104, 103);
        assert_eq!(l.key(103), Some("0.1.1.1"), "the exec'ing thread keeps its key");
    }

    /// seccomp finds a new task in its creator's family: this test's own thread and child process.
    #[test]
    fn family_lists_threads_and_child_processes() {
        let me = std::process::id() as i32;
        let tid = nix::unistd::gettid().as_raw();
        let before = family(me, tid);
        assert!(before.contains(&me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            done_rx.recv().unwrap();
        });
        let thread_id = rx.recv().unwrap();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let after = family(me, tid);
        assert!(after.contains(&thread_id), "the new thread");
        assert!(after.contains(&(child.id() as i32)), "the new child process");
        child.kill().unwrap();
        child.wait().unwrap();
        done_tx.send(()).unwrap();
        thread.join().unwrap();
    }
}
