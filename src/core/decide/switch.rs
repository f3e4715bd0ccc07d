//! The runtime switch: injection on or off while the target runs (SIGUSR1/SIGUSR2, `--start-off`, a service-mode
//! experiment). While it is off, calls are still counted, so that call indices mean the same either way.
//!
//! Does not own: what a call counts as (the ledger) or what is injected (the policy).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// The switch, shared with whoever flips it (a signal thread, a service-mode experiment, the eBPF map mirror).
#[derive(Debug, Clone)]
pub struct Switch(Arc<AtomicBool>);

impl Default for Switch {
    /// On.
    fn default() -> Self {
        Switch(Arc::new(AtomicBool::new(true)))
    }
}

impl Switch {
    /// Is injection on?
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself: store `false` to stop injecting, `true` to start again.
    pub fn handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
