//! The verdict of one experiment run (DESIGN §7), from what was observed. A pure function.

use crate::model::{TargetExit, Verdict};

/// What one run showed.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The exit status of every baseline run.
    pub baseline: TargetExit,
    /// The target's status; `None` when it was stopped at the timeout.
    pub exit: Option<TargetExit>,
    pub timed_out: bool,
    /// Calls the fault matched during the run, and how many of them it injected.
    pub matched: u64,
    pub injected: u64,
    /// The run's injection log was never written (phoebe had to kill the inner run before it could save it), so
    /// `matched` and `injected` are unknown, not zero.
    pub log_lost: bool,
    /// `--check` after the run (`None`: no check, or not run).
    pub check_passed: Option<bool>,
    /// The plain run (and check) after injection (`None`: not run).
    pub post_run_passed: Option<bool>,
    /// The signal the injections raised with their errno, as the kernel raises it (SIGPIPE with a write's EPIPE).
    pub raised: Option<i32>,
    /// Calls of the fault's class that its guards kept out, by what they had (`edge=yes`): `RuleStats::guarded`.
    pub guarded: Vec<(String, u64)>,
}

/// What the fault's guards kept out, in words (`None` when they kept nothing out): `865 call(s) of its class
/// had edge=yes (an edge-triggered epoll watched the descriptor, …)`.
fn kept_out(guarded: &[(String, u64)]) -> Option<String> {
    let parts: Vec<String> = guarded
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(had, n)| match crate::model::shape::guard_explanation(had) {
            Some(why) => format!("{n} call(s) of its class had {had} ({why})"),
            None => format!("{n} call(s) of its class had {had}"),
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "its guards kept out every call of its class: {}",
            parts.join("; ")
        )
    })
}

