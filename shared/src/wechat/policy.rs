//! Each API's resilience policy and each API domain's breaker: the seam between the WeChat
//! client and the resilience core.
//!
//! All retrying goes through [`execute`](crate::resilience::execute()) — attempts, backoff, the
//! fleet-wide retry budget, the API's shared breaker and the per-attempt timeout — with the
//! client's classifier ([`classify`](super::classify)). Domain breakers are plain [`Breaker`]s
//! consulted by the failover inside one attempt. Names are stable (they key fleet-wide breaker
//! items and resilience overrides): `wechat.api.{api}` for retry policies, the API's `breaker`
//! setting (`wechat.token`, `wechat.ticket`, `wechat.message`) for API breakers, and
//! `wechat.domain.{host}` for domain breakers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::api::Api;
use super::classify;
use super::error::WechatError;
use super::settings::ClientSettings;
use crate::deadline::Deadline;
use crate::resilience::breaker::{Observation, Permit};
use crate::resilience::retry::RetryConfig;
use crate::resilience::{
    Attempt, Breaker, ConfigError, ExecuteError, Outcome, Policy, PolicyConfig, Registry, RegistryBuilder, State,
    execute,
};

/// Slack between an API's own HTTP timeout and the resilience attempt limit, so the HTTP
/// timeout (which knows whether the API is idempotent) normally fires first.
const ATTEMPT_SLACK: Duration = Duration::from_millis(250);

/// The policy name of an API (`wechat.api.custom_send`), as used in resilience overrides.
pub fn policy_name(api: Api) -> String {
    format!("wechat.api.{}", api.name())
}

/// The breaker name of an API domain (`wechat.domain.api.weixin.qq.com`).
pub fn domain_breaker_name(base: &str) -> String {
    let host = base.split("://").nth(1).unwrap_or(base).trim_end_matches('/');
    format!("wechat.domain.{host}")
}

/// Every breaker a client with `settings` uses: the API breakers, then one per domain (what the
/// admin API lists and the tuner watches).
pub fn breaker_names(settings: &ClientSettings) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for api in Api::ALL {
        let name = settings.policies.get(api).breaker;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.extend(settings.api_bases.iter().map(|base| domain_breaker_name(base)));
    names
}

/// Adds the client's named configurations to a resilience registry: one retry policy per API
/// (`wechat.api.{name}`), the API breakers and one breaker per domain. Overrides given to the
/// registry (`RESILIENCE__WECHAT_API_CUSTOM_SEND__MAX_ATTEMPTS=2`, runtime items) win over them.
///
/// # Errors
/// A resilience [`ConfigError`] naming the policy and field.
pub fn register(settings: &ClientSettings, builder: RegistryBuilder) -> Result<RegistryBuilder, ConfigError> {
    let mut builder = builder.region(settings.breaker_region.clone());
    let mut breakers = Vec::new();
    let domains = u32::try_from(settings.api_bases.len().max(1)).unwrap_or(u32::MAX);
    for api in Api::ALL {
        let own = settings.policies.get(api);
        let name = policy_name(api);
        let retry = RetryConfig::builder()
            .max_attempts(own.max_attempts)
            .base_delay(own.base_delay)
            .max_delay(own.max_delay)
            // One attempt is a failover chain: it may visit every domain once.
            .attempt_timeout(Some(own.timeout * domains + ATTEMPT_SLACK))
            .build()
            .map_err(|e| e.in_scope(&name))?;
        builder = builder.config(
            &name,
            PolicyConfig {
                retry,
                ..PolicyConfig::default()
            },
        );
        if !breakers.contains(&own.breaker) {
            breakers.push(own.breaker);
        }
    }
    for name in breakers {
        let breaker = settings.api_breaker.clone();
        builder = builder.config(
            &name,
            PolicyConfig {
                breaker,
                ..PolicyConfig::default()
            },
        );
    }
    for overrides in &settings.overrides {
        builder = builder.overrides(overrides.clone());
    }
    for base in &settings.api_bases {
        let breaker = settings.domain_breaker.clone();
        builder = builder.config(
            &domain_breaker_name(base),
            PolicyConfig {
                breaker,
                ..PolicyConfig::default()
            },
        );
    }
    Ok(builder)
}

/// Each API's policy and each domain's breaker, resolved once per client.
#[derive(Debug)]
pub(crate) struct CallPolicies {
    apis: Vec<(Api, Arc<Policy>)>,
    domains: Vec<Arc<Breaker>>,
}

impl CallPolicies {
    pub fn new(registry: &Registry, settings: &ClientSettings) -> Self {
        let apis = Api::ALL
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
        Self { apis, domains }
    }

    /// The breaker of the `index`-th domain.
    pub fn domain(&self, index: usize) -> Option<&Arc<Breaker>> {
        self.domains.get(index)
    }

    /// The order in which an attempt visits the `count` domains: configured order for idempotent
    /// calls (they fail over on anything, so they may probe a recovering domain); for the others
    /// the domains whose breaker is closed first, then the rest (cached state, no I/O).
    pub fn domain_order(&self, count: usize, idempotent: bool) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        if !idempotent {
            // A stable sort keeps the configured order within each group.
            order.sort_by_key(|&index| self.domain(index).is_some_and(|b| b.state() != State::Closed));
        }
        order
    }

    /// Whether every domain's breaker refuses calls right now (cached state, no I/O).
    fn every_domain_rejecting(&self) -> bool {
        !self.domains.is_empty() && self.domains.iter().all(|breaker| breaker.is_rejecting())
    }

    /// Runs `op` under `api`'s policy within `deadline`; `idempotent` is the API's flag.
    ///
    /// When every domain's breaker is open the call is refused here, before the API's breaker
    /// hands out a permit: nothing is sent, so nothing is recorded against the API.
    pub async fn run<F, Fut>(&self, api: Api, idempotent: bool, deadline: Deadline, op: F) -> Result<Value, WechatError>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Value, WechatError>>,
    {
        let Some((_, policy)) = self.apis.iter().find(|(a, _)| *a == api) else {
            return Err(WechatError::CircuitOpen(format!("no policy for {}", api.name())));
        };
        if self.every_domain_rejecting() {
            return Err(WechatError::CircuitOpen("every API domain's breaker is open".into()));
        }
        let classify = |result: &_| classify::outcome(api, idempotent, result);
        let timed_out = |after: Duration| WechatError::Timeout {
            domain: format!("attempt limit {after:?}"),
        };
        execute(policy, deadline, classify, op).await.map_err(|err| match err {
            ExecuteError::Rejected { reason, .. } => {
                WechatError::CircuitOpen(format!("{}: {}", policy.breaker().name(), reason.as_str()))
            }
            other => other
                .into_last_error()
                .map_or(WechatError::DeadlineExceeded, |last| last.into_error(timed_out)),
        })
    }
}

/// Records one request's effect on its domain's health.
pub(crate) async fn record_domain(
    breaker: &Breaker,
    permit: Permit,
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
