//! A fake [`Notifier`] for the supervisor's unit tests (`tests.rs`): it replays a script of what
//! `SECCOMP_IOCTL_NOTIF_RECV` returned — recorded notifications, or an errno — and records every `ID_VALID` and
//! `SEND` the supervisor made. It models the listener as far as the supervisor can tell: `poll` says a
//! notification is ready while the script has one; once it is exhausted, it times out (after sleeping the timeout)
//! while a received notification is still unanswered (a task waits in its call, held by `delay=`), and says
//! `POLLHUP` when none is (no task uses the filter any more). A `RECV` past the script fails with `ENOENT`, as the
//! kernel's does (Linux ≥ 6.6) when no task is left.
//!
//! Owns: nothing the real path uses. Does not model tasks, signals or the filter.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use nix::{errno::Errno, unistd::Pid};

use crate::sys::{Notification, Notifier, Ready};

/// A request the supervisor made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `ID_VALID` of notification `id`.
    IdValid { id: u64 },
    /// `SEND` for notification `id`: fail it with `errno`, or CONTINUE (`None`).
    Send { id: u64, errno: Option<i32> },
    /// `tgkill`: `signal` to thread `tid` of `tgid`.
    Signal { tgid: i32, tid: i32, signal: i32 },
}

#[derive(Debug, Default)]
pub struct Fake {
    /// What each RECV returns, in order.
    script: VecDeque<Result<Notification, Errno>>,
    /// Received, not yet answered (a SEND that failed answered nothing, but its task no longer waits either).
    waiting: HashSet<u64>,
    /// What SEND fails with, by notification id (recorded all the same).
    send_fails: HashMap<u64, Errno>,
    /// The notifications whose task no longer waits (ID_VALID says no).
    gone: HashSet<u64>,
    /// What `poll` fails with (every call), if anything.
    poll_fails: Option<Errno>,
    /// Every ID_VALID, SEND and signal, in order.
    pub requests: Vec<Request>,
}

impl Fake {
    pub fn new() -> Self {
        Fake::default()
    }

    /// Appends a notification `id` of `tid`'s call of `nr` (native) with `args`.
    pub fn call(self, id: u64, tid: i32, nr: i64, args: [u64; 6]) -> Self {
        self.call_at(id, tid, nr, args, 0)
    }

    /// [`Fake::call`] made by the instruction at `ip`.
    pub fn call_at(mut self, id: u64, tid: i32, nr: i64, args: [u64; 6], ip: u64) -> Self {
        self.script.push_back(Ok(Notification {
            id,
            tid,
            nr: nr as i32,
            arch: phoebe_filter::NATIVE_AUDIT_ARCH,
            args,
            ip,
        }));
        self
    }

    /// Appends a RECV that fails with `errno`.
    pub fn recv_fails(mut self, errno: Errno) -> Self {
        self.script.push_back(Err(errno));
        self
    }

    /// Makes the SEND answering notification `id` fail with `errno`.
    pub fn send_fails(mut self, id: u64, errno: Errno) -> Self {
        self.send_fails.insert(id, errno);
        self
    }

    /// Makes ID_VALID say that the task of notification `id` no longer waits.
    pub fn gone(mut self, id: u64) -> Self {
        self.gone.insert(id);
        self
    }

    /// Makes every `poll` fail with `errno`.
    pub fn poll_fails(mut self, errno: Errno) -> Self {
        self.poll_fails = Some(errno);
        self
    }

    /// The SENDs, as (id, errno), in order.
    pub fn answers(&self) -> Vec<(u64, Option<i32>)> {
        self.requests
            .iter()
            .filter_map(|r| match *r {
                Request::Send { id, errno } => Some((id, errno)),
                Request::IdValid { .. } | Request::Signal { .. } => None,
            })
            .collect()
    }
}

impl Notifier for Fake {
    fn wait(&mut self, timeout: Option<Duration>) -> Result<Ready, Errno> {
        if let Some(errno) = self.poll_fails {
            return Err(errno);
        }
        if !self.script.is_empty() {
            return Ok(Ready::Notification);
        }
        if self.waiting.is_empty() {
            return Ok(Ready::HangUp);
        }
        let Some(timeout) = timeout else {
            panic!(
                "poll without a timeout while {:?} wait for an answer: the supervisor would block forever",
                self.waiting
            );
        };
        std::thread::sleep(timeout);
        Ok(Ready::Timeout)
    }

    fn recv(&mut self) -> Result<Notification, Errno> {
        let next = self.script.pop_front().unwrap_or(Err(Errno::ENOENT))?;
        self.waiting.insert(next.id);
        Ok(next)
    }

    fn id_valid(&mut self, id: u64) -> bool {
        self.requests.push(Request::IdValid { id });
        if self.gone.contains(&id) {
            // Its task died: nothing waits for an answer any more.
            self.waiting.remove(&id);
            return false;
        }
        true
    }

    fn send(&mut self, id: u64, errno: Option<i32>) -> Result<(), Errno> {
        self.requests.push(Request::Send { id, errno });
        assert!(
            self.waiting.remove(&id),
            "SEND for notification {id}, which was not received or was already answered"
        );
        self.send_fails.get(&id).map_or(Ok(()), |e| Err(*e))
    }

    fn tgkill(&mut self, tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno> {
        self.requests.push(Request::Signal {
            tgid: tgid.as_raw(),
            tid: tid.as_raw(),
            signal,
        });
        Ok(())
    }
}
