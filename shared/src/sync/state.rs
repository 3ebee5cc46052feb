//! The sync's one fleet item, `sync#state` / `run`: the lease (one run at a time, whatever
//! triggered it) and the checkpoint (where a pass is), written together so a checkpoint is only
//! ever saved by the lease holder.
//!
//! The checkpoint is saved after every batch of 100 profiles, so a run that stops — a Lambda
//! timeout, an open breaker, 45009, the store failing — resumes at the batch it did not finish:
//! its list page is fetched once more (a page of 10,000 openids is not stored), the batches done
//! are skipped.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Attrs, CmpOp, Condition, Key, SharedStore, StoreError, Update};

/// How long a lease lasts without a checkpoint renewing it (a dead holder's run is taken over
/// after this).
pub const LEASE: Duration = Duration::from_secs(90);

fn key() -> Key {
    Key::new("sync#state", "run")
}

/// Where a pass is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Reading the tags (names for the followers' tag ids).
    Tags,
    /// Walking `user/get` pages: `cursor` fetches the current page; `first` is its first openid
    /// as last seen (a re-fetched page that starts elsewhere is redone from its first batch);
    /// `batches_done` of its batches are stored.
    List {
        cursor: String,
        first: String,
        batches_done: usize,
    },
    /// Marking the followers the pass did not see as unsubscribed: shard `shard`, after `after`.
    Sweep { shard: u32, after: Option<String> },
}

/// Counts of a pass (what the admin API shows and the tests check).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassCounts {
    /// Followers in WeChat's list, as its last page said.
    pub total: u64,
    /// Followers stored from pages.
    pub stored: u64,
    /// Followers whose stored item was newer (an event during the pass): left as they were.
    pub kept_newer: u64,
    /// Followers marked unsubscribed at the end.
    pub left: u64,
    /// `user/get` calls.
    pub list_calls: u64,
    /// `user/info/batchget` calls.
    pub profile_calls: u64,
    /// `tags/get` calls.
    pub tag_calls: u64,
    /// Invocations the pass took.
    pub runs: u64,
}

/// A pass under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// Its id (`p{started_ms}`).
    pub id: String,
    /// When it began (epoch ms): followers not seen and not touched since are gone.
    pub started_ms: i64,
    /// Where it is.
    pub phase: Phase,
    /// Tag id → name.
    pub tags: Vec<(i64, String)>,
    /// Its counts.
    pub counts: PassCounts,
}

/// A finished pass, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// Its id.
    pub id: String,
    /// Began / ended (epoch ms).
    pub started_ms: i64,
    /// Ended.
    pub finished_ms: i64,
    /// Its counts.
    pub counts: PassCounts,
}

/// The checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// A full pass was asked for (schedule, admin API) at this time and not begun yet.
    pub requested_ms: Option<i64>,
    /// The pass under way.
    pub pass: Option<Pass>,
    /// No WeChat call before this (45009: WeChat's daily reset), epoch ms.
    pub paused_until_ms: Option<i64>,
    /// Why the last run stopped early.
    pub last_stop: Option<String>,
    /// The last finished pass.
    pub last_pass: Option<Finished>,
}

/// The lease and checkpoint item.
#[derive(Debug, Clone)]
pub struct SyncState {
    store: SharedStore,
    owner: String,
}

impl SyncState {
    /// The item as seen by run `owner` (a random id per invocation).
    pub fn new(store: SharedStore, owner: impl Into<String>) -> Self {
        Self {
            store,
            owner: owner.into(),
        }
    }

