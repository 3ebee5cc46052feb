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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
// foldhash, not SipHash: hashing the short keys of every write was 5 % of a POST's CPU
// (docs/benchmarks.md §18). Its seed is random per process, so a sender cannot aim keys at one
// bucket without knowing it — and callback keys only come from requests that passed the signature.
use foldhash::HashMap;

use super::item::EXPIRES_AT;
use super::update::{check_attrs, check_key, check_pk};
use super::{AttrValue, Attrs, Condition, Key, StateStore, StoreError, Update};
use crate::clock::SharedClock;

/// Expired items are swept at most this often (clock seconds).
pub const SWEEP_EVERY_SECS: i64 = 10;
/// ... and only after this many writes since the last sweep.
pub const SWEEP_AFTER_WRITES: u64 = 4096;
/// A store that stays full logs its evictions at most this often (clock seconds).
const EVICTION_LOG_EVERY_SECS: i64 = 60;

/// Heap bytes an item costs beyond its strings' lengths: the key's map entries, every
/// attribute's slot (`String` headers, allocator rounding), measured to within a factor that
/// keeps `max_bytes` honest for the local server's peak RSS (docs/benchmarks.md). Set when an
/// item's attributes were a B-tree (a node of eleven slots); a sorted vector of exactly its
/// attributes takes less, so these now err on the high side: the store evicts a little early.
const ITEM_OVERHEAD: usize = 160;
const ATTR_OVERHEAD: usize = 72;
const INDEX_OVERHEAD: usize = 64;

/// What `key` holding `attrs` costs on the heap, roughly.
fn item_bytes(key: &Key, attrs: &Attrs) -> usize {
    item_bytes_of(&key.pk, &key.sk, attrs)
}

/// [`item_bytes`] of the item at `pk` / `sk`.
fn item_bytes_of(pk: &str, sk: &str, attrs: &Attrs) -> usize {
    let attrs_bytes: usize = attrs
        .iter()
        .map(|(name, value)| {
            // A name the code wrote is borrowed for the program's life: no heap of its own.
            let name_bytes = match name {
                Cow::Borrowed(_) => 0,
                Cow::Owned(owned) => owned.len(),
            };
            ATTR_OVERHEAD
                + name_bytes
                + match value {
                    // A constant value is borrowed, like a name.
                    AttrValue::S(Cow::Borrowed(_)) => 0,
                    AttrValue::S(Cow::Owned(text)) => text.len(),
                    AttrValue::N(_) => 0,
                }
        })
        .sum();
    // An item with a TTL also has an entry in the expiry index (sharing the item's key).
    let index_bytes = if attrs.contains_key(EXPIRES_AT) {
        INDEX_OVERHEAD
    } else {
        0
    };
    ITEM_OVERHEAD + pk.len() + sk.len() + attrs_bytes + index_bytes
}

/// One stored item: its attributes, its [`item_bytes`] as counted in the store's total, and, when
/// it has a TTL, its place in the expiry index.
#[derive(Debug)]
struct Entry {
    attrs: Attrs,
    /// Kept with the item so that replacing, changing or evicting it subtracts a number instead of
    /// walking the old attributes again (an evicted item's are cold in the cache).
    bytes: usize,
    expiry: Option<ExpirySlot>,
}

/// `(expires_at, insertion number)`: unique, so the index compares two integers and never a key.
type ExpirySlot = (i64, u64);

/// An item's key as the expiry index holds it: the partition's and the item's own key text,
/// shared with the maps (a reference count, not a copy: two allocations fewer per stored item,
/// and two fewer cold blocks to free when it is evicted).
type IndexKey = (Arc<str>, Arc<str>);

/// The expiry index entry of an item once its expiry is `expires_at` (it was at `old`): kept
/// when the expiry did not change, else moved to a new slot (or dropped: no TTL any more).
/// `key` gives the index key when the item had no slot to move.
fn reindex(
    by_expiry: &mut BTreeMap<ExpirySlot, IndexKey>,
    next_slot: &mut u64,
    old: Option<ExpirySlot>,
    expires_at: Option<i64>,
    key: impl FnOnce() -> IndexKey,
) -> Option<ExpirySlot> {
    let mut moved = None;
    if let Some(slot) = old {
        if Some(slot.0) == expires_at {
            return Some(slot);
        }
        moved = by_expiry.remove(&slot);
    }
    let at = expires_at?;
    let slot = (at, *next_slot);
    *next_slot += 1;
    by_expiry.insert(slot, moved.unwrap_or_else(key));
    Some(slot)
}

/// Files a stored item's index entry under its attributes' expiry after they changed (moved,
/// kept, dropped, or new: see [`reindex`]).
fn refile(by_expiry: &mut BTreeMap<ExpirySlot, IndexKey>, next_slot: &mut u64, entry: &mut Entry, key: &Key) {
    let expires_at = entry.attrs.num_attr(EXPIRES_AT);
    entry.expiry = reindex(by_expiry, next_slot, entry.expiry, expires_at, || index_key(key));
}

