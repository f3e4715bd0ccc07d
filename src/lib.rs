//! phoebe: realistic system-call error injection.
//!
//! Observe which system calls fail naturally (per syscall, per errno, per interval), inject those errors, and
//! see how the program copes. `docs/architecture.md` maps the modules.

pub use phoebe_backend as backend;
pub use phoebe_backend_common::control;
pub use phoebe_campaign as experiment;
pub use phoebe_core::{decide, files, model, synth, time};
pub use phoebe_report as report;
pub use phoebe_sys as sys;

pub mod doctor;
#[cfg(test)]
mod fuzz;
pub mod hint;
pub mod monitor;
/// How a test says it is skipped (the core's `testing`, for the harness). Not part of phoebe's API.
#[doc(hidden)]
pub use phoebe_core::testing;
