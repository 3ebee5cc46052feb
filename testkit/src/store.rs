//! Store wrappers that count operations or fail / stall on command, around any [`StateStore`]
//! (memory or DynamoDB), so tests and benchmarks can check store costs and outage behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use shared::store::{Attrs, Condition, Key, SharedStore, StateStore, StoreError, Update};

/// Operation counts of a [`CountingStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOps {
    /// `get` calls.
    pub gets: u64,
    /// `put` calls.
    pub puts: u64,
    /// `update` calls.
    pub updates: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// `query` calls.
    pub queries: u64,
}

impl StoreOps {
    /// Reads (`get` + `query`).
    pub const fn reads(&self) -> u64 {
        self.gets + self.queries
    }

    /// Writes (`put` + `update` + `delete`).
    pub const fn writes(&self) -> u64 {
        self.puts + self.updates + self.deletes
    }

    /// Every operation.
    pub const fn total(&self) -> u64 {
        self.reads() + self.writes()
    }
}

/// Counts every operation passed to the wrapped store.
#[derive(Debug)]
pub struct CountingStore {
    inner: SharedStore,
    counters: [AtomicU64; 5],
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner,
            counters: Default::default(),
        }
    }

    /// Counts so far.
    pub fn ops(&self) -> StoreOps {
        let n = |i: usize| self.counters[i].load(Ordering::SeqCst);
        StoreOps {
            gets: n(0),
            puts: n(1),
            updates: n(2),
            deletes: n(3),
            queries: n(4),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        for counter in &self.counters {
            counter.store(0, Ordering::SeqCst);
        }
    }

    fn count(&self, i: usize) {
        self.counters[i].fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl StateStore for CountingStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        self.count(0);
        self.inner.get(key).await
    }
    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        self.count(1);
        self.inner.put(key, attrs, condition).await
    }
    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        self.count(2);
        self.inner.update(key, update).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.count(3);
        self.inner.delete(key, condition).await
    }
    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        self.count(4);
        self.inner.query(pk).await
    }
}

/// How a [`FlakyStore`] behaves right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Passes every operation through.
    Up,
    /// Fails every operation with [`StoreError::Unavailable`] at once.
    Down,
    /// Sleeps (tokio time) for the configured stall before passing through: past any tight timeout.
    Stalled,
    /// Fails reads (`get`, `query`) with [`StoreError::Unavailable`]; writes pass.
    ReadsDown,
    /// Fails updates (`update`: completions, counters) with [`StoreError::Unavailable`]; the
    /// rest passes — the store dying between a claim and its completion.
    UpdatesDown,
}

/// A store that can be switched down or stalled mid-test.
#[derive(Debug)]
pub struct FlakyStore {
    inner: SharedStore,
    health: AtomicU8,
    stall: Duration,
    refused: AtomicU64,
}

impl FlakyStore {
    /// Wraps `inner`; `stall` is how long operations hang while [`Health::Stalled`].
    pub fn new(inner: SharedStore, stall: Duration) -> Self {
        Self {
            inner,
            health: AtomicU8::new(0),
            stall,
            refused: AtomicU64::new(0),
        }
    }

    /// Switches behaviour.
    pub fn set(&self, health: Health) {
        let code = match health {
            Health::Up => 0,
            Health::Down => 1,
            Health::Stalled => 2,
            Health::ReadsDown => 3,
            Health::UpdatesDown => 4,
        };
        self.health.store(code, Ordering::SeqCst);
    }

    /// Operations refused while down (stalled ones are not counted).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    async fn gate_read(&self) -> Result<(), StoreError> {
        if self.health.load(Ordering::SeqCst) == 3 {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("reads switched off by the test".into()));
        }
        self.gate().await
    }

    async fn gate(&self) -> Result<(), StoreError> {
        match self.health.load(Ordering::SeqCst) {
            1 => {
                self.refused.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Unavailable("store switched off by the test".into()))
            }
            2 => {
                tokio::time::sleep(self.stall).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl StateStore for FlakyStore {
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError> {
        self.gate_read().await?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.put(key, attrs, condition).await
    }
    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        if self.health.load(Ordering::SeqCst) == 4 {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unavailable("updates switched off by the test".into()));
        }
        self.gate().await?;
        self.inner.update(key, update).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.delete(key, condition).await
    }
    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        self.gate_read().await?;
        self.inner.query(pk).await
    }
}

/// A counting wrapper around `inner`, as a [`SharedStore`] plus the handle to read its counts.
pub fn counting(inner: SharedStore) -> (SharedStore, Arc<CountingStore>) {
    let store = Arc::new(CountingStore::new(inner));
    (Arc::clone(&store) as SharedStore, store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::clock::ManualClock;
    use shared::store::memory::MemoryStore;

    fn memory() -> SharedStore {
        Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0))))
    }

    #[tokio::test]
    async fn counting_store_counts_reads_and_writes_separately() {
        let (store, counts) = counting(memory());
        let key = Key::new("a", "b");
        store.update(&key, Update::new().add("n", 1)).await.unwrap();
        store.get(&key).await.unwrap();
        store.query("a").await.unwrap();
        assert_eq!(
            counts.ops(),
            StoreOps {
                gets: 1,
                updates: 1,
                queries: 1,
                ..StoreOps::default()
            }
        );
        assert_eq!((counts.ops().reads(), counts.ops().writes()), (2, 1));
        counts.reset();
        assert_eq!(counts.ops().total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn flaky_store_fails_when_down_stalls_when_stalled_and_recovers() {
        let flaky = FlakyStore::new(memory(), Duration::from_secs(30));
        let key = Key::new("a", "b");
        flaky.set(Health::Down);
        assert!(flaky.get(&key).await.unwrap_err().is_outage());
        assert_eq!(flaky.refused(), 1);
        flaky.set(Health::Stalled);
        let start = tokio::time::Instant::now();
        assert!(flaky.get(&key).await.is_ok());
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        flaky.set(Health::Up);
        assert!(flaky.get(&key).await.is_ok());
    }
}
