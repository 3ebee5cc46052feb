//! The state store: a small key-value contract with conditional writes, atomic counters and TTL.
//!
//! Every piece of fleet-wide state (idempotency records, breaker state and windows, token cache,
//! leases) is built on this one trait, so it models exactly what DynamoDB offers and no more:
//! items addressed by `(pk, sk)`, attribute maps of strings and integers, a conditional put, an
//! update that `SET`s / `ADD`s / `REMOVE`s in one atomic step and returns the new item, and a TTL
//! attribute ([`EXPIRES_AT`], epoch seconds). Two implementations share one behaviour suite:
//! [`memory::MemoryStore`] (the embedded default) and [`dynamo::DynamoStore`] (production).
//!
//! Expiry: DynamoDB deletes expired items late (hours to days), so an item whose `expires_at` is at
//! or before "now" is treated as absent by reads and by the [`Condition::ItemAbsent`] /
//! [`Condition::ItemPresent`] conditions. An [`Update`] applied to an expired item still sees its
//! old attributes (as DynamoDB does); callers that need a fresh item guard the update with a
//! condition.

mod attrs;
mod bounded;
mod condition;
pub mod dynamo;
mod error;
mod item;
pub mod memory;
mod update;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

pub use attrs::Attrs;
pub use bounded::{Unanswered, bounded};
pub use condition::{CmpOp, Condition};
pub use error::StoreError;
pub use item::{AttrName, AttrValue, EXPIRES_AT, Key};
pub use update::Update;

/// The fleet-wide state store.
///
/// Implementations must be linearizable per item: concurrent conditional writes to one key behave
/// as if applied one at a time, and exactly one of two racing `ItemAbsent` puts succeeds.
#[async_trait]
pub trait StateStore: Send + Sync + Debug {
    /// Reads an item; `None` when absent or expired. Strongly consistent.
    async fn get(&self, key: &Key) -> Result<Option<Attrs>, StoreError>;

    /// Writes a whole item if `condition` holds.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] carrying the current item (or `None` if absent/expired)
    /// when the condition does not hold; the other variants for infrastructure failures.
    async fn put(&self, key: &Key, attrs: Attrs, condition: Condition) -> Result<(), StoreError>;

    /// Applies `update` atomically (creating the item if needed) and returns the item as it is after.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] with the current item when the update's condition fails.
    async fn update(&self, key: &Key, update: Update) -> Result<Attrs, StoreError>;

    /// [`Self::update`] for a caller that does not need the item back. The default asks for it
    /// all the same (DynamoDB's answer is one round trip either way); the memory store skips the
    /// copy of the item it would hand back.
    ///
    /// # Errors
    /// As [`Self::update`].
    async fn apply(&self, key: &Key, update: Update) -> Result<(), StoreError> {
        self.update(key, update).await.map(drop)
    }

    /// Deletes an item if `condition` holds (deleting an absent item with [`Condition::Always`] is Ok).
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] with the current item when the condition fails.
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError>;

    /// All live (unexpired) items under one partition key, ordered by sort key.
    async fn query(&self, pk: &str) -> Result<Vec<(String, Attrs)>, StoreError>;

    /// Up to `limit` live items under `pk` with a sort key after `after` (`None`: from the
    /// start), ordered by sort key, and whether more may follow: a partition too large to read
    /// at once (the followers) is read page by page. The default reads the whole partition;
    /// the real stores read only the page.
    async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, Attrs)>, bool), StoreError> {
        let items = self.query(pk).await?;
        let mut page: Vec<(String, Attrs)> = items
            .into_iter()
            .filter(|(sk, _)| after.is_none_or(|after| sk.as_str() > after))
            .take(limit.saturating_add(1))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }
}

/// A shared store handle, as held by long-lived components.
pub type SharedStore = Arc<dyn StateStore>;

const _: Option<&dyn StateStore> = None; // object safety, checked at compile time
