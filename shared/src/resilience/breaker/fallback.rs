//! The store-outage fallback: a private, in-memory copy of the breaker item.
//!
//! When the fleet store fails or is too slow, the instance seeds this store with the last fleet
//! record it saw and runs the very same updates and decisions against it, so the breaker keeps
//! counting, tripping and probing on instance-local state (and the retry budget becomes a
//! per-instance budget). Outcomes of that period also wait in the instance's pending counts and
//! reach the fleet window with the first write after the store is back. Each is applied to this
//! copy once: when a retried fleet write fails again, only the pending counts the copy does not
//! hold yet are applied (`Instance::applied_locally`). Scope: per instance.

use super::record::BreakerRecord;
use crate::clock::SharedClock;
use crate::store::memory::MemoryStore;
use crate::store::{Attrs, Condition, Key, StateStore, StoreError, Update};

/// The instance-local breaker store.
#[derive(Debug)]
pub struct LocalFallback {
    store: MemoryStore,
}

impl LocalFallback {
    /// An empty fallback judging TTLs by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            store: MemoryStore::new(clock),
        }
    }

    /// Starts a fallback period from `record` (the last fleet state seen).
    pub async fn seed(&self, key: &Key, record: &BreakerRecord) {
        // The in-memory store cannot fail an unconditional put; ignoring the result is safe.
        let _ = self.store.put(key, record.to_attrs(), Condition::Always).await;
    }

    /// Applies `update` to the local copy.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] with the local item, as the fleet store would.
    pub async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        self.store.update(key, update).await
    }

    /// The local copy.
    #[cfg(test)]
    pub async fn get(&self, key: &Key) -> Option<Attrs> {
        self.store.get(key).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::resilience::breaker::state::State;
    use std::sync::Arc;

    #[tokio::test]
    async fn fallback_starts_from_the_seeded_record_and_applies_updates() {
        let local = LocalFallback::new(Arc::new(ManualClock::new(0)));
        let key = Key::new("breaker#x", "state");
        let record = BreakerRecord {
            state: State::Open,
            version: 5,
            open_until: 99,
            ..BreakerRecord::absent()
        };
        local.seed(&key, &record).await;
        let after = local.update(&key, Update::new().add("c_0", 1)).await.unwrap();
        let seen = BreakerRecord::from_item(Some(&after)).unwrap();
        assert_eq!((seen.state, seen.version, seen.open_until), (State::Open, 5, 99));
        assert!(local.get(&key).await.is_some());
    }
}
