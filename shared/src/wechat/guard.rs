//! The seam between the WeChat client and the resilience core: what an attempt's error means
//! (retry? breaker failure?), each API's named policy, and each domain's breaker.
//!
//! All retrying goes through [`resilience::execute`](crate::resilience::execute()) — attempts,
//! backoff, the fleet-wide retry budget, the API's shared breaker and the per-attempt timeout.
//! The "refresh the token, then call once more" rule is the client's (`client.rs`), outside the
//! API's policy. Domain breakers are plain [`Breaker`]s consulted by the failover inside one
//! attempt.

use std::sync::Arc;
use std::time::Duration;

use super::api::Api;
use super::error::WechatError;
use super::settings::ClientSettings;
use crate::resilience::breaker::Observation;
use crate::resilience::classify::{Classify, Outcome, wechat_errcode};
use crate::resilience::retry::Attempt;
use crate::resilience::{AttemptTimedOut, Breaker, Deadline, ExecuteError, Policy, Registry, execute};

/// An attempt's error, with the facts classification needs: which API, and whether repeating a
/// request that may have been processed is harmless (the API's `idempotent` flag).
#[derive(Debug)]
pub(crate) struct Attempted {
    pub error: WechatError,
    pub api: Api,
    pub idempotent: bool,
}

tokio::task_local! {
    /// The API and idempotency of the call `execute` is running, for the one error it builds
    /// itself ([`AttemptTimedOut`], which carries no context of ours).
    static CALL: (Api, bool);
}

impl Attempted {
    pub fn new(error: WechatError, api: Api, idempotent: bool) -> Self {
        Self { error, api, idempotent }
    }
}

impl Classify for Attempted {
    /// What an attempt's failure means (`api.rs` has the table and the why):
    /// - ambiguous failures (timeout, broken connection, 500/502/504, undecodable answer: the
    ///   request may have been processed) retry only for idempotent APIs; for the others they
    ///   count as breaker failures but are never repeated (`Exhausted`);
    /// - failures where nothing was processed (connection not made, HTTP 503 and 429) retry for
    ///   every API;
    /// - a rejected token is not retried here: the caller refreshes it and calls again, outside
    ///   this API's policy (so the refresh is never charged to this API);
    /// - 45009 on a send is that API's own daily quota (blocked per API until the reset, see
    ///   `quota.rs`), not a failure of the shared message breaker;
    /// - a breaker refusal (every domain's breaker open) reached nothing: never retried, never
    ///   this API's breaker failure (`NotRetryable` is the one outcome that is neither; it counts
    ///   a success, which is harmless since the domain breakers still refuse).
    fn classify(&self) -> Outcome {
        let ambiguous = if self.idempotent {
            Outcome::Retryable
        } else {
            Outcome::Exhausted
        };
        match &self.error {
            WechatError::Api(api) => match wechat_errcode(api.errcode) {
                Outcome::RefreshThenRetry => Outcome::NotRetryable,
                Outcome::Exhausted if self.api.is_send() => Outcome::NotRetryable,
                outcome => outcome,
            },
            WechatError::Connect { .. } => Outcome::Retryable,
            WechatError::Http { status: 503, .. } => Outcome::Retryable,
            WechatError::Http { status: 429, .. } => Outcome::RetryableSlow,
            WechatError::Http { status, .. } if *status >= 500 || *status == 408 => ambiguous,
            WechatError::Network { .. } | WechatError::Timeout { .. } | WechatError::Decode { .. } => ambiguous,
            _ => Outcome::NotRetryable,
        }
    }
}

impl From<AttemptTimedOut> for Attempted {
    /// The attempt limit fired before the HTTP timeout: as ambiguous as a timeout, and retried
    /// exactly when the API is idempotent.
    fn from(timed_out: AttemptTimedOut) -> Self {
        let (api, idempotent) = CALL.try_with(|call| *call).unwrap_or((Api::CustomSend, false));
        let error = WechatError::Timeout {
            domain: format!("attempt limit {:?}", timed_out.after),
        };
        Self::new(error, api, idempotent)
    }
}

/// The policy name of an API (`wechat.api.custom_send`), as used in resilience overrides.
pub(crate) fn policy_name(api: Api) -> String {
    format!("wechat.api.{}", api.name())
}

/// The breaker name of an API domain (`wechat.domain.api.weixin.qq.com`).
pub(crate) fn domain_breaker_name(base: &str) -> String {
    let host = base.split("://").nth(1).unwrap_or(base).trim_end_matches('/');
    format!("wechat.domain.{host}")
}

/// Each API's policy and each domain's breaker, resolved once per client.
#[derive(Debug)]
pub(crate) struct Guards {
    policies: Vec<(Api, Arc<Policy>)>,
    domains: Vec<Arc<Breaker>>,
}

impl Guards {
    pub fn new(registry: &Registry, settings: &ClientSettings) -> Self {
        let policies = Api::ALL
            .iter()
            .map(|api| {
                let breaker = settings.policies.get(*api).breaker;
                (*api, registry.policy_for(&policy_name(*api), &breaker))
            })
            .collect();
        let domains = settings
            .api_bases
            .iter()
            .map(|base| registry.breaker(&domain_breaker_name(base)))
            .collect();
        Self { policies, domains }
    }

