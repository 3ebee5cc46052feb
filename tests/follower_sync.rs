//! The follower sync against the WeChat mock's 25,000 followers: a full pass interrupted three
//! times (a Lambda timeout, WeChat's daily quota, the store failing) ends with exactly the
//! mock's population and no list page fetched more often than the interruptions require; a
//! subscribe / unsubscribe event arriving through the callback during a pass is not overwritten
//! by older page data; followers gone from the list are marked unsubscribed; one run at a time;
//! the read API pages, filters and exports. Upstream calls per follower are printed
//! (`--nocapture`) and recorded in docs/benchmarks.md.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::{Body, RequestExt};
use shared::clock::{Clock, ManualClock, SharedClock};
use shared::deadline::Deadline;
use shared::deps::FollowersDeps;
use shared::protocol::url_signature;
use shared::routes::{callback, followers};
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::sync::follower::{SHARDS, load, shard_pk};
use shared::sync::state::request_pass;
use shared::sync::{Outcome, Politeness, RunReport, Syncer};
use testkit::store::{FlakyStore, Health};
use wechat_ha_tests::wechat::{SECRET, client};
use wechat_ha_tests::{APPID, TOKEN, body_json, body_text};
use wechat_mock::{Fault, MockConfig, MockHandle, MockServer};

const LIST: &str = "/cgi-bin/user/get";
const BATCH: &str = "/cgi-bin/user/info/batchget";
const TAGS: &str = "/cgi-bin/tags/get";
/// Past any lease a killed run left behind.
const PAST_THE_LEASE_MS: i64 = 91_000;

struct World {
    mock: MockHandle,
    clock: ManualClock,
    flaky: Arc<FlakyStore>,
    store: SharedStore,
    syncer: Syncer,
}

impl World {
    async fn new(followers: usize, calls_per_minute: u32) -> Self {
        let clock = ManualClock::new(1_800_000_000_000);
        let mock_clock = clock.clone();
        let mock = MockServer::new()
            .config(
                MockConfig::default()
                    .with_app(APPID, SECRET)
                    .with_followers(followers, 5)
                    .with_time(move || mock_clock.now_ms()),
            )
            .domain("api")
            .domain("api2")
            .start()
            .await
            .expect("mock");
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let memory = Arc::new(MemoryStore::new(shared_clock.clone()).with_max_bytes(256 << 20));
        let flaky = Arc::new(FlakyStore::new(memory, Duration::from_secs(5)));
        let store: SharedStore = flaky.clone();
        let (client, _registry) = client(&mock, store.clone(), shared_clock.clone());
        let syncer = Syncer {
            client,
            store: store.clone(),
            clock: shared_clock,
            politeness: Politeness {
                calls_per_minute,
                concurrency: 2,
            },
        };
        Self {
            mock,
            clock,
            flaky,
            store,
            syncer,
        }
    }

    async fn run(&self, owner: &str) -> RunReport {
        self.syncer.run(owner, Deadline::after(Duration::from_secs(60))).await
    }

    /// Every stored follower: (openid, subscribed), with duplicates kept to be counted.
    async fn stored(&self) -> Vec<(String, bool)> {
        let mut all = Vec::new();
        for shard in 0..SHARDS {
            let items = self.store.query(&shard_pk(shard)).await.expect("query");
            all.extend(
                items
                    .into_iter()
                    .map(|(openid, attrs)| (openid, attrs.num_attr("subscribe") == Some(1))),
            );
        }
        all
    }
}

