//! Which error types give hints ([`of`]): the registry `sys::error::Chain` asks for each error of a chain, so that
//! `main` can print them as `hint: …` lines. The advice itself and the [`Hinted`] trait are the core's
//! (`phoebe_core::hint`, re-exported here); the types are listed here because they live in this crate's modules.

use std::{borrow::Cow, error::Error};

pub use phoebe_core::hint::{Hint, Hinted, WithHint, ask};

/// How [`of`] asks one [`Hinted`] type.
type Ask = for<'e> fn(&'e (dyn Error + 'static)) -> Vec<Cow<'e, str>>;

/// Every [`Hinted`] type: an error of a type missing here gives no hint.
const HINTED: &[Ask] = &[
    // WithHint, the core's FileError, the sys layer's own, every backend's, the campaign's `ExperimentError` and
    // the renderers' `MergeError`: the campaign's registry, which asks the backends' and the sys layer's.
    crate::experiment::hint::of,
    ask::<crate::monitor::MonitorError>,
];

/// An error and its causes in words, with the hints every [`Hinted`] type of phoebe gives: what `main`, `doctor`
/// and the reports print. (`sys::error::Chain::asking` with this crate's registry: the sys layer below cannot
/// name the types above it.)
pub fn chain(e: &(dyn Error + 'static)) -> crate::sys::error::Chain {
    crate::sys::error::Chain::asking(e, of)
}

/// The hints `e` itself gives (not its causes'), in order: none unless its type is [`Hinted`].
pub fn of<'e>(e: &'e (dyn Error + 'static)) -> Vec<Cow<'e, str>> {
    HINTED.iter().flat_map(|ask| ask(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_error_itself_is_asked_not_its_causes() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let caused = WithHint::new("cannot resume runs/x", Hint::NewCampaignElsewhere).caused_by(eperm);
        let source = caused.source().expect("its cause");
        assert!(of(source).is_empty());
        assert_eq!(of(&caused), [Hint::NewCampaignElsewhere.text()]);
    }

    /// Every type that implements [`Hinted`] is in [`HINTED`]: one error of each, with a hint, is found by [`of`]
    /// (a type left out would lose its hints in `main`'s output without a word).
    #[test]
    fn every_hinted_type_is_found() {
        use std::path::PathBuf;

        use crate::{backend, experiment, files, monitor, report, sys::contain};
        let errors: Vec<Box<dyn Error + 'static>> = vec![
            Box::new(WithHint::new("m", "h")),
            Box::new(backend::BackendError::CannotObserve {
                backend: "seccomp",
                reason: "r",
            }),
            Box::new(backend::target::TargetError::Empty),
            Box::new(backend::filter::FilterError::TooLong {
                len: 5000,
                limit: 4096,
            }),
            Box::new(crate::sys::seccomp::InstallError::TooLong {
                len: 5000,
                limit: 4096,
            }),
            Box::new(backend::ptrace::PtraceError::Filter {
                command: "c".into(),
                source: nix::errno::Errno::EACCES,
            }),
            Box::new(backend::ptrace::sys::SpawnError::Seize(nix::errno::Errno::EPERM)),
            Box::new(backend::ptrace::attach::AttachError::Seize {
                pid: 1,
                source: nix::errno::Errno::EPERM,
            }),
            Box::new(backend::ebpf::EbpfError::BtfMissing("t")),
            Box::new(monitor::MonitorError::NameNeedsEbpf {
                name: "n".into(),
                why: "w".into(),
            }),
            Box::new(contain::ContainError::NotMounted),
            Box::new(experiment::ExperimentError::BaselineHung(
                std::time::Duration::from_secs(1),
            )),
            Box::new(files::FileError::Version {
                path: PathBuf::from("p"),
                found: 99,
            }),
            Box::new(report::merge::MergeError::Mismatch {
                what: "seed",
                first: "1".into(),
                other: "2".into(),
            }),
        ];
        // The campaign's registry stands for thirteen types: the sys layer's four (WithHint, FileError,
        // ContainError, InstallError), BackendError, TargetError, FilterError, ptrace's three (PtraceError,
        // SpawnError, AttachError), EbpfError, ExperimentError and MergeError.
        assert_eq!(errors.len(), HINTED.len() + 12);
        for e in &errors {
            assert_eq!(of(e.as_ref()).len(), 1, "{e:?}");
            assert!(!e.to_string().contains("hint"), "a message carries no hint: {e}");
        }
    }
}
