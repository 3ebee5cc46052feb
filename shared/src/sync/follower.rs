//! One follower item: the table's copy of what WeChat knows about a follower, and the two ways
//! it is written — from a full pass's page (`user/info/batchget`) and from a callback event —
//! each conditional on being newer than what is stored.
//!
//! Items live at `follower#{shard}` / `{openid}` (16 shards by a stable hash of the openid, so a
//! full pass's writes spread over partitions). `source_ms` is when the stored facts were true: a
//! page's fetch time or an event's `CreateTime`. A write lands only if it is newer, so a
//! subscribe event that arrives during a full pass is never overwritten by a page fetched before
//! it, and a late, older event never undoes a newer page.

use serde_json::Value;

use crate::store::{AttrValue, Attrs, CmpOp, Condition, Key, SharedStore, StoreError, Update};

/// Follower partitions.
pub const SHARDS: u32 = 16;

/// Who wrote an item last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A full pass's page.
    FullSync,
    /// A subscribe / unsubscribe event from the callback.
    Event,
    /// The end of a full pass: absent from the list, so unsubscribed.
    Sweep,
}

impl Source {
    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FullSync => "full_sync",
            Self::Event => "event",
            Self::Sweep => "sweep",
        }
    }
}

/// The shard of `openid` (FNV-1a: stable across processes and releases).
pub fn shard_of(openid: &str) -> u32 {
    let hash = openid.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % SHARDS
}

/// The partition key of `shard`.
pub fn shard_pk(shard: u32) -> String {
    format!("follower#{shard:02}")
}

/// The item key of `openid`.
pub fn key(openid: &str) -> Key {
    Key::new(shard_pk(shard_of(openid)), openid)
}

/// A follower as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Follower {
    /// The follower.
    pub openid: String,
    /// Subscribed now.
    pub subscribed: bool,
    /// When they (last) subscribed, epoch seconds.
    pub subscribe_time: Option<i64>,
    /// Across the developer's accounts.
    pub unionid: Option<String>,
    /// The account's remark.
    pub remark: String,
    /// Tag ids (`tagid_list`).
    pub tag_ids: Vec<i64>,
    /// Their names, as of the pass.
    pub tag_names: Vec<String>,
    /// The whole record WeChat answered (subscribe_scene, qr_scene, language, …).
    pub profile: Option<Value>,
    /// Who wrote it.
    pub source: String,
    /// When the stored facts were true (epoch ms).
    pub source_ms: i64,
    /// When it was written (epoch ms).
    pub synced_at_ms: i64,
    /// The full pass that last saw the follower in WeChat's list.
    pub seen_pass: Option<String>,
}