/// A fresh index key for `key` (an item that gets its first TTL by an update: rare).
fn index_key(key: &Key) -> IndexKey {
    (Arc::from(key.pk.as_str()), Arc::from(key.sk.as_str()))
}

#[derive(Debug, Default)]
struct Items {
    /// Partition key → sort key → item. Point operations (every write of a callback) hash two
    /// short strings instead of walking a tree of `Key`s (each comparison a pointer chase: the
    /// tree's `memcmp`s were a sixth of a POST's CPU); the rare queries sort one partition.
    partitions: HashMap<Arc<str>, HashMap<Arc<str>, Entry>>,
    len: usize,
    /// The items with a TTL, by expiry: sweeping and evicting take from the front instead of
    /// scanning and sorting the whole map (which cost a third of a callback's CPU once full).
    by_expiry: BTreeMap<ExpirySlot, IndexKey>,
    next_slot: u64,
    /// [`item_bytes`] summed over every item.
    bytes: usize,
    writes_since_sweep: u64,
    last_sweep_secs: i64,
    /// Evictions not yet logged, and when the last eviction warning went out: one line a
    /// minute, not one per eviction round, when the store stays full under load.
    evicted_unlogged: u64,
    last_eviction_log_secs: Option<i64>,
}

impl Items {
    fn get(&self, key: &Key) -> Option<&Attrs> {
        self.partitions
            .get(key.pk.as_str())
            .and_then(|partition| partition.get(key.sk.as_str()))
            .map(|entry| &entry.attrs)
    }

    /// Stores `attrs` under `key`, replacing what was there.
    fn insert(&mut self, key: &Key, attrs: Attrs) {
        let bytes = item_bytes(key, &attrs);
        self.bytes += bytes;
        let pk = match self.partitions.get_key_value(key.pk.as_str()) {
            Some((pk, _)) => pk.clone(),
            None => {
                let pk: Arc<str> = Arc::from(key.pk.as_str());
                self.partitions.insert(pk.clone(), HashMap::default());
                pk
            }
        };
        let Some(partition) = self.partitions.get_mut(&*pk) else {
            return;
        };
        if let Some(entry) = partition.get_mut(key.sk.as_str()) {
            entry.attrs = attrs;
            self.bytes -= std::mem::replace(&mut entry.bytes, bytes);
            refile(&mut self.by_expiry, &mut self.next_slot, entry, key);
        } else {
            let expires_at = attrs.num_attr(EXPIRES_AT);
            let sk: Arc<str> = Arc::from(key.sk.as_str());
            let expiry = reindex(&mut self.by_expiry, &mut self.next_slot, None, expires_at, || {
                (pk, sk.clone())
            });
            partition.insert(sk, Entry { attrs, bytes, expiry });
            self.len += 1;
        }
    }

    /// Applies `change` to `key`'s item in place (to a new, empty one when there is none) and
    /// answers the result: no copy of the item to change and store back.
    fn modify(&mut self, key: &Key, change: impl FnOnce(&mut Attrs)) -> Option<&Attrs> {
        if self.get(key).is_none() {
            let mut attrs = Attrs::new();
            change(&mut attrs);
            self.insert(key, attrs);
            return self.get(key);
        }
        let entry = self.partitions.get_mut(key.pk.as_str())?.get_mut(key.sk.as_str())?;
        change(&mut entry.attrs);
        let bytes = item_bytes(key, &entry.attrs);
        self.bytes = self.bytes - std::mem::replace(&mut entry.bytes, bytes) + bytes;
        refile(&mut self.by_expiry, &mut self.next_slot, entry, key);
        Some(&entry.attrs)
    }

    /// Removes `key`'s item and its expiry index entry.
    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.detach(&key.pk, &key.sk).and_then(|entry| entry.expiry) {
            self.by_expiry.remove(&slot);
        }
    }

    /// Removes the items expired at `now`: the front of the expiry index.
    fn retain_live(&mut self, now: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (pk, sk) = entry.remove();
            self.detach(&pk, &sk);
        }
    }

    /// Removes the item nearest its expiry; `false` when no item has a TTL.
    fn evict_one(&mut self) -> bool {
        let Some((_, (pk, sk))) = self.by_expiry.pop_first() else {
            return false;
        };
        self.detach(&pk, &sk);
        true
    }

    /// Takes `key`'s item out of its partition (and the counts); its index entry is the
    /// caller's to drop.
    fn detach(&mut self, pk: &str, sk: &str) -> Option<Entry> {
        let partition = self.partitions.get_mut(pk)?;
        let entry = partition.remove(sk)?;
        if partition.is_empty() {
            self.partitions.remove(pk);
        }
        self.len -= 1;
        self.bytes -= entry.bytes;
        Some(entry)
    }

    /// The live items of partition `pk` with a sort key after `after`, in sort-key order, at
    /// most `limit`, and whether there are more.
    fn page(&self, pk: &str, after: Option<&str>, limit: usize, now: i64) -> (Vec<(String, Attrs)>, bool) {
        let Some(partition) = self.partitions.get(pk) else {
            return (Vec::new(), false);
        };
        let mut found: Vec<(&str, &Attrs)> = partition
            .iter()
            .filter(|(sk, entry)| after.is_none_or(|after| &***sk > after) && !entry.attrs.is_expired_at(now))
            .map(|(sk, entry)| (&**sk, &entry.attrs))
            .collect();
        let more = found.len() > limit;
        if more {
            // Only the first `limit` in order are answered: select them, then sort just those.
            found.select_nth_unstable_by(limit, |a, b| a.0.cmp(b.0));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let page = found
            .into_iter()
            .map(|(sk, attrs)| (sk.to_owned(), attrs.clone()))
            .collect();
        (page, more)
    }

    #[cfg(test)]
    fn recount_bytes(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(|(pk, partition)| {
                partition.iter().map(move |(sk, entry)| {
                    let bytes = item_bytes_of(pk, sk, &entry.attrs);
                    assert_eq!(entry.bytes, bytes, "{pk}/{sk}: the kept estimate is the item's");
                    bytes
                })
            })
            .sum()
    }
}