fn print_cost(what: &str, mock: &MockHandle, followers: usize) {
    let (list, batch, tags) = (mock.calls(LIST), mock.calls(BATCH), mock.calls(TAGS));
    #[allow(clippy::cast_precision_loss)]
    let per = (list + batch + tags) as f64 / followers as f64;
    #[allow(clippy::cast_precision_loss)]
    let ideal = (followers.div_ceil(10_000) + 1 + followers.div_ceil(100) + 1) as f64 / followers as f64;
    eprintln!(
        "{what}: {followers} followers, user/get {list}, batchget {batch}, tags/get {tags} = {per:.5} upstream calls per follower (ideal {ideal:.5})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_interrupted_by_a_timeout_the_quota_and_the_store_ends_with_exactly_the_population() {
    const FOLLOWERS: usize = 25_000;
    // 6,000 calls a minute: a pass takes about 2.5 s, long enough to be interrupted mid-way.
    let world = World::new(FOLLOWERS, 6_000).await;
    request_pass(&world.store, world.clock.now_ms()).await.expect("request");

    // 1. A Lambda timeout: the invocation is frozen mid-run (the future dropped), its lease left.
    let killed = tokio::time::timeout(Duration::from_millis(700), world.run("run-1")).await;
    assert!(killed.is_err(), "the first run must still be working when killed");
    let batches_before = world.mock.calls(BATCH);
    assert!(batches_before > 0, "it stored some batches");
    assert_eq!(
        world.run("run-2").await.outcome,
        Outcome::Busy,
        "the dead run's lease holds"
    );
    world.clock.advance(PAST_THE_LEASE_MS);

    // 2. WeChat's daily quota: paused until Beijing midnight, no call meanwhile.
    world.mock.inject(Fault::errcode(45009).on_path(BATCH).times(1));
    let paused = world.run("run-3").await;
    assert_eq!(paused.outcome, Outcome::Paused, "{paused:?}");
    let until = paused.paused_until_ms.expect("until the reset");
    assert!(until > world.clock.now_ms());
    let calls = world.mock.calls(BATCH) + world.mock.calls(LIST);
    assert_eq!(world.run("run-4").await.outcome, Outcome::Paused);
    assert_eq!(
        world.mock.calls(BATCH) + world.mock.calls(LIST),
        calls,
        "no call while paused"
    );
    world.clock.set(until + 1000);

    // 3. The store failing mid-run: nothing saved past the last checkpoint.
    let flaky = world.flaky.clone();
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        flaky.set(Health::Down);
    });
    let interrupted = world.run("run-5").await;
    outage.await.expect("outage");
    assert_eq!(interrupted.outcome, Outcome::Interrupted, "{interrupted:?}");
    world.flaky.set(Health::Up);
    world.clock.advance(PAST_THE_LEASE_MS);

    // The rest: one more run finishes the pass.
    let finished = world.run("run-6").await;
    assert_eq!(finished.outcome, Outcome::Finished, "{finished:?}");
    assert_eq!(finished.counts.left, 0);

    let stored = world.stored().await;
    let openids: BTreeSet<String> = stored.iter().map(|(openid, _)| openid.clone()).collect();
    assert_eq!(stored.len(), FOLLOWERS, "no duplicates, none missing");
    assert_eq!(
        openids,
        world.mock.subscribed_followers().into_iter().collect::<BTreeSet<_>>()
    );
    assert!(stored.iter().all(|(_, subscribed)| *subscribed));
    let sample = load(&world.store, "o_follower_000007").await.unwrap().expect("stored");
    assert_eq!(sample.tag_ids, world.mock.follower_tags("o_follower_000007").unwrap());
    assert_eq!(sample.tag_names.len(), sample.tag_ids.len(), "tags named");

    // Pages: 3 full ones and the empty last one, plus at most one re-fetch per interruption.
    let (list, batch) = (world.mock.calls(LIST), world.mock.calls(BATCH));
    assert!(list <= 4 + 3, "user/get called {list} times");
    // Batches: 250, plus what each interruption lost in flight (concurrency 2) and the refused one.
    assert!((250..=250 + 3 * 3).contains(&batch), "batchget called {batch} times");
    print_cost("interrupted three times", &world.mock, FOLLOWERS);
}

#[tokio::test]
async fn an_uninterrupted_pass_costs_what_the_apis_allow() {
    const FOLLOWERS: usize = 25_000;
    let world = World::new(FOLLOWERS, 1_000_000).await;
    request_pass(&world.store, world.clock.now_ms()).await.expect("request");
    let report = world.run("only").await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(report.counts.stored, FOLLOWERS as u64);
    assert_eq!(report.counts.list_calls, 4);
    assert_eq!(report.counts.profile_calls, 250);
    assert_eq!(world.mock.calls(LIST), 4);
    assert_eq!(world.mock.calls(BATCH), 250);
    assert_eq!(world.mock.calls(TAGS), 1);
    print_cost("uninterrupted", &world.mock, FOLLOWERS);
    // Nothing to do now: an idle tick makes no WeChat call.
    assert_eq!(world.run("idle").await.outcome, Outcome::Idle);
    assert_eq!(world.mock.calls(LIST), 4);
}

/// A plaintext event from `openid`, created at `create_time` (seconds), signed at `now`.
fn event(openid: &str, event: &str, create_time: i64, now: i64) -> lambda_http::Request {
    let (timestamp, nonce) = (now.to_string(), format!("n{openid}{event}"));
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_sync]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[{event}]]></Event></xml>"
    );
    let query = [
        ("signature", url_signature(TOKEN, &timestamp, &nonce)),
        ("timestamp", timestamp),
        ("nonce", nonce),
    ];
    let uri = format!(
        "/wechat?{}",
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    http::Request::builder()
        .method("POST")
        .uri(uri)
        .body(Body::Text(body))
        .expect("request")
        .with_query_string_parameters(
            query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![v.clone()]))
                .collect::<std::collections::HashMap<_, _>>(),
        )
}

