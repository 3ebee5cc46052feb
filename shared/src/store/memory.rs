//! The in-memory state store: the embedded default for local runs and unit tests.
//!
//! Same semantics as DynamoDB for everything the [`StateStore`] contract promises (conditional
//! writes, atomic updates, expired items treated as absent), so the behaviour suite passes on both.
//! State is per process: on Lambda use [`super::dynamo::DynamoStore`] so the fleet shares it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::update::{check_attrs, check_key, check_pk};
use super::{Attrs, AttrsExt, Condition, Key, StateStore, StoreError, Update};
use crate::clock::SharedClock;

/// Items in a `BTreeMap` behind a mutex; every operation is one short critical section.
#[derive(Debug)]
pub struct MemoryStore {
    items: Mutex<BTreeMap<Key, Attrs>>,
    clock: SharedClock,
}

impl MemoryStore {
    /// An empty store that judges expiry by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            items: Mutex::new(BTreeMap::new()),
            clock,
        }
    }

    /// Number of stored items, expired ones included (for tests and the admin view).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no item at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Attrs>> {
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
        Ok(self.live(self.lock().get(key)))
    }

    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        check_attrs(&attrs)?;
        let mut items = self.lock();
        self.check(items.get(key), &condition)?;
        items.insert(key.clone(), attrs);
        Ok(())
    }

    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError> {
        check_key(key)?;
        update.validate()?;
        let mut items = self.lock();
        self.check(items.get(key), &update.condition)?;
        let item = items.entry(key.clone()).or_default();
        update.apply_to(item);
        Ok(item.clone())
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        check_key(key)?;
        let mut items = self.lock();
        self.check(items.get(key), &condition)?;
        items.remove(key);
        Ok(())
    }

    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        check_pk(pk)?;
        let now = self.clock.now_secs();
        let items = self.lock();
        let start = Key::new(pk, "");
        Ok(items
            .range(start..)
            .take_while(|(key, _)| key.pk == pk)
            .filter(|(_, attrs)| !attrs.is_expired_at(now))
            .map(|(key, attrs)| (key.sk.clone(), attrs.clone()))
            .collect())
    }
}
