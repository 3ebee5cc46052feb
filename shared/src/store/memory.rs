//! The in-memory state store: the embedded default for local runs and unit tests.
//!
//! Same semantics as DynamoDB for everything the [`StateStore`] contract promises (conditional
//! writes, atomic updates, expired items treated as absent), so the behaviour suite passes on both.
//! State is per process: on Lambda use [`super::dynamo::DynamoStore`] so the fleet shares it.
//!
//! Bounded, because it backs the local server and the instance-local fallbacks of a long-lived
//! Lambda instance: expired items are swept (at most once per [`SWEEP_EVERY_SECS`] of clock
//! time, after [`SWEEP_AFTER_WRITES`] writes), and when the store holds more than its
//! `max_items` it evicts the items nearest their expiry — for idempotency records the oldest
//! messages, whose retries are long over — down to 90 % of the cap, logging how many. Items
//! without a TTL (tokens, breaker state, configuration: a handful) are never evicted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::item::EXPIRES_AT;
use super::update::{check_attrs, check_key, check_pk};
use super::{Attrs, AttrsExt, Condition, Key, StateStore, StoreError, Update};
use crate::clock::SharedClock;

/// Expired items are swept at most this often (clock seconds).
pub const SWEEP_EVERY_SECS: i64 = 10;
/// ... and only after this many writes since the last sweep.
pub const SWEEP_AFTER_WRITES: u64 = 4096;

#[derive(Debug, Default)]
struct Items {
    map: BTreeMap<Key, Attrs>,
    writes_since_sweep: u64,
    last_sweep_secs: i64,
}

/// Items in a `BTreeMap` behind a mutex; every operation is one short critical section.
#[derive(Debug)]
pub struct MemoryStore {
    items: Mutex<Items>,
    clock: SharedClock,
    max_items: usize,
}

impl MemoryStore {
    /// Items a store holds by default before it evicts.
    pub const DEFAULT_MAX_ITEMS: usize = 100_000;

    /// An empty store that judges expiry by `clock`, holding at most [`Self::DEFAULT_MAX_ITEMS`].
    pub fn new(clock: SharedClock) -> Self {
        Self {
            items: Mutex::new(Items::default()),
            clock,
            max_items: Self::DEFAULT_MAX_ITEMS,
        }
    }

    /// The same store holding at most `max_items` (at least 10).
    pub fn with_max_items(mut self, max_items: usize) -> Self {
        self.max_items = max_items.max(10);
        self
    }

    /// After a write: sweeps expired items now and then, and evicts down to 90 % of the cap when
    /// the store is over it.
    fn keep_bounded(&self, items: &mut Items) {
        let now = self.clock.now_secs();
        items.writes_since_sweep += 1;
        let over = items.map.len() > self.max_items;
        let sweep_due =
            items.writes_since_sweep >= SWEEP_AFTER_WRITES && now >= items.last_sweep_secs + SWEEP_EVERY_SECS;
        if !over && !sweep_due {
            return;
        }
        items.writes_since_sweep = 0;
        items.last_sweep_secs = now;
        items.map.retain(|_, attrs| !attrs.is_expired_at(now));
        let target = self.max_items / 10 * 9;
        if items.map.len() <= self.max_items {
            return;
        }
        let mut by_expiry: Vec<(i64, Key)> = items
            .map
            .iter()
            .filter_map(|(key, attrs)| attrs.num_attr(EXPIRES_AT).map(|at| (at, key.clone())))
            .collect();
        let excess = items.map.len().saturating_sub(target).min(by_expiry.len());
        if excess == 0 {
            return;
        }
        by_expiry.select_nth_unstable(excess - 1);
        for (_, key) in by_expiry.drain(..excess) {
            items.map.remove(&key);
        }
        tracing::warn!(
            target: "wechat_ha::store",
            evicted = excess,
            max_items = self.max_items,
            "in-memory store full: evicted the items nearest their expiry"
        );
    }

