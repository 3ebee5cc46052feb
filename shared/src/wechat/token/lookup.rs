//! Getting a credential: the local cache, else the refresh task — one per instance and kind at a
//! time, spawned with its own deadline, which reads the store, takes the fleet's lease, fetches
//! and publishes.
//!
//! Why a task: a caller holding a still-valid token must not wait for a refresh (a hanging token
//! endpoint would otherwise fail user requests that have a usable token), and must not queue
//! behind another caller's refresh. Callers without a valid token wait for the same task within
//! their own deadline; the task goes on after they give up, so the next caller finds its result.
//!
//! On Lambda a task still running when the invocation returns is frozen with the instance and
//! resumes (or fails and backs off) at its next invocation; its lease bounds how long it can keep
//! the rest of the fleet from refreshing. Paths that must see the refresh done (the scheduled
//! refresh) use [`TokenManager::refresh_if_due`], which waits for it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::Lease;
use super::inflight::Done;
use super::manager::TokenManager;
use super::record::{Record, Token, TokenKind};
use crate::clock::millis;
use crate::deadline::Deadline;
use crate::wechat::error::WechatError;

const LOG: &str = "wechat.token";

impl TokenManager {
    /// The credential of `kind`: cached if fresh; else the refresh task's result. A caller with
    /// a still-valid token waits at most `wait` for it, then gets the valid token.
    pub(super) async fn get(&self, kind: TokenKind, deadline: Deadline, wait: Duration) -> Result<Token, WechatError> {
        loop {
            let now = self.now();
            let cached = self.local_token(kind).filter(|t| t.is_usable(now));
            if let Some(token) = &cached {
                if token.is_fresh(now, self.freshness()) {
                    self.stats.bump(&self.stats.cache_hits);
                    return Ok(token.clone());
                }
                if self.backing_off(kind, now) {
                    self.stats.bump(&self.stats.stale_served);
                    return Ok(token.clone());
                }
            }
            let mut done = self.start_refresh(kind);
            let limit = match &cached {
                Some(_) => wait.min(deadline.remaining()),
                None => deadline.remaining(),
            };
            if let (Some(token), true) = (&cached, limit.is_zero()) {
                return Ok(token.clone());
            }
            let outcome = match tokio::time::timeout(limit, done.wait_for(Option::is_some)).await {
                Ok(Ok(result)) => result.clone(),
                // The task ended without a result (its runtime is shutting down): try again.
                Ok(Err(_closed)) => Some(Ok(None)),
                Err(_elapsed) => None,
            };
            let now = self.now();
            if let Some(token) = self.local_token(kind).filter(|t| t.is_usable(now)) {
                return Ok(token);
            }
            match outcome {
                Some(Err(err)) => return Err(err),
                Some(Ok(Some(token))) if token.is_usable(now) => return Ok(token),
                _ => {}
            }
            if deadline.is_expired() {
                return Err(WechatError::DeadlineExceeded);
            }
            // Another instance holds the lease and nothing valid is known: wait for its token.
            self.stats.bump(&self.stats.polls);
            crate::telemetry::metrics::count(crate::telemetry::metrics::TOKEN_LEASE_WAITS);
            let wake = (Instant::now() + self.config.poll_interval).min(deadline.instant());
            tokio::time::sleep_until(wake).await;
            if deadline.is_expired() {
                return Err(WechatError::DeadlineExceeded);
            }
        }
    }

    /// The result channel of the refresh task of `kind`, started now unless one is running.
    fn start_refresh(&self, kind: TokenKind) -> watch::Receiver<Option<Done>> {
        let mut slot = self.inflight.slot(kind);
        if let Some(running) = slot.as_ref().filter(|rx| rx.has_changed().is_ok()) {
            return running.clone();
        }
        let (tx, rx) = watch::channel(None);
        *slot = Some(rx.clone());
        drop(slot);
        let this = self.clone();
        let task = async move {
            // Its own deadline: the lease it may take bounds how long it may take anyway.
            let done = this.refresh_once(kind, Deadline::after(this.config.lease)).await;
            this.inflight.slot(kind).take();
            tx.send_replace(Some(done));
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(task)),
            Err(_) => {
                self.inflight.slot(kind).take();
                let no_runtime = WechatError::CircuitOpen("token refresh needs a tokio runtime".into());
                return watch::channel(Some(Err(no_runtime))).1;
            }
        }
        rx
    }

    /// One refresh round: adopt what the store has, or take the lease and refresh.
    async fn refresh_once(&self, kind: TokenKind, deadline: Deadline) -> Done {
        if !self.store_usable() {
            return self.refresh_locally(kind, deadline).await.map(Some);
        }
        let now = self.now();
        let record = match self.fleet.read(kind, deadline).await {
            Ok(record) => record,
            Err(err) => {
                self.store_failed(&err);
                return self.refresh_locally(kind, deadline).await.map(Some);
            }
        };
        if let Some(token) = record.fresh(now, self.freshness()) {
            self.remember(kind, token);
            return Ok(Some(token.clone()));
        }
        if let Some(token) = record.usable(now).filter(|_| self.backing_off(kind, now)) {
            self.stats.bump(&self.stats.stale_served);
            self.remember(kind, token);
            return Ok(Some(token.clone()));
        }
        let lease_ms = millis(self.config.lease);
        match self.fleet.try_lease(kind, &self.owner, now, lease_ms, deadline).await {
            Err(err) => {
                self.store_failed(&err);
                self.refresh_locally(kind, deadline).await.map(Some)
            }
            Ok(Lease::Won(record)) => self.refresh_with_lease(kind, record, deadline).await.map(Some),
            Ok(Lease::Lost(current)) => {
                // Another instance is refreshing; its predecessor still works meanwhile.
                let usable = current.usable(now).cloned();
                if let Some(token) = &usable {
                    self.remember(kind, token);
                }
                Ok(usable)
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
            if let Err(err) = self.fleet.release(kind, &self.owner, deadline).await {
                self.store_failed(&err);
            }
            self.remember(kind, token);
            return Ok(token.clone());
        }
        match self.fetch(kind, self.leaving_room(deadline)).await {
            Ok(token) => {
                match self.fleet.publish(kind, &self.owner, &token, deadline).await {
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
                if let Err(store_err) = self.fleet.release(kind, &self.owner, deadline).await {
                    self.store_failed(&store_err);
                }
                self.serve_stale_or(kind, record.usable(now).cloned(), err)
            }
        }
    }

    /// `deadline` moved earlier by the time a publish may need, so that a fetch that uses all
    /// of its time still leaves room to publish its token.
    fn leaving_room(&self, deadline: Deadline) -> Deadline {
        let reserve = self.config.store_timeout.min(self.config.lease / 4);
        deadline.instant().checked_sub(reserve).map_or(deadline, Deadline::at)
    }
}
