//! The seam between the WeChat client and the resilience core: what an attempt's error means
//! (retry? breaker failure?), each API's named policy, and each domain's breaker.
//!
//! All retrying goes through [`resilience::execute`](crate::resilience::execute()) — attempts,
//! backoff, the fleet-wide retry budget, the API's shared breaker, the per-attempt timeout and the
//! "refresh the credential, then retry once" rule. Domain breakers are plain
//! [`Breaker`]s consulted by the failover inside one attempt.

use std::sync::Arc;
use std::time::Duration;

use super::api::Api;
use super::error::WechatError;
use super::settings::ClientSettings;
use crate::resilience::breaker::Observation;
use crate::resilience::classify::{Classify, Outcome, wechat_errcode};
use crate::resilience::retry::Attempt;
use crate::resilience::{AttemptTimedOut, Breaker, Deadline, ExecuteError, Policy, Registry, execute};

/// An attempt's error, with the facts classification needs from the API's policy.
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
        Self {
            error,
            idempotent,
            token_step: false,
        }
    }
    pub fn token(error: WechatError) -> Self {
        Self {
            error,
            idempotent: false,
            token_step: true,
        }
    }
}

impl Classify for Attempted {
    /// Transport failures retry only for idempotent APIs; for the others they still count as
    /// breaker failures but are never repeated (`Exhausted`: the message may have been delivered).
    fn classify(&self) -> Outcome {
        if self.token_step {
            return Outcome::NotRetryable;
        }
        let ambiguous = if self.idempotent {
            Outcome::Retryable
        } else {
            Outcome::Exhausted
        };
        match &self.error {
            WechatError::Api(api) => wechat_errcode(api.errcode),
            WechatError::Connect { .. } => Outcome::Retryable,
            WechatError::Network { .. } | WechatError::Timeout { .. } | WechatError::Decode { .. } => ambiguous,
            WechatError::Http { status, .. } if *status >= 500 || *status == 408 => ambiguous,
            WechatError::Http { status: 429, .. } if self.idempotent => Outcome::RetryableSlow,
            WechatError::CircuitOpen(_) => Outcome::Exhausted,
            _ => Outcome::NotRetryable,
        }
    }
}

impl From<AttemptTimedOut> for Attempted {
    fn from(timed_out: AttemptTimedOut) -> Self {
        Self::call(
            WechatError::Timeout {
                domain: format!("attempt limit {:?}", timed_out.after),
            },
            false,
        )
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

    /// Runs `op` under `api`'s policy within `deadline`.
    pub async fn run<T, F, Fut>(&self, api: Api, deadline: Deadline, op: F) -> Result<T, WechatError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Attempted>>,
    {
        let Some((_, policy)) = self.policies.iter().find(|(a, _)| *a == api) else {
            return Err(WechatError::CircuitOpen(format!("no policy for {}", api.name())));
        };
        execute(policy, deadline, op).await.map_err(|err| match err {
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
) {
    let outcome = if failure { Outcome::Retryable } else { Outcome::Success };
    // No retry is requested here, so the grant is always `NotRequested`.
    let _ = breaker
        .record(
            permit,
            Observation {
                outcome,
                elapsed,
                retry: None,
            },
        )
        .await;
}
