//! phoebe's core: what a fault, a call shape, an observation, a plan and a report are ([`model`]), whether a call
//! fails ([`decide`]), how an observation becomes a plan ([`synth`]), how phoebe's files are read and written
//! ([`files`]), the advice errors give ([`hint`]) and saturating deadlines ([`time`]).
//!
//! This crate makes no system call of its own beyond reading and writing files, and knows no backend, kernel
//! program or command line: Cargo keeps it that way, since it depends on none of nix, aya or clap, nor on the
//! `phoebe` crate above it. `docs/architecture.md` maps the crates and their modules.

pub mod decide;
pub mod files;
pub mod hint;
pub mod model;
pub mod synth;
#[doc(hidden)]
pub mod testing;
pub mod time;
