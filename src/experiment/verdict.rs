//! The verdict of one experiment run (DESIGN §7), from what was observed. A pure function.

use crate::model::{TargetExit, Verdict};

/// What one run showed.
#[derive(Debug, Clone, Copy)]
pub struct Evidence {
    /// The exit status of every baseline run.
    pub baseline: TargetExit,
    /// The target's status; `None` when it was stopped at the timeout.
    pub exit: Option<TargetExit>,
    pub timed_out: bool,
    /// Calls the fault matched during the run, and how many of them it injected.
    pub matched: u64,
    pub injected: u64,
    /// `--check` after the run (`None`: no check, or not run).
    pub check_passed: Option<bool>,
    /// The plain run (and check) after injection (`None`: not run).
    pub post_run_passed: Option<bool>,
}

/// The verdict and why, in one sentence. Order: not exercised (nothing was injected, nothing to judge), hung,
/// crashed, corrupted (the damage outlived the fault), failed, resilient.
pub fn judge(e: &Evidence) -> (Verdict, String) {
    if e.injected == 0 && !e.timed_out {
        let why = match e.matched {
            0 => "the program never made a call the fault matches".to_owned(),
            n => format!("{n} matching call(s), none drawn for injection"),
        };
        return (Verdict::NotExercised, why);
    }
    if e.timed_out {
        return (
            Verdict::Hung,
            format!("still running at the timeout after {} injection(s)", e.injected),
        );
    }
    let exit = e.exit.unwrap_or(TargetExit::Code(-1));
    if let TargetExit::Signal(_) = exit {
        return (
            Verdict::Crashed,
            format!("{exit} after {} injection(s)", e.injected),
        );
    }
    if e.post_run_passed == Some(false) {
        return (
            Verdict::Corrupted,
            "the run after injection stopped failed: the damage outlived the fault".into(),
        );
    }
    if exit != e.baseline {
        return (Verdict::Failed, format!("{exit}, baseline {}", e.baseline));
    }
    if e.check_passed == Some(false) {
        return (Verdict::Failed, "the check failed".into());
    }
    (
        Verdict::Resilient,
        format!("{exit} like the baseline, {} injection(s)", e.injected),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence() -> Evidence {
        Evidence {
            baseline: TargetExit::Code(0),
            exit: Some(TargetExit::Code(0)),
            timed_out: false,
            matched: 10,
            injected: 3,
            check_passed: Some(true),
            post_run_passed: Some(true),
        }
    }

    #[test]
    fn each_verdict() {
        assert_eq!(judge(&evidence()).0, Verdict::Resilient);
        let unlucky = judge(&Evidence {
            injected: 0,
            ..evidence()
        });
        assert_eq!(
            unlucky,
            (
                Verdict::NotExercised,
                "10 matching call(s), none drawn for injection".into()
            )
        );
        let never = judge(&Evidence {
            injected: 0,
            matched: 0,
            ..evidence()
        });
        assert_eq!(never.1, "the program never made a call the fault matches");
        assert_eq!(
            judge(&Evidence {
                timed_out: true,
                exit: None,
                ..evidence()
            })
            .0,
            Verdict::Hung
        );
        let crashed = judge(&Evidence {
            exit: Some(TargetExit::Signal(libc::SIGABRT)),
            ..evidence()
        });
        assert_eq!(
            crashed,
            (Verdict::Crashed, "killed by SIGABRT after 3 injection(s)".into())
        );
        assert_eq!(
            judge(&Evidence {
                post_run_passed: Some(false),
                ..evidence()
            })
            .0,
            Verdict::Corrupted
        );
        let failed = judge(&Evidence {
            exit: Some(TargetExit::Code(1)),
            ..evidence()
        });
        assert_eq!(
            failed,
            (Verdict::Failed, "exit status 1, baseline exit status 0".into())
        );
        assert_eq!(
            judge(&Evidence {
                check_passed: Some(false),
                ..evidence()
            })
            .0,
            Verdict::Failed
        );
    }

    #[test]
    fn a_hang_with_no_injection_is_still_a_hang() {
        // It hung before (or without) reaching the call: report it rather than calling it unexercised.
        assert_eq!(
            judge(&Evidence {
                injected: 0,
                timed_out: true,
                exit: None,
                ..evidence()
            })
            .0,
            Verdict::Hung
        );
    }

    #[test]
    fn corruption_outranks_a_plain_failure() {
        let e = Evidence {
            exit: Some(TargetExit::Code(1)),
            post_run_passed: Some(false),
            ..evidence()
        };
        assert_eq!(judge(&e).0, Verdict::Corrupted);
    }
}
