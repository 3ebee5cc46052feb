//! The in-memory state store: the embedded default for local runs and unit tests.
//!
//! Same semantics as DynamoDB for everything the [`StateStore`] contract promises (conditional
//! writes, atomic updates, expired items treated as absent), so the behaviour suite passes on both.
//! State is per process: on Lambda use [`super::dynamo::DynamoStore`] so the fleet shares it.
//!
//! Bounded, because it backs the local server and the instance-local fallbacks of a long-lived
//! Lambda instance: expired items are swept (at most once per [`SWEEP_EVERY_SECS`] of clock
//! time, after [`SWEEP_AFTER_WRITES`] writes), and when the store holds more than its
//! `max_items` or its items take more than `max_bytes` (an estimate: lengths plus the per-entry
//! overhead of the maps, what an item really costs on the heap) it evicts the items nearest
//! their expiry — for idempotency records the oldest messages, whose retries are long over —
//! down to 90 % of both caps, logging how many. Items without a TTL (tokens, breaker state,
//! configuration: a handful) are never evicted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::item::EXPIRES_AT;
use super::update::{check_attrs, check_key, check_pk};
use super::{AttrValue, Attrs, AttrsExt, Condition, Key, StateStore, StoreError, Update};
use crate::clock::SharedClock;

/// Expired items are swept at most this often (clock seconds).
pub const SWEEP_EVERY_SECS: i64 = 10;
/// ... and only after this many writes since the last sweep.
pub const SWEEP_AFTER_WRITES: u64 = 4096;
/// A store that stays full logs its evictions at most this often (clock seconds).
const EVICTION_LOG_EVERY_SECS: i64 = 60;

/// Heap bytes an item costs beyond its strings' lengths: the key's and every attribute's map
/// entry (B-tree node share, `String` headers, allocator rounding), measured to within a factor
/// that keeps `max_bytes` honest for the local server's peak RSS (docs/benchmarks.md).
const ITEM_OVERHEAD: usize = 160;
const ATTR_OVERHEAD: usize = 72;
const INDEX_OVERHEAD: usize = 64;

/// What `key` holding `attrs` costs on the heap, roughly.
fn item_bytes(key: &Key, attrs: &Attrs) -> usize {
    let attrs_bytes: usize = attrs
        .iter()
        .map(|(name, value)| {
            ATTR_OVERHEAD
                + name.len()
                + match value {
                    AttrValue::S(text) => text.len(),
                    AttrValue::N(_) => 0,
                }
        })
        .sum();
    // An item with a TTL also has an entry (a copy of its key) in the expiry index.
    let index_bytes = if attrs.contains_key(EXPIRES_AT) {
        INDEX_OVERHEAD + key.pk.len() + key.sk.len()
    } else {
        0
    };
    ITEM_OVERHEAD + key.pk.len() + key.sk.len() + attrs_bytes + index_bytes
}

#[derive(Debug, Default)]
struct Items {
    map: BTreeMap<Key, Attrs>,
    /// The items with a TTL, by expiry: sweeping and evicting take from the front instead of
    /// scanning and sorting the whole map (which cost a third of a callback's CPU once full).
    by_expiry: BTreeSet<(i64, Key)>,
    /// [`item_bytes`] summed over `map`.
    bytes: usize,
    writes_since_sweep: u64,
    last_sweep_secs: i64,
    /// Evictions not yet logged, and when the last eviction warning went out: one line a
    /// minute, not one per eviction round, when the store stays full under load.
    evicted_unlogged: u64,
    last_eviction_log_secs: Option<i64>,
}

impl Items {
    fn insert(&mut self, key: Key, attrs: Attrs) {
        self.bytes += item_bytes(&key, &attrs);
        if let Some(at) = attrs.num_attr(EXPIRES_AT) {
            self.by_expiry.insert((at, key.clone()));
        }
        if let Some(old) = self.map.insert(key.clone(), attrs) {
            self.forget(&key, &old);
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.map.remove(key) {
            self.forget(key, &old);
        }
    }

    /// Accounts for `old`, the attributes `key` no longer has.
    fn forget(&mut self, key: &Key, old: &Attrs) {
        self.bytes -= item_bytes(key, old);
        if let Some(at) = old.num_attr(EXPIRES_AT) {
            // An update that kept the expiry left the same entry: it stays.
            let still = self.map.get(key).and_then(|now| now.num_attr(EXPIRES_AT)) == Some(at);
            if !still {
                self.by_expiry.remove(&(at, key.clone()));
            }
        }
    }

    /// Removes the items expired at `now`: the front of the expiry index.
    fn retain_live(&mut self, now: i64) {
        while let Some((at, key)) = self.by_expiry.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&key);
        }
    }

    /// Removes the item nearest its expiry; `false` when no item has a TTL.
    fn evict_one(&mut self) -> bool {
        let Some((_, key)) = self.by_expiry.first().cloned() else {
            return false;
        };
        self.remove(&key);
        true
    }
}

/// Items in a `BTreeMap` behind a mutex; every operation is one short critical section.
#[derive(Debug)]
pub struct MemoryStore {
    items: Mutex<Items>,
    clock: SharedClock,
    max_items: usize,
    max_bytes: usize,
}

