//! Integration tests: drive the real `phoebe` binary on the real testapps, as a user would.

mod architecture;
mod cli_errors;
mod common;
mod conformance;
mod docs;
mod ebpf;
mod ebpf_shapes;
mod epoll_ctl;
mod evidence;
mod exec;
mod fd_kinds;
mod inject;
mod kill;
mod monitor;
mod observe;
mod plausible;
mod recipes;
mod replay;
mod report;
mod report_html;
mod run_evidence;
mod seccomp;
mod shapes;
mod short;
mod vm;
