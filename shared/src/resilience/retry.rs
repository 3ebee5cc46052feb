//! The retry policy (validated settings) and the per-call retry state that answers "retry this
//! outcome, and after how long?" — never starting an attempt that cannot finish before the
//! deadline, never sleeping past it.
//!
//! Scope: [`RetryConfig`] is per policy (shared, immutable); [`RetryState`] is per call (attempt
//! count, previous delay, whether the credential refresh was used, the jitter RNG).

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::backoff::{Backoff, BackoffKind, Jitter};
use super::budget::RetryBudget;
use super::classify::Outcome;
use super::deadline::Deadline;
use super::error::ConfigError;

/// Default attempts per call, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default first backoff delay.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(100);
/// Default cap on every backoff delay.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
/// Default factor applied to delays after a "slow down" outcome (HTTP 429, errcode 45011).
pub const DEFAULT_SLOW_MULTIPLIER: u32 = 4;
/// Default least time an attempt needs: none starts with less left before the deadline.
pub const DEFAULT_MIN_ATTEMPT: Duration = Duration::from_millis(50);

/// Validated retry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    max_attempts: u32,
    backoff: Backoff,
    slow_multiplier: u32,
    attempt_timeout: Option<Duration>,
    min_attempt: Duration,
    budget: RetryBudget,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::new(
                BackoffKind::Exponential,
                Jitter::Full,
                DEFAULT_BASE_DELAY,
                DEFAULT_MAX_DELAY,
            ),
            slow_multiplier: DEFAULT_SLOW_MULTIPLIER,
            attempt_timeout: None,
            min_attempt: DEFAULT_MIN_ATTEMPT,
            budget: RetryBudget::default(),
        }
    }
}

/// Builder for [`RetryConfig`]; starts from the defaults, validates in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct RetryConfigBuilder {
    config: RetryConfig,
    budget_percent: Option<f64>,
    budget_floor: Option<u32>,
}

impl RetryConfigBuilder {
    /// Attempts per call, the first included (1 – 10).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.config.max_attempts = n;
        self
    }
    /// First backoff delay (≤ 60 s).
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.config.backoff.base = d;
        self
    }
    /// Cap on every delay (≥ base delay, ≤ 60 s).
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.config.backoff.max = d;
        self
    }
    /// Growth of the delay.
    pub fn backoff(mut self, kind: BackoffKind) -> Self {
        self.config.backoff.kind = kind;
        self
    }
    /// Randomization of the delay.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.config.backoff.jitter = jitter;
        self
    }
    /// Delay factor after a "slow down" outcome (1 – 100).
    pub fn slow_multiplier(mut self, factor: u32) -> Self {
        self.config.slow_multiplier = factor;
        self
    }
    /// Time limit of each attempt (1 ms – 60 s), `None` for "until the deadline".
    pub fn attempt_timeout(mut self, limit: Option<Duration>) -> Self {
        self.config.attempt_timeout = limit;
        self
    }
    /// Least time an attempt needs (≤ 60 s): none starts with less left before the deadline.
    pub fn min_attempt(mut self, d: Duration) -> Self {
        self.config.min_attempt = d;
        self
    }
    /// Share of calls that may be retries, percent (0 – 100).
    pub fn budget_percent(mut self, percent: f64) -> Self {
        self.budget_percent = Some(percent);
        self
    }
    /// Retries always allowed per window, fleet-wide (0 – 100 000).
    pub fn budget_floor(mut self, floor: u32) -> Self {
        self.budget_floor = Some(floor);
        self
    }

    /// Validates every field.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field out of its documented range.
    pub fn build(self) -> Result<RetryConfig, ConfigError> {
        let mut c = self.config;
        let ms = |d: Duration| d.as_millis();
        if !(1..=10).contains(&c.max_attempts) {
            return Err(ConfigError::new(
                "max_attempts",
                format!("must be between 1 and 10, got {}", c.max_attempts),
            ));
        }
        if ms(c.backoff.base) > 60_000 {
            return Err(ConfigError::new(
                "base_delay_ms",
                format!("must be at most 60000, got {}", ms(c.backoff.base)),
            ));
        }
        if c.backoff.max < c.backoff.base || ms(c.backoff.max) > 60_000 {
            return Err(ConfigError::new(
                "max_delay_ms",
                format!(
                    "must be between base_delay_ms ({}) and 60000, got {}",
                    ms(c.backoff.base),
                    ms(c.backoff.max)
                ),
            ));
        }
        if !(1..=100).contains(&c.slow_multiplier) {
            return Err(ConfigError::new(
                "slow_multiplier",
                format!("must be between 1 and 100, got {}", c.slow_multiplier),
            ));
        }
        if let Some(limit) = c.attempt_timeout
            && (limit.is_zero() || ms(limit) > 60_000)
        {
            return Err(ConfigError::new(
                "attempt_timeout_ms",
                format!("must be between 1 and 60000, got {}", ms(limit)),
            ));
        }
        if ms(c.min_attempt) > 60_000 {
            return Err(ConfigError::new(
                "min_attempt_ms",
                format!("must be at most 60000, got {}", ms(c.min_attempt)),
            ));
        }
        c.budget = RetryBudget::try_new(
            self.budget_percent.unwrap_or(c.budget.percent()),
            self.budget_floor.unwrap_or(c.budget.floor()),
        )?;
        Ok(c)
    }
}

