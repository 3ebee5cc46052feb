//! The mock's shared state: accounts, faults, call counters, recorded messages and the follower
//! population, behind one mutex.
//!
//! Every listener (mock "domain") shares one `MockState`, so a token issued on `api` is valid on
//! `api2`, as with the real WeChat domains.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use crate::config::MockConfig;
use crate::faults::{Fault, FaultKind};
use crate::tokens::AppTokens;

/// One message the mock accepted (custom, template or subscribe send).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    /// `custom`, `template` or `subscribe`.
    pub kind: String,
    /// The domain (listener) it arrived on.
    pub domain: String,
    /// The appid whose access token authorised it.
    pub appid: String,
    /// The JSON body as sent.
    pub body: Value,
    /// The msgid the mock answered with.
    pub msgid: i64,
}

/// Calls per (domain, path), as returned by [`crate::MockHandle::counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// `(domain, path) → calls` (faulted calls included; control calls excluded).
    pub calls: BTreeMap<(String, String), u64>,
    /// `stable_token` calls that asked for `force_refresh=true` (granted or refused).
    pub forced_refreshes: u64,
}

impl Counters {
    /// Calls to `path` on every domain.
    pub fn path(&self, path: &str) -> u64 {
        self.calls.iter().filter(|((_, p), _)| p == path).map(|(_, n)| n).sum()
    }
    /// Calls to any path on `domain`.
    pub fn domain(&self, domain: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((d, _), _)| d == domain)
            .map(|(_, n)| n)
            .sum()
    }
    /// Calls to `path` on `domain`.
    pub fn on(&self, domain: &str, path: &str) -> u64 {
        self.calls
            .get(&(domain.to_owned(), path.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub offset_ms: i64,
    pub apps: BTreeMap<String, AppTokens>,
    pub faults: Vec<Fault>,
    pub counters: Counters,
    pub messages: Vec<SentMessage>,
    pub seq: u64,
    pub users: crate::users::Users,
    pub followers: crate::followers::Population,
}

/// State shared by all listeners and the handle.
#[derive(Debug)]
pub(crate) struct MockState {
    pub config: MockConfig,
    inner: Mutex<Inner>,
}

impl MockState {
    pub(crate) fn new(config: MockConfig) -> Self {
        let state = Self {
            config,
            inner: Mutex::new(Inner::default()),
        };
        state.reset();
        state
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation is a few field writes; a poisoned lock leaves nothing half-done worth refusing.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Mock time: the configured time source plus the control offset.
    pub(crate) fn now_ms(&self) -> i64 {
        (self.config.time)() + self.lock().offset_ms
    }

    /// A fresh opaque value for a token or ticket.
    pub(crate) fn next_value(inner: &mut Inner, prefix: &str, appid: &str) -> String {
        inner.seq += 1;
        format!("{prefix}_{appid}_{:06}_MOCKVALUE", inner.seq)
    }

    /// Counts a call and takes one shot of the first matching fault.
    pub(crate) fn record_call(&self, domain: &str, path: &str) -> Option<FaultKind> {
        let mut inner = self.lock();
        *inner
            .counters
            .calls
            .entry((domain.to_owned(), path.to_owned()))
            .or_default() += 1;
        let fault = inner.faults.iter_mut().find(|f| f.matches(domain, path))?;
        fault.times -= 1;
        let kind = fault.kind.clone();
        inner.faults.retain(|f| f.times > 0);
        Some(kind)
    }

    /// Forgets tokens, faults, counters, messages and the time offset, and regenerates the
    /// follower population from the configuration.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        *inner = Inner::default();
        inner.apps = self
            .config
            .apps
            .iter()
            .map(|(appid, secret)| (appid.clone(), AppTokens::new(secret)))
            .collect();
        inner.followers = crate::followers::Population::generate(self.config.followers, self.config.follower_tags);
    }
}
