//! Breakers an operator pinned: the tuner does not change their thresholds.

use crate::store::{AttrValue, Attrs, Condition, Key, SharedStore, StoreError};

/// The partition of pins, one item per pinned breaker.
pub const PINNED_PK: &str = "config#pinned";

/// The pinned breakers, in the fleet store.
#[derive(Debug, Clone)]
pub struct Pins {
    store: SharedStore,
}

impl Pins {
    /// The pins on `store`.
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }

    /// Every pinned breaker's name.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .store
            .query(PINNED_PK)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Pins `name` (by `actor`) or unpins it.
    ///
    /// # Errors
    /// [`StoreError`] when the store does not take it.
    pub async fn set(&self, name: &str, pinned: bool, actor: &str) -> Result<(), StoreError> {
        let key = Key::new(PINNED_PK, name);
        if pinned {
            let mut attrs = Attrs::new();
            attrs.insert("by".into(), AttrValue::from(actor));
            self.store.put(&key, attrs, Condition::Always).await
        } else {
            self.store.delete(&key, Condition::Always).await
        }
    }
}
