//! The semantics of a rule's call window, `max` and weighted errnos, written once for both deciders: the host's
//! policy (`phoebe::decide::policy`) and the eBPF injector (`phoebe-ebpf`'s `inject.rs`). `no_std`, allocation-free
//! and loop-bounded, each function `#[inline(always)]` so that the verifier sees it inlined; none can panic (the
//! verifier rejects a program that merely contains a panic path). Kernel rule construction (`kernel_rule`) is
//! host-only: the eBPF target has no floating point.
//!
//! Does not own: the random source (a seeded hash on the host, `bpf_get_prandom_u32` in the kernel), counting.

use crate::inject::UNLIMITED;
#[cfg(not(target_arch = "bpf"))]
use crate::inject::{ERRNOS_PER_RULE, KernelRule};

/// Is the `n`-th (1-based) matching call inside the window `first`, `last` (`UNLIMITED`: none), `every` (0 and 1:
/// every call)? `nth=N` is first = last = N; `after=N` is first = N + 1.
#[inline(always)]
pub fn in_window(first: u64, last: u64, every: u64, n: u64) -> bool {
    n >= first && (last == UNLIMITED || n <= last) && (every <= 1 || (n - first).is_multiple_of(every))
}

/// May a rule that has injected `injected` times inject again under `max` (`UNLIMITED`: no limit)?
#[inline(always)]
pub fn under_max(injected: u64, max: u64) -> bool {
    injected < max
}

/// Which of `count` weighted errnos a roll picks: the first `i` whose cumulative bound `below[i]` exceeds `roll`,
/// or `None` for the last used errno (`count - 1`), which takes whatever is left. The caller indexes with the
/// result: the index returned is bounded by the loop, which the verifier can follow (a clamped `count - 1` it
/// cannot, once LLVM drops the caller's bounds check).
#[inline(always)]
pub fn pick_weighted<const N: usize>(roll: u32, below: &[u32; N], count: usize) -> Option<usize> {
    for i in 0..N.saturating_sub(1) {
        if i + 1 >= count {
            break;
        }
        if roll < below.get(i).copied().unwrap_or(0) {
            return Some(i);
        }
    }
    None
}

/// A probability as the kernel compares it: inject when a uniform u32 is below the threshold.
#[cfg(not(target_arch = "bpf"))]
pub fn threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32
}

/// One rule as the kernel applies it: its index `rule`, probability, weighted errnos (positive, at most
/// `ERRNOS_PER_RULE` used), window (`last`/`max`: `UNLIMITED` for none).
#[cfg(not(target_arch = "bpf"))]
pub fn kernel_rule(
    rule: u32,
    probability: f64,
    errnos: &[(u32, f64)],
    (first, last, every): (u64, u64, u64),
    max: u64,
) -> KernelRule {
    let mut codes = [0u32; ERRNOS_PER_RULE];
    let mut errno_below = [u32::MAX; ERRNOS_PER_RULE];
    let mut total = 0.0;
    for (_, weight) in errnos {
        total += weight;
    }
    let mut sum = 0.0;
    for (i, (errno, weight)) in errnos.iter().take(ERRNOS_PER_RULE).enumerate() {
        codes[i] = *errno;
        sum += weight;
        errno_below[i] = threshold(if total > 0.0 { sum / total } else { 1.0 });
    }
    KernelRule {
        rule,
        threshold: threshold(probability),
        always: u32::from(probability >= 1.0),
        errno_count: errnos.len().min(ERRNOS_PER_RULE) as u32,
        errnos: codes,
        errno_below,
        first,
        last,
        every,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        // nth=3
        let nth: [bool; 5] = core::array::from_fn(|i| in_window(3, 3, 1, i as u64 + 1));
        assert_eq!(nth, [false, false, true, false, false]);
        // after=1:every=2
        let every: [bool; 6] = core::array::from_fn(|i| in_window(2, UNLIMITED, 2, i as u64 + 1));
        assert_eq!(every, [false, true, false, true, false, true]);
        // every=0 means every call, as every=1
        assert!(in_window(1, UNLIMITED, 0, 7));
        assert!(in_window(1, UNLIMITED, 1, u64::MAX));
        assert!(!in_window(2, 5, 1, 6));
    }

    #[test]
    fn max_limits_injections() {
        assert!(under_max(1, 2));
        assert!(!under_max(2, 2));
        assert!(under_max(u64::MAX - 1, UNLIMITED));
    }

    #[test]
    fn weights_pick_by_cumulative_bound() {
        let below = [10, 20, 30, u32::MAX];
        assert_eq!(pick_weighted(5, &below, 3), Some(0));
        assert_eq!(pick_weighted(15, &below, 3), Some(1));
        assert_eq!(
            pick_weighted(25, &below, 3),
            None,
            "the last used errno takes the rest"
        );
        assert_eq!(pick_weighted(u32::MAX, &below, 3), None);
        assert_eq!(pick_weighted(5, &below, 1), None, "one errno: no roll decides");
        assert_eq!(pick_weighted(25, &below, 9), Some(2), "the loop stays within N");
    }

    #[test]
    fn kernel_rules_scale_probability_and_weights() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(0.5), 1 << 31);
        assert_eq!(threshold(1.0), u32::MAX);
        let r = kernel_rule(3, 0.25, &[(2, 3.0), (13, 1.0)], (1, UNLIMITED, 1), 5);
        assert_eq!((r.rule, r.threshold, r.always, r.errno_count), (3, 1 << 30, 0, 2));
        assert_eq!(&r.errnos[..3], [2, 13, 0]);
        assert_eq!(r.errno_below[0], 3 << 30);
        assert_eq!(r.errno_below[1], u32::MAX);
        assert_eq!(r.max, 5);
        assert_eq!(
            kernel_rule(0, 1.0, &[(1, 1.0)], (1, UNLIMITED, 1), UNLIMITED).always,
            1
        );
    }
}
