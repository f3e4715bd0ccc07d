//! The layer between phoebe and the kernel that every backend shares: waiting for the target and its tree, with
//! wait statuses decoded here, real-time signals included ([`wait`]), reading `/proc` ([`procfs`]), and being the
//! subreaper of the tree for the length of a run ([`subreaper`]).
//!
//! Raw calls that only one backend makes stay in that backend's `sys.rs` (ptrace requests, seccomp ioctls, `bpf(2)`).
//! Every `unsafe` block here names its invariant in a `// SAFETY:` comment.

pub mod procfs;
pub mod subreaper;
pub mod wait;