    /// Takes the lease (free, expired, or already ours) and reads the checkpoint; `None`
    /// while another run holds it.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn acquire(&self, now_ms: i64) -> Result<Option<Checkpoint>, StoreError> {
        let until = now_ms.saturating_add(crate::clock::millis(LEASE));
        let update = Update::new()
            .set("owner", self.owner.clone())
            .set("lease_until_ms", until)
            .when(
                Condition::ItemAbsent
                    .or(Condition::AttrAbsent("owner".into()))
                    .or(Condition::compare("lease_until_ms", CmpOp::Lt, now_ms))
                    .or(Condition::equals("owner", self.owner.clone())),
            );
        match self.store.update(&key(), update).await {
            Ok(attrs) => Ok(Some(checkpoint_of(&attrs))),
            Err(StoreError::ConditionFailed { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Saves `checkpoint` and renews the lease, only while it is ours.
    ///
    /// # Errors
    /// [`StoreError::ConditionFailed`] when another run took the lease over; others.
    pub async fn save(&self, checkpoint: &Checkpoint, now_ms: i64) -> Result<(), StoreError> {
        let text = serde_json::to_string(checkpoint).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let update = Update::new()
            .set("checkpoint", text)
            .set("lease_until_ms", now_ms.saturating_add(crate::clock::millis(LEASE)))
            .when(Condition::equals("owner", self.owner.clone()));
        self.store.update(&key(), update).await.map(|_| ())
    }

    /// Frees the lease without touching the checkpoint (a run that found nothing to do: a
    /// request written meanwhile stays).
    ///
    /// # Errors
    /// As [`Self::save`].
    pub async fn release_only(&self) -> Result<(), StoreError> {
        let update = Update::new()
            .remove("owner")
            .remove("lease_until_ms")
            .when(Condition::equals("owner", self.owner.clone()));
        self.store.update(&key(), update).await.map(|_| ())
    }

    /// Saves `checkpoint` and frees the lease (the next trigger may start at once).
    ///
    /// # Errors
    /// As [`Self::save`].
    pub async fn release(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let text = serde_json::to_string(checkpoint).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let update = Update::new()
            .set("checkpoint", text)
            .remove("owner")
            .remove("lease_until_ms")
            .when(Condition::equals("owner", self.owner.clone()));
        self.store.update(&key(), update).await.map(|_| ())
    }
}

/// Asks for a full pass (the nightly schedule, `POST /admin/sync`): the next run begins it,
/// unless one is under way. Written whatever the lease (it is only a request).
///
/// # Errors
/// [`StoreError`].
pub async fn request_pass(store: &SharedStore, now_ms: i64) -> Result<Checkpoint, StoreError> {
    // Read-modify-write under a version check: a run saving at the same moment wins, the
    // request is retried on top of its checkpoint.
    for _ in 0..5 {
        let current = store.get(&key()).await?;
        let mut checkpoint = current.as_ref().map(checkpoint_of).unwrap_or_default();
        if checkpoint.pass.is_none() && checkpoint.requested_ms.is_none() {
            checkpoint.requested_ms = Some(now_ms);
        }
        let text = serde_json::to_string(&checkpoint).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let condition = match current.as_ref().and_then(|a| a.str_attr("checkpoint")) {
            Some(previous) => Condition::equals("checkpoint", previous.to_owned()),
            None => Condition::AttrAbsent("checkpoint".into()),
        };
        match store
            .update(&key(), Update::new().set("checkpoint", text).when(condition))
            .await
        {
            Ok(_) => return Ok(checkpoint),
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(StoreError::Unavailable("the sync checkpoint kept changing".into()))
}

/// The checkpoint as stored (for the admin API).
///
/// # Errors
/// [`StoreError`].
pub async fn read(store: &SharedStore) -> Result<(Checkpoint, Option<String>), StoreError> {
    let attrs = store.get(&key()).await?;
    let owner = attrs.as_ref().and_then(|a| a.str_attr("owner")).map(str::to_owned);
    Ok((attrs.as_ref().map(checkpoint_of).unwrap_or_default(), owner))
}

fn checkpoint_of(attrs: &Attrs) -> Checkpoint {
    attrs
        .str_attr("checkpoint")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn one_run_holds_the_lease_until_it_releases_or_it_expires() {
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0))));
        let (a, b) = (SyncState::new(store.clone(), "a"), SyncState::new(store.clone(), "b"));
        let mut checkpoint = a.acquire(1_000).await.unwrap().expect("free");
        assert!(b.acquire(1_000).await.unwrap().is_none(), "held");
        checkpoint.last_stop = Some("deadline".into());
        a.save(&checkpoint, 2_000).await.unwrap();
        assert!(
            b.acquire(2_000 + 89_000).await.unwrap().is_none(),
            "renewed by the save"
        );
        let taken = b.acquire(2_000 + 91_000).await.unwrap().expect("expired: taken over");
        assert_eq!(taken, checkpoint, "with the checkpoint");
        assert!(matches!(
            a.save(&checkpoint, 100_000).await,
            Err(StoreError::ConditionFailed { .. })
        ));
        b.release(&taken).await.unwrap();
        assert!(a.acquire(100_001).await.unwrap().is_some(), "released");
    }

    #[tokio::test]
    async fn a_request_starts_nothing_twice() {
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0))));
        assert_eq!(request_pass(&store, 5).await.unwrap().requested_ms, Some(5));
        assert_eq!(
            request_pass(&store, 9).await.unwrap().requested_ms,
            Some(5),
            "already asked"
        );
        let state = SyncState::new(store.clone(), "a");
        let checkpoint = state.acquire(10).await.unwrap().unwrap();
        assert_eq!(checkpoint.requested_ms, Some(5));
    }
}
