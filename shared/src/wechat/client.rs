//! `WechatClient`: every WeChat call goes through its API's policy, the domain failover and the
//! fleet-wide token manager.

use std::sync::Arc;

use serde_json::Value;

use super::api::ApiPolicies;
use super::api::{Api, ApiPolicy};
use super::errcode::DAILY_QUOTA;
use super::error::WechatError;
use super::failover::{Cursor, Domains};
use super::guard::{Attempted, Guards};
use super::quota::SendQuota;
use super::secret::SecretError;
use super::settings::ClientSettings;
use super::token::{TokenKind, TokenManager, TokenStats};
use super::transport::{Call, Transport};
use super::upstream::Upstream;
use crate::clock::SharedClock;
use crate::config::Secret;
use crate::resilience::deadline::Deadline;
use crate::resilience::{Registry, TracingObserver};
use crate::store::SharedStore;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientBuildError {
    /// The AppSecret could not be loaded.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] WechatError),
    /// A policy or breaker setting is out of range.
    #[error(transparent)]
    Resilience(#[from] crate::resilience::ConfigError),
}

/// Guarded calls without tokens: the part the token manager's upstream source shares.
#[derive(Debug)]
pub(crate) struct Core {
    pub transport: Transport,
    pub domains: Domains,
    pub guards: Guards,
    pub policies: ApiPolicies,
}

impl Core {
    fn policy(&self, api: Api) -> ApiPolicy {
        self.policies.get(api)
    }

    /// `call` under its API's policy, with failover. A rejected token (40001 / 40014 / 42001)
    /// is returned, not retried: resending the same token cannot help, the caller refreshes.
    pub async fn call(&self, call: &Call<'_>, deadline: Deadline) -> Result<Value, WechatError> {
        let policy = self.policy(call.api);
        let cursor = Cursor::default();
        let (policy, cursor) = (&policy, &cursor);
        self.guards
            .run(call.api, policy.idempotent, deadline, |_attempt| async move {
                self.domains
                    .attempt(&self.transport, &self.guards, call, policy.timeout, deadline, cursor)
                    .await
                    .map_err(|error| Attempted::new(error, call.api, policy.idempotent))
            })
            .await
    }
}

/// The resilient WeChat API client of one account. Cheap to clone; build once per cold start.
#[derive(Debug, Clone)]
pub struct WechatClient {
    core: Arc<Core>,
    tokens: Arc<TokenManager>,
    quota: Arc<SendQuota>,
}

impl WechatClient {
    /// Loads the AppSecret (once: keep the client) and builds the client.
    ///
    /// # Errors
    /// [`ClientBuildError`] when the secret cannot be loaded or the HTTP client not built.
    pub async fn from_settings(
        settings: &ClientSettings,
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, ClientBuildError> {
        let secret = settings.secret.load().await?;
        Self::new(settings, secret, store, clock)
    }

    /// A client with an already loaded AppSecret and its own resilience registry (breakers in
    /// `store`, events to `tracing`).
    ///
    /// # Errors
    /// [`ClientBuildError`] when a policy is out of range or the HTTP client cannot be built.
    pub fn new(
        settings: &ClientSettings,
        secret: Secret,
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, ClientBuildError> {
        let builder = Registry::builder(store.clone(), clock.clone()).observer(Arc::new(TracingObserver));
        let registry = settings.register(builder)?.build()?;
        Ok(Self::with_registry(settings, secret, &registry, store, clock)?)
    }

    /// A client over a shared registry, which should have been built with
    /// [`ClientSettings::register`] applied (else the registry's defaults apply to its policies
    /// and breakers).
    ///
    /// # Errors
    /// [`WechatError`] when the HTTP client cannot be built.
    pub fn with_registry(
        settings: &ClientSettings,
        secret: Secret,
        registry: &Registry,
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, WechatError> {
        let core = Arc::new(Core {
            transport: Transport::new(settings.connect_timeout)?,
            domains: Domains::new(settings.api_bases.clone()),
            guards: Guards::new(registry, settings),
            policies: settings.policies.clone(),
        });
        let upstream = Upstream::new(core.clone(), &settings.appid, secret, settings.token_mode);
        let quota = SendQuota::new(
            store.clone(),
            &settings.appid,
            clock.clone(),
            settings.token.store_timeout,
        );
        let tokens = TokenManager::new(
            &settings.appid,
            settings.token_mode,
            Arc::new(upstream),
            store,
            clock,
            settings.token,
        );
        Ok(Self {
            core,
            tokens: Arc::new(tokens),
            quota: Arc::new(quota),
        })
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
    /// one. Getting the token happens outside the API's policy: a slow or failing token endpoint
    /// is never charged to this API's breaker or attempt limit.
    ///
    /// A send API whose daily quota is spent (45009) is answered with
    /// [`WechatError::QuotaExhausted`] until the daily reset without calling WeChat (`quota.rs`).
    ///
    /// # Errors
    /// The last attempt's [`WechatError`] (typed errcode, transport, breaker, quota or deadline).
    pub async fn call_with_token(
        &self,
        api: Api,
        body: Option<&Value>,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        if let Some(until_ms) = self.quota.blocked_until(api, deadline).await {
            return Err(WechatError::QuotaExhausted { until_ms });
        }
        let token = self.tokens.access_token(deadline).await?;
        let result = match self.call_once(api, body, &token, deadline).await {
            Err(error) if error.is_token_invalid() => {
                self.tokens.invalidate(TokenKind::AccessToken, &token, deadline).await;
                let fresh = self.tokens.access_token(deadline).await?;
                self.call_once(api, body, &fresh, deadline).await
            }
            other => other,
        };
        match result {
            Err(WechatError::Api(error)) if api.is_send() && error.errcode == DAILY_QUOTA => {
                let until_ms = self.quota.block(api, deadline).await;
                Err(WechatError::QuotaExhausted { until_ms })
            }
            other => other,
        }
    }

    async fn call_once(
        &self,
        api: Api,
        body: Option<&Value>,
        token: &Secret,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        let call = Call {
            api,
            query: vec![("access_token", token.clone())],
            body,
        };
        self.core.call(&call, deadline).await
    }
}
