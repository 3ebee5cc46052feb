//! The DynamoDB client the store uses: tight timeouts and few retries, so a slow or failing store
//! degrades fast and callers fall back to instance-local state instead of waiting.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Builder;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;

/// Why a [`DynamoClientConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DynamoConfigError {
    /// The attempt timeout is zero or longer than the operation timeout.
    #[error("dynamodb attempt timeout must be > 0 and <= the operation timeout")]
    Timeouts,
    /// Max attempts outside 1..=5.
    #[error("dynamodb max attempts must be between 1 and 5")]
    MaxAttempts,
}

/// Timeouts and retries of the store's DynamoDB client.
///
/// Both timeouts are always set (the SDK has no default for them): an attempt is cut at
/// `attempt_timeout`, the whole call including SDK retries at `operation_timeout`. Retry backoff
/// is short (20–100 ms) so a retry fits inside the operation budget.
///
/// SDK retries resend a write whose first attempt may already have been applied (it timed out
/// after DynamoDB committed it): conditional writes then fail their condition against their own
/// result (callers that own a record, like the idempotency ledger, recognise it), and an
/// unconditional `ADD` may count twice. Use `max_attempts = 1` where exact counts matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamoClientConfig {
    attempt_timeout: Duration,
    operation_timeout: Duration,
    max_attempts: u32,
}

impl Default for DynamoClientConfig {
    fn default() -> Self {
        Self {
            attempt_timeout: Self::DEFAULT_ATTEMPT_TIMEOUT,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl DynamoClientConfig {
    /// Default per-attempt timeout.
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);
    /// Default per-operation timeout (all attempts together).
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(800);
    /// Default attempts per operation (one SDK retry).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

    /// A validated configuration.
    ///
    /// - `attempt_timeout`: > 0 and ≤ `operation_timeout`;
    /// - `operation_timeout`: the budget of one store call, retries included;
    /// - `max_attempts`: 1..=5 (1 disables SDK retries).
    ///
    /// # Errors
    /// [`DynamoConfigError`] naming the broken rule.
    pub fn new(
        attempt_timeout: Duration,
        operation_timeout: Duration,
        max_attempts: u32,
    ) -> Result<Self, DynamoConfigError> {
        if attempt_timeout.is_zero() || attempt_timeout > operation_timeout {
            return Err(DynamoConfigError::Timeouts);
        }
        if !(1..=5).contains(&max_attempts) {
            return Err(DynamoConfigError::MaxAttempts);
        }
        Ok(Self {
            attempt_timeout,
            operation_timeout,
            max_attempts,
        })
    }

    /// The per-attempt timeout.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The per-operation timeout.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// Attempts per operation.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Sets timeouts and the retry policy on a client config builder.
    pub fn apply(&self, builder: Builder) -> Builder {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.attempt_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(100));
        builder.timeout_config(timeouts).retry_config(retries)
    }

    /// A DynamoDB client from a shared SDK config (loaded once per cold start) with these settings.
    pub fn client(&self, sdk: &SdkConfig) -> Client {
        Client::from_conf(self.apply(Builder::from(sdk)).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tight() {
        let config = DynamoClientConfig::default();
        assert_eq!(config.attempt_timeout(), Duration::from_millis(300));
        assert_eq!(config.operation_timeout(), Duration::from_millis(800));
        assert_eq!(config.max_attempts(), 2);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let ms = Duration::from_millis;
        assert_eq!(
            DynamoClientConfig::new(ms(0), ms(800), 2),
            Err(DynamoConfigError::Timeouts)
        );
        assert_eq!(
            DynamoClientConfig::new(ms(900), ms(800), 2),
            Err(DynamoConfigError::Timeouts)
        );
        assert_eq!(
            DynamoClientConfig::new(ms(300), ms(800), 0),
            Err(DynamoConfigError::MaxAttempts)
        );
        assert!(DynamoClientConfig::new(ms(800), ms(800), 1).is_ok());
    }

    #[test]
    fn applied_config_carries_timeouts_and_retries() {
        let config = DynamoClientConfig::default().apply(Builder::new()).build();
        let timeouts = config.timeout_config().cloned().unwrap_or_else(TimeoutConfig::disabled);
        assert_eq!(timeouts.operation_attempt_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_millis(800)));
        assert_eq!(config.retry_config().map(|r| r.max_attempts()), Some(2));
    }
}
