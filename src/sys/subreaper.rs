//! `PR_SET_CHILD_SUBREAPER` as a guard: orphans of the target's tree become phoebe's children (instead of init's)
//! while a backend runs it, so that phoebe can reap them and end them on Ctrl-C; the flag is cleared when the guard
//! is dropped, so no process-global state outlives the run that needed it.

use nix::{
    errno::Errno,
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::procfs;

/// phoebe is the subreaper of its descendants while this value lives.
#[derive(Debug)]
pub struct Subreaper(());

impl Subreaper {
    /// Makes phoebe the subreaper of its descendants until the guard is dropped.
    ///
    /// Makes phoebe's containment first (`sys::contain`): its watchdog is started by a process that exits at once,
    /// and must be reparented to the machine's reaper, not to phoebe, whose reapers wait until no child is left.
    pub fn set() -> Result<Self, Errno> {
        let _ = super::contain::get();
        set(true)?;
        Ok(Subreaper(()))
    }
}

impl Subreaper {
    /// SIGKILLs every child of phoebe: while phoebe is the subreaper of the target's tree and the target itself
    /// has ended, those are the leftovers of its tree (orphans reparented to phoebe). Returns how many it signalled.
    pub fn kill_children(&self) -> usize {
        let mut n = 0;
        for pid in procfs::children_of(std::process::id()) {
            tracing::info!(pid, "ending a leftover process of the target's tree");
            if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                n += 1;
            }
        }
        n
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        if let Err(e) = set(false) {
            tracing::debug!(error = %e, "cannot clear PR_SET_CHILD_SUBREAPER");
        }
    }
}

fn set(on: bool) -> Result<(), Errno> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, libc::c_ulong::from(on)) };
    Errno::result(ret).map(drop)
}

/// Is phoebe a subreaper now (`PR_GET_CHILD_SUBREAPER`)?
pub fn is_set() -> Result<bool, Errno> {
    let mut flag: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int through the pointer, which points at a live local.
    let ret = unsafe { libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut flag as *mut libc::c_int) };
    Errno::result(ret)?;
    Ok(flag != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_subreaper_flag_is_cleared_after_the_run() {
        // The flag is process-wide: the other tests that set it (the backends' launchers) hold this lock too.
        let _children = phoebe_core::testing::children_lock();
        let before = is_set().expect("PR_GET_CHILD_SUBREAPER");
        {
            let _guard = Subreaper::set().expect("PR_SET_CHILD_SUBREAPER");
            assert!(is_set().unwrap());
        }
        assert!(!is_set().unwrap(), "cleared on drop");
        assert!(!before);
    }
}
