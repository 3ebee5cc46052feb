//! WeChat's follower endpoints over a generated population (one account's followers).
//!
//! | path | answer |
//! |---|---|
//! | `GET /cgi-bin/user/get?access_token&next_openid` | `{total, count, data:{openid:[…]}, next_openid}`: up to `PAGE_SIZE` subscribed openids after `next_openid` (from the start when empty or missing), `next_openid` = the page's last; an empty page is `{total, count:0, next_openid:""}`; 40003 for an unknown `next_openid` |
//! | `POST /cgi-bin/user/info/batchget?access_token` `{user_list:[{openid, lang}]}` | `{user_info_list:[…]}` in request order (`{subscribe:0, openid, unionid}` for an unsubscribed follower); 40032 for 0 or more than `BATCHGET_LIMIT` entries, 40003 for an unknown openid, 47001 for a bad body |
//! | `GET /cgi-bin/tags/get?access_token` | `{tags:[{id, name, count}]}`: `count` = subscribed followers carrying the tag |
//!
//! Any valid access token will do (the population is one account's). The population comes from
//! [`crate::MockConfig::with_followers`] and is regenerated on reset: follower `i` is
//! `o_follower_{i:06}` / `u_follower_{i:06}`, nickname `Follower {i}`, subscribed at
//! `1_600_000_000 + i`; with `T` tags (ids `100..100+T`, names `tag-k`) it carries tag
//! `100 + i % T` and, when `i % 7 == 0`, also `100 + (i / 7) % T` (once). The list keeps its order;
//! the control API (`control_followers.rs`) appends new followers and unsubscribes / re-subscribes
//! known ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::MockState;
use crate::tokens::WxError;

type Params = Query<HashMap<String, String>>;

/// Openids per `user/get` page (WeChat: 10 000).
pub const PAGE_SIZE: usize = 10_000;
/// Openids per `user/info/batchget` call (WeChat: 100).
pub const BATCHGET_LIMIT: usize = 100;
/// The largest population the mock holds: the configured count is clamped to it, and subscribing
/// new followers stops there.
pub const MAX_FOLLOWERS: usize = 1_000_000;
/// The most tags the mock generates (WeChat allows an account 100; the mock clamps to this).
pub(crate) const MAX_TAGS: usize = 1_000;
/// The id of the first generated tag (`tag-0`).
pub(crate) const FIRST_TAG_ID: i64 = 100;
/// The subscribe_time of follower 0; follower `i` subscribed `i` seconds later.
pub(crate) const FIRST_SUBSCRIBE_TIME: i64 = 1_600_000_000;
/// The longest openid the control API accepts for a new follower.
const MAX_OPENID_LEN: usize = 128;

/// The openid of generated follower `i` (0-based).
pub fn follower_openid(i: usize) -> String {
    format!("o_follower_{i:06}")
}

/// The unionid of generated follower `i` (0-based).
pub fn follower_unionid(i: usize) -> String {
    format!("u_follower_{i:06}")
}

/// `n` as an i64 (every count here is far below `i64::MAX`).
fn wide(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The tag ids of generated follower `i` among `tags` tags: `100 + i % T`, plus `100 + (i / 7) % T`
/// when `i % 7 == 0`, `T > 1` and it differs.
pub(crate) fn tags_of(i: usize, tags: usize) -> Vec<i64> {
    if tags == 0 {
        return Vec::new();
    }
    let first = FIRST_TAG_ID + wide(i % tags);
    let mut ids = vec![first];
    if i.is_multiple_of(7) && tags > 1 {
        let second = FIRST_TAG_ID + wide((i / 7) % tags);
        if second != first {
            ids.push(second);
        }
    }
    ids
}

/// One follower: what varies between followers (the rest of the record is the same for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Follower {
    pub openid: String,
    pub unionid: String,
    /// Epoch seconds of the latest subscription.
    pub subscribe_time: i64,
    pub tagid_list: Vec<i64>,
    pub subscribed: bool,
}

