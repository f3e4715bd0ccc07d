//! The layer between phoebe and the kernel that every backend shares: launching the target ([`launch`]), waiting for it
//! and its tree with wait statuses decoded here, real-time signals included ([`wait`]), reading `/proc` ([`procfs`]),
//! being the subreaper of the tree for the length of a run ([`subreaper`]), ending the tree when phoebe ends, however
//! it ends ([`contain`]), installing a compiled seccomp filter ([`seccomp`]: the launcher does it between fork and
//! exec), raising a signal in one thread of the target ([`signal`]), the machine's facts (kernel, capabilities, LSMs:
//! [`host`]), and putting error chains, the kernel's errnos among them, into words for people ([`error`]). Nothing here
//! names a backend.
//!
//! Raw calls that only one backend makes stay in that backend's `sys.rs` (ptrace requests, seccomp ioctls,
//! `bpf(2)`); compiling a seccomp program stays with the filter compiler (`src/filter`, `phoebe-filter`). Every `unsafe` block
//! here names its invariant in a `// SAFETY:` comment.

// The core's modules under the names this code has always used (`crate::model`, `crate::hint`).
pub(crate) use phoebe_core::{hint, model};

pub mod contain;
pub mod error;
pub mod host;
pub mod launch;
pub mod procfs;
pub mod seccomp;
pub mod signal;
pub mod subreaper;
pub mod wait;
