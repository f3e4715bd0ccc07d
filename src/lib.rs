//! phoebe: realistic system-call error injection.
//!
//! Observe which system calls fail naturally (per syscall, per errno, per interval), inject those errors, and
//! see how the program copes. `docs/architecture.md` maps the modules.

pub mod backend;
pub mod control;
pub mod decide;
pub mod doctor;
pub mod experiment;
pub mod files;
#[cfg(test)]
mod fuzz;
pub mod hint;
pub mod model;
pub mod monitor;
pub mod report;
pub mod synth;
pub mod sys;
#[doc(hidden)]
pub mod testing;
pub mod time;
