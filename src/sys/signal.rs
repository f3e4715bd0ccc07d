//! Signals to one thread of another process: what the kernel raises in a calling thread with an error (SIGPIPE with
//! a write's EPIPE), raised by phoebe when it injects that error.

use nix::{errno::Errno, unistd::Pid};

/// `tgkill(tgid, tid, signal)`: `signal` to the thread `tid` of the thread group `tgid`, as the kernel's
/// `send_sig(signal, current, 0)` raises it in the calling thread. ESRCH when that thread is gone (or `tid` is now
/// another group's).
pub fn tgkill(tgid: Pid, tid: Pid, signal: i32) -> Result<(), Errno> {
    // SAFETY: tgkill takes three integers and reads no memory of ours; a bad number is the kernel's EINVAL.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::c_long::from(tgid.as_raw()),
            libc::c_long::from(tid.as_raw()),
            libc::c_long::from(signal),
        )
    };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signal 0 checks the thread exists: this one does; a group that is not this thread's is ESRCH.
    #[test]
    fn tgkill_names_a_thread_of_its_group() {
        let me = nix::unistd::getpid();
        let tid = nix::unistd::gettid();
        assert_eq!(tgkill(me, tid, 0), Ok(()));
        assert_eq!(tgkill(Pid::from_raw(1), tid, 0), Err(Errno::ESRCH));
    }
}