impl MemoryStore {
    /// Items a store holds by default before it evicts.
    pub const DEFAULT_MAX_ITEMS: usize = 100_000;
    /// Estimated heap bytes a store holds by default before it evicts (16 MiB: about 20,000
    /// messages' idempotency and replay records, far more than the retries of the last minute).
    pub const DEFAULT_MAX_BYTES: usize = 16 << 20;

    /// An empty store that judges expiry by `clock`, bounded by [`Self::DEFAULT_MAX_ITEMS`] and
    /// [`Self::DEFAULT_MAX_BYTES`].
    pub fn new(clock: SharedClock) -> Self {
        Self {
            items: Mutex::new(Items::default()),
            clock,
            max_items: Self::DEFAULT_MAX_ITEMS,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    /// The same store holding at most `max_items` (at least 10).
    pub fn with_max_items(mut self, max_items: usize) -> Self {
        self.max_items = max_items.max(10);
        self
    }

    /// The same store holding items of at most `max_bytes` (estimated; at least 64 KiB).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(64 << 10);
        self
    }

    fn over(&self, items: &Items) -> bool {
        items.map.len() > self.max_items || items.bytes > self.max_bytes
    }

    /// After a write: sweeps expired items now and then, and evicts down to 90 % of both caps
    /// when the store is over one.
    fn keep_bounded(&self, items: &mut Items) {
        let now = self.clock.now_secs();
        items.writes_since_sweep += 1;
        let sweep_due =
            items.writes_since_sweep >= SWEEP_AFTER_WRITES && now >= items.last_sweep_secs + SWEEP_EVERY_SECS;
        if !self.over(items) && !sweep_due {
            return;
        }
        items.writes_since_sweep = 0;
        items.last_sweep_secs = now;
        items.retain_live(now);
        if !self.over(items) {
            return;
        }
        let (target_items, target_bytes) = (self.max_items / 10 * 9, self.max_bytes / 10 * 9);
        while (items.map.len() > target_items || items.bytes > target_bytes) && items.evict_one() {
            items.evicted_unlogged += 1;
        }
        if items
            .last_eviction_log_secs
            .is_none_or(|at| now >= at + EVICTION_LOG_EVERY_SECS)
        {
            tracing::warn!(
                target: "wechat_ha::store",
                evicted = items.evicted_unlogged,
                items = items.map.len(),
                estimated_bytes = items.bytes,
                max_items = self.max_items,
                max_bytes = self.max_bytes,
                "in-memory store full: evicted the items nearest their expiry (count since the last such line)"
            );
            items.evicted_unlogged = 0;
            items.last_eviction_log_secs = Some(now);
        }
    }

    /// Number of stored items, expired ones not yet swept included (for tests and the admin view).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// The items' estimated heap bytes (what `max_bytes` bounds).
    pub fn estimated_bytes(&self) -> usize {
        self.lock().bytes
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
        items.insert(key.clone(), attrs);
        self.keep_bounded(&mut items);
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        check_key(key)?;
        update.validate()?;
        let mut items = self.lock();
        self.check(items.map.get(key), &update.condition)?;
        let mut item = items.map.get(key).cloned().unwrap_or_default();
        update.apply_to(&mut item);
        items.insert(key.clone(), item.clone());
        self.keep_bounded(&mut items);
        let after = item;
        Ok(after)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let mut items = self.lock();
        self.check(items.map.get(key), &condition)?;
        items.remove(key);
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

    async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, Attrs)>, bool), StoreError> {
        use std::ops::Bound;
        check_pk(pk)?;
        let now = self.clock.now_secs();
        let items = self.lock();
        let start = match after {
            Some(after) => Bound::Excluded(Key::new(pk, after)),
            None => Bound::Included(Key::new(pk, "")),
        };
        let mut page: Vec<(String, Attrs)> = items
            .map
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| key.pk == pk)
            .filter(|(_, attrs)| !attrs.is_expired_at(now))
            .take(limit.saturating_add(1))
            .map(|(key, attrs)| (key.sk.clone(), attrs.clone()))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
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
    async fn a_store_over_its_byte_budget_evicts_and_keeps_its_estimate_exact() {
        let clock = ManualClock::new(0);
        let store = MemoryStore::new(Arc::new(clock.clone())).with_max_bytes(100 << 10);
        let reply = "r".repeat(900);
        for n in 0..1_000_i64 {
            let mut attrs = record(1_000 + n);
            attrs.insert("result".into(), AttrValue::from(reply.as_str()));
            let key = Key::new("msg#wx", format!("m{n:04}"));
            store.put(&key, attrs.clone(), Condition::Always).await.unwrap();
            // Overwrites and deletes keep the running estimate equal to a recount.
            store.put(&key, attrs, Condition::Always).await.unwrap();
        }
        store
            .delete(&Key::new("msg#wx", "m0999"), Condition::Always)
            .await
            .unwrap();
        let estimate = store.estimated_bytes();
        let recount: usize = store.lock().map.iter().map(|(k, a)| item_bytes(k, a)).sum();
        assert_eq!(estimate, recount);
        assert!(estimate <= 100 << 10, "bounded by bytes: {estimate}");
        assert!(store.len() < 1_000 && store.len() > 50, "{} items", store.len());
        assert!(
            store.get(&Key::new("msg#wx", "m0998")).await.unwrap().is_some(),
            "the newest stays"
        );
        assert!(
            store.get(&Key::new("msg#wx", "m0000")).await.unwrap().is_none(),
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
