//! `TokenManager`: one access token (and jsapi ticket) for the whole fleet.
//!
//! Why this shape: WeChat's classic endpoint invalidates the previous token on every call, and even
//! stable_token's forced refresh is limited to 20 a day, so instances must not refresh on their
//! own. The token lives in the state store; an instance reads it (and keeps it in a local cache
//! while it is fresh), and when it is due, exactly one instance — the holder of a lease taken by a
//! conditional write — fetches a new one and publishes it. The others keep using the still-valid
//! token, or poll briefly within their deadline when there is none. A dead holder's lease expires.
//!
//! A caller never waits for a refresh while it holds a still-valid token: the refresh (store
//! read, lease, fetch, publish) runs as its own task with its own deadline (the lease), one per
//! instance and kind at a time ([`lookup`](super::lookup)); callers without a valid token wait for
//! that same task within their deadline.
//!
//! Degraded modes: when the refresh fails (endpoint down, breaker open, quota), a still-valid token
//! is served until its real expiry; when the store fails, the instance falls back to its local cache
//! and refreshes on its own — logged and counted, never surfaced to the user.
//!
//! State scope: the cache, the back-off marks, the in-flight refresh and [`TokenStats`] are per
//! instance (shared by clones); the token items, the lease, the forced-refresh allowance and the
//! quota and configuration-error blocks are per fleet (store).

use std::sync::Arc;
use std::sync::Mutex;

use super::config::TokenConfig;
use super::fleet::FleetTokens;
use super::inflight::Inflight;
use super::limits::{ForceLimit, LocalLimits};
use super::record::{Freshness, Token, TokenKind};
use super::source::{TokenMode, TokenSource};
use super::stats::{Stats, TokenStats};
use crate::clock::{SharedClock, millis};
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::store::{SharedStore, Unanswered};
use crate::wechat::daily_quota::DailyQuota;
use crate::wechat::error::WechatError;

const LOG: &str = "wechat.token";

/// Instance-local state, behind a short-lived mutex (never held across an await).
#[derive(Debug, Default)]
pub(super) struct Local {
    pub cache: [Option<Token>; 2],
    /// The value WeChat last rejected, per kind: a refresh that returns it again needs a forced one.
    pub rejected: [Option<Secret>; 2],
    /// No refresh attempt before this (epoch ms), per kind, after a failed refresh.
    pub refresh_after_ms: [i64; 2],
    /// Skip the store until this (epoch ms) after an outage.
    pub store_after_ms: i64,
    pub limits: LocalLimits,
}

/// The fleet-wide token manager of one WeChat account. Clones share every piece of state (the
/// background refresh holds one); cheap to clone or to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct TokenManager {
    pub(super) fleet: FleetTokens,
    pub(super) owner: String,
    pub(super) config: TokenConfig,
    pub(super) mode: TokenMode,
    pub(super) source: Arc<dyn TokenSource>,
    pub(super) clock: SharedClock,
    pub(super) local: Arc<Mutex<Local>>,
    pub(super) inflight: Arc<Inflight>,
    pub(super) stats: Arc<Stats>,
    pub(super) quota: Arc<DailyQuota>,
}

impl TokenManager {
    /// A manager for `appid` fetching from `source` (whose endpoint is `mode`), sharing tokens
    /// through `store`, judging lifetimes by `clock`.
    pub fn new(
        appid: &str,
        mode: TokenMode,
        source: Arc<dyn TokenSource>,
        store: SharedStore,
        clock: SharedClock,
        config: TokenConfig,
    ) -> Self {
        let quota = Arc::new(DailyQuota::new(
            store.clone(),
            appid,
            clock.clone(),
            config.store_timeout,
        ));
        Self {
            fleet: FleetTokens::new(store, appid, config.store_timeout),
            owner: format!("instance-{:016x}", rand::random::<u64>()),
            config,
            mode,
            source,
            clock,
            local: Arc::default(),
            inflight: Arc::default(),
            stats: Arc::default(),
            quota,
        }
    }

    /// Shares `quota` (the account's daily quota blocks) with the client's other APIs.
    pub(crate) fn with_daily_quota(mut self, quota: Arc<DailyQuota>) -> Self {
        self.quota = quota;
        self
    }

    /// Names this instance's leases (defaults to a random id).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// The account.
    pub fn appid(&self) -> &str {
        self.fleet.appid()
    }

