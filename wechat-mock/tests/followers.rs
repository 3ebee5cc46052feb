//! The follower endpoints over real HTTP: paging a 25 000-follower population, batchget, tags,
//! subscribing / unsubscribing through the control API, and a fault on batchget.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wechat_mock::{
    BATCHGET_LIMIT, DEFAULT_APPID, DEFAULT_SECRET, Fault, MockConfig, MockHandle, MockServer, PAGE_SIZE,
    follower_openid,
};

const FOLLOWERS: usize = 25_000;
const TAGS: usize = 5;

async fn population() -> MockHandle {
    MockServer::new()
        .config(MockConfig::default().with_followers(FOLLOWERS, TAGS))
        .domain("api")
        .start()
        .await
        .expect("mock starts")
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.expect("sent").json().await.expect("json")
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

async fn token(http: &reqwest::Client, base: &str) -> String {
    let body = json!({"grant_type":"client_credential","appid":DEFAULT_APPID,"secret":DEFAULT_SECRET});
    post(http, &format!("{base}/cgi-bin/stable_token"), &body).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Walks `user/get` to its empty page: every openid in order, the non-empty pages, the total.
async fn walk(http: &reqwest::Client, base: &str, token: &str) -> (Vec<String>, usize, u64) {
    let mut openids = Vec::new();
    let mut pages = 0;
    let mut next = String::new();
    loop {
        let url = format!("{base}/cgi-bin/user/get?access_token={token}&next_openid={next}");
        let page = get(http, &url).await;
        let total = page["total"].as_u64().expect("total");
        let count = page["count"].as_u64().expect("count");
        if count == 0 {
            assert_eq!(page["next_openid"], "", "{page}");
            assert!(page.get("data").is_none(), "no data on an empty page: {page}");
            return (openids, pages, total);
        }
        let list: Vec<String> = page["data"]["openid"]
            .as_array()
            .expect("openids")
            .iter()
            .map(|v| v.as_str().expect("openid").to_owned())
            .collect();
        assert_eq!(list.len() as u64, count);
        assert!(list.len() <= PAGE_SIZE);
        next = page["next_openid"].as_str().expect("next_openid").to_owned();
        assert_eq!(list.last(), Some(&next), "next_openid is the page's last");
        openids.extend(list);
        pages += 1;
        assert!(pages <= 10, "the walk ends");
    }
}

fn user_list(openids: &[String]) -> Value {
    let entries: Vec<Value> = openids
        .iter()
        .map(|openid| json!({"openid": openid, "lang": "zh_CN"}))
        .collect();
    json!({ "user_list": entries })
}

/// Subscribed followers per tag, from the documented rule (follower `skip` unsubscribed).
fn expected_tag_counts(skip: usize) -> Vec<u64> {
    let mut counts = vec![0_u64; TAGS];
    for i in (0..FOLLOWERS).filter(|&i| i != skip) {
        let first = i % TAGS;
        counts[first] += 1;
        let second = (i / 7) % TAGS;
        if i % 7 == 0 && second != first {
            counts[second] += 1;
        }
    }
    counts
}

fn tag_counts(answer: &Value) -> Vec<u64> {
    let tags = answer["tags"].as_array().expect("tags");
    for (k, tag) in tags.iter().enumerate() {
        assert_eq!(tag["id"], 100 + k as i64);
        assert_eq!(tag["name"], format!("tag-{k}"));
    }
    tags.iter().map(|t| t["count"].as_u64().expect("count")).collect()
}

#[tokio::test]
async fn user_get_pages_the_whole_population_then_answers_an_empty_page() {
    let mock = population().await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let token = token(&http, &base).await;
    let (openids, pages, total) = walk(&http, &base, &token).await;
    assert_eq!((pages, total), (3, 25_000));
    assert_eq!(openids.len(), FOLLOWERS);
    assert_eq!(openids.iter().collect::<BTreeSet<_>>().len(), FOLLOWERS, "unique");
    assert_eq!(openids[0], follower_openid(0));
    assert_eq!(openids[FOLLOWERS - 1], follower_openid(FOLLOWERS - 1));
    assert_eq!(mock.calls("/cgi-bin/user/get"), 4);

    let unknown = get(
        &http,
        &format!("{base}/cgi-bin/user/get?access_token={token}&next_openid=o_nope"),
    )
    .await;
    assert_eq!(unknown["errcode"], 40003);
    let no_token = get(&http, &format!("{base}/cgi-bin/user/get")).await;
    assert_eq!(no_token["errcode"], 41001);
    let bad_token = get(&http, &format!("{base}/cgi-bin/user/get?access_token=bogus")).await;
    assert_eq!(bad_token["errcode"], 40001);
}

#[tokio::test]
async fn batchget_answers_in_request_order_within_its_limit_and_takes_faults() {
    let mock = population().await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let token = token(&http, &base).await;
    let url = format!("{base}/cgi-bin/user/info/batchget?access_token={token}");

    let wanted: Vec<String> = (200..300).rev().map(follower_openid).collect();
    let answer = post(&http, &url, &user_list(&wanted)).await;
    let records = answer["user_info_list"].as_array().expect("records");
    assert_eq!(records.len(), BATCHGET_LIMIT);
    for (record, openid) in records.iter().zip(&wanted) {
        assert_eq!(record["openid"], openid.as_str());
        assert_eq!(record["subscribe"], 1);
    }
    // 203 = 7 × 29: tag 100 + 203 % 5 and tag 100 + 29 % 5.
    let record = records
        .iter()
        .find(|r| r["openid"] == "o_follower_000203")
        .expect("203");
    assert_eq!(record["unionid"], "u_follower_000203");
    assert_eq!(record["nickname"], "Follower 203");
    assert_eq!(record["subscribe_time"], 1_600_000_203);
    assert_eq!(record["tagid_list"], json!([103, 104]));
    assert_eq!(mock.follower_tags("o_follower_000203"), Some(vec![103, 104]));

    let too_many: Vec<String> = (0..=BATCHGET_LIMIT).map(follower_openid).collect();
    assert_eq!(post(&http, &url, &user_list(&too_many)).await["errcode"], 40032);
    assert_eq!(post(&http, &url, &user_list(&[])).await["errcode"], 40032);
    let unknown = vec![follower_openid(1), "o_nope".to_owned()];
    assert_eq!(post(&http, &url, &user_list(&unknown)).await["errcode"], 40003);
    let garbled = http.post(&url).body("{not json").send().await.expect("sent");
    assert_eq!(garbled.json::<Value>().await.expect("json")["errcode"], 47001);

    mock.inject(Fault::errcode(45009).on_path("/cgi-bin/user/info/batchget").times(1));
    let some = user_list(&wanted[..3]);
    assert_eq!(post(&http, &url, &some).await["errcode"], 45009);
    let again = post(&http, &url, &some).await;
    assert_eq!(again["user_info_list"].as_array().map(Vec::len), Some(3), "{again}");
}

#[tokio::test]
async fn unsubscribed_followers_leave_the_walk_and_the_tag_counts_until_they_come_back() {
    let mock = population().await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let token = token(&http, &base).await;
    let tags_url = format!("{base}/cgi-bin/tags/get?access_token={token}");
    assert_eq!(
        tag_counts(&get(&http, &tags_url).await),
        expected_tag_counts(usize::MAX)
    );

    // 42 = 7 × 6 carries two tags (102 and 101).
    let gone = follower_openid(42);
    let answer = post(
        &http,
        &format!("{base}/__mock/followers/unsubscribe"),
        &json!({"openid": gone}),
    )
    .await;
    assert_eq!(answer, json!({"ok": true}));
    let (openids, pages, total) = walk(&http, &base, &token).await;
    assert_eq!((pages, total, openids.len()), (3, 24_999, 24_999));
    assert!(!openids.contains(&gone));
    assert_eq!(mock.subscribed_followers(), openids);
    let url = format!("{base}/cgi-bin/user/info/batchget?access_token={token}");
    let answer = post(&http, &url, &user_list(std::slice::from_ref(&gone))).await;
    assert_eq!(
        answer["user_info_list"],
        json!([{"subscribe": 0, "openid": gone, "unionid": "u_follower_000042"}])
    );
    assert_eq!(tag_counts(&get(&http, &tags_url).await), expected_tag_counts(42));
    let summary = get(&http, &format!("{base}/__mock/followers")).await;
    assert_eq!(summary, json!({"total": 24_999, "all": 25_000}));

    let unknown = http
        .post(format!("{base}/__mock/followers/unsubscribe"))
        .json(&json!({"openid": "o_nope"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status().as_u16(), 400);
    assert!(!mock.unsubscribe_follower("o_nope"));

    let now_secs = mock.now_ms() / 1000;
    let back = mock.subscribe_follower(&gone);
    assert!(back >= now_secs, "{back} < {now_secs}");
    let answer = post(
        &http,
        &format!("{base}/__mock/followers/subscribe"),
        &json!({"openid": "o_new_1"}),
    )
    .await;
    assert_eq!(answer["ok"], true);
    assert!(answer["subscribe_time"].as_i64().expect("subscribe_time") >= now_secs);
    let (openids, _, total) = walk(&http, &base, &token).await;
    assert_eq!((total, openids.len()), (25_001, 25_001));
    assert_eq!(
        openids.last().map(String::as_str),
        Some("o_new_1"),
        "a new follower comes last"
    );
    assert_eq!(mock.follower_tags("o_new_1"), Some(vec![]));
    assert_eq!(
        tag_counts(&get(&http, &tags_url).await),
        expected_tag_counts(usize::MAX)
    );
    let answer = post(&http, &url, &user_list(&["o_new_1".to_owned()])).await;
    assert_eq!(answer["user_info_list"][0]["unionid"], "u_o_new_1");
    assert_eq!(answer["user_info_list"][0]["subscribe"], 1);

    mock.reset();
    assert_eq!(
        mock.subscribed_followers().len(),
        FOLLOWERS,
        "reset regenerates the population"
    );
    assert_eq!(mock.follower_tags("o_new_1"), None);
}
