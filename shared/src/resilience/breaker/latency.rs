//! How long the fleet store takes to answer this instance, and the store timeout that follows.
//!
//! A fixed tight timeout turns a slow store (DynamoDB throttling, a regional brown-out, an
//! emulator under load) into a silent per-instance breaker: every call times out, every
//! instance decides on its own copy, trips on its own window and sends its own probes. Instead
//! the timeout follows the store: three times the typical answer (an average over the recent
//! answers, weight 1/8 each), between `store_timeout` and `max_store_timeout`. A call that
//! times out raises the typical latency to its timeout, so a store answering in 300 ms is waited
//! for after two misses (100 ms → 300 ms → 900 ms), and fast answers bring the timeout back
//! down. A store that does not answer at all still costs at most `max_store_timeout`, once per
//! `cache_ttl`, and the caller's deadline always cuts it shorter. Scope: per instance.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How many times the typical latency a store call may take before it counts as unanswered.
const HEADROOM: u32 = 3;

/// The instance's view of the store's latency.
#[derive(Debug, Default)]
pub(super) struct StoreLatency {
    /// Typical answer time in microseconds (0: nothing measured yet).
    typical_us: AtomicU64,
    /// A call timed out and the next one will wait longer: try the store again at once instead
    /// of deciding locally for a cache TTL (taken by the fallback that follows).
    grown: AtomicBool,
}

impl StoreLatency {
    /// The timeout for the next store call: `HEADROOM` × typical, within `[base, max]`.
    pub(super) fn timeout(&self, base: Duration, max: Duration) -> Duration {
        let typical = Duration::from_micros(self.typical_us.load(Ordering::Relaxed));
        typical.saturating_mul(HEADROOM).clamp(base, max.max(base))
    }

    /// The store answered after `elapsed`.
    pub(super) fn answered(&self, elapsed: Duration) {
        let sample = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .typical_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |typical| {
                Some(if typical == 0 {
                    sample
                } else {
                    typical - typical / 8 + sample / 8
                })
            });
    }

    /// The store did not answer within `timeout`: it is at least that slow.
    pub(super) fn timed_out(&self, timeout: Duration, base: Duration, max: Duration) {
        let floor = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        self.typical_us.fetch_max(floor, Ordering::Relaxed);
        if self.timeout(base, max) > timeout {
            self.grown.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the last timeout raised the next one (and forgets it).
    pub(super) fn take_grown(&self) -> bool {
        self.grown.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn a_store_answering_in_300_ms_is_waited_for_after_two_misses_and_fast_answers_bring_it_back() {
        let latency = StoreLatency::default();
        assert_eq!(
            latency.timeout(BASE, MAX),
            BASE,
            "nothing measured: the configured timeout"
        );
        latency.timed_out(BASE, BASE, MAX);
        assert!(
            latency.take_grown(),
            "the next call waits longer: try the store again at once"
        );
        assert_eq!(latency.timeout(BASE, MAX), Duration::from_millis(300));
        latency.timed_out(Duration::from_millis(300), BASE, MAX);
        assert_eq!(latency.timeout(BASE, MAX), Duration::from_millis(900));
        latency.answered(Duration::from_millis(300));
        assert!(
            latency.timeout(BASE, MAX) > Duration::from_millis(300),
            "a 300 ms answer fits"
        );
        for _ in 0..40 {
            latency.answered(Duration::from_millis(5));
        }
        assert_eq!(latency.timeout(BASE, MAX), BASE, "back to the configured timeout");
    }

    #[test]
    fn a_store_that_never_answers_costs_at_most_the_maximum() {
        let latency = StoreLatency::default();
        for _ in 0..10 {
            let timeout = latency.timeout(BASE, MAX);
            latency.take_grown();
            latency.timed_out(timeout, BASE, MAX);
        }
        assert_eq!(latency.timeout(BASE, MAX), MAX);
        assert!(
            !latency.take_grown(),
            "at the maximum: fall back for a cache TTL as usual"
        );
    }
}
