//! `TokenManager`: one access token (and jsapi ticket) for the whole fleet.
//!
//! Why this shape: WeChat's classic endpoint invalidates the previous token on every call, and even
//! stable_token's forced refresh is limited to 20 a day, so instances must not refresh on their
//! own. The token lives in the state store; an instance reads it (and keeps it in a local cache
//! while it is fresh), and when it is due, exactly one instance — the holder of a lease taken by a
//! conditional write — fetches a new one and publishes it. The others keep using the still-valid
//! token, or poll briefly within their deadline when there is none. A dead holder's lease expires.
//!
//! Degraded modes: when the refresh fails (endpoint down, breaker open, quota), a still-valid token
//! is served until its real expiry; when the store fails, the instance falls back to its local cache
//! and refreshes on its own — logged and counted, never surfaced to the user.
//!
//! State scope: the cache, the back-off marks and [`TokenStats`] are per instance; the token
//! items, the lease, the forced-refresh allowance and the quota block are per fleet (store).

use std::sync::Arc;
use std::sync::Mutex;

use tokio::time::Instant;

use super::config::{TokenConfig, ms};
use super::fleet::{FleetTokens, Lease};
use super::limits::{ForceLimit, LocalLimits};
use super::record::{Freshness, Record, Token, TokenKind};
use super::source::{TokenMode, TokenSource};
use super::stats::{Stats, TokenStats};
use crate::clock::SharedClock;
use crate::config::Secret;
use crate::resilience::deadline::Deadline;
use crate::store::{SharedStore, StoreError};
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