impl RetryConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> RetryConfigBuilder {
        RetryConfigBuilder::default()
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> RetryConfigBuilder {
        RetryConfigBuilder {
            config: self.clone(),
            budget_percent: None,
            budget_floor: None,
        }
    }

    /// A policy that never retries (non-idempotent calls); credential refreshes still retry once.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Attempts per call, the first included.
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
    /// The backoff schedule.
    pub const fn backoff(&self) -> Backoff {
        self.backoff
    }
    /// Delay factor after a "slow down" outcome.
    pub const fn slow_multiplier(&self) -> u32 {
        self.slow_multiplier
    }
    /// Time limit of each attempt.
    pub const fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }
    /// Least time an attempt needs.
    pub const fn min_attempt(&self) -> Duration {
        self.min_attempt
    }
    /// The retry budget.
    pub const fn budget(&self) -> RetryBudget {
        self.budget
    }
}

/// What the operation is told about the attempt it is making.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// The previous attempt reported an invalid credential: refresh it before this attempt.
    pub refresh_credentials: bool,
}

/// Why a call stops retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It succeeded.
    Succeeded,
    /// The outcome must not be retried (or the one credential refresh is used up).
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
    /// Retry after `delay`; `budgeted` retries need the retry budget, a credential refresh does not.
    Retry {
        /// Backoff before the next attempt (never past the deadline).
        delay: Duration,
        /// Whether the retry budget must grant it.
        budgeted: bool,
    },
}

/// Per-call retry state.
#[derive(Debug)]
pub struct RetryState {
    attempts: u32,
    backoff_retries: u32,
    refresh_pending: bool,
    refreshed: bool,
    previous_delay: Duration,
    rng: SmallRng,
}

impl RetryState {
    /// A fresh call; `seed` drives the jitter (per-instance counter in production, fixed in tests).
    pub fn new(seed: u64) -> Self {
        Self {
            attempts: 0,
            backoff_retries: 0,
            refresh_pending: false,
            refreshed: false,
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
        let attempt = Attempt {
            number: self.attempts,
            refresh_credentials: self.refresh_pending,
        };
        self.refresh_pending = false;
        attempt
    }

    /// Plans the step after an attempt with `outcome`, `deadline` permitting.
    pub fn plan(&mut self, config: &RetryConfig, outcome: Outcome, deadline: &Deadline) -> Plan {
        match outcome {
            Outcome::Success => Plan::Stop(Stop::Succeeded),
            Outcome::RefreshThenRetry if !self.refreshed => {
                if !deadline.can_start(config.min_attempt) {
                    return Plan::Stop(Stop::NoTimeLeft);
                }
                self.refreshed = true;
                self.refresh_pending = true;
                Plan::Retry {
                    delay: Duration::ZERO,
                    budgeted: false,
                }
            }
            Outcome::Retryable | Outcome::RetryableSlow => {
                if self.backoff_retries + 1 >= config.max_attempts {
                    return Plan::Stop(Stop::AttemptsExhausted);
                }
                let schedule = match outcome {
                    Outcome::RetryableSlow => config.backoff.slowed(config.slow_multiplier),
                    _ => config.backoff,
                };
                let delay = schedule.delay(self.backoff_retries + 1, self.previous_delay, &mut self.rng);
                if !deadline.can_start(delay.saturating_add(config.min_attempt)) {
                    return Plan::Stop(Stop::NoTimeLeft);
                }
                self.backoff_retries += 1;
                self.previous_delay = delay;
                Plan::Retry { delay, budgeted: true }
            }
            _ => Plan::Stop(Stop::NotRetryable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                delay: Duration::from_millis(100),
                budgeted: true
            }
        );
        state.begin_attempt();
        assert_eq!(
            state.plan(&c, Outcome::Retryable, &deadline),
            Plan::Retry {
                delay: Duration::from_millis(200),
                budgeted: true
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
                delay: Duration::from_millis(400),
                budgeted: true
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
    async fn credential_refresh_retries_once_unbudgeted_even_without_retries() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let mut state = RetryState::new(1);
        assert!(!state.begin_attempt().refresh_credentials);
        assert_eq!(
            state.plan(&config(1), Outcome::RefreshThenRetry, &deadline),
            Plan::Retry {
                delay: Duration::ZERO,
                budgeted: false
            }
        );
        assert!(
            state.begin_attempt().refresh_credentials,
            "the operation is told to refresh"
        );
        assert_eq!(
            state.plan(&config(1), Outcome::RefreshThenRetry, &deadline),
            Plan::Stop(Stop::NotRetryable)
        );
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

    #[test]
    fn builder_errors_name_the_field() {
        let field = |b: RetryConfigBuilder| b.build().unwrap_err().field;
        assert_eq!(field(RetryConfig::builder().max_attempts(0)), "max_attempts");
        assert_eq!(field(RetryConfig::builder().max_attempts(11)), "max_attempts");
        assert_eq!(
            field(RetryConfig::builder().base_delay(Duration::from_secs(3))),
            "max_delay_ms"
        );
        assert_eq!(field(RetryConfig::builder().slow_multiplier(0)), "slow_multiplier");
        assert_eq!(
            field(RetryConfig::builder().attempt_timeout(Some(Duration::ZERO))),
            "attempt_timeout_ms"
        );
        assert_eq!(field(RetryConfig::builder().budget_percent(150.0)), "budget_percent");
        assert_eq!(RetryConfig::no_retry().max_attempts(), 1);
    }
}
