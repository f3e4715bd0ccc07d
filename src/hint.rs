//! The hints several errors and refusals give, as data: one [`Hint`] per piece of advice, its words in one place.
//!
//! A message still carries its hint as text (a line starting with `hint: `, or `; hint: ` after the message),
//! which `sys::error::Chain` takes out for `main` to print; what is said once stays where it is said. Does not
//! own: where hints are printed (`main`, `doctor`).

use std::fmt;

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
}
