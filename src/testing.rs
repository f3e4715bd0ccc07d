//! How a test that cannot run on this machine says so (`phoebe_core::testing`, re-exported for the harness), and
//! the lock this crate's unit tests take around child processes. Not part of phoebe's API.

pub use phoebe_core::testing::*;

/// Unit tests that create child processes hold this lock: a test that waits for *any* child (`waitpid(-1)`, as
/// the reapers do) would otherwise reap another test's. (The tests of the sys and filter crates, other
/// processes, have their own.)
#[cfg(test)]
pub(crate) fn children_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