impl Follower {
    /// From a `user/info/batchget` record, fetched at `fetched_ms` by pass `pass_id`; tag names
    /// from `tag_name`.
    pub fn from_record(
        record: &Value,
        pass_id: &str,
        fetched_ms: i64,
        tag_name: impl Fn(i64) -> Option<String>,
    ) -> Option<Self> {
        let openid = record.get("openid")?.as_str()?.to_owned();
        let tag_ids: Vec<i64> = record
            .get("tagid_list")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let tag_names = tag_ids.iter().filter_map(|id| tag_name(*id)).collect();
        let text = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            subscribed: record.get("subscribe").and_then(Value::as_i64) == Some(1),
            subscribe_time: record.get("subscribe_time").and_then(Value::as_i64),
            unionid: text("unionid").filter(|u| !u.is_empty()),
            remark: text("remark").unwrap_or_default(),
            tag_ids,
            tag_names,
            profile: Some(record.clone()),
            source: Source::FullSync.as_str().to_owned(),
            source_ms: fetched_ms,
            synced_at_ms: fetched_ms,
            seen_pass: Some(pass_id.to_owned()),
            openid,
        })
    }

    /// The stored attributes.
    pub fn to_attrs(&self) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert("openid".into(), self.openid.clone().into());
        attrs.insert("subscribe".into(), i64::from(self.subscribed).into());
        if let Some(time) = self.subscribe_time {
            attrs.insert("subscribe_time".into(), time.into());
        }
        if let Some(unionid) = &self.unionid {
            attrs.insert("unionid".into(), unionid.clone().into());
        }
        attrs.insert("remark".into(), self.remark.clone().into());
        let ids: Vec<String> = self.tag_ids.iter().map(i64::to_string).collect();
        attrs.insert("tag_ids".into(), ids.join(",").into());
        attrs.insert(
            "tag_names".into(),
            serde_json::to_string(&self.tag_names).unwrap_or_default().into(),
        );
        if let Some(profile) = &self.profile {
            attrs.insert("profile".into(), profile.to_string().into());
        }
        attrs.insert("source".into(), self.source.clone().into());
        attrs.insert("source_ms".into(), self.source_ms.into());
        attrs.insert("synced_at".into(), self.synced_at_ms.into());
        if let Some(pass) = &self.seen_pass {
            attrs.insert("seen_pass".into(), pass.clone().into());
        }
        attrs
    }

    /// From stored attributes (`None` when not a follower item).
    pub fn from_attrs(attrs: &Attrs) -> Option<Self> {
        let text = |name: &str| attrs.str_attr(name).map(str::to_owned);
        Some(Self {
            openid: text("openid")?,
            subscribed: attrs.num_attr("subscribe") == Some(1),
            subscribe_time: attrs.num_attr("subscribe_time"),
            unionid: text("unionid"),
            remark: text("remark").unwrap_or_default(),
            tag_ids: attrs
                .str_attr("tag_ids")
                .map(|ids| ids.split(',').filter_map(|id| id.parse().ok()).collect())
                .unwrap_or_default(),
            tag_names: attrs
                .str_attr("tag_names")
                .and_then(|names| serde_json::from_str(names).ok())
                .unwrap_or_default(),
            profile: attrs
                .str_attr("profile")
                .and_then(|profile| serde_json::from_str(profile).ok()),
            source: text("source").unwrap_or_default(),
            source_ms: attrs.num_attr("source_ms").unwrap_or(0),
            synced_at_ms: attrs.num_attr("synced_at").unwrap_or(0),
            seen_pass: text("seen_pass"),
        })
    }

    /// The answer of the read API (the raw record stays out unless asked for).
    pub fn to_json(&self, with_profile: bool) -> Value {
        let mut value = serde_json::json!({
            "openid": self.openid,
            "subscribed": self.subscribed,
            "subscribe_time": self.subscribe_time,
            "unionid": self.unionid,
            "remark": self.remark,
            "tag_ids": self.tag_ids,
            "tags": self.tag_names,
            "source": self.source,
            "synced_at": self.synced_at_ms,
        });
        if with_profile {
            value["profile"] = self.profile.clone().unwrap_or(Value::Null);
        }
        value
    }
}

/// Whether a write happened or a newer one was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The item now holds this write.
    Stored,
    /// The stored item is newer (an event during the pass): left as it is.
    KeptNewer,
}

fn newer_than_stored(source_ms: i64) -> Condition {
    Condition::ItemAbsent.or(Condition::compare("source_ms", CmpOp::Lt, source_ms))
}

/// Stores a full pass's follower, unless the stored item is newer.
///
/// # Errors
/// [`StoreError`] when the store does not take it.
pub async fn store_from_page(store: &SharedStore, follower: &Follower) -> Result<Written, StoreError> {
    let condition = newer_than_stored(follower.source_ms);
    match store.put(&key(&follower.openid), follower.to_attrs(), condition).await {
        Ok(()) => Ok(Written::Stored),
        Err(StoreError::ConditionFailed { .. }) => Ok(Written::KeptNewer),
        Err(error) => Err(error),
    }
}

/// A subscribe (`subscribed`) or unsubscribe event of `openid` at `event_ms`: the item is
/// created or updated at once, unless it holds something newer. The profile stays as the last
/// pass left it (the callback has no API access); a new follower gets it on the next pass.
///
/// # Errors
/// [`StoreError`] when the store does not take it.
pub async fn store_event(
    store: &SharedStore,
    openid: &str,
    subscribed: bool,
    event_ms: i64,
    now_ms: i64,
) -> Result<Written, StoreError> {
    let mut update = Update::new()
        .set("openid", openid)
        .set("subscribe", i64::from(subscribed))
        .set("source", Source::Event.as_str())
        .set("source_ms", event_ms)
        .set("synced_at", now_ms);
    if subscribed {
        update = update.set("subscribe_time", event_ms.div_euclid(1000));
    }
    match store
        .update(&key(openid), update.when(newer_than_stored(event_ms)))
        .await
    {
        Ok(_) => Ok(Written::Stored),
        Err(StoreError::ConditionFailed { .. }) => Ok(Written::KeptNewer),
        Err(error) => Err(error),
    }
}

