//! Error chains for people: the one place that flattens an error and its causes into a sentence, collects their
//! hints, and finds the kernel's errno in it. `main` prints what [`Chain`] gives (`phoebe: <message>`, then a
//! `hint: …` line per hint); `doctor`, `monitor`, `sys::contain` and the eBPF injector put chains on one line
//! with it.
//!
//! Hints are data: each error of the chain gives its own through `phoebe_core::hint::Hinted` (found by the
//! registry the caller passes: the `phoebe` crate's `hint::of`, through its `hint::chain`), and no message
//! carries one, so nothing here reads text apart. A message that quotes text
//! from elsewhere (a target's stderr) is a message, whatever it says.

use std::{borrow::Cow, error::Error};

use crate::hint::{WithHint, ask};

/// An error and its causes: each cause's message (its lines) and the hints, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// One entry per cause whose message says something new, each a list of its lines.
    parts: Vec<Vec<String>>,
    hints: Vec<String>,
}

/// The hints `e` itself gives (not its causes'), for the error types this crate and the core know: `WithHint`,
/// the core's `FileError`, [`ContainError`](crate::contain::ContainError) and
/// [`InstallError`](crate::seccomp::InstallError). The `phoebe` crate's `hint::of` asks these and its own types.
pub fn hints_of<'e>(e: &'e (dyn Error + 'static)) -> Vec<Cow<'e, str>> {
    [
        ask::<WithHint>,
        ask::<phoebe_core::files::FileError>,
        ask::<crate::contain::ContainError>,
        ask::<crate::seccomp::InstallError>,
    ]
    .iter()
    .flat_map(|ask| ask(e))
    .collect()
}

impl Chain {
    /// Reads `e` and its causes: each one's message, and the hints `hints_of` finds for it (the `phoebe` crate's
    /// `hint::of`, which knows every type, or this crate's [`hints_of`]), outer first. A cause already quoted by
    /// the message before it is not repeated (aya and `{source}` messages quote their cause); its hints are given
    /// all the same.
    pub fn asking(
        e: &(dyn Error + 'static),
        hints_of: impl for<'e> Fn(&'e (dyn Error + 'static)) -> Vec<Cow<'e, str>>,
    ) -> Self {
        let mut chain = Chain::default();
        let mut cause = Some(e);
        while let Some(c) = cause {
            chain.push(&c.to_string());
            chain.hints.extend(hints_of(c).into_iter().map(Cow::into_owned));
            cause = c.source();
        }
        chain
    }

    fn push(&mut self, message: &str) {
        let lines: Vec<String> = message.lines().map(str::to_owned).collect();
        let joined = lines.join(" ");
        let quoted = self
            .parts
            .last()
            .is_some_and(|prev| prev.join(" ").contains(&joined));
        if !joined.is_empty() && !quoted {
            self.parts.push(lines);
        }
    }

    /// Every cause's message, joined with `: ` (a message of several lines on one line).
    pub fn message(&self) -> String {
        self.parts
            .iter()
            .map(|lines| lines.join(" "))
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// The first line of every cause's message, joined with `: `: the chain as one short line.
    pub fn one_line(&self) -> String {
        self.parts
            .iter()
            .filter_map(|lines| lines.first().cloned())
            .collect::<Vec<_>>()
            .join(": ")
    }

    /// The hints, in the order the chain gave them.
    pub fn hints(&self) -> &[String] {
        &self.hints
    }
}

/// The kernel's errno somewhere in an error's chain (`EPERM: Operation not permitted`: an `io::Error` with an OS
/// error, as aya's errors carry it), else the error's own message.
pub fn errno_of(e: &(dyn Error + 'static)) -> String {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(code) = io.raw_os_error()
        {
            return nix::errno::Errno::from_raw(code).to_string();
        }
        cause = c.source();
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint::{Hint, Hinted, WithHint};

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot start 'cat' under ptrace")]
        Spawn(#[source] Inner),
        #[error("cannot open the listener: {0}")]
        Quoting(#[source] std::io::Error),
        #[error("cannot run 'cat': {0}")]
        QuotingHinted(#[source] Inner),
        #[error("cannot seize 'cat'")]
        Advised(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("cannot attach to the child with PTRACE_SEIZE")]
        Seize(#[source] std::io::Error),
        #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed")]
        Filter,
        #[error("a line; hint: of a target's stderr\nhint: is a message")]
        Quoted,
    }

    impl Hinted for Outer {
        fn hint(&self) -> Option<Cow<'_, str>> {
            match self {
                Outer::Advised(_) => Some(Hint::UsePtrace.into()),
                _ => None,
            }
        }
    }

    impl Hinted for Inner {
        fn hint(&self) -> Option<Cow<'_, str>> {
            match self {
                Inner::Seize(_) => Some("ptrace needs the same uid".into()),
                Inner::Filter => Some("a listener already exists".into()),
                Inner::Quoted => None,
            }
        }
    }

    /// The chain of `e`, whose hints these test types give ([`hints_of`] knows this crate's types only).
    fn chain_of(e: &(dyn Error + 'static)) -> Chain {
        Chain::asking(e, |c| {
            c.downcast_ref::<Outer>()
                .map(Outer::hints)
                .or_else(|| c.downcast_ref::<Inner>().map(Inner::hints))
                .unwrap_or_default()
        })
    }

    fn eperm() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EPERM)
    }

    #[test]
    fn a_hint_on_an_inner_cause_is_collected_and_messages_join() {
        let chain = chain_of(&Outer::Spawn(Inner::Seize(eperm())));
        assert_eq!(
            chain.message(),
            format!(
                "cannot start 'cat' under ptrace: cannot attach to the child with PTRACE_SEIZE: {}",
                eperm()
            )
        );
        assert_eq!(chain.hints(), ["ptrace needs the same uid"]);
    }

    #[test]
    fn two_hints_come_outer_first() {
        let chain = chain_of(&Outer::Advised(Inner::Filter));
        assert_eq!(
            chain.message(),
            "cannot seize 'cat': seccomp(SECCOMP_SET_MODE_FILTER) failed"
        );
        assert_eq!(
            chain.hints(),
            [Hint::UsePtrace.text(), "a listener already exists"]
        );
    }

    #[test]
    fn a_quoted_cause_is_said_once_and_its_hint_is_kept() {
        let chain = chain_of(&Outer::Quoting(eperm()));
        assert_eq!(chain.message(), format!("cannot open the listener: {}", eperm()));
        assert!(chain.hints().is_empty());
        let chain = chain_of(&Outer::QuotingHinted(Inner::Filter));
        assert_eq!(
            chain.message(),
            "cannot run 'cat': seccomp(SECCOMP_SET_MODE_FILTER) failed"
        );
        assert_eq!(chain.hints(), ["a listener already exists"]);
    }

    /// A message quoting text from elsewhere (a `--reset` command's stderr) that said `; hint:` or began a line with
    /// `hint:` had that part cut off and printed as phoebe's hint.
    #[test]
    fn regression_text_saying_hint_in_a_message_was_taken_for_a_hint() {
        let chain = chain_of(&Inner::Quoted);
        assert_eq!(
            chain.message(),
            "a line; hint: of a target's stderr hint: is a message"
        );
        assert!(chain.hints().is_empty());
    }

    #[test]
    fn the_crate_hint_types_are_found_through_anyhow() {
        let e: anyhow::Error = WithHint::new("no models", "give --fault SPEC").into();
        let e = e.context("cannot run the campaign");
        let chain = Chain::asking(e.as_ref(), hints_of);
        assert_eq!(chain.message(), "cannot run the campaign: no models");
        assert_eq!(chain.hints(), ["give --fault SPEC"]);
        let e = anyhow::Error::new(
            WithHint::new("cannot read the plan", Hint::NewCampaignElsewhere).caused_by(eperm()),
        );
        let chain = Chain::asking(e.as_ref(), hints_of);
        assert_eq!(chain.message(), format!("cannot read the plan: {}", eperm()));
        assert_eq!(chain.hints(), [Hint::NewCampaignElsewhere.text()]);
    }

    #[test]
    fn one_line_keeps_the_first_line_of_each_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("the verifier refused phoebe_x:\n0: r0 = 0\n1: exit")]
        struct Verifier;
        assert_eq!(
            Chain::asking(&Verifier, hints_of).one_line(),
            "the verifier refused phoebe_x:"
        );
        let chain = chain_of(&Outer::Spawn(Inner::Seize(eperm())));
        assert_eq!(
            chain.one_line(),
            format!(
                "cannot start 'cat' under ptrace: cannot attach to the child with PTRACE_SEIZE: {}",
                eperm()
            )
        );
    }

    #[test]
    fn the_errno_is_found_anywhere_in_the_chain() {
        assert_eq!(
            errno_of(&Outer::Spawn(Inner::Seize(eperm()))),
            "EPERM: Operation not permitted"
        );
        assert_eq!(
            errno_of(&Outer::Spawn(Inner::Filter)),
            "cannot start 'cat' under ptrace"
        );
    }
}
