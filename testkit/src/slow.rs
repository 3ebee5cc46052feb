//! Store wrappers that take time: one that yields before every operation (interleaving), one that
//! answers late (slow network, lost replies).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use shared::store::{Attrs, Condition, Key, SharedStore, StateStore, StoreError, Update};

/// Yields to the scheduler before every operation, as a network store would, so concurrent
/// callers on one runtime interleave between their reads and writes (races become reproducible).
#[derive(Debug)]
pub struct YieldingStore {
    inner: SharedStore,
}

impl YieldingStore {
    /// Wraps `inner`.
    pub fn new(inner: SharedStore) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl StateStore for YieldingStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.get(key).await
    }
    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.inner.put(key, attrs, condition).await
    }
    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        tokio::task::yield_now().await;
        self.inner.update(key, update).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        self.inner.delete(key, condition).await
    }
    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.query(pk).await
    }
}

/// Answers late: each operation is applied at once, then its answer waits (tokio time), as over a
/// slow network. A write that answers later than the store timeout is a committed write whose
/// reply was lost.
#[derive(Debug)]
pub struct SlowStore {
    inner: SharedStore,
    read_ms: AtomicU64,
    write_ms: AtomicU64,
    conditional_only: AtomicBool,
}

impl SlowStore {
    /// Wraps `inner`, with no delay until one is set.
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            read_ms: AtomicU64::new(0),
            write_ms: AtomicU64::new(0),
            conditional_only: AtomicBool::new(false),
        }
    }

    /// How late `get` and `query` answer.
    pub fn set_reads(&self, delay: Duration) {
        self.read_ms.store(millis(delay), Ordering::SeqCst);
    }

    /// How late `put`, `update` and `delete` answer.
    pub fn set_writes(&self, delay: Duration) {
        self.write_ms.store(millis(delay), Ordering::SeqCst);
    }

    /// Delays only conditional updates (breaker transitions, probe permits), not plain ones.
    pub fn conditional_writes_only(&self, on: bool) {
        self.conditional_only.store(on, Ordering::SeqCst);
    }

    async fn late<T>(&self, delay_ms: &AtomicU64, result: T) -> T {
        let ms = delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        result
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl StateStore for SlowStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        let result = self.inner.get(key).await;
        self.late(&self.read_ms, result).await
    }
    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        let result = self.inner.put(key, attrs, condition).await;
        self.late(&self.write_ms, result).await
    }
    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        let plain = update.condition == Condition::Always;
        let result = self.inner.update(key, update).await;
        if plain && self.conditional_only.load(Ordering::SeqCst) {
            return result;
        }
        self.late(&self.write_ms, result).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let result = self.inner.delete(key, condition).await;
        self.late(&self.write_ms, result).await
    }
    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        let result = self.inner.query(pk).await;
        self.late(&self.read_ms, result).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use shared::clock::ManualClock;
    use shared::store::memory::MemoryStore;

    fn memory() -> SharedStore {
        Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0))))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_store_applies_at_once_and_answers_late() {
        let slow = SlowStore::new(memory());
        slow.set_writes(Duration::from_millis(80));
        let key = Key::new("a", "b");
        let start = tokio::time::Instant::now();
        let cut = tokio::time::timeout(Duration::from_millis(10), slow.update(&key, Update::new().add("n", 1))).await;
        assert!(cut.is_err(), "the answer is late");
        assert!(slow.get(&key).await.unwrap().is_some(), "but the write was applied");
        assert_eq!(start.elapsed(), Duration::from_millis(10), "reads are not delayed");
        slow.conditional_writes_only(true);
        slow.update(&key, Update::new().add("n", 1)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(10), "plain updates pass at once");
        let conditional = Update::new().add("n", 1).when(Condition::ItemPresent);
        slow.update(&key, conditional).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(90));
    }
}
