//! Reading the mirror: one follower, a filtered page, an export page — all by cursor over the
//! follower shards, so no request reads more than a bounded number of items.
//!
//! A cursor is `{shard}.{last openid}` (opaque to clients). A filtered page reads at most
//! [`SCAN_BUDGET`] items: a rare tag may answer fewer items than asked, with a cursor to go on.

use super::follower::{Follower, SHARDS, shard_pk};
use crate::store::{SharedStore, StoreError};

/// Items one request reads at most.
pub const SCAN_BUDGET: usize = 2_000;

/// What a page keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only followers with this tag id.
    pub tag: Option<i64>,
    /// Only (un)subscribed followers.
    pub subscribed: Option<bool>,
}

impl Filter {
    fn keeps(&self, follower: &Follower) -> bool {
        self.tag.is_none_or(|tag| follower.tag_ids.contains(&tag))
            && self
                .subscribed
                .is_none_or(|subscribed| follower.subscribed == subscribed)
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    shard: u32,
    after: Option<String>,
}

impl Cursor {
    /// The first page.
    pub const fn start() -> Self {
        Self { shard: 0, after: None }
    }

    /// A cursor a previous page handed out (`None`: not one of ours).
    pub fn parse(text: &str) -> Option<Self> {
        let (shard, after) = text.split_once('.')?;
        let shard: u32 = shard.parse().ok()?;
        (shard < SHARDS && !after.is_empty()).then(|| Self {
            shard,
            after: Some(after.to_owned()),
        })
    }

    /// The text form.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.shard, self.after.as_deref().unwrap_or_default())
    }
}

/// Up to `limit` followers from `cursor` that `filter` keeps, and the cursor of the next page
/// (`None` at the end).
///
/// # Errors
/// [`StoreError`].
pub async fn page(
    store: &SharedStore,
    filter: Filter,
    cursor: Cursor,
    limit: usize,
) -> Result<(Vec<Follower>, Option<Cursor>), StoreError> {
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut at = cursor;
    while at.shard < SHARDS {
        let want = (SCAN_BUDGET - scanned)
            .min(limit.saturating_sub(found.len()).max(1) * 4)
            .max(1);
        let (items, more) = store.query_page(&shard_pk(at.shard), at.after.as_deref(), want).await?;
        scanned += items.len();
        for (openid, attrs) in items {
            at.after = Some(openid);
            if let Some(follower) = Follower::from_attrs(&attrs).filter(|f| filter.keeps(f)) {
                found.push(follower);
                if found.len() == limit {
                    return Ok((found, Some(at)));
                }
            }
        }
        if !more {
            at = Cursor {
                shard: at.shard + 1,
                after: None,
            };
        }
        if scanned >= SCAN_BUDGET {
            let next = (at.shard < SHARDS).then_some(at);
            return Ok((found, next));
        }
    }
    Ok((found, None))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;
    use crate::sync::follower::store_from_page;

    #[tokio::test]
    async fn pages_walk_every_shard_once_and_filters_apply() {
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0))));
        for i in 0..300 {
            let record = json!({"subscribe": i64::from(i % 3 != 0), "openid": format!("o{i:04}"),
                                "tagid_list": if i % 2 == 0 { vec![100] } else { vec![] }});
            let follower = Follower::from_record(&record, "p1", 1, |_| None).unwrap();
            store_from_page(&store, &follower).await.unwrap();
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = Some(Cursor::start());
        while let Some(at) = cursor {
            let (followers, next) = page(&store, Filter::default(), at, 37).await.unwrap();
            assert!(followers.len() <= 37);
            for follower in followers {
                assert!(seen.insert(follower.openid), "no follower twice");
            }
            cursor = next.map(|c| Cursor::parse(&c.encode()).expect("round trip"));
        }
        assert_eq!(seen.len(), 300);
        let filter = Filter {
            tag: Some(100),
            subscribed: Some(true),
        };
        let (tagged, _) = page(&store, filter, Cursor::start(), 1000).await.unwrap();
        assert_eq!(tagged.len(), (0..300).filter(|i| i % 2 == 0 && i % 3 != 0).count());
        assert!(Cursor::parse("99.x").is_none() && Cursor::parse("nonsense").is_none());
    }
}