/// The account's followers in list order, with an openid index for O(log n) lookups.
#[derive(Default)]
pub(crate) struct Population {
    followers: Vec<Follower>,
    /// openid → position in `followers`.
    index: BTreeMap<String, usize>,
    /// Generated tags (ids `FIRST_TAG_ID..FIRST_TAG_ID + tags`).
    tags: usize,
    /// Followers with `subscribed` set.
    subscribed: usize,
}

impl fmt::Debug for Population {
    // A population can be a million followers: show its size, not its members.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Population")
            .field("all", &self.followers.len())
            .field("subscribed", &self.subscribed)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl Population {
    /// `count` generated followers (at most [`MAX_FOLLOWERS`]), all subscribed, over `tags` tags
    /// (at most `MAX_TAGS`).
    pub(crate) fn generate(count: usize, tags: usize) -> Self {
        let count = count.min(MAX_FOLLOWERS);
        let tags = tags.min(MAX_TAGS);
        let followers: Vec<Follower> = (0..count)
            .map(|i| Follower {
                openid: follower_openid(i),
                unionid: follower_unionid(i),
                subscribe_time: FIRST_SUBSCRIBE_TIME + wide(i),
                tagid_list: tags_of(i, tags),
                subscribed: true,
            })
            .collect();
        let index = followers
            .iter()
            .enumerate()
            .map(|(i, f)| (f.openid.clone(), i))
            .collect();
        Self {
            followers,
            index,
            tags,
            subscribed: count,
        }
    }

    /// Followers currently subscribed.
    pub(crate) fn subscribed(&self) -> usize {
        self.subscribed
    }

    /// Every follower the list holds, subscribed or not.
    pub(crate) fn all(&self) -> usize {
        self.followers.len()
    }

    /// The position and record of `openid`; 40003 when unknown.
    fn find(&self, openid: &str) -> Result<(usize, &Follower), WxError> {
        self.index
            .get(openid)
            .and_then(|&i| self.followers.get(i).map(|f| (i, f)))
            .ok_or_else(|| WxError::new(40003, "invalid openid"))
    }

    /// Up to `limit` subscribed openids after `next_openid` (from the start when it is empty), in
    /// list order, and the subscribed total; 40003 for an unknown `next_openid`. O(page): the
    /// index finds the start, the list is walked from there.
    pub(crate) fn page_after(&self, next_openid: &str, limit: usize) -> Result<(Vec<String>, usize), WxError> {
        let start = if next_openid.is_empty() {
            0
        } else {
            self.find(next_openid)?.0 + 1
        };
        let openids = self
            .followers
            .iter()
            .skip(start)
            .filter(|f| f.subscribed)
            .take(limit)
            .map(|f| f.openid.clone())
            .collect();
        Ok((openids, self.subscribed))
    }

    /// The `user/info/batchget` records of `openids`, in order; 40032 for 0 or more than
    /// [`BATCHGET_LIMIT`] openids, 40003 when any is unknown.
    pub(crate) fn batch(&self, openids: &[String]) -> Result<Vec<Value>, WxError> {
        if openids.is_empty() || openids.len() > BATCHGET_LIMIT {
            return Err(WxError::new(40032, "invalid openid list size"));
        }
        openids
            .iter()
            .map(|openid| self.find(openid).map(|(i, f)| record(i, f)))
            .collect()
    }

    /// `tags/get`'s list: every generated tag with the number of subscribed followers carrying it.
    pub(crate) fn tag_list(&self) -> Vec<Value> {
        let mut counts = vec![0_u64; self.tags];
        for follower in self.followers.iter().filter(|f| f.subscribed) {
            for id in &follower.tagid_list {
                let Ok(k) = usize::try_from(id - FIRST_TAG_ID) else {
                    continue;
                };
                if let Some(count) = counts.get_mut(k) {
                    *count += 1;
                }
            }
        }
        counts
            .iter()
            .enumerate()
            .map(|(k, count)| json!({ "id": FIRST_TAG_ID + wide(k), "name": format!("tag-{k}"), "count": count }))
            .collect()
    }

    /// Subscribes `openid` at `now_secs` and returns that subscribe_time: a known follower
    /// re-subscribes (keeping its place and tags), a new one is appended (unionid `u_<openid>`,
    /// no tags). Refuses an empty or over-long openid, and a new follower past [`MAX_FOLLOWERS`].
    pub(crate) fn subscribe(&mut self, openid: &str, now_secs: i64) -> Result<i64, &'static str> {
        if openid.is_empty() || openid.len() > MAX_OPENID_LEN {
            return Err("openid must be 1..=128 bytes");
        }
        if let Some(&i) = self.index.get(openid) {
            let follower = self.followers.get_mut(i).ok_or("unknown openid")?;
            if !follower.subscribed {
                follower.subscribed = true;
                self.subscribed += 1;
            }
            follower.subscribe_time = now_secs;
            return Ok(now_secs);
        }
        if self.followers.len() >= MAX_FOLLOWERS {
            return Err("the population is full (1 000 000 followers)");
        }
        self.index.insert(openid.to_owned(), self.followers.len());
        self.followers.push(Follower {
            openid: openid.to_owned(),
            unionid: format!("u_{openid}"),
            subscribe_time: now_secs,
            tagid_list: Vec::new(),
            subscribed: true,
        });
        self.subscribed += 1;
        Ok(now_secs)
    }

