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

/// What one service-mode run showed.
#[derive(Debug, Clone, Copy)]
pub struct ServiceEvidence {
    /// How the service ended, when it ended by itself before phoebe stopped it.
    pub died: Option<TargetExit>,
    pub never_ready: bool,
    pub round_hung: bool,
    pub injected: u64,
    pub matched: u64,
    pub rounds: crate::model::Rounds,
    pub check_passed: Option<bool>,
}

/// The verdict of a service-mode run. Order: crashed or failed (the service died), hung (never ready, or a
/// round got no answer), not exercised, corrupted (rounds after injection fail, or the check does), failed (rounds
/// failed while injecting but recovered after), resilient.
pub fn judge_service(e: &ServiceEvidence) -> (Verdict, String) {
    let r = &e.rounds;
    match e.died {
        Some(exit @ TargetExit::Signal(_)) => {
            return (
                Verdict::Crashed,
                format!("the service was {exit} after {} injection(s)", e.injected),
            );
        }
        Some(exit) => {
            return (
                Verdict::Failed,
                format!("the service ended ({exit}) after {} injection(s)", e.injected),
            );
        }
        None => {}
    }
    if e.never_ready {
        return (Verdict::Hung, "the service never became ready".into());
    }
    if e.round_hung {
        return (
            Verdict::Hung,
            format!(
                "a workload round got no answer in time ({} injection(s))",
                e.injected
            ),
        );
    }
    if e.injected == 0 {
        let why = match e.matched {
            0 => "the service never made a call the fault matches while injection was on".to_owned(),
            n => format!("{n} matching call(s) while injection was on, none drawn for injection"),
        };
        return (Verdict::NotExercised, why);
    }
    if !r.after.all_ok() || e.check_passed == Some(false) {
        return (
            Verdict::Corrupted,
            format!(
                "after injection stopped, {} of {} rounds ok{}: the damage outlived the fault",
                r.after.ok,
                r.after.total,
                if e.check_passed == Some(false) {
                    " and the check failed"
                } else {
                    ""
                }
            ),
        );
    }
    if !r.injected.all_ok() {
        return (
            Verdict::Failed,
            format!(
                "{} of {} rounds ok while injecting; all recovered after",
                r.injected.ok, r.injected.total
            ),
        );
    }
    (
        Verdict::Resilient,
        format!(
            "{} of {} rounds ok while injecting {} error(s)",
            r.injected.ok, r.injected.total, e.injected
        ),
    )
}

#[cfg(test)]
mod service_tests {
    use super::*;
    use crate::model::{RoundStats, Rounds};

    fn stats(ok: u32, total: u32) -> RoundStats {
        RoundStats {
            ok,
            total,
            mean_ms: 1.0,
        }
    }

    fn evidence() -> ServiceEvidence {
        ServiceEvidence {
            died: None,
            never_ready: false,
            round_hung: false,
            injected: 4,
            matched: 9,
            rounds: Rounds {
                steady: stats(5, 5),
                injected: stats(5, 5),
                after: stats(5, 5),
            },
            check_passed: None,
        }
    }

    #[test]
    fn service_verdicts() {
        assert_eq!(judge_service(&evidence()).0, Verdict::Resilient);
        let crashed = ServiceEvidence {
            died: Some(TargetExit::Signal(libc::SIGABRT)),
            ..evidence()
        };
        assert_eq!(
            judge_service(&crashed),
            (
                Verdict::Crashed,
                "the service was killed by SIGABRT after 4 injection(s)".into()
            )
        );
        assert_eq!(
            judge_service(&ServiceEvidence {
                died: Some(TargetExit::Code(1)),
                ..evidence()
            })
            .0,
            Verdict::Failed
        );
        assert_eq!(
            judge_service(&ServiceEvidence {
                never_ready: true,
                ..evidence()
            })
            .0,
            Verdict::Hung
        );
        assert_eq!(
            judge_service(&ServiceEvidence {
                round_hung: true,
                ..evidence()
            })
            .0,
            Verdict::Hung
        );
        assert_eq!(
            judge_service(&ServiceEvidence {
                injected: 0,
                ..evidence()
            })
            .0,
            Verdict::NotExercised
        );
        let flaky = ServiceEvidence {
            rounds: Rounds {
                injected: stats(2, 5),
                ..evidence().rounds
            },
            ..evidence()
        };
        assert_eq!(
            judge_service(&flaky),
            (
                Verdict::Failed,
                "2 of 5 rounds ok while injecting; all recovered after".into()
            )
        );
        let broken = ServiceEvidence {
            rounds: Rounds {
                after: stats(0, 5),
                ..evidence().rounds
            },
            ..evidence()
        };
        assert_eq!(judge_service(&broken).0, Verdict::Corrupted);
        assert_eq!(
            judge_service(&ServiceEvidence {
                check_passed: Some(false),
                ..evidence()
            })
            .0,
            Verdict::Corrupted
        );
    }
}