/// The end of pass `pass_id` (started at `pass_started_ms`): a follower it did not see, still
/// marked subscribed by something older than the pass, has left.
///
/// # Errors
/// [`StoreError`] when the store does not take it.
pub async fn mark_left(
    store: &SharedStore,
    openid: &str,
    pass_id: &str,
    pass_started_ms: i64,
    now_ms: i64,
) -> Result<Written, StoreError> {
    let unseen = Condition::AttrAbsent("seen_pass".into()).or(Condition::Compare(
        "seen_pass".into(),
        CmpOp::Ne,
        AttrValue::from(pass_id),
    ));
    let update = Update::new()
        .set("subscribe", 0_i64)
        .set("source", Source::Sweep.as_str())
        .set("source_ms", pass_started_ms)
        .set("synced_at", now_ms)
        .when(
            Condition::ItemPresent
                .and(Condition::equals("subscribe", 1_i64))
                .and(Condition::compare("source_ms", CmpOp::Lt, pass_started_ms))
                .and(unseen),
        );
    match store.update(&key(openid), update).await {
        Ok(_) => Ok(Written::Stored),
        Err(StoreError::ConditionFailed { .. }) => Ok(Written::KeptNewer),
        Err(error) => Err(error),
    }
}

/// The stored follower `openid`.
///
/// # Errors
/// [`StoreError`].
pub async fn load(store: &SharedStore, openid: &str) -> Result<Option<Follower>, StoreError> {
    Ok(store.get(&key(openid)).await?.as_ref().and_then(Follower::from_attrs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    fn store() -> SharedStore {
        Arc::new(MemoryStore::new(Arc::new(ManualClock::new(1_000))))
    }

    fn record(openid: &str) -> Value {
        json!({"subscribe": 1, "openid": openid, "subscribe_time": 1_600_000_000, "unionid": "u1",
               "remark": "vip", "tagid_list": [100, 101], "subscribe_scene": "ADD_SCENE_QR_CODE"})
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("o_follower_000001"), shard_of("o_follower_000001"));
        let used: std::collections::BTreeSet<u32> =
            (0..1000).map(|i| shard_of(&format!("o_follower_{i:06}"))).collect();
        assert_eq!(used.len(), SHARDS as usize);
        assert_eq!(key("x").pk.len(), "follower#00".len());
    }

    #[test]
    fn a_record_round_trips_with_its_tags_named() {
        let name = |id: i64| (id == 100).then(|| "vip".to_owned());
        let follower = Follower::from_record(&record("o1"), "p1", 5, name).unwrap();
        assert_eq!(follower.tag_ids, [100, 101]);
        assert_eq!(follower.tag_names, ["vip"]);
        assert!(follower.subscribed);
        assert_eq!(Follower::from_attrs(&follower.to_attrs()).unwrap(), follower);
    }

    #[tokio::test]
    async fn an_event_newer_than_a_page_is_kept_and_an_older_one_is_not() {
        let store = store();
        let page = Follower::from_record(&record("o1"), "p1", 2_000, |_| None).unwrap();
        // Unsubscribed at 3 000; the page fetched at 2 000 arrives after: the event stays.
        assert_eq!(
            store_event(&store, "o1", false, 3_000, 3_000).await.unwrap(),
            Written::Stored
        );
        assert_eq!(store_from_page(&store, &page).await.unwrap(), Written::KeptNewer);
        assert!(!load(&store, "o1").await.unwrap().unwrap().subscribed);
        // A page fetched later wins; an event older than it does not.
        let later = Follower::from_record(&record("o1"), "p1", 4_000, |_| None).unwrap();
        assert_eq!(store_from_page(&store, &later).await.unwrap(), Written::Stored);
        assert_eq!(
            store_event(&store, "o1", false, 3_500, 5_000).await.unwrap(),
            Written::KeptNewer
        );
        assert!(load(&store, "o1").await.unwrap().unwrap().subscribed);
    }

    #[tokio::test]
    async fn only_followers_the_pass_did_not_see_and_nothing_newer_touched_are_marked_left() {
        let store = store();
        for openid in ["seen", "gone", "resubscribed"] {
            let old = Follower::from_record(&record(openid), "p0", 1_000, |_| None).unwrap();
            store_from_page(&store, &old).await.unwrap();
        }
        let seen = Follower::from_record(&record("seen"), "p1", 2_500, |_| None).unwrap();
        store_from_page(&store, &seen).await.unwrap();
        store_event(&store, "resubscribed", true, 2_600, 2_600).await.unwrap();
        for openid in ["seen", "gone", "resubscribed"] {
            mark_left(&store, openid, "p1", 2_000, 3_000).await.unwrap();
        }
        let subscribed = |f: Option<Follower>| f.unwrap().subscribed;
        assert!(subscribed(load(&store, "seen").await.unwrap()));
        assert!(!subscribed(load(&store, "gone").await.unwrap()));
        assert!(subscribed(load(&store, "resubscribed").await.unwrap()));
    }
}