/// The verdict and why, in one sentence. Order: not exercised (nothing was injected, nothing to judge), hung,
/// crashed, corrupted (the damage outlived the fault), failed, resilient.
pub fn judge(e: &Evidence) -> (Verdict, String) {
    if e.injected == 0 && !e.timed_out {
        let why = match e.matched {
            0 => match kept_out(&e.guarded) {
                Some(why) => format!("the program made no call the fault matches: {why}"),
                None => "the program never made a call the fault matches".to_owned(),
            },
            n => format!("{n} matching call(s), none drawn for injection"),
        };
        return (Verdict::NotExercised, why);
    }
    if e.timed_out && e.log_lost {
        return (
            Verdict::Hung,
            "still running at the timeout; its injection log was lost (the inner phoebe did not save it within \
             the 10 s it is given after SIGTERM, e.g. a log of millions of injections), so how many calls were \
             injected is unknown"
                .to_owned(),
        );
    }
    if e.timed_out {
        return (
            Verdict::Hung,
            format!("still running at the timeout after {} injection(s)", e.injected),
        );
    }
    let exit = e.exit.unwrap_or(TargetExit::Code(-1));
    if let TargetExit::Signal(signal) = exit
        && e.raised == Some(signal)
    {
        // The kernel's own way to end a writer whose reader is gone (`yes | head`), not a crash: the program
        // failed with the error by the default it did not change.
        return (
            Verdict::Failed,
            format!(
                "{exit}, which the kernel raises with the error phoebe injected ({} injection(s)): the program \
                 does not ignore it, so it ends as it would when its reader is gone",
                e.injected
            ),
        );
    }
    if let TargetExit::Signal(_) = exit {
        // A crash whose damage outlived it (files it did not clean up) is still a crash, and says both.
        let outlived = if e.post_run_passed == Some(false) {
            "; the plain run after it failed too: the damage outlived the fault"
        } else {
            ""
        };
        return (
            Verdict::Crashed,
            format!("{exit} after {} injection(s){outlived}", e.injected),
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
            log_lost: false,
            check_passed: Some(true),
            post_run_passed: Some(true),
            raised: None,
            guarded: Vec::new(),
        }
    }

    /// tempfile's test suite under `mmap-ENOMEM`: the crashed run left sockets of fixed names in /tmp, and the
    /// plain run after it failed, which the detail did not say ("killed by SIGABRT after 3 injection(s)").
    #[test]
    fn regression_a_crash_whose_damage_outlived_it_said_only_that_it_crashed() {
        let (verdict, why) = judge(&Evidence {
            exit: Some(TargetExit::Signal(libc::SIGABRT)),
            post_run_passed: Some(false),
            ..evidence()
        });
        assert_eq!(verdict, Verdict::Crashed);
        assert_eq!(
            why,
            "killed by SIGABRT after 3 injection(s); the plain run after it failed too: the damage outlived the fault"
        );
        let (_, why) = judge(&Evidence {
            exit: Some(TargetExit::Signal(libc::SIGABRT)),
            ..evidence()
        });
        assert_eq!(why, "killed by SIGABRT after 3 injection(s)");
    }

    /// nginx's plausible `recvfrom-short` with `edge=no`: every read was of a connection an edge-triggered epoll
    /// watched, and "the service never made a call the fault matches" was untrue. The verdict says what the guard
    /// kept out and why.
    #[test]
    fn a_fault_whose_guards_kept_every_call_out_says_so() {
        let (verdict, why) = judge(&Evidence {
            matched: 0,
            injected: 0,
            guarded: vec![("edge=yes".into(), 865), ("edge=unknown".into(), 2)],
            ..evidence()
        });
        assert_eq!(verdict, Verdict::NotExercised);
        assert!(
            why.starts_with(
                "the program made no call the fault matches: its guards kept out every call of its class: 865 \
                 call(s) of its class had edge=yes (an edge-triggered epoll watched the descriptor"
            ),
            "{why}"
        );
        assert!(
            why.ends_with(
                "2 call(s) of its class had edge=unknown (phoebe could not tell whether the call was in it)"
            ),
            "{why}"
        );
    }

    /// Found on CPython's test_selectors with `epoll_wait:EINTR` at p = 1: the interpreter retried for ever, the
    /// inner phoebe's log grew to 186 MB and was not saved within the grace period, and the report said "after 0
    /// injection(s)" of a run that had injected millions.
    #[test]
    fn a_hung_run_whose_log_was_lost_does_not_claim_zero_injections() {
        let (verdict, detail) = judge(&Evidence {
            exit: None,
            timed_out: true,
            matched: 0,
            injected: 0,
            log_lost: true,
            ..evidence()
        });
        assert_eq!(verdict, Verdict::Hung);
        assert!(detail.contains("injection log was lost"), "{detail}");
        assert!(!detail.contains("0 injection"), "{detail}");
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

    /// Regression: every target ran with the SIGPIPE phoebe's runtime ignores, so an injected EPIPE met a program
    /// that would have died of the signal. Now it dies of it, as `yes | head` does: the program's way to fail with
    /// the error, not a crash; any other signal, or a SIGPIPE the injections did not raise, is still one.
    #[test]
    fn regression_death_by_the_sigpipe_of_an_injected_epipe_is_a_failure_not_a_crash() {
        let sigpipe = Evidence {
            exit: Some(TargetExit::Signal(libc::SIGPIPE)),
            raised: Some(libc::SIGPIPE),
            ..evidence()
        };
        let (verdict, detail) = judge(&sigpipe);
        assert_eq!(verdict, Verdict::Failed);
        assert!(
            detail.starts_with("killed by SIGPIPE, which the kernel raises"),
            "{detail}"
        );
        let unraised = Evidence {
            raised: None,
            ..sigpipe.clone()
        };
        assert_eq!(judge(&unraised).0, Verdict::Crashed);
        let other = Evidence {
            exit: Some(TargetExit::Signal(libc::SIGSEGV)),
            ..sigpipe.clone()
        };
        assert_eq!(judge(&other).0, Verdict::Crashed);
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
#[derive(Debug, Clone)]
pub struct ServiceEvidence {
    /// How the service ended, when it ended by itself before phoebe stopped it.
    pub died: Option<TargetExit>,
    pub never_ready: bool,
    pub round_hung: bool,
    pub injected: u64,
    pub matched: u64,
    pub rounds: crate::model::Rounds,
    pub check_passed: Option<bool>,
    /// `--tolerance`: rounds that may fail while injecting.
    pub tolerance: u32,
    /// The signal the injections raised with their errno, as the kernel raises it (SIGPIPE with a write's EPIPE).
    pub raised: Option<i32>,
    /// Every error injected says the call's peer failed (`model::realism::peer_failure`: a reset, a socket's
    /// EPIPE). The service's peer is the workload, so the rounds whose connections were "reset" fail by the
    /// simulation itself: they do not count against the service.
    pub peer: bool,
    /// Calls of the fault's class that its guards kept out, by what they had: `RuleStats::guarded`.
    pub guarded: Vec<(String, u64)>,
    /// The inner phoebe's injection log is missing (it was killed before it saved it): `injected` and `matched`
    /// are unknown, not 0.
    pub log_lost: bool,
}

/// `; every round after waited 5.1 s …`, when no round after injection succeeded and their median took at least
/// ten times the steady median (and a second or more): the service did not answer wrongly, it stopped answering,
/// and the rounds ended when the workload gave up waiting (a wedged thread, a lost wake-up, a full backlog).
fn stopped_answering(r: &crate::model::Rounds) -> Option<String> {
    let after = &r.after;
    let slow = after.p50_ms >= 1000.0 && after.p50_ms >= 10.0 * r.steady.p50_ms;
    (after.total > 0 && after.ok == 0 && slow).then(|| {
        format!(
            "; every round after waited {} for an answer (steady: {}): the service stopped answering, and each \
             round ended when the workload gave up",
            millis_text(after.p50_ms),
            millis_text(r.steady.p50_ms)
        )
    })
}

/// `5.1 s` or `97 ms`.
fn millis_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// The verdict of a service-mode run. Order: crashed or failed (the service died), hung (never ready, or a
/// round got no answer), not exercised, corrupted (rounds after injection fail, or the check does), failed (rounds
/// failed while injecting but recovered after), resilient.
pub fn judge_service(e: &ServiceEvidence) -> (Verdict, String) {
    // "4 injection(s)", or what is known when the log is lost: never "0", which would say nothing was injected.
    let count = |noun: &str| {
        if e.log_lost {
            format!(
                "an unknown number of {noun}s (its injection log was lost: the inner phoebe was killed before it \
                 saved it)"
            )
        } else {
            format!("{} {noun}(s)", e.injected)
        }
    };
    let n = count("injection");
    let r = &e.rounds;
    match e.died {
        Some(exit @ TargetExit::Signal(signal)) if e.raised == Some(signal) => {
            return (
                Verdict::Crashed,
                format!(
                    "the service was {exit}, which the kernel raises with the error phoebe injected ({n}): a \
                     server that does not ignore it dies whenever a client goes away mid-reply"
                ),
            );
        }
        Some(exit @ TargetExit::Signal(_)) => {
            return (Verdict::Crashed, format!("the service was {exit} after {n}"));
        }
        Some(exit) => {
            return (Verdict::Failed, format!("the service ended ({exit}) after {n}"));
        }
        None => {}
    }
    if e.never_ready {
        return (Verdict::Hung, "the service never became ready".into());
    }
    if e.round_hung {
        return (
            Verdict::Hung,
            format!("a workload round got no answer in time ({n})"),
        );
    }
    if e.injected == 0 && !e.log_lost {
        let why = match e.matched {
            0 => match kept_out(&e.guarded) {
                Some(why) => {
                    format!("the service made no call the fault matches while injection was on: {why}")
                }
                None => "the service never made a call the fault matches while injection was on".to_owned(),
            },
            n => format!("{n} matching call(s) while injection was on, none drawn for injection"),
        };
        return (Verdict::NotExercised, why);
    }
    // Rounds after that failed at first and then all passed, and a check at the end that passed: the service came
    // back by itself (a crash recovery), which is not damage that outlived the fault.
    let came_back = r.after.recovered.filter(|_| e.check_passed != Some(false));
    if (!r.after.all_ok() && came_back.is_none()) || e.check_passed == Some(false) {
        return (
            Verdict::Corrupted,
            format!(
                "after injection stopped, {} of {} rounds ok{}: the damage outlived the fault{}",
                r.after.ok,
                r.after.total,
                if e.check_passed == Some(false) {
                    " and the check after them failed"
                } else {
                    ""
                },
                stopped_answering(r).unwrap_or_default()
            ),
        );
    }
    if let Some(back) = came_back {
        return (
            Verdict::Failed,
            format!(
                "{} of {} rounds ok while injecting; the service came back by itself once injection stopped: the \
                 first {} of {} rounds after failed, then every one passed (about {}; --recovery {}s would wait \
                 that long before the rounds after)",
                r.injected.ok,
                r.injected.total,
                back.failed,
                r.after.total,
                millis_text(back.ms),
                (back.ms / 1000.0).ceil().max(1.0)
            ),
        );
    }
    let failed_rounds = r.injected.total.saturating_sub(r.injected.ok);
    if e.peer && failed_rounds > 0 {
        return (
            Verdict::Resilient,
            format!(
                "{} of {} rounds ok while injecting {}, and every round after: the rounds that failed are the \
                 workload's own connections, whose end the fault simulates (the workload is the service's \
                 peer); the service stayed up and served the next ones",
                r.injected.ok,
                r.injected.total,
                count("peer failure")
            ),
        );
    }
    if failed_rounds > 0 && failed_rounds <= e.tolerance {
        return (
            Verdict::Resilient,
            format!(
                "{} of {} rounds ok while injecting {}, within --tolerance {}",
                r.injected.ok,
                r.injected.total,
                count("error"),
                e.tolerance
            ),
        );
    }
    if !r.injected.all_ok() {
        return (
            Verdict::Failed,
            format!(
                "{} of {} rounds ok while injecting{}; all recovered after",
                r.injected.ok,
                r.injected.total,
                if e.log_lost {
                    format!(" ({n})")
                } else {
                    String::new()
                }
            ),
        );
    }
    if e.log_lost {
        // Every round passed, and nothing says whether a call was failed at all.
        return (
            Verdict::NotExercised,
            format!(
                "{} of {} rounds ok while injecting, but {n}: whether any call was failed is unknown",
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
            p50_ms: 1.0,
            p99_ms: 1.0,
            recovered: None,
            unplayed: 0,
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
            tolerance: 0,
            raised: None,
            peer: false,
            guarded: Vec::new(),
            log_lost: false,
        }
    }

    /// Regression, found on PostgreSQL under plausible pwrite64-ENOSPC and fdatasync-EIO: a backend PANICs, the
    /// postmaster runs crash recovery for about a second and serves again. The check, run right after the switch,
    /// met "the database system is in recovery mode", and the run was `corrupted`, "the damage outlived the
    /// fault", of a service that came back by itself. The check now runs after the rounds after, and rounds that
    /// fail at first and then all pass are a recovery.
    #[test]
    fn regression_a_service_in_crash_recovery_was_corrupted() {
        let back = ServiceEvidence {
            rounds: Rounds {
                steady: stats(5, 5),
                injected: stats(1, 5),
                after: RoundStats::from_rounds(4, &[900.0, 120.0, 110.0, 130.0, 125.0]).with_recovery(
                    &[false, true, true, true, true],
                    &[900.0, 120.0, 110.0, 130.0, 125.0],
                ),
            },
            check_passed: Some(true),
            ..evidence()
        };
        assert_eq!(
            judge_service(&back),
            (
                Verdict::Failed,
                "1 of 5 rounds ok while injecting; the service came back by itself once injection stopped: the \
                 first 1 of 5 rounds after failed, then every one passed (about 900 ms; --recovery 1s would wait \
                 that long before the rounds after)"
                    .into()
            )
        );
        // The check at the end fails: the state stayed broken.
        let broken = ServiceEvidence {
            check_passed: Some(false),
            ..back.clone()
        };
        assert_eq!(judge_service(&broken).0, Verdict::Corrupted);
        // A round that fails after one passed is no recovery.
        let flapping = ServiceEvidence {
            rounds: Rounds {
                after: RoundStats::from_rounds(3, &[100.0; 5])
                    .with_recovery(&[false, true, false, true, true], &[100.0; 5]),
                ..back.rounds
            },
            ..back.clone()
        };
        assert_eq!(judge_service(&flapping).0, Verdict::Corrupted);
    }

    /// Regression, found on PostgreSQL under a plausible fdatasync-EIO: the injected EIO made a backend PANIC,
    /// the postmaster went into crash recovery and took longer than phoebe's 5 s to stop, the inner phoebe was
    /// killed before it saved its log, and the run — every round failed while injecting and after — was
    /// `not-exercised`, "the service never made a call the fault matches".
    #[test]
    fn regression_a_service_run_whose_injection_log_was_lost_was_not_exercised() {
        let lost = ServiceEvidence {
            injected: 0,
            matched: 0,
            log_lost: true,
            ..evidence()
        };
        let failing = ServiceEvidence {
            rounds: Rounds {
                steady: stats(5, 5),
                injected: stats(0, 5),
                after: stats(0, 5),
            },
            check_passed: Some(false),
            ..lost.clone()
        };
        let (verdict, detail) = judge_service(&failing);
        assert_eq!(verdict, Verdict::Corrupted, "{detail}");
        assert!(!detail.contains("never made a call"), "{detail}");
        let (verdict, detail) = judge_service(&ServiceEvidence {
            died: Some(TargetExit::Signal(libc::SIGABRT)),
            ..lost.clone()
        });
        assert_eq!(verdict, Verdict::Crashed);
        assert_eq!(
            detail,
            "the service was killed by SIGABRT after an unknown number of injections (its injection log was lost: \
             the inner phoebe was killed before it saved it)"
        );
        // Every round passed: whether anything was injected is unknown, which is not `resilient`.
        let (verdict, detail) = judge_service(&lost);
        assert_eq!(verdict, Verdict::NotExercised);
        assert!(
            detail.contains("whether any call was failed is unknown"),
            "{detail}"
        );
    }

    #[test]
    fn a_service_fault_whose_guards_kept_every_call_out_says_so() {
        let (verdict, why) = judge_service(&ServiceEvidence {
            matched: 0,
            injected: 0,
            guarded: vec![("peer=self".into(), 40)],
            ..evidence()
        });
        assert_eq!(verdict, Verdict::NotExercised);
        assert_eq!(
            why,
            "the service made no call the fault matches while injection was on: its guards kept out every call of \
             its class: 40 call(s) of its class had peer=self (the process held the other end itself, as with a \
             self-pipe, whose peer never goes away)"
        );
    }

    /// Found on Redis in service mode: the plausible `read-ECONNRESET`, `write-ECONNRESET` and `write-EPIPE-tcp`
    /// were `failed` ("0 of 5 rounds ok while injecting; all recovered after"). Redis closed each connection it
    /// was told the peer had reset, as it should, and the peer — redis-benchmark, the workload — saw its
    /// connection end: the simulation itself, not the service's failure. A peer fault's failed rounds now do not
    /// count against a service that stayed up and recovered; a death, a hang or rounds failing after still do.
    #[test]
    fn regression_peer_resets_failed_the_service_for_its_workloads_own_connections() {
        let reset = ServiceEvidence {
            peer: true,
            rounds: Rounds {
                steady: stats(5, 5),
                injected: stats(0, 5),
                after: stats(5, 5),
            },
            ..evidence()
        };
        let (verdict, detail) = judge_service(&reset);
        assert_eq!(verdict, Verdict::Resilient);
        assert!(
            detail.starts_with("0 of 5 rounds ok while injecting 4 peer failure(s)"),
            "{detail}"
        );
        assert!(detail.contains("the workload is the service's peer"), "{detail}");
        let not_a_peer = ServiceEvidence {
            peer: false,
            ..reset.clone()
        };
        assert_eq!(judge_service(&not_a_peer).0, Verdict::Failed);
        let broken_after = ServiceEvidence {
            rounds: Rounds {
                after: stats(3, 5),
                ..reset.rounds
            },
            ..reset.clone()
        };
        let (verdict, detail) = judge_service(&broken_after);
        assert_eq!(verdict, Verdict::Corrupted);
        assert!(!detail.contains("stopped answering"), "{detail}");
        let died = ServiceEvidence {
            died: Some(TargetExit::Code(1)),
            ..reset.clone()
        };
        assert_eq!(judge_service(&died).0, Verdict::Failed);
        let hung = ServiceEvidence {
            round_hung: true,
            ..reset.clone()
        };
        assert_eq!(judge_service(&hung).0, Verdict::Hung);
    }

    /// Python's `http.server` under `mmap:ENOMEM`: a request thread died bootstrapping (MemoryError) and the
    /// accepting thread waited for it forever in `Thread.start()` (CPython gh-140746), so every round after timed
    /// out in the workload. The verdict said only "the damage outlived the fault"; it says the service stopped
    /// answering, with the rounds' wait against the steady one.
    #[test]
    fn regression_a_wedged_service_was_reported_without_saying_it_stopped_answering() {
        let slow = |ok, total, p50_ms| RoundStats {
            ok,
            total,
            mean_ms: p50_ms,
            p50_ms,
            p99_ms: p50_ms,
            recovered: None,
            unplayed: 0,
        };
        let wedged = ServiceEvidence {
            died: None,
            never_ready: false,
            round_hung: false,
            injected: 2,
            matched: 4,
            rounds: Rounds {
                steady: slow(5, 5, 97.0),
                injected: slow(0, 5, 5099.0),
                after: slow(0, 5, 5096.0),
            },
            check_passed: None,
            tolerance: 0,
            raised: None,
            peer: false,
            guarded: Vec::new(),
            log_lost: false,
        };
        let (verdict, detail) = judge_service(&wedged);
        assert_eq!(verdict, Verdict::Corrupted);
        assert_eq!(
            detail,
            "after injection stopped, 0 of 5 rounds ok: the damage outlived the fault; every round after waited \
             5.1 s for an answer (steady: 97 ms): the service stopped answering, and each round ended when the \
             workload gave up"
        );
        // Rounds after that fail fast answered, wrongly: not a wedge.
        let fast = ServiceEvidence {
            rounds: Rounds {
                after: slow(0, 5, 120.0),
                ..wedged.rounds
            },
            ..wedged.clone()
        };
        assert!(!judge_service(&fast).1.contains("stopped answering"));
        // One round after that succeeded: the service answers, slowly or not.
        let some_ok = ServiceEvidence {
            rounds: Rounds {
                after: slow(1, 5, 5096.0),
                ..wedged.rounds
            },
            ..wedged
        };
        assert!(!judge_service(&some_ok).1.contains("stopped answering"));
    }

    /// A server killed by the SIGPIPE that comes with an injected EPIPE crashed, and the detail says why: servers
    /// must ignore it, or every client that goes away mid-reply kills them.
    #[test]
    fn a_service_killed_by_the_sigpipe_of_its_epipe_crashed_and_says_why() {
        let (verdict, detail) = judge_service(&ServiceEvidence {
            died: Some(TargetExit::Signal(libc::SIGPIPE)),
            raised: Some(libc::SIGPIPE),
            ..evidence()
        });
        assert_eq!(verdict, Verdict::Crashed);
        assert!(
            detail.contains("killed by SIGPIPE, which the kernel raises"),
            "{detail}"
        );
        assert!(detail.contains("does not ignore it"), "{detail}");
    }

    /// Issue 14 item 6: one failed round while injecting made a service `failed`, however many a client would
    /// retry; `--tolerance N` lets N rounds fail while injecting, never after.
    #[test]
    fn rounds_within_the_tolerance_are_resilient() {
        let mut e = evidence();
        e.rounds.injected = stats(3, 5);
        assert_eq!(judge_service(&e).0, Verdict::Failed);
        e.tolerance = 2;
        let (verdict, detail) = judge_service(&e);
        assert_eq!(verdict, Verdict::Resilient);
        assert!(detail.contains("within --tolerance 2"), "{detail}");
        e.tolerance = 1;
        assert_eq!(judge_service(&e).0, Verdict::Failed);
        e.tolerance = 5;
        e.rounds.after = stats(4, 5);
        assert_eq!(
            judge_service(&e).0,
            Verdict::Corrupted,
            "the after rounds have no tolerance"
        );
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

/// What the user declared about the steady state (`--expect-status`, `--accept-flaky-baseline`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// The status every baseline run must have; `None`: 0.
    pub expect_status: Option<i32>,
    /// Runs that disagree do not stop the campaign.
    pub accept_flaky: bool,
}

impl Declared {
    /// The status the runs are compared with.
    pub fn expected(&self) -> TargetExit {
        TargetExit::Code(self.expect_status.unwrap_or(0))
    }
}

/// Why a baseline is no steady state: one sentence, and whether `--accept-flaky-baseline` would accept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsteady {
    pub sentence: String,
    /// The 1-based run that shows it (its output is the one to read).
    pub run: u32,
}

/// What one baseline run showed: its status and `--check` after it (`None`: no check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineEvidence {
    pub exit: TargetExit,
    pub check_passed: Option<bool>,
}

/// `exited 101`, `was killed by SIGSEGV`: a status as the verb of a sentence.
fn exited(exit: TargetExit) -> String {
    match exit {
        TargetExit::Code(code) => format!("exited {code}"),
        TargetExit::Signal(_) => format!("was {exit}"),
    }
}

/// Is the baseline a steady state (DESIGN §7)? `Ok(None)`: every run has the expected status (`--expect-status`,
/// else 0) and passes the check. `Ok(Some(what))`: the runs disagree — some match, some do not — and the user
/// accepted a flaky baseline; `what` says what disagreed. `Err`: the runs disagree (not accepted), or none of
/// them matches (a failing program or check is never a steady state, whatever was accepted). Pure, over the runs
/// so far: a campaign may stop at the first run that does not match.
pub fn steady_state(runs: &[BaselineEvidence], declared: Declared) -> Result<Option<String>, Unsteady> {
    let expected = declared.expected();
    let good = |r: &BaselineEvidence| r.exit == expected && r.check_passed != Some(false);
    let Some(bad_at) = runs.iter().position(|r| !good(r)) else {
        return Ok(None);
    };
    let bad = runs[bad_at];
    let run = bad_at as u32 + 1;
    if let Some(good_at) = runs.iter().position(good) {
        // Some runs match, some do not: flaky.
        let what = if bad.exit != expected {
            format!(
                "baseline run {run} {}, run {} {}",
                exited(bad.exit),
                good_at + 1,
                exited(expected)
            )
        } else {
            format!(
                "the check failed after baseline run {run} and passed after run {}",
                good_at + 1
            )
        };
        return if declared.accept_flaky {
            Ok(Some(what))
        } else {
            Err(Unsteady {
                sentence: format!(
                    "{what}: the steady state is not steady; fix the program or pass --accept-flaky-baseline"
                ),
                run,
            })
        };
    }
    // No run matches: the program (or its check) fails without any injection.
    let n = runs.len();
    let all = |what: &str| {
        if n == 1 {
            format!("baseline run 1 {what}")
        } else if runs.iter().all(|r| r.exit == bad.exit) {
            format!("all {n} baseline runs {what}")
        } else {
            format!("baseline run {run} {what}")
        }
    };
    let sentence = if bad.exit != expected {
        let what = all(&exited(bad.exit));
        match (declared.expect_status, bad.exit) {
            (None, TargetExit::Code(code)) => format!(
                "{what}: the program fails without any injection, so it has no steady state to compare with; fix \
                 it, or pass --expect-status {code} if that status is its steady state"
            ),
            (Some(status), _) => format!(
                "{what}, not --expect-status {status}: the program does not reach the declared steady state \
                 without any injection; fix it or the status"
            ),
            (None, TargetExit::Signal(_)) => format!(
                "{what}: the program fails without any injection, so it has no steady state to compare with; fix \
                 it first"
            ),
        }
    } else {
        let what = if n == 1 {
            "baseline run 1".to_owned()
        } else {
            format!("all {n} baseline runs")
        };
        format!("the check fails without any injection (after {what}); fix the check or the program first")
    };
    Err(Unsteady { sentence, run })
}

#[cfg(test)]
mod steady_tests {
    use super::*;

    fn ok(code: i32) -> BaselineEvidence {
        BaselineEvidence {
            exit: TargetExit::Code(code),
            check_passed: None,
        }
    }

    fn checked(code: i32, passed: bool) -> BaselineEvidence {
        BaselineEvidence {
            exit: TargetExit::Code(code),
            check_passed: Some(passed),
        }
    }

    const NONE: Declared = Declared {
        expect_status: None,
        accept_flaky: false,
    };

    #[test]
    fn runs_that_agree_on_0_are_steady() {
        assert_eq!(steady_state(&[ok(0), ok(0), ok(0)], NONE), Ok(None));
        assert_eq!(steady_state(&[checked(0, true); 3], NONE), Ok(None));
        assert_eq!(steady_state(&[], NONE), Ok(None));
    }

    #[test]
    fn a_failing_baseline_is_no_steady_state_unless_its_status_is_declared() {
        let err = steady_state(&[ok(101), ok(101), ok(101)], NONE).unwrap_err();
        assert_eq!(
            err.sentence,
            "all 3 baseline runs exited 101: the program fails without any injection, so it has no steady state \
             to compare with; fix it, or pass --expect-status 101 if that status is its steady state"
        );
        // Accepting flakiness does not make a failing program steady.
        let accept = Declared {
            accept_flaky: true,
            ..NONE
        };
        assert!(steady_state(&[ok(101); 3], accept).is_err());
        // Declared, it is: honest about a program whose steady state is exit 1.
        let one = Declared {
            expect_status: Some(1),
            ..NONE
        };
        assert_eq!(steady_state(&[ok(1), ok(1), ok(1)], one), Ok(None));
        let err = steady_state(&[ok(0)], one).unwrap_err();
        assert_eq!(
            err.sentence,
            "baseline run 1 exited 0, not --expect-status 1: the program does not reach the declared steady state \
             without any injection; fix it or the status"
        );
        let killed = steady_state(
            &[BaselineEvidence {
                exit: TargetExit::Signal(libc::SIGSEGV),
                check_passed: None,
            }],
            NONE,
        )
        .unwrap_err();
        assert!(
            killed
                .sentence
                .starts_with("baseline run 1 was killed by SIGSEGV: the program fails"),
            "{killed:?}"
        );
    }

    #[test]
    fn runs_that_disagree_stop_the_campaign_unless_accepted() {
        let err = steady_state(&[ok(0), ok(101)], NONE).unwrap_err();
        assert_eq!(
            err,
            Unsteady {
                sentence:
                    "baseline run 2 exited 101, run 1 exited 0: the steady state is not steady; fix the \
                           program or pass --accept-flaky-baseline"
                        .into(),
                run: 2
            }
        );
        // The first run failing and a later one passing is flaky too, not failing.
        let err = steady_state(&[ok(3), ok(0), ok(0)], NONE).unwrap_err();
        assert!(
            err.sentence
                .starts_with("baseline run 1 exited 3, run 2 exited 0: "),
            "{err:?}"
        );
        let check = steady_state(&[checked(0, true), checked(0, false)], NONE).unwrap_err();
        assert!(
            check.sentence.starts_with(
                "the check failed after baseline run 2 and passed after run 1: the steady state is not steady"
            ),
            "{check:?}"
        );
        let accept = Declared {
            accept_flaky: true,
            ..NONE
        };
        assert_eq!(
            steady_state(&[ok(0), ok(101), ok(0)], accept),
            Ok(Some("baseline run 2 exited 101, run 1 exited 0".into()))
        );
        // Against a declared status: the runs that have it are the good ones.
        let declared = Declared {
            expect_status: Some(1),
            accept_flaky: true,
        };
        assert_eq!(
            steady_state(&[ok(1), ok(0)], declared),
            Ok(Some("baseline run 2 exited 0, run 1 exited 1".into()))
        );
    }

    #[test]
    fn a_check_that_always_fails_is_refused_whatever_was_accepted() {
        let accept = Declared {
            accept_flaky: true,
            ..NONE
        };
        let err = steady_state(&[checked(0, false), checked(0, false)], accept).unwrap_err();
        assert_eq!(
            err.sentence,
            "the check fails without any injection (after all 2 baseline runs); fix the check or the program first"
        );
    }
}