/// Items in hash maps behind a mutex; every operation is one short critical section.
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
        items.len > self.max_items || items.bytes > self.max_bytes
    }

    /// After a write: sweeps expired items now and then, and evicts down to 90 % of both caps
    /// when the store is over one.
    fn keep_bounded(&self, items: &mut Items, now: i64) {
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
        while (items.len > target_items || items.bytes > target_bytes) && items.evict_one() {
            items.evicted_unlogged += 1;
        }
        if items
            .last_eviction_log_secs
            .is_none_or(|at| now >= at + EVICTION_LOG_EVERY_SECS)
        {
            tracing::warn!(
                target: "wechat_ha::store",
                evicted = items.evicted_unlogged,
                items = items.len,
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
        self.lock().len
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
        // single insert/remove, or an in-place update that only inserts and removes attributes),
        // so a poisoned lock is safe to keep using.
        self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The clock's reading for one operation: it is read once, under the lock, and every
    /// expiry check of the operation uses it (a clock read was a twentieth of a message's CPU
    /// when each check made its own).
    fn now(&self) -> i64 {
        self.clock.now_secs()
    }
}

/// A copy of `attrs` unless they expired at `now`.
fn live(attrs: Option<&Attrs>, now: i64) -> Option<Attrs> {
    attrs.filter(|a| !a.is_expired_at(now)).cloned()
}

/// `Ok` when `condition` holds for `current` at `now`, else the failure carrying the live item.
fn check(current: Option<&Attrs>, condition: &Condition, now: i64) -> Result<(), StoreError> {
    if condition.holds(current, now) {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed {
            current: live(current, now),
        })
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        check_key(key)?;
        let items = self.lock();
        Ok(live(items.get(key), self.now()))
    }

    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        check_attrs(&attrs)?;
        let mut items = self.lock();
        let now = self.now();
        check(items.get(key), &condition, now)?;
        items.insert(key, attrs);
        self.keep_bounded(&mut items, now);
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        check_key(key)?;
        update.validate()?;
        let mut items = self.lock();
        let now = self.now();
        check(items.get(key), &update.condition, now)?;
        let item = items
            .modify(key, |item| update.apply(item))
            .cloned()
            .unwrap_or_default();
        self.keep_bounded(&mut items, now);
        Ok(item)
    }

    async fn apply(&self, key: &Key, update: Update) -> Result<(), StoreError> {
        check_key(key)?;
        update.validate()?;
        let mut items = self.lock();
        let now = self.now();
        check(items.get(key), &update.condition, now)?;
        items.modify(key, |item| update.apply(item));
        self.keep_bounded(&mut items, now);
        Ok(())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let mut items = self.lock();
        let now = self.now();
        check(items.get(key), &condition, now)?;
        items.remove(key);
        Ok(())
    }

    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        check_pk(pk)?;
        let items = self.lock();
        Ok(items.page(pk, None, usize::MAX, self.now()).0)
    }

    async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, Attrs)>, bool), StoreError> {
        check_pk(pk)?;
        let items = self.lock();
        Ok(items.page(pk, after, limit, self.now()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn record(expires_at: i64) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert(EXPIRES_AT.into(), expires_at.into());
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
            // Overwrites, in-place updates (growing the item, moving its expiry) and deletes keep
            // the running estimate equal to a recount.
            store.put(&key, attrs, Condition::Always).await.unwrap();
            let grown = Update::new().set("state", "done").set(EXPIRES_AT, 1_000 + n);
            let answered = store.update(&key, grown).await.unwrap();
            assert_eq!(answered.str_attr("state"), Some("done"));
        }
        let created = store
            .update(&Key::new("msg#wx", "fresh"), Update::new().add("n", 1))
            .await
            .unwrap();
        assert_eq!(created.num_attr("n"), Some(1));
        store
            .delete(&Key::new("msg#wx", "m0999"), Condition::Always)
            .await
            .unwrap();
        let estimate = store.estimated_bytes();
        let recount = store.lock().recount_bytes();
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
