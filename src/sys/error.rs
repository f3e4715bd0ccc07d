//! Error chains for people: the one place that flattens an error and its causes into a sentence, takes the
//! `hint:` lines out of it, and finds the kernel's errno in it. `main` prints what [`Chain`] gives; `doctor`,
//! `monitor` and the eBPF injector put chains on one line with it.
//!
//! Hints are still written into messages (a line starting with `hint:`, or `; hint:` after the message; the
//! advice several messages give is a `crate::hint::Hint`); this module is the only one that reads them back.

use std::error::Error;

/// An error and its causes: each cause's message (its lines joined, hints removed) and the hints, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// One entry per cause whose message says something new, each a list of its lines.
    parts: Vec<Vec<String>>,
    hints: Vec<String>,
}

impl Chain {
    /// Reads `e` and its causes. A cause already quoted by the message before it is not repeated (aya and
    /// `{source}` messages quote their cause).
    pub fn new(e: &(dyn Error + 'static)) -> Self {
        let mut chain = Chain::default();
        let mut cause = Some(e);
        while let Some(c) = cause {
            chain.push(&c.to_string());
            cause = c.source();
        }
        chain
    }

    fn push(&mut self, text: &str) {
        let mut lines = Vec::new();
        for line in text.lines() {
            // A hint starts a line, or follows the message after "; hint:".
            let (message, hint) = match line.strip_prefix("hint:") {
                Some(hint) => ("", Some(hint)),
                None => match line.split_once("; hint:") {
                    Some((message, hint)) => (message, Some(hint)),
                    None => (line, None),
                },
            };
            if !message.is_empty() {
                lines.push(message.to_owned());
            }
            if let Some(hint) = hint {
                self.hints.push(hint.trim().to_owned());
            }
        }
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

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot start 'cat' under ptrace")]
        Spawn(#[source] Inner),
        #[error("cannot open the listener: {0}")]
        Quoting(#[source] std::io::Error),
    }

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("cannot attach to the child with PTRACE_SEIZE\nhint: ptrace needs the same uid")]
        Seize(#[source] std::io::Error),
        #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed; hint: a listener already exists")]
        Filter,
    }

    fn eperm() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EPERM)
    }

    #[test]
    fn messages_join_and_hints_come_out_of_either_form() {
        let e = Outer::Spawn(Inner::Seize(eperm()));
        let chain = Chain::new(&e);
        assert_eq!(
            chain.message(),
            format!(
                "cannot start 'cat' under ptrace: cannot attach to the child with PTRACE_SEIZE: {}",
                eperm()
            )
        );
        assert_eq!(chain.hints(), ["ptrace needs the same uid"]);
        let chain = Chain::new(&Outer::Spawn(Inner::Filter));
        assert_eq!(
            chain.message(),
            "cannot start 'cat' under ptrace: seccomp(SECCOMP_SET_MODE_FILTER) failed"
        );
        assert_eq!(chain.hints(), ["a listener already exists"]);
    }

    #[test]
    fn a_quoted_cause_is_said_once() {
        let chain = Chain::new(&Outer::Quoting(eperm()));
        assert_eq!(chain.message(), format!("cannot open the listener: {}", eperm()));
    }

    #[test]
    fn one_line_keeps_the_first_line_of_each_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("the verifier refused phoebe_x:\n0: r0 = 0\n1: exit")]
        struct Verifier;
        assert_eq!(Chain::new(&Verifier).one_line(), "the verifier refused phoebe_x:");
        let chain = Chain::new(&Outer::Spawn(Inner::Seize(eperm())));
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
