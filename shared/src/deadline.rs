//! `Deadline`: the instant by which a caller needs its answer, on tokio's clock.
//!
//! Scope: per call. Sleeping and timeouts use tokio's [`Instant`] (so tests pause and advance
//! time); a deadline that comes from elsewhere as wall-clock epoch milliseconds (the Lambda
//! context's deadline, a lease) is converted once through the injected [`Clock`].

use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Clock;

/// About thirty years: what "no deadline" means, without overflowing `Instant` arithmetic.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The instant by which a call must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now (a huge budget means "practically none").
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            at: now.checked_add(budget.min(FAR_FUTURE)).unwrap_or(now),
        }
    }

    /// A deadline at a tokio instant.
    pub const fn at(instant: Instant) -> Self {
        Self { at: instant }
    }

    /// A deadline at wall-clock `epoch_ms`, as read on `clock` (one already past is expired).
    pub fn at_ms(epoch_ms: i64, clock: &dyn Clock) -> Self {
        let left = epoch_ms.saturating_sub(clock.now_ms()).max(0);
        Self::after(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// The underlying tokio instant (for `tokio::time::sleep_until` / `timeout_at`).
    pub const fn instant(&self) -> Instant {
        self.at
    }

    /// Time left; zero once the deadline has passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Whether something expected to take `expected` can still finish before the deadline.
    /// Nothing can start once the deadline has passed, even with `expected` zero.
    pub fn can_start(&self, expected: Duration) -> bool {
        let left = self.remaining();
        !left.is_zero() && left >= expected
    }

    /// The earlier of two deadlines.
    pub fn earliest(self, other: Deadline) -> Deadline {
        self.min(other)
    }

    /// This deadline, but no later than `max` from now (WeChat's 5 s, a Lambda's remaining time).
    pub fn capped(self, max: Duration) -> Deadline {
        self.earliest(Deadline::after(max))
    }

    /// The deadline as wall-clock epoch milliseconds on `clock`, for handing to other instances.
    pub fn epoch_ms(&self, clock: &dyn Clock) -> i64 {
        let left = i64::try_from(self.remaining().as_millis()).unwrap_or(i64::MAX);
        clock.now_ms().saturating_add(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test(start_paused = true)]
    async fn remaining_shrinks_with_time_and_stops_at_zero() {
        let deadline = Deadline::after(Duration::from_millis(300));
        assert_eq!(deadline.remaining(), Duration::from_millis(300));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(deadline.remaining(), Duration::from_millis(200));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(deadline.is_expired());
    }

    #[tokio::test(start_paused = true)]
    async fn can_start_requires_the_expected_duration_and_some_time_left() {
        let deadline = Deadline::after(Duration::from_millis(100));
        assert!(deadline.can_start(Duration::from_millis(100)));
        assert!(!deadline.can_start(Duration::from_millis(101)));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(
            !deadline.can_start(Duration::ZERO),
            "an expired deadline starts nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn at_ms_converts_wall_clock_through_the_injected_clock() {
        let clock = ManualClock::new(1_000_000);
        assert_eq!(Deadline::at_ms(1_004_000, &clock).remaining(), Duration::from_secs(4));
        assert!(Deadline::at_ms(999_000, &clock).is_expired());
        assert_eq!(Deadline::after(Duration::from_secs(2)).epoch_ms(&clock), 1_002_000);
    }

    #[tokio::test(start_paused = true)]
    async fn capped_and_earliest_pick_the_sooner_deadline() {
        let far = Deadline::after(Duration::from_secs(60));
        assert_eq!(far.capped(Duration::from_secs(5)).remaining(), Duration::from_secs(5));
        let near = Deadline::after(Duration::from_secs(1));
        assert_eq!(far.earliest(near), near);
        assert!(Deadline::after(Duration::MAX).remaining() > Duration::from_secs(86_400 * 365));
    }
}