    /// Unsubscribes `openid` (it keeps its place in the list); false when unknown.
    pub(crate) fn unsubscribe(&mut self, openid: &str) -> bool {
        let Some(&i) = self.index.get(openid) else {
            return false;
        };
        let Some(follower) = self.followers.get_mut(i) else {
            return false;
        };
        if follower.subscribed {
            follower.subscribed = false;
            self.subscribed -= 1;
        }
        true
    }

    /// Openids of the subscribed followers, in list order.
    pub(crate) fn subscribed_openids(&self) -> Vec<String> {
        self.followers
            .iter()
            .filter(|f| f.subscribed)
            .map(|f| f.openid.clone())
            .collect()
    }

    /// The tag ids of `openid` (subscribed or not); `None` when unknown.
    pub(crate) fn tags_of_openid(&self, openid: &str) -> Option<Vec<i64>> {
        self.find(openid).ok().map(|(_, f)| f.tagid_list.clone())
    }
}

/// The batchget record of follower `i`.
fn record(i: usize, f: &Follower) -> Value {
    if !f.subscribed {
        return json!({ "subscribe": 0, "openid": f.openid, "unionid": f.unionid });
    }
    json!({
        "subscribe": 1,
        "openid": f.openid,
        "nickname": format!("Follower {i}"),
        "sex": 0,
        "language": "zh_CN",
        "city": "",
        "province": "",
        "country": "",
        "headimgurl": "",
        "subscribe_time": f.subscribe_time,
        "unionid": f.unionid,
        "remark": "",
        "groupid": 0,
        "tagid_list": f.tagid_list,
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    })
}

fn wx_error(err: WxError) -> Response {
    Json(json!({ "errcode": err.errcode, "errmsg": err.errmsg })).into_response()
}

