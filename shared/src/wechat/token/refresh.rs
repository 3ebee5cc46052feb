//! Fetching a new credential: the blocks (45009, configuration errors), the normal fetch, the
//! forced fetch as a last resort, and the ticket's dependency on the access token.

use super::limits::take_force;
use super::manager::TokenManager;
use super::record::{Token, TokenKind};
use super::source::{Fetched, TokenMode};
use crate::clock::millis;
use crate::deadline::Deadline;
use crate::telemetry::metrics::{self, count, count_with};
use crate::wechat::error::WechatError;

const LOG: &str = "wechat.token";

impl TokenManager {
    /// Fetches a new credential of `kind` from WeChat (no store writes except the limits).
    ///
    /// Its lifetime counts from before the request was sent: a slow answer never makes us serve
    /// a token past its real expiry.
    pub(super) async fn fetch(&self, kind: TokenKind, deadline: Deadline) -> Result<Token, WechatError> {
        let sent_at = self.now();
        if let Some(blocked) = self.blocked(kind, sent_at, deadline).await {
            return Err(blocked);
        }
        let fetched = match kind {
            TokenKind::AccessToken => self.fetch_access_token(deadline).await,
            TokenKind::JsapiTicket => self.fetch_ticket(deadline).await,
        };
        match fetched {
            Ok(fetched) => {
                self.stats.bump(&self.stats.upstream_fetches);
                count_with(metrics::TOKEN_FETCHES, "credential", kind.as_str());
                self.lock().rejected[kind.index()] = None;
                Ok(issued(fetched, sent_at))
            }
            Err(err) => Err(self.after_failed_fetch(kind, err, deadline).await),
        }
    }

    async fn fetch_access_token(&self, deadline: Deadline) -> Result<Fetched, WechatError> {
        let fetched = self.source.access_token(false, deadline).await?;
        let rejected = self.lock().rejected[TokenKind::AccessToken.index()].clone();
        if self.mode == TokenMode::Stable && rejected.as_ref() == Some(&fetched.value) {
            // WeChat hands back the very token it just rejected: rotating it is the last resort.
            tracing::warn!(target: LOG, "stable_token returned the rejected token; trying a forced refresh");
            return self.forced_fetch(deadline).await;
        }
        Ok(fetched)
    }

    /// A `force_refresh=true` fetch, if the fleet-wide allowance (and the local one) permits.
    async fn forced_fetch(&self, deadline: Deadline) -> Result<Fetched, WechatError> {
        let now = self.now();
        let limit = self.force_limit();
        let allowed = if self.store_usable() {
            match take_force(&self.fleet, now, limit, deadline).await {
                Ok(allowed) => allowed,
                Err(err) => {
                    self.store_failed(&err);
                    self.lock().limits.take_force(now, limit)
                }
            }
        } else {
            self.lock().limits.take_force(now, limit)
        };
        allowed.map_err(WechatError::ForceRefreshLimited)?;
        self.stats.bump(&self.stats.forced_refreshes);
        count(metrics::TOKEN_FORCED_REFRESHES);
        tracing::warn!(target: LOG, appid = self.appid(), "forced access token refresh");
        self.source.access_token(true, deadline).await
    }

    async fn fetch_ticket(&self, deadline: Deadline) -> Result<Fetched, WechatError> {
        let source = &self.source;
        self.with_access_token(deadline, |access| async move {
            source.jsapi_ticket(&access, deadline).await
        })
        .await
    }

    /// Rotates the access token now (e.g. after a leak), within the fleet-wide allowance, and
    /// publishes it.
    ///
    /// # Errors
    /// [`WechatError::ForceRefreshLimited`] when the allowance is spent, or the fetch's error.
    pub async fn force_refresh(&self, deadline: Deadline) -> Result<(), WechatError> {
        let sent_at = self.now();
        let fetched = self.forced_fetch(deadline).await?;
        self.stats.bump(&self.stats.upstream_fetches);
        count_with(metrics::TOKEN_FETCHES, "credential", TokenKind::AccessToken.as_str());
        let token = issued(fetched, sent_at);
        self.lock().cache[TokenKind::AccessToken.index()] = Some(token.clone());
        if self.store_usable()
            && let Err(err) = self
                .fleet
                .publish_if_newer(TokenKind::AccessToken, &token, deadline)
                .await
        {
            self.store_failed(&err);
        }
        Ok(())
    }

    /// The store is down: refresh on our own, from and into the local cache.
    pub(super) async fn refresh_locally(&self, kind: TokenKind, deadline: Deadline) -> Result<Token, WechatError> {
        let now = self.now();
        let cached = self.local_token(kind).filter(|t| t.is_usable(now));
        if let Some(token) = cached
            .as_ref()
            .filter(|t| t.is_fresh(now, self.freshness()) || self.backing_off(kind, now))
        {
            return Ok(token.clone());
        }
        match self.fetch(kind, deadline).await {
            Ok(token) => {
                self.remember(kind, &token);
                Ok(token)
            }
            Err(err) => self.serve_stale_or(kind, cached, err),
        }
    }

    /// After a failed refresh: the still-valid token if there is one (and back off), else the error.
    pub(super) fn serve_stale_or(
        &self,
        kind: TokenKind,
        usable: Option<Token>,
        err: WechatError,
    ) -> Result<Token, WechatError> {
        let Some(token) = usable else {
            tracing::warn!(target: LOG, kind = kind.as_str(), error = %err, "token refresh failed and no valid token is cached");
            return Err(err);
        };
        self.stats.bump(&self.stats.stale_served);
        tracing::warn!(
            target: LOG, kind = kind.as_str(), error = %err, expires_at_ms = token.expires_at_ms,
            "token refresh failed; serving the cached token until its expiry"
        );
        let retry_at = self.now() + millis(self.config.refresh_backoff);
        let mut local = self.lock();
        local.refresh_after_ms[kind.index()] = retry_at;
        local.cache[kind.index()] = Some(token.clone());
        Ok(token)
    }
}

/// The token as WeChat issued it, its lifetime counted from `sent_at_ms` (before the request).
fn issued(fetched: Fetched, sent_at_ms: i64) -> Token {
    Token {
        value: fetched.value,
        expires_at_ms: sent_at_ms.saturating_add(fetched.expires_in_secs.max(1).saturating_mul(1000)),
        fetched_at_ms: sent_at_ms,
    }
}
