//! `WechatClient`: every WeChat call goes through its API's policy, the domain failover and the
//! fleet-wide token manager.

use std::sync::Arc;

use serde_json::Value;

use super::api::Api;
use super::core::Core;
use super::daily_quota::DailyQuota;
use super::errcode::DAILY_QUOTA;
use super::error::WechatError;
use super::failover::Domains;
use super::policy::{CallPolicies, register};
use super::settings::ClientSettings;
use super::token::{TokenManager, TokenStats};
use super::transport::{Call, Transport};
use super::upstream::Upstream;
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::resilience::{Registry, TracingObserver};
use crate::secret::Secret;
use crate::store::SharedStore;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientBuildError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] WechatError),
    /// A policy or breaker setting is out of range.
    #[error(transparent)]
    Resilience(#[from] crate::resilience::ConfigError),
}

/// The resilient WeChat API client of one account. Cheap to clone; build once per cold start.
#[derive(Debug, Clone)]
pub struct WechatClient {
    core: Arc<Core>,
    tokens: Arc<TokenManager>,
    quota: Arc<DailyQuota>,
    /// The login APIs authenticate with the AppSecret itself (`login.rs`).
    appsecret: Secret,
}

impl WechatClient {
    /// A client with its own resilience registry (breakers in `store`, events to `tracing`),
    /// calling WeChat with `appsecret` (loaded once per cold start).
    ///
    /// # Errors
    /// [`ClientBuildError`] when a policy is out of range or the HTTP client cannot be built.
    pub fn new(
        settings: &ClientSettings,
        appsecret: Secret,
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, ClientBuildError> {
        let builder = Registry::builder(store.clone(), clock.clone()).observer(Arc::new(TracingObserver));
        let registry = register(settings, builder)?.build()?;
        Ok(Self::with_registry(settings, appsecret, &registry, store, clock)?)
    }

    /// A client over a shared registry, which should have been built with
    /// [`register`](super::register) applied (else the registry's defaults apply to its policies
    /// and breakers).
    ///
    /// # Errors
    /// [`WechatError`] when the HTTP client cannot be built.
    pub fn with_registry(
        settings: &ClientSettings,
        appsecret: Secret,
        registry: &Registry,
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, WechatError> {
        let core = Arc::new(Core {
            transport: Transport::new(settings.connect_timeout)?,
            domains: Domains::new(settings.api_bases.clone()),
            policies: CallPolicies::new(registry, settings),
            settings: settings.policies.clone(),
        });
        let upstream = Upstream::new(core.clone(), &settings.appid, appsecret.clone(), settings.token_mode);
        let quota = Arc::new(DailyQuota::new(
            store.clone(),
            &settings.appid,
            clock.clone(),
            settings.token.store_timeout,
        ));
        let tokens = TokenManager::new(
            &settings.appid,
            settings.token_mode,
            Arc::new(upstream),
            store,
            clock,
            settings.token,
        )
        .with_daily_quota(quota.clone());
        Ok(Self {
            core,
            tokens: Arc::new(tokens),
            quota,
            appsecret,
        })
    }

    /// The account's AppID.
    pub fn appid(&self) -> &str {
        self.tokens.appid()
    }

    pub(super) fn appsecret(&self) -> &Secret {
        &self.appsecret
    }

    /// `call` under its API's policy and failover, without the account's access token (the
    /// login APIs carry the AppSecret or the user's own token).
    pub(super) async fn call_without_token(&self, call: &Call<'_>, deadline: Deadline) -> Result<Value, WechatError> {
        self.core.call(call, deadline).await
    }

    /// A valid access token (from the fleet cache, refreshed by one instance when due).
    ///
    /// # Errors
    /// See [`TokenManager::access_token`].
    pub async fn access_token(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        self.tokens.access_token(deadline).await
    }

    /// A valid jsapi ticket (JS-SDK signatures).
    ///
    /// # Errors
    /// See [`TokenManager::jsapi_ticket`].
    pub async fn jsapi_ticket(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        self.tokens.jsapi_ticket(deadline).await
    }

    /// This instance's token counters.
    pub fn token_stats(&self) -> TokenStats {
        self.tokens.stats()
    }

    /// The token manager (the scheduled refresh function and admin routes use it).
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// Calls `api` with the access token, under the API's policy. A rejected token (40001 /
    /// 40014 / 42001) is invalidated by compare-and-set and the call made once more with a fresh
    /// one ([`TokenManager::with_access_token`]). Getting the token happens outside the API's
    /// policy: a slow or failing token endpoint is never charged to this API's breaker.
    ///
    /// An API whose daily quota is spent (45009) is answered with [`WechatError::QuotaExhausted`]
    /// until the daily reset without calling WeChat ([`DailyQuota`]).
    ///
    /// # Errors
    /// The last attempt's [`WechatError`] (typed errcode, transport, breaker, quota or deadline).
    pub async fn call_with_token(
        &self,
        api: Api,
        body: Option<&Value>,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        self.call_with_token_and_query(api, &[], body, deadline).await
    }

    /// [`Self::call_with_token`] with more query parameters after the token (`next_openid`).
    ///
    /// # Errors
    /// As [`Self::call_with_token`].
    pub async fn call_with_token_and_query(
        &self,
        api: Api,
        query: &[(&'static str, &str)],
        body: Option<&Value>,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        if let Some(until_ms) = self.quota.blocked_until(api, deadline).await {
            return Err(WechatError::QuotaExhausted { until_ms });
        }
        let result = self
            .tokens
            .with_access_token(deadline, |token| async move {
                let mut params = vec![("access_token", token)];
                params.extend(query.iter().map(|(name, value)| (*name, Secret::new(*value))));
                let call = Call {
                    api,
                    query: params,
                    body,
                };
                self.core.call(&call, deadline).await
            })
            .await;
        match result {
            Err(WechatError::Api(error)) if error.errcode == DAILY_QUOTA => {
                let until_ms = self.quota.block(api, deadline).await;
                Err(WechatError::QuotaExhausted { until_ms })
            }
            other => other,
        }
    }
}