/// `GET /cgi-bin/user/get?access_token=&next_openid=`
pub(crate) async fn user_get(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    if let Err(err) = crate::api::authorise(&state, &q) {
        return wx_error(err);
    }
    let next_openid = q.get("next_openid").map_or("", String::as_str);
    let page = state.lock().followers.page_after(next_openid, PAGE_SIZE);
    let (openids, total) = match page {
        Ok(page) => page,
        Err(err) => return wx_error(err),
    };
    // WeChat names the page's last openid even on the final page, and omits `data` when empty.
    let Some(last) = openids.last().cloned() else {
        return Json(json!({ "total": total, "count": 0, "next_openid": "" })).into_response();
    };
    Json(json!({
        "total": total,
        "count": openids.len(),
        "data": { "openid": openids },
        "next_openid": last,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct BatchRequest {
    #[serde(default)]
    user_list: Vec<BatchEntry>,
}

/// One `user_list` entry (`lang` is accepted and ignored: the mock's records are all zh_CN).
#[derive(Debug, Deserialize)]
struct BatchEntry {
    openid: String,
}

/// `POST /cgi-bin/user/info/batchget?access_token=` with `{"user_list":[{"openid","lang"}]}`.
pub(crate) async fn batchget(State(state): State<Arc<MockState>>, Query(q): Params, body: Bytes) -> Response {
    if let Err(err) = crate::api::authorise(&state, &q) {
        return wx_error(err);
    }
    let Ok(req) = serde_json::from_slice::<BatchRequest>(&body) else {
        return wx_error(WxError::new(47001, "data format error"));
    };
    let openids: Vec<String> = req.user_list.into_iter().map(|entry| entry.openid).collect();
    let records = state.lock().followers.batch(&openids);
    match records {
        Ok(records) => Json(json!({ "user_info_list": records })).into_response(),
        Err(err) => wx_error(err),
    }
}

/// `GET /cgi-bin/tags/get?access_token=`
pub(crate) async fn tags_get(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    if let Err(err) = crate::api::authorise(&state, &q) {
        return wx_error(err);
    }
    let tags = state.lock().followers.tag_list();
    Json(json!({ "tags": tags })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(follower_openid).collect()
    }

    #[test]
    fn followers_are_generated_in_order_all_subscribed() {
        let population = Population::generate(12, 3);
        assert_eq!((population.all(), population.subscribed()), (12, 12));
        let (_, first) = population.find("o_follower_000000").unwrap();
        assert_eq!(first.unionid, "u_follower_000000");
        assert_eq!(first.subscribe_time, 1_600_000_000);
        let (i, last) = population.find("o_follower_000011").unwrap();
        assert_eq!((i, last.subscribe_time), (11, 1_600_000_011));
        assert_eq!(population.subscribed_openids(), openids(0..12));
        assert!(population.find("o_follower_000012").is_err());
        assert_eq!(Population::generate(0, 5).all(), 0);
        assert_eq!(
            Population::generate(1, MAX_TAGS + 10).tag_list().len(),
            MAX_TAGS,
            "tags are clamped"
        );
    }

    #[test]
    fn tags_follow_the_index_with_a_second_tag_every_seventh_follower() {
        assert_eq!(tags_of(3, 0), Vec::<i64>::new());
        assert_eq!(tags_of(7, 1), vec![100], "one tag: never a second");
        assert_eq!(tags_of(0, 5), vec![100], "the second tag is the first: once");
        assert_eq!(tags_of(1, 5), vec![101]);
        assert_eq!(tags_of(6, 5), vec![101]);
        assert_eq!(tags_of(7, 5), vec![102, 101]);
        assert_eq!(tags_of(42, 5), vec![102, 101]);
        assert_eq!(tags_of(49, 5), vec![104, 102]);
        assert_eq!(tags_of(21, 3), vec![100], "7 ≡ 1 (mod 3): always the same tag");
        let population = Population::generate(15, 5);
        assert_eq!(population.tags_of_openid("o_follower_000007"), Some(vec![102, 101]));
        assert_eq!(population.tags_of_openid("nope"), None);
    }

    #[test]
    fn tag_counts_cover_subscribed_followers_only() {
        // 15 followers over 5 tags: 3 each by `i % 5`, plus 7 → 101 and 14 → 102 (0 repeats its own).
        let mut population = Population::generate(15, 5);
        let counts = |p: &Population| {
            p.tag_list()
                .iter()
                .map(|t| t["count"].as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&population), vec![3, 4, 4, 3, 3]);
        let tags = population.tag_list();
        assert_eq!(tags[1], json!({ "id": 101, "name": "tag-1", "count": 4 }));
        assert!(population.unsubscribe("o_follower_000007"));
        assert_eq!(counts(&population), vec![3, 3, 3, 3, 3]);
        assert_eq!(Population::generate(10, 0).tag_list(), Vec::<Value>::new());
    }

    #[test]
    fn pages_start_after_next_openid_and_end_with_an_empty_page() {
        let population = Population::generate(25, 0);
        let (page, total) = population.page_after("", 10).unwrap();
        assert_eq!((page, total), (openids(0..10), 25));
        let (page, _) = population.page_after("o_follower_000009", 10).unwrap();
        assert_eq!(page, openids(10..20));
        let (page, _) = population.page_after("o_follower_000019", 10).unwrap();
        assert_eq!(page, openids(20..25));
        let (page, total) = population.page_after("o_follower_000024", 10).unwrap();
        assert!(page.is_empty());
        assert_eq!(total, 25);
        assert_eq!(population.page_after("o_unknown", 10).unwrap_err().errcode, 40003);
        assert!(Population::generate(0, 0).page_after("", 10).unwrap().0.is_empty());
    }

    #[test]
    fn unsubscribed_followers_are_skipped_but_still_a_valid_cursor() {
        let mut population = Population::generate(6, 0);
        assert!(population.unsubscribe("o_follower_000002"));
        assert!(population.unsubscribe("o_follower_000002"), "twice: still known");
        assert!(!population.unsubscribe("o_unknown"));
        let (page, total) = population.page_after("", 3).unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            page,
            vec!["o_follower_000000", "o_follower_000001", "o_follower_000003"]
        );
        let (page, _) = population.page_after("o_follower_000002", 10).unwrap();
        assert_eq!(page, openids(3..6));
    }

    #[test]
    fn batch_answers_in_request_order_with_limits() {
        let mut population = Population::generate(200, 4);
        let wanted: Vec<String> = openids(0..100).into_iter().rev().collect();
        let records = population.batch(&wanted).unwrap();
        assert_eq!(records.len(), 100);
        assert_eq!(records[0]["openid"], "o_follower_000099");
        assert_eq!(records[99]["openid"], "o_follower_000000");
        let record = &records[99 - 28];
        assert_eq!(record["openid"], "o_follower_000028");
        assert_eq!(record["subscribe"], 1);
        assert_eq!(record["nickname"], "Follower 28");
        assert_eq!(record["unionid"], "u_follower_000028");
        assert_eq!(record["subscribe_time"], 1_600_000_028);
        assert_eq!(record["tagid_list"], json!([100]));
        assert_eq!(record["subscribe_scene"], "ADD_SCENE_QR_CODE");
        assert_eq!(population.batch(&openids(0..101)).unwrap_err().errcode, 40032);
        assert_eq!(population.batch(&[]).unwrap_err().errcode, 40032);
        let unknown = vec![follower_openid(1), "o_unknown".to_owned()];
        assert_eq!(population.batch(&unknown).unwrap_err().errcode, 40003);
        population.unsubscribe("o_follower_000005");
        let records = population.batch(&[follower_openid(5)]).unwrap();
        assert_eq!(
            records,
            vec![json!({ "subscribe": 0, "openid": "o_follower_000005", "unionid": "u_follower_000005" })]
        );
    }

    #[test]
    fn subscribing_appends_new_followers_and_resubscribes_known_ones() {
        let mut population = Population::generate(3, 2);
        assert_eq!(population.subscribe("o_new_1", 1_700_000_000), Ok(1_700_000_000));
        assert_eq!((population.all(), population.subscribed()), (4, 4));
        let (i, new) = population.find("o_new_1").unwrap();
        assert_eq!((i, new.unionid.as_str()), (3, "u_o_new_1"));
        assert!(new.tagid_list.is_empty());
        assert_eq!(
            population.page_after("o_follower_000002", 10).unwrap().0,
            vec!["o_new_1"]
        );
        population.unsubscribe("o_follower_000001");
        assert_eq!(population.subscribed(), 3);
        assert_eq!(
            population.subscribe("o_follower_000001", 1_700_000_001),
            Ok(1_700_000_001)
        );
        assert_eq!(
            population.subscribe("o_follower_000001", 1_700_000_002),
            Ok(1_700_000_002)
        );
        assert_eq!((population.all(), population.subscribed()), (4, 4));
        let (i, back) = population.find("o_follower_000001").unwrap();
        assert_eq!((i, back.subscribe_time), (1, 1_700_000_002));
        assert_eq!(back.tagid_list, vec![101], "a re-subscribed follower keeps its tags");
        assert!(population.subscribe("", 0).is_err());
        assert!(population.subscribe(&"x".repeat(129), 0).is_err());
        assert_eq!(population.all(), 4);
    }
}
