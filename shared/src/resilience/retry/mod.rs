//! The per-call retry state that answers "retry this outcome, and after how long?" — never
//! starting an attempt that cannot finish before the deadline, never sleeping past it.
//!
//! Scope: [`RetryConfig`] is per policy (shared, immutable); [`RetryState`] is per call (attempt
//! count, previous delay, the jitter RNG).

mod config;

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

pub use self::config::{
    DEFAULT_BASE_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_MIN_ATTEMPT, DEFAULT_SLOW_MULTIPLIER,
    RetryConfig, RetryConfigBuilder,
};
use super::classify::Outcome;
use crate::deadline::Deadline;

/// What the operation is told about the attempt it is making.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
}

/// Why a call stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It succeeded.
    Succeeded,
    /// The outcome must not be retried.
    NotRetryable,
    /// `max_attempts` reached.
    AttemptsExhausted,
    /// The backoff plus the least attempt time would end past the deadline.
    NoTimeLeft,
}

/// The next step after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Stop here.
    Stop(Stop),
    /// Retry after `delay`, if the fleet's retry budget grants it.
    Retry {
        /// Backoff before the next attempt (never past the deadline).
        delay: Duration,
    },
}

/// Per-call retry state.
#[derive(Debug)]
pub struct RetryState {
    attempts: u32,
    backoff_retries: u32,
    previous_delay: Duration,
    rng: SmallRng,
}

impl RetryState {
    /// A fresh call; `seed` drives the jitter (per-instance counter in production, fixed in tests).
    pub fn new(seed: u64) -> Self {
        Self {
            attempts: 0,
            backoff_retries: 0,
            previous_delay: Duration::ZERO,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Attempts made so far.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Counts and describes the next attempt.
    pub fn begin_attempt(&mut self) -> Attempt {
        self.attempts += 1;
        Attempt { number: self.attempts }
    }

    /// Plans the step after an attempt with `outcome`, `deadline` permitting.
    pub fn plan(&mut self, config: &RetryConfig, outcome: Outcome, deadline: &Deadline) -> Plan {
        match outcome {
            Outcome::Success => Plan::Stop(Stop::Succeeded),
            Outcome::Retryable | Outcome::RetryableSlow => {
                if self.backoff_retries + 1 >= config.max_attempts() {
                    return Plan::Stop(Stop::AttemptsExhausted);
                }
                let schedule = match outcome {
                    Outcome::RetryableSlow => config.backoff().slowed(config.slow_multiplier()),
                    _ => config.backoff(),
                };
                let delay = schedule.delay(self.backoff_retries + 1, self.previous_delay, &mut self.rng);
                if !deadline.can_start(delay.saturating_add(config.min_attempt())) {
                    return Plan::Stop(Stop::NoTimeLeft);
                }
                self.backoff_retries += 1;
                self.previous_delay = delay;
                Plan::Retry { delay }
            }
            _ => Plan::Stop(Stop::NotRetryable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::backoff::Jitter;

    fn config(max_attempts: u32) -> RetryConfig {
        RetryConfig::builder()
            .max_attempts(max_attempts)
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1))
            .min_attempt(Duration::from_millis(50))
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_outcomes_retry_with_growing_delays_until_max_attempts() {
        let deadline = Deadline::after(Duration::from_secs(10));
        let mut state = RetryState::new(1);
        let c = config(3);
        state.begin_attempt();
        assert_eq!(
            state.plan(&c, Outcome::Retryable, &deadline),
            Plan::Retry {
                delay: Duration::from_millis(100)
            }
        );
        state.begin_attempt();
        assert_eq!(
            state.plan(&c, Outcome::Retryable, &deadline),
            Plan::Retry {
                delay: Duration::from_millis(200)
            }
        );
        state.begin_attempt();
        assert_eq!(
            state.plan(&c, Outcome::Retryable, &deadline),
            Plan::Stop(Stop::AttemptsExhausted)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_down_outcomes_back_off_by_the_multiplier() {
        let mut state = RetryState::new(1);
        let plan = state.plan(
            &config(3),
            Outcome::RetryableSlow,
            &Deadline::after(Duration::from_secs(10)),
        );
        assert_eq!(
            plan,
            Plan::Retry {
                delay: Duration::from_millis(400)
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_never_sleeps_past_deadline() {
        let mut state = RetryState::new(1);
        let deadline = Deadline::after(Duration::from_millis(149));
        assert_eq!(
            state.plan(&config(3), Outcome::Retryable, &deadline),
            Plan::Stop(Stop::NoTimeLeft)
        );
        let deadline = Deadline::after(Duration::from_millis(150));
        assert!(matches!(
            state.plan(&config(3), Outcome::Retryable, &deadline),
            Plan::Retry { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn caller_errors_and_exhausted_quotas_never_retry() {
        let deadline = Deadline::after(Duration::from_secs(1));
        for outcome in [Outcome::NotRetryable, Outcome::Exhausted] {
            assert_eq!(
                RetryState::new(1).plan(&config(3), outcome, &deadline),
                Plan::Stop(Stop::NotRetryable)
            );
        }
        assert_eq!(
            RetryState::new(1).plan(&config(3), Outcome::Success, &deadline),
            Plan::Stop(Stop::Succeeded)
        );
    }
}
