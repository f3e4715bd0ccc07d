//! Hints as data: what an error advises is said by the error's type ([`Hinted`]), never written into its
//! message. [`Hint`] is one piece of advice several errors give, its words in one place; [`WithHint`] is a message
//! and its hint for an error without a type of its own (an `anyhow::bail!`, a context).
//!
//! Owns: the advice and the trait. Does not own: which error types give some (the `phoebe` crate's `hint::of`
//! lists them, since they live in the crates above this one), where hints are printed (`main`, `doctor`), or text
//! that reports and warnings carry as they are (a skip reason, a run's warnings).

use std::{borrow::Cow, error::Error, fmt};

/// A piece of advice given in more than one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// A backend cannot run `short=` (partial transfers): the ptrace backend can, and how.
    PtraceRunsShort,
    /// A backend cannot do what the ptrace backend can (observe, `when=exit`, a machine without user
    /// notification).
    UsePtrace,
    /// The eBPF injector cannot honour a rule (a path glob, a shape, `delay=`, a syscall without an LSM hook)
    /// that the seccomp backend can.
    UseSeccomp,
    /// Installing a seccomp filter was refused (EACCES).
    FilterPrivileges,
    /// A campaign directory holds another campaign, or a file of one.
    NewCampaignElsewhere,
}

impl Hint {
    /// Every hint, for tests.
    #[cfg(test)]
    const ALL: [Hint; 5] = [
        Hint::PtraceRunsShort,
        Hint::UsePtrace,
        Hint::UseSeccomp,
        Hint::FilterPrivileges,
        Hint::NewCampaignElsewhere,
    ];

    /// The advice, without the `hint: ` that introduces it.
    pub fn text(self) -> &'static str {
        match self {
            Hint::PtraceRunsShort => {
                "use --backend ptrace, which runs short= (it lowers the call's count at its entry and restores it at \
                 its exit)"
            }
            Hint::UsePtrace => "use --backend ptrace",
            Hint::UseSeccomp => "use --backend seccomp",
            Hint::FilterPrivileges => "installing a filter needs no_new_privs or CAP_SYS_ADMIN",
            Hint::NewCampaignElsewhere => "start a new campaign with another --out",
        }
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl From<Hint> for Cow<'static, str> {
    fn from(hint: Hint) -> Self {
        Cow::Borrowed(hint.text())
    }
}

/// An error that says what to do about it. Its message says what went wrong, never the advice: `Chain` collects
/// both, walking the causes. A type implementing it is listed in the `phoebe` crate's `hint::of`, which finds it in a
/// chain.
pub trait Hinted: Error {
    /// The advice, without the `hint: ` that introduces it, or `None`. A cause gives its own (`#[source]`
    /// fields are not asked); a `#[error(transparent)]` variant gives its inner error's, whose message it is.
    fn hint(&self) -> Option<Cow<'_, str>>;

    /// Every piece of advice, in the order it is printed: the one of [`Hinted::hint`], unless the error repeats
    /// another's too (a refusal it quotes).
    fn hints(&self) -> Vec<Cow<'_, str>> {
        self.hint().into_iter().collect()
    }
}

/// The hints `e` gives if it is an `E`, none otherwise: one entry of a registry (the `phoebe` crate's `hint::of`,
/// the sys layer's `error::hints_of`), which lists its types as `ask::<E>`.
pub fn ask<'e, E: Hinted + 'static>(e: &'e (dyn Error + 'static)) -> Vec<Cow<'e, str>> {
    e.downcast_ref::<E>().map(E::hints).unwrap_or_default()
}

/// A message and its hint, for an error that has no type of its own: `anyhow::bail!(WithHint::new(…))`, or
/// `.map_err(|e| WithHint::new(…).caused_by(e))` where a context would be.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WithHint {
    message: String,
    hint: Cow<'static, str>,
    #[source]
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl WithHint {
    /// `message` (what went wrong), advising `hint`.
    pub fn new(message: impl Into<String>, hint: impl Into<Cow<'static, str>>) -> Self {
        WithHint {
            message: message.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// The same, with the error that caused it as its source (its message follows this one's after `: `).
    pub fn caused_by(mut self, source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl Hinted for WithHint {
    fn hint(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.hint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_clauses_a_message_can_end_with() {
        for hint in Hint::ALL {
            let text = hint.to_string();
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
            assert!(!text.ends_with('.') && !text.contains('\n'), "{text}");
            assert!(!text.starts_with("hint"), "the `hint: ` is the message's: {text}");
        }
    }

    #[test]
    fn with_hint_keeps_its_message_hint_and_cause_apart() {
        let bare = WithHint::new("the plan has no models", "give --fault SPEC");
        assert_eq!(bare.to_string(), "the plan has no models");
        assert_eq!(bare.hint().as_deref(), Some("give --fault SPEC"));
        assert!(bare.source().is_none());
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let caused = WithHint::new("cannot resume runs/x", Hint::NewCampaignElsewhere).caused_by(eperm);
        assert_eq!(caused.to_string(), "cannot resume runs/x");
        assert_eq!(caused.hint().as_deref(), Some(Hint::NewCampaignElsewhere.text()));
        let source = caused.source().expect("its cause");
        assert_eq!(
            source.to_string(),
            std::io::Error::from_raw_os_error(libc::EPERM).to_string()
        );
    }
}
