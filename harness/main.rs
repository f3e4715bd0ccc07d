//! Integration tests: drive the real `phoebe` binary on the real testapps, as a user would.

mod cli_errors;
mod common;
mod docs;
mod ebpf;
mod inject;
mod monitor;
mod observe;