    /// The breaker of the `index`-th domain.
    pub fn domain(&self, index: usize) -> Option<&Arc<Breaker>> {
        self.domains.get(index)
    }

    /// Whether every domain's breaker refuses calls right now (cached state, no I/O).
    fn every_domain_rejecting(&self) -> bool {
        !self.domains.is_empty() && self.domains.iter().all(|breaker| breaker.is_rejecting())
    }

    /// Runs `op` under `api`'s policy within `deadline`; `idempotent` is the API's flag.
    ///
    /// When every domain's breaker is open the call is refused here, before the API's breaker
    /// hands out a permit: nothing is sent, so nothing is recorded against the API.
    pub async fn run<T, F, Fut>(&self, api: Api, idempotent: bool, deadline: Deadline, op: F) -> Result<T, WechatError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Attempted>>,
    {
        let Some((_, policy)) = self.policies.iter().find(|(a, _)| *a == api) else {
            return Err(WechatError::CircuitOpen(format!("no policy for {}", api.name())));
        };
        if self.every_domain_rejecting() {
            return Err(WechatError::CircuitOpen("every API domain's breaker is open".into()));
        }
        let result = CALL.scope((api, idempotent), execute(policy, deadline, op)).await;
        result.map_err(|err| match err {
            ExecuteError::Rejected { reason, .. } => {
                WechatError::CircuitOpen(format!("{}: {}", policy.breaker().name(), reason.as_str()))
            }
            ExecuteError::DeadlineExceeded { last, .. } => last.map_or(WechatError::DeadlineExceeded, |a| a.error),
            other => other
                .into_last_error()
                .map_or(WechatError::DeadlineExceeded, |a| a.error),
        })
    }
}

/// Records one request's effect on its domain's health.
pub(crate) async fn record_domain(
    breaker: &Breaker,
    permit: crate::resilience::breaker::Permit,
    failure: bool,
    elapsed: Duration,
    deadline: &Deadline,
) {
    let outcome = if failure { Outcome::Retryable } else { Outcome::Success };
    // No retry is requested here, so the grant is always `NotRequested`; the store write is cut
    // at the caller's deadline (the outcome then rides on the breaker's next write).
    let observation = Observation {
        outcome,
        elapsed,
        retry: None,
    };
    let _ = breaker.record_within(permit, observation, deadline).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::errcode::ApiError;

    fn outcome(error: WechatError, api: Api, idempotent: bool) -> Outcome {
        Attempted::new(error, api, idempotent).classify()
    }

    fn http(status: u16) -> WechatError {
        WechatError::Http {
            domain: "a".into(),
            status,
        }
    }

    fn errcode(errcode: i64) -> WechatError {
        WechatError::Api(ApiError {
            errcode,
            errmsg: String::new(),
        })
    }

    #[test]
    fn unavailable_and_throttled_retry_for_every_api_but_ambiguous_5xx_only_when_idempotent() {
        assert_eq!(outcome(http(503), Api::CustomSend, false), Outcome::Retryable);
        assert_eq!(outcome(http(429), Api::CustomSend, false), Outcome::RetryableSlow);
        for status in [500, 502, 504] {
            assert_eq!(outcome(http(status), Api::CustomSend, false), Outcome::Exhausted);
            assert_eq!(outcome(http(status), Api::Ticket, true), Outcome::Retryable);
        }
    }

    #[test]
    fn a_breaker_refusal_is_neither_retried_nor_a_breaker_failure() {
        let refused = outcome(WechatError::CircuitOpen("domains".into()), Api::CustomSend, false);
        assert!(!refused.is_retryable() && !refused.is_breaker_failure(), "{refused:?}");
    }

    #[test]
    fn a_rejected_token_is_returned_to_the_caller_not_resent() {
        assert_eq!(outcome(errcode(40001), Api::Ticket, true), Outcome::NotRetryable);
        assert_eq!(outcome(errcode(42001), Api::CustomSend, false), Outcome::NotRetryable);
    }

    #[test]
    fn daily_quota_on_a_send_is_not_a_failure_of_the_shared_message_breaker() {
        assert_eq!(outcome(errcode(45009), Api::TemplateSend, false), Outcome::NotRetryable);
        assert_eq!(outcome(errcode(45009), Api::StableToken, true), Outcome::Exhausted);
    }

    #[tokio::test]
    async fn an_attempt_timeout_retries_exactly_when_the_api_is_idempotent() {
        let timed_out = || {
            Attempted::from(AttemptTimedOut {
                after: Duration::from_millis(5),
            })
        };
        let token = CALL
            .scope((Api::StableToken, true), async { timed_out().classify() })
            .await;
        assert_eq!(token, Outcome::Retryable);
        let send = CALL
            .scope((Api::CustomSend, false), async { timed_out().classify() })
            .await;
        assert_eq!(send, Outcome::Exhausted);
        assert_eq!(
            timed_out().classify(),
            Outcome::Exhausted,
            "no context: the safe answer"
        );
    }
}