/// The fleet-wide token manager of one WeChat account. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TokenManager {
    pub(super) fleet: FleetTokens,
    pub(super) owner: String,
    pub(super) config: TokenConfig,
    pub(super) mode: TokenMode,
    pub(super) source: Arc<dyn TokenSource>,
    pub(super) clock: SharedClock,
    pub(super) local: Mutex<Local>,
    refresh_locks: [tokio::sync::Mutex<()>; 2],
    pub(super) stats: Stats,
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
        Self {
            fleet: FleetTokens::new(store, appid, config.store_timeout),
            owner: format!("instance-{:016x}", rand::random::<u64>()),
            config,
            mode,
            source,
            clock,
            local: Mutex::new(Local::default()),
            refresh_locks: [tokio::sync::Mutex::new(()), tokio::sync::Mutex::new(())],
            stats: Stats::default(),
        }
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

    /// A valid access token.
    ///
    /// # Errors
    /// [`WechatError::Api`] for configuration errors no retry fixes (40164, 40013, 40125),
    /// [`WechatError::QuotaExhausted`] after 45009, [`WechatError::DeadlineExceeded`] when no token
    /// appeared in time, or the upstream failure when there is no valid token to fall back on.
    pub async fn access_token(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        self.get(TokenKind::AccessToken, deadline).await.map(|t| t.value)
    }

    /// A valid jsapi ticket (same errors as [`Self::access_token`]).
    pub async fn jsapi_ticket(&self, deadline: Deadline) -> Result<Secret, WechatError> {
        self.get(TokenKind::JsapiTicket, deadline).await.map(|t| t.value)
    }

    /// Drops `rejected` (WeChat answered 40001 / 40014 / 42001 for it) here and in the store —
    /// in the store only if it is still the stored value, so a fresh token is never wiped. The
    /// next [`Self::access_token`] then refreshes (normally; forced only if WeChat insists on the
    /// rejected value).
    pub async fn invalidate(&self, kind: TokenKind, rejected: &Secret) {
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
        match self.fleet.invalidate(kind, rejected.expose()).await {
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
            margin_ms: ms(self.config.refresh_margin),
            min_age_ms: ms(self.config.min_refresh_interval),
        }
    }

    pub(super) fn force_limit(&self) -> ForceLimit {
        ForceLimit {
            per_day: self.config.force_per_day,
            spacing_ms: ms(self.config.force_spacing),
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

    pub(super) fn store_failed(&self, err: &StoreError) {
        self.stats.bump(&self.stats.store_fallbacks);
        tracing::warn!(target: LOG, error = %err, "token store unavailable; using the instance-local token cache");
        let until = self.now() + ms(self.config.store_retry_after);
        self.lock().store_after_ms = until;
    }

    /// The credential of `kind`, from the local cache, the store, or a refresh.
    pub(super) async fn get(&self, kind: TokenKind, deadline: Deadline) -> Result<Token, WechatError> {
        let fresh = self.freshness();
        if let Some(token) = self.local_token(kind).filter(|t| t.is_fresh(self.now(), fresh)) {
            self.stats.bump(&self.stats.cache_hits);
            return Ok(token);
        }
        // One refresh attempt per instance and kind at a time; the others wait for its result.
        let lock = &self.refresh_locks[kind.index()];
        let _guard = tokio::time::timeout_at(deadline.instant(), lock.lock())
            .await
            .map_err(|_| WechatError::DeadlineExceeded)?;
        if let Some(token) = self.local_token(kind).filter(|t| t.is_fresh(self.now(), fresh)) {
            self.stats.bump(&self.stats.cache_hits);
            return Ok(token);
        }
        loop {
            if !self.store_usable() {
                return self.refresh_locally(kind, deadline).await;
            }
            let now = self.now();
            let record = match self.fleet.read(kind).await {
                Ok(record) => record,
                Err(err) => {
                    self.store_failed(&err);
                    return self.refresh_locally(kind, deadline).await;
                }
            };
            if let Some(token) = record.fresh(now, fresh) {
                self.remember(kind, token);
                return Ok(token.clone());
            }
            if let Some(token) = record.usable(now).filter(|_| self.backing_off(kind, now)) {
                self.stats.bump(&self.stats.stale_served);
                return Ok(token.clone());
            }
            match self
                .fleet
                .try_lease(kind, &self.owner, now, ms(self.config.lease))
                .await
            {
                Err(err) => {
                    self.store_failed(&err);
                    return self.refresh_locally(kind, deadline).await;
                }
                Ok(Lease::Won(record)) => return self.refresh_with_lease(kind, record, deadline).await,
                Ok(Lease::Lost(current)) => {
                    // Another instance is refreshing; its predecessor still works meanwhile.
                    if let Some(token) = current.usable(now) {
                        self.remember(kind, token);
                        return Ok(token.clone());
                    }
                    self.stats.bump(&self.stats.polls);
                    let wake = (Instant::now() + self.config.poll_interval).min(deadline.instant());
                    tokio::time::sleep_until(wake).await;
                    if deadline.is_expired() {
                        return Err(WechatError::DeadlineExceeded);
                    }
                }
            }
        }
    }

    /// We hold the lease: refresh, publish, release.
    async fn refresh_with_lease(
        &self,
        kind: TokenKind,
        record: Record,
        deadline: Deadline,
    ) -> Result<Token, WechatError> {
        let now = self.now();
        if let Some(token) = record.fresh(now, self.freshness()) {
            // Someone published between our read and our lease.
            if let Err(err) = self.fleet.release(kind, &self.owner).await {
                self.store_failed(&err);
            }
            self.remember(kind, token);
            return Ok(token.clone());
        }
        match self.fetch(kind, deadline).await {
            Ok(token) => {
                match self.fleet.publish(kind, &self.owner, &token).await {
                    Ok(true) => tracing::info!(
                        target: LOG, appid = self.appid(), kind = kind.as_str(), version = record.version + 1,
                        expires_at_ms = token.expires_at_ms, "published refreshed token"
                    ),
                    Ok(false) => {
                        tracing::warn!(target: LOG, kind = kind.as_str(), "refresh lease lost before publishing")
                    }
                    Err(err) => self.store_failed(&err),
                }
                self.remember(kind, &token);
                Ok(token)
            }
            Err(err) => {
                if let Err(store_err) = self.fleet.release(kind, &self.owner).await {
                    self.store_failed(&store_err);
                }
                self.serve_stale_or(kind, record.usable(now).cloned(), err)
            }
        }
    }
}