#[tokio::test]
async fn events_during_a_pass_win_over_older_pages_and_the_departed_are_marked() {
    const FOLLOWERS: usize = 2_500;
    let world = World::new(FOLLOWERS, 1_000_000).await;
    request_pass(&world.store, world.clock.now_ms()).await.unwrap();
    assert_eq!(world.run("first").await.outcome, Outcome::Finished);
    world.clock.advance(60_000);

    let deps = wechat_ha_tests::deps_on(
        wechat_ha_tests::settings("plain", &[]),
        world.store.clone(),
        world.clock.clone(),
    );
    // Second pass, started now; WeChat still lists follower 10 and 11 when pages are fetched.
    request_pass(&world.store, world.clock.now_ms()).await.unwrap();
    // Events during the pass, stamped after the pages will be fetched (the pass runs at "now").
    let later = world.clock.now_secs() + 5;
    let answer = callback::handle(
        &deps,
        event("o_follower_000010", "unsubscribe", later, world.clock.now_secs()),
    )
    .await;
    assert_eq!(answer.status(), 200, "{}", body_text(&answer));
    let answer = callback::handle(&deps, event("o_brand_new", "subscribe", later, world.clock.now_secs())).await;
    assert_eq!(answer.status(), 200, "{}", body_text(&answer));
    // Follower 20 left before the pass: WeChat no longer lists it.
    world.mock.unsubscribe_follower("o_follower_000020");
    let report = world.run("second").await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");

    let follower = |openid: &'static str| {
        let store = world.store.clone();
        async move { load(&store, openid).await.unwrap().expect(openid) }
    };
    assert!(
        !follower("o_follower_000010").await.subscribed,
        "the newer unsubscribe event stands"
    );
    assert_eq!(follower("o_follower_000010").await.source, "event");
    assert!(
        follower("o_brand_new").await.subscribed,
        "a subscriber newer than the pass is not swept"
    );
    let departed = follower("o_follower_000020").await;
    assert!(!departed.subscribed, "absent from a completed pass: unsubscribed");
    assert_eq!(departed.source, "sweep");
    assert!(follower("o_follower_000030").await.subscribed);
    assert_eq!(report.counts.left, 1);
    assert_eq!(report.counts.kept_newer, 1);

    // An event older than the stored page changes nothing.
    let old = world.clock.now_secs() - 3600;
    callback::handle(
        &deps,
        event("o_follower_000030", "unsubscribe", old, world.clock.now_secs()),
    )
    .await;
    assert!(follower("o_follower_000030").await.subscribed);
}

#[tokio::test]
async fn one_run_at_a_time_whatever_triggers_it() {
    let world = World::new(3_000, 60_000).await;
    request_pass(&world.store, world.clock.now_ms()).await.unwrap();
    let (a, b) = tokio::join!(world.run("a"), world.run("b"));
    let outcomes = [a.outcome, b.outcome];
    assert!(outcomes.contains(&Outcome::Busy), "{outcomes:?}");
    assert!(outcomes.contains(&Outcome::Finished), "{outcomes:?}");
    assert_eq!(world.mock.calls(TAGS), 1, "one pass");
}

#[tokio::test]
async fn the_read_api_pages_filters_and_exports() {
    const FOLLOWERS: usize = 1_200;
    let world = World::new(FOLLOWERS, 1_000_000).await;
    request_pass(&world.store, world.clock.now_ms()).await.unwrap();
    assert_eq!(world.run("pass").await.outcome, Outcome::Finished);
    world.mock.unsubscribe_follower("o_follower_000001");
    let deps = FollowersDeps {
        store: world.store.clone(),
        internal_api_key: Some(Secret::new("read-key")),
    };
    let get = |uri: &str, key: Option<&str>| {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let params: std::collections::HashMap<String, Vec<String>> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
            .collect();
        let mut builder = http::Request::builder().uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        builder.body(Body::Empty).unwrap().with_query_string_parameters(params)
    };
    let denied = followers::handle(&deps, get("/followers/o_follower_000002", None)).await;
    assert_eq!(denied.status(), 401);
    let one = followers::handle(&deps, get("/followers/o_follower_000002", Some("read-key"))).await;
    assert_eq!(one.status(), 200);
    let data = body_json(&one)["data"].clone();
    assert_eq!(data["openid"], "o_follower_000002");
    assert_eq!(data["subscribed"], true);
    assert!(data["profile"]["subscribe_scene"].is_string());
    let missing = followers::handle(&deps, get("/followers/o_nobody", Some("read-key"))).await;
    assert_eq!(missing.status(), 404);

    let tag = world.mock.follower_tags("o_follower_000002").unwrap()[0];
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let uri = format!("/followers?tag={tag}&subscribed=true&limit=50&cursor={cursor}");
        let page = followers::handle(&deps, get(&uri, Some("read-key"))).await;
        assert_eq!(page.status(), 200, "{}", body_text(&page));
        let body = body_json(&page);
        for follower in body["data"]["followers"].as_array().unwrap() {
            let ids: Vec<i64> = follower["tag_ids"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_i64())
                .collect();
            assert!(ids.contains(&tag));
            assert!(
                seen.insert(follower["openid"].as_str().unwrap().to_owned()),
                "no follower twice"
            );
        }
        match body["data"]["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let expected = (0..FOLLOWERS)
        .map(wechat_mock::follower_openid)
        .filter(|openid| world.mock.follower_tags(openid).unwrap().contains(&tag))
        .count();
    assert_eq!(seen.len(), expected);
    let bad = followers::handle(&deps, get("/followers?subscribed=maybe", Some("read-key"))).await;
    assert_eq!(bad.status(), 400);

    let export = followers::handle(&deps, get("/followers/export", Some("read-key"))).await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<serde_json::Value> = body_text(&export)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), FOLLOWERS);
    assert!(
        export.headers().get("x-next-cursor").is_none(),
        "one part holds them all"
    );
}
