//! Daily quotas: after 45009 an API is blocked until WeChat's daily reset (midnight Beijing
//! time) and answered with [`WechatError::QuotaExhausted`] without calling WeChat. The one
//! "blocked until the daily reset" of the crate: the send APIs, the token endpoints and every
//! other API use it, each on its own (a spent template quota says nothing about custom sends,
//! and none of it is a failure of a shared breaker).
//!
//! Scope: each instance keeps its own blocks; the fleet shares them through one store item
//! (`quota#{appid}` / `daily`, one attribute per API holding the block's end), written by one
//! conditional update per API per day. An instance reads that item once, on its first call, so a
//! cold instance starts out knowing; a running instance that has not seen the block yet learns it
//! from its own single rejected call — far cheaper than a store read per call for something that
//! happens at most once a day.
//!
//! [`WechatError::QuotaExhausted`]: super::WechatError::QuotaExhausted

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::api::Api;
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::store::{CmpOp, Condition, Key, SharedStore, StoreError, Unanswered, Update, bounded};

const LOG: &str = "wechat.quota";
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The Beijing (UTC+8) calendar day number of `now_ms`: WeChat's daily quotas reset at its midnight.
pub fn beijing_day(now_ms: i64) -> i64 {
    (now_ms + BEIJING_OFFSET_MS).div_euclid(DAY_MS)
}

/// The next midnight in Beijing after `now_ms`, epoch ms.
pub fn next_daily_reset_ms(now_ms: i64) -> i64 {
    (beijing_day(now_ms) + 1) * DAY_MS - BEIJING_OFFSET_MS
}

/// The daily quota blocks of the APIs of one account.
#[derive(Debug)]
pub(crate) struct DailyQuota {
    store: SharedStore,
    key: Key,
    clock: SharedClock,
    store_timeout: Duration,
    blocked: Mutex<BTreeMap<Api, i64>>,
    loaded: AtomicBool,
}

fn attr(api: Api) -> String {
    format!("{}_until_ms", api.name())
}

impl DailyQuota {
    pub fn new(store: SharedStore, appid: &str, clock: SharedClock, store_timeout: Duration) -> Self {
        Self {
            store,
            key: Key::new(format!("quota#{appid}"), "daily"),
            clock,
            store_timeout,
            blocked: Mutex::new(BTreeMap::new()),
            loaded: AtomicBool::new(false),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, BTreeMap<Api, i64>> {
        // Only map inserts happen under this lock; a poisoned one is still consistent.
        self.blocked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The end of `api`'s block (epoch ms), if it is blocked now.
    pub async fn blocked_until(&self, api: Api, deadline: Deadline) -> Option<i64> {
        if !self.loaded.swap(true, Ordering::Relaxed) {
            self.load(deadline).await;
        }
        let now = self.clock.now_ms();
        self.local().get(&api).copied().filter(|until| *until > now)
    }

    /// WeChat answered 45009 for `api`: blocks it until the next daily reset, here and for the
    /// fleet. Returns the block's end.
    pub async fn block(&self, api: Api, deadline: Deadline) -> i64 {
        let until_ms = next_daily_reset_ms(self.clock.now_ms());
        let previous = self.local().insert(api, until_ms);
        if previous != Some(until_ms) {
            tracing::error!(target: LOG, api = api.name(), until_ms, "daily quota of this API exhausted (45009); answering without calling WeChat until the daily reset");
        }
        let name = attr(api);
        let later =
            Condition::AttrAbsent(name.clone().into()).or(Condition::compare(name.clone(), CmpOp::Lt, until_ms));
        let update = Update::new().set(name, until_ms).when(later);
        match bounded(
            self.store_timeout,
            Some(&deadline),
            self.store.update(&self.key, update),
        )
        .await
        {
            Ok(_) | Err(Unanswered::Store(StoreError::ConditionFailed { .. })) => {}
            Err(err) => tracing::warn!(target: LOG, error = %err, "could not record the quota block for the fleet"),
        }
        until_ms
    }

    async fn load(&self, deadline: Deadline) {
        let item = match bounded(self.store_timeout, Some(&deadline), self.store.get(&self.key)).await {
            Ok(item) => item,
            Err(err) => {
                tracing::debug!(target: LOG, error = %err, "fleet quota blocks not read; relying on this instance's");
                return;
            }
        };
        let now = self.clock.now_ms();
        let mut local = self.local();
        for api in Api::ALL {
            if let Some(until) = item.as_ref().and_then(|i| i.num_attr(&attr(api))).filter(|u| *u > now) {
                local.insert(api, until);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, 08:00 in Beijing

    fn quota(store: &SharedStore, clock: &ManualClock) -> DailyQuota {
        DailyQuota::new(store.clone(), "wx1", Arc::new(clock.clone()), Duration::from_secs(1))
    }

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(1))
    }

    #[test]
    fn daily_reset_is_midnight_beijing_time() {
        // 2026-01-01T15:59:59Z is 23:59:59 in Beijing; the reset is 16:00:00Z.
        let almost = 1_767_283_199_000;
        assert_eq!(next_daily_reset_ms(almost), 1_767_283_200_000);
        assert_eq!(next_daily_reset_ms(1_767_283_200_000), 1_767_283_200_000 + DAY_MS);
        assert_eq!(beijing_day(NOW), beijing_day(almost));
    }

    #[tokio::test]
    async fn each_send_api_is_blocked_on_its_own_until_the_daily_reset_fleet_wide() {
        let clock = ManualClock::new(NOW);
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
        let first = quota(&store, &clock);
        let until = first.block(Api::TemplateSend, dl()).await;
        assert_eq!(until, next_daily_reset_ms(NOW));
        assert_eq!(first.blocked_until(Api::TemplateSend, dl()).await, Some(until));
        assert_eq!(first.blocked_until(Api::CustomSend, dl()).await, None);
        let cold = quota(&store, &clock);
        assert_eq!(
            cold.blocked_until(Api::TemplateSend, dl()).await,
            Some(until),
            "read on its first send"
        );
        assert_eq!(
            cold.blocked_until(Api::StableToken, dl()).await,
            None,
            "each API on its own"
        );
        clock.set(until);
        assert_eq!(first.blocked_until(Api::TemplateSend, dl()).await, None);
    }
}
