//! Retry settings: validated, immutable, with documented defaults. Scope: per policy.

use std::time::Duration;

use crate::resilience::backoff::{Backoff, BackoffKind, Jitter};
use crate::resilience::budget::RetryBudget;
use crate::resilience::error::ConfigError;
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

#[cfg(test)]
mod tests {
    use super::*;

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
