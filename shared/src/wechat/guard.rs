//! The seam between the WeChat client and the resilience core: what an attempt's error means
//! (retry? breaker failure?) and running attempts under an API's policy.
//!
//! INTERIM: `Guards::run` loops over attempts itself with the resilience core's backoff and
//! classification; it is replaced by `resilience::execute` (retry budget, shared breaker) as soon
//! as that lands, and per-domain breakers plug into `admit_domain` / `record_domain`.

use std::time::Duration;

use super::api::ApiPolicy;
use super::error::WechatError;
use crate::resilience::backoff::{Backoff, BackoffKind, Jitter};
use crate::resilience::classify::{Classify, Outcome, wechat_errcode};
use crate::resilience::deadline::Deadline;
use crate::resilience::error::AttemptTimedOut;

/// An attempt's error, with the one fact classification needs from the API's policy.
#[derive(Debug)]
pub(crate) struct Attempted {
    pub error: WechatError,
    pub idempotent: bool,
    /// The error came from getting the access token, not from this API: never this API's
    /// breaker failure, never retried here (the token manager has its own policy).
    pub token_step: bool,
}

impl Attempted {
    pub fn call(error: WechatError, idempotent: bool) -> Self {
        Self { error, idempotent, token_step: false }
    }
    pub fn token(error: WechatError) -> Self {
        Self { error, idempotent: false, token_step: true }
    }
}

impl Classify for Attempted {
    /// Transport failures retry only for idempotent APIs; for the others they still count as
    /// breaker failures but are never repeated (`Exhausted`: a message may have been delivered).
    fn classify(&self) -> Outcome {
        let unsafe_failure = if self.idempotent { Outcome::Retryable } else { Outcome::Exhausted };
        if self.token_step {
            return Outcome::NotRetryable;
        }
        match &self.error {
            WechatError::Api(api) => wechat_errcode(api.errcode),
            WechatError::Connect { .. } => Outcome::Retryable,
            WechatError::Network { .. } | WechatError::Timeout { .. } | WechatError::Decode { .. } => unsafe_failure,
            WechatError::Http { status, .. } if *status >= 500 || *status == 408 => unsafe_failure,
            WechatError::Http { status: 429, .. } if self.idempotent => Outcome::RetryableSlow,
            WechatError::CircuitOpen(_) => Outcome::Exhausted,
            _ => Outcome::NotRetryable,
        }
    }
}

impl From<AttemptTimedOut> for Attempted {
    fn from(timed_out: AttemptTimedOut) -> Self {
        Self::call(WechatError::Timeout { domain: format!("attempt limit {:?}", timed_out.after) }, false)
    }
}

/// Retry and breaker machinery shared by every call of one client.
#[derive(Debug, Default)]
pub(crate) struct Guards;

impl Guards {
    /// Runs `op` (one attempt per call) under `policy` within `deadline`.
    pub async fn run<T, F, Fut>(&self, policy: &ApiPolicy, deadline: Deadline, mut op: F) -> Result<T, WechatError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempted>>,
    {
        let backoff = Backoff::new(BackoffKind::Exponential, Jitter::Full, policy.base_delay, policy.max_delay);
        let mut attempts = 0;
        let mut refreshed = false;
        let mut previous = Duration::ZERO;
        loop {
            if deadline.is_expired() {
                return Err(WechatError::DeadlineExceeded);
            }
            attempts += 1;
            let failed = match op().await {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            let outcome = failed.classify();
            let delay = match outcome {
                Outcome::RefreshThenRetry if !refreshed => {
                    refreshed = true;
                    Duration::ZERO
                }
                o if o.is_retryable() && attempts < policy.max_attempts => {
                    let slow = if o == Outcome::RetryableSlow { backoff.slowed(4) } else { backoff };
                    slow.delay(attempts, previous, &mut rand::rng())
                }
                _ => return Err(failed.error),
            };
            if !deadline.can_start(delay) {
                return Err(failed.error);
            }
            previous = delay;
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether `base` may be tried now (its breaker is not open).
    pub async fn admit_domain(&self, _base: &str) -> bool {
        true
    }

    /// Records a domain's health after an attempt on it.
    pub async fn record_domain(&self, _base: &str, _failure: bool, _elapsed: Duration) {}
}