    /// A valid access token. Never waits for a refresh while a still-valid one is cached
    /// (see [`TokenConfig::refresh_wait`]).
    ///
    /// # Errors
    /// [`WechatError::Api`] for configuration errors no retry fixes (40164, 40013, 40125),
    /// [`WechatError::QuotaExhausted`] after 45009, [`WechatError::DeadlineExceeded`] when no token
    /// appeared in time, or the upstream failure when there is no valid token to fall back on.
    pub async fn access_token(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        let wait = self.config.refresh_wait;
        self.get(TokenKind::AccessToken, deadline, wait).await.map(|t| t.value)
    }

    /// A valid jsapi ticket (same errors as [`Self::access_token`]).
    pub async fn jsapi_ticket(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        let wait = self.config.refresh_wait;
        self.get(TokenKind::JsapiTicket, deadline, wait).await.map(|t| t.value)
    }

    /// Makes sure `kind` is fresh: when it is due, refreshes it (or waits for the refresh under
    /// way) within `deadline`, even while a still-valid one is cached — for the scheduled refresh,
    /// which exists to refresh before any request path finds the token due.
    ///
    /// # Errors
    /// As [`Self::access_token`]; a failed refresh with a still-valid token cached is not an error.
    pub async fn refresh_if_due(&self, kind: TokenKind, deadline: Deadline) -> Result<(), WechatError> {
        self.get(kind, deadline, deadline.remaining()).await.map(|_| ())
    }

    /// Drops `rejected` (WeChat answered 40001 / 40014 / 42001 for it) here and in the store —
    /// in the store only if it is still the stored value, so a fresh token is never wiped. The
    /// next [`Self::access_token`] then refreshes (normally; forced only if WeChat insists on the
    /// rejected value). The store write is bounded by `deadline`.
    pub async fn invalidate(&self, kind: TokenKind, rejected: &Secret, deadline: Deadline) {
        self.stats.bump(&self.stats.invalidations);
        {
            let mut local = self.lock();
            let i = kind.index();
            if local.cache[i].as_ref().is_some_and(|t| &t.value == rejected) {
                local.cache[i] = None;
            }
            local.rejected[i] = Some(rejected.clone());
            local.refresh_after_ms[i] = 0;
        }
        if !self.store_usable() {
            return;
        }
        match self.fleet.invalidate(kind, rejected.expose(), deadline).await {
            Ok(true) => {
                tracing::info!(target: LOG, appid = self.appid(), kind = kind.as_str(), "invalidated rejected token")
            }
            Ok(false) => tracing::debug!(target: LOG, kind = kind.as_str(), "rejected token already replaced"),
            Err(err) => self.store_failed(&err),
        }
    }

    /// Counters of this instance.
    pub fn stats(&self) -> TokenStats {
        self.stats.snapshot()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        // Only plain field writes happen under this lock; a poisoned one is still consistent.
        self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(super) fn freshness(&self) -> Freshness {
        Freshness {
            margin_ms: millis(self.config.refresh_margin),
            min_age_ms: millis(self.config.min_refresh_interval),
        }
    }

    pub(super) fn force_limit(&self) -> ForceLimit {
        ForceLimit {
            per_day: self.config.force_per_day,
            spacing_ms: millis(self.config.force_spacing),
        }
    }

    pub(super) fn local_token(&self, kind: TokenKind) -> Option<Token> {
        self.lock().cache[kind.index()].clone()
    }

    pub(super) fn remember(&self, kind: TokenKind, token: &Token) {
        self.lock().cache[kind.index()] = Some(token.clone());
    }

    pub(super) fn backing_off(&self, kind: TokenKind, now_ms: i64) -> bool {
        now_ms < self.lock().refresh_after_ms[kind.index()]
    }

    pub(super) fn store_usable(&self) -> bool {
        self.now() >= self.lock().store_after_ms
    }

    /// A store call failed: an outage sends this instance to its local cache for a while; the
    /// caller's deadline running out says nothing about the store.
    pub(super) fn store_failed(&self, err: &Unanswered) {
        if let Unanswered::Deadline = err {
            tracing::debug!(target: LOG, "token store call cut short by the caller's deadline");
            return;
        }
        self.stats.bump(&self.stats.store_fallbacks);
        tracing::warn!(target: LOG, error = %err, "token store unavailable; using the instance-local token cache");
        let until = self.now() + millis(self.config.store_retry_after);
        self.lock().store_after_ms = until;
    }
}