    /// Number of stored items, expired ones not yet swept included (for tests and the admin view).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no item at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        // A panic while holding the lock cannot leave a half-applied item (every mutation is a
        // single insert/remove), so a poisoned lock is safe to keep using.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self, attrs: Option<&Attrs>) -> Option<Attrs> {
        let now = self.clock.now_secs();
        attrs.filter(|a| !a.is_expired_at(now)).cloned()
    }

    fn check(&self, current: Option<&Attrs>, condition: &Condition) -> Result<(), StoreError> {
        if condition.holds(current, self.clock.now_secs()) {
            Ok(())
        } else {
            Err(StoreError::ConditionFailed {
                current: self.live(current),
            })
        }
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        check_key(key)?;
        Ok(self.live(self.lock().map.get(key)))
    }

    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        check_attrs(&attrs)?;
        let mut items = self.lock();
        self.check(items.map.get(key), &condition)?;
        items.map.insert(key.clone(), attrs);
        self.keep_bounded(&mut items);
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        check_key(key)?;
        update.validate()?;
        let mut items = self.lock();
        self.check(items.map.get(key), &update.condition)?;
        let item = items.map.entry(key.clone()).or_default();
        update.apply_to(item);
        let after = item.clone();
        self.keep_bounded(&mut items);
        Ok(after)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let mut items = self.lock();
        self.check(items.map.get(key), &condition)?;
        items.map.remove(key);
        Ok(())
    }

    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        check_pk(pk)?;
        let now = self.clock.now_secs();
        let items = self.lock();
        let start = Key::new(pk, "");
        Ok(items
            .map
            .range(start..)
            .take_while(|(key, _)| key.pk == pk)
            .filter(|(_, attrs)| !attrs.is_expired_at(now))
            .map(|(key, attrs)| (key.sk.clone(), attrs.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn record(expires_at: i64) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert(EXPIRES_AT.to_owned(), expires_at.into());
        attrs
    }

    #[tokio::test]
    async fn a_full_store_evicts_the_items_nearest_their_expiry_and_keeps_items_without_ttl() {
        let clock = ManualClock::new(0);
        let store = MemoryStore::new(Arc::new(clock.clone())).with_max_items(100);
        store
            .put(&Key::new("token#wx", "access_token"), Attrs::new(), Condition::Always)
            .await
            .unwrap();
        for n in 0..150_i64 {
            let key = Key::new("msg#wx", format!("m{n:03}"));
            store.put(&key, record(1_000 + n), Condition::Always).await.unwrap();
        }
        assert!(store.len() <= 100, "bounded: {}", store.len());
        assert!(
            store
                .get(&Key::new("token#wx", "access_token"))
                .await
                .unwrap()
                .is_some(),
            "no TTL: kept"
        );
        assert!(
            store.get(&Key::new("msg#wx", "m149")).await.unwrap().is_some(),
            "the newest stays"
        );
        assert!(
            store.get(&Key::new("msg#wx", "m000")).await.unwrap().is_none(),
            "the oldest went first"
        );
    }

    #[tokio::test]
    async fn expired_items_are_swept_not_kept_forever() {
        let clock = ManualClock::new(0);
        let store = MemoryStore::new(Arc::new(clock.clone()));
        for n in 0..SWEEP_AFTER_WRITES {
            let key = Key::new("msg#wx", format!("old{n}"));
            store.put(&key, record(5), Condition::Always).await.unwrap();
        }
        clock.set((SWEEP_EVERY_SECS + 10) * 1000);
        for n in 0..SWEEP_AFTER_WRITES {
            let key = Key::new("msg#wx", format!("new{n}"));
            store.put(&key, record(1_000_000), Condition::Always).await.unwrap();
        }
        assert!(
            store.len() <= usize::try_from(SWEEP_AFTER_WRITES).unwrap() + 1,
            "the expired generation was swept: {}",
            store.len()
        );
    }
}
