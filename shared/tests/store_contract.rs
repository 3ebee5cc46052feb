//! One behaviour suite for every [`StateStore`]: the in-memory store always, the DynamoDB store on
//! the moto emulator when `AWS_ENDPOINT_URL_DYNAMODB` is set (run `scripts/test.sh`), plus the
//! DynamoDB error paths an emulator cannot produce (throttling, timeouts, 5xx) against a local
//! socket that answers what real DynamoDB would.
//!
//! Both stores get a [`ManualClock`] starting at the real time. Expiry is judged by the store's
//! clock (it supplies `:now` to DynamoDB conditions and filters reads), so moving the manual clock
//! expires items on both stores alike; moto itself never deletes expired items.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::clock::{Clock, ManualClock, SharedClock, SystemClock};
use shared::store::dynamo::{DynamoClientConfig, DynamoStore};
use shared::store::memory::MemoryStore;
use shared::store::{AttrValue, Attrs, CmpOp, Condition, EXPIRES_AT, Key, SharedStore, StateStore, StoreError, Update};
use testkit::emulator::emulator_store;
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    store: SharedStore,
    clock: ManualClock,
}

fn start_clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

fn memory() -> Fixture {
    let clock = start_clock();
    let shared: SharedClock = Arc::new(clock.clone());
    Fixture {
        store: Arc::new(MemoryStore::new(shared)),
        clock,
    }
}

/// A DynamoDB store on a fresh, uniquely named table; `None` (after saying so) when no emulator
/// is configured, except under `CI=true`, where a missing emulator is a failure.
async fn dynamo() -> Option<Fixture> {
    let clock = start_clock();
    let store = emulator_store("contract", Arc::new(clock.clone())).await?;
    Some(Fixture {
        store: Arc::new(store),
        clock,
    })
}

/// Runs every listed case against both stores (`memory_store::case`, `dynamo_store::case`).
macro_rules! contract_suite {
    ($($case:ident),+ $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::memory();
                    super::$case(&fixture.store, &fixture.clock).await;
                }
            )+
        }
        mod dynamo_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(fixture) = super::dynamo().await else { return };
                    super::$case(&fixture.store, &fixture.clock).await;
                }
            )+
        }
    };
}

contract_suite!(
    get_returns_none_when_absent_and_the_item_when_present,
    second_item_absent_put_fails_with_the_current_item,
    expired_item_is_absent_for_get_query_and_item_absent,
    item_present_holds_only_for_live_items,
    compare_conditions_follow_their_operator,
    compare_is_false_on_type_mismatch_and_missing_attribute,
    attr_absent_and_nested_and_or_conditions,
    update_sets_adds_removes_and_returns_all_new,
    update_creates_a_missing_item,
    failed_conditional_update_returns_current_and_changes_nothing,
    delete_is_conditional,
    query_orders_by_sort_key_and_skips_expired,
    concurrent_adds_on_one_item_are_all_counted,
    concurrent_item_absent_puts_have_exactly_one_winner,
    reserved_word_attribute_names_work,
    invalid_writes_are_rejected_before_reaching_the_store,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned().into(), value.clone()))
        .collect()
}

fn s(v: &str) -> AttrValue {
    AttrValue::from(v)
}

fn n(v: i64) -> AttrValue {
    AttrValue::N(v)
}

fn secs(clock: &ManualClock) -> i64 {
    clock.now_secs()
}

/// The current item carried by a `ConditionFailed`, failing the test on any other outcome.
fn current_of<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Option<Attrs> {
    match result {
        Err(StoreError::ConditionFailed { current }) => current,
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
}

async fn holds(store: &SharedStore, key: &Key, condition: Condition) -> bool {
    match store.update(key, Update::new().add("probe", 1).when(condition)).await {
        Ok(_) => true,
        Err(StoreError::ConditionFailed { .. }) => false,
        Err(other) => panic!("unexpected store error {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn get_returns_none_when_absent_and_the_item_when_present(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("get#1", "a");
    assert_eq!(store.get(&key).await.expect("get"), None);
    let item = attrs(&[("name", s("x")), ("count", n(-5))]);
    store.put(&key, item.clone(), Condition::Always).await.expect("put");
    assert_eq!(store.get(&key).await.expect("get"), Some(item));
    assert_eq!(store.get(&Key::new("get#1", "b")).await.expect("get"), None);
}

async fn second_item_absent_put_fails_with_the_current_item(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("put#1", "lease");
    let first = attrs(&[("owner", s("first"))]);
    store
        .put(&key, first.clone(), Condition::ItemAbsent)
        .await
        .expect("first put");
    let second = store
        .put(&key, attrs(&[("owner", s("second"))]), Condition::ItemAbsent)
        .await;
    assert_eq!(current_of(second), Some(first.clone()));
    assert_eq!(store.get(&key).await.expect("get"), Some(first));
}

async fn expired_item_is_absent_for_get_query_and_item_absent(store: &SharedStore, clock: &ManualClock) {
    let key = Key::new("ttl#1", "a");
    let old = attrs(&[("owner", s("dead")), (EXPIRES_AT, n(secs(clock) + 60))]);
    store.put(&key, old.clone(), Condition::ItemAbsent).await.expect("put");
    assert_eq!(store.get(&key).await.expect("get"), Some(old));
    clock.advance(60_000);
    assert_eq!(
        store.get(&key).await.expect("get"),
        None,
        "expires_at == now is expired"
    );
    assert!(store.query("ttl#1").await.expect("query").is_empty());
    // A condition that fails on an expired item reports it as absent.
    let present = store.put(&key, attrs(&[("x", n(1))]), Condition::ItemPresent).await;
    assert_eq!(current_of(present), None);
    // ItemAbsent takes the expired item over.
    let fresh = attrs(&[("owner", s("new")), (EXPIRES_AT, n(secs(clock) + 60))]);
    store
        .put(&key, fresh.clone(), Condition::ItemAbsent)
        .await
        .expect("take over");
    assert_eq!(store.get(&key).await.expect("get"), Some(fresh));
}

async fn item_present_holds_only_for_live_items(store: &SharedStore, clock: &ManualClock) {
    let key = Key::new("present#1", "a");
    assert!(!holds(store, &key, Condition::ItemPresent).await, "absent item");
    store
        .put(&key, attrs(&[("v", n(1))]), Condition::Always)
        .await
        .expect("put without ttl");
    assert!(
        holds(store, &key, Condition::ItemPresent).await,
        "item without ttl never expires"
    );
    let expiring = attrs(&[(EXPIRES_AT, n(secs(clock) + 10))]);
    store
        .put(&key, expiring, Condition::ItemPresent)
        .await
        .expect("put with ttl");
    assert!(holds(store, &key, Condition::ItemPresent).await);
    clock.advance(10_000);
    assert!(!holds(store, &key, Condition::ItemPresent).await, "expired item");
}

async fn compare_conditions_follow_their_operator(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("cmp#1", "a");
    store
        .put(&key, attrs(&[("n", n(5)), ("s", s("m"))]), Condition::Always)
        .await
        .expect("put");
    let cases = [
        (CmpOp::Eq, 5, true),
        (CmpOp::Eq, 4, false),
        (CmpOp::Ne, 4, true),
        (CmpOp::Ne, 5, false),
        (CmpOp::Lt, 6, true),
        (CmpOp::Lt, 5, false),
        (CmpOp::Le, 5, true),
        (CmpOp::Le, 4, false),
        (CmpOp::Gt, 4, true),
        (CmpOp::Gt, 5, false),
        (CmpOp::Ge, 5, true),
        (CmpOp::Ge, 6, false),
    ];
    for (op, value, expected) in cases {
        let condition = Condition::compare("n", op, value);
        assert_eq!(holds(store, &key, condition).await, expected, "5 {op:?} {value}");
    }
    assert!(holds(store, &key, Condition::compare("s", CmpOp::Lt, "z")).await);
    assert!(!holds(store, &key, Condition::compare("s", CmpOp::Gt, "z")).await);
    assert!(holds(store, &key, Condition::equals("s", "m")).await);
    // Negative numbers compare numerically, not as text.
    assert!(holds(store, &key, Condition::compare("n", CmpOp::Gt, -10)).await);
}

async fn compare_is_false_on_type_mismatch_and_missing_attribute(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("cmp#2", "a");
    store
        .put(&key, attrs(&[("n", n(5)), ("s", s("5"))]), Condition::Always)
        .await
        .expect("put");
    for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
        assert!(
            !holds(store, &key, Condition::compare("n", op, "5")).await,
            "number {op:?} string"
        );
        assert!(
            !holds(store, &key, Condition::compare("s", op, 5)).await,
            "string {op:?} number"
        );
        assert!(
            !holds(store, &key, Condition::compare("missing", op, 5)).await,
            "missing {op:?}"
        );
    }
    let absent = Key::new("cmp#2", "absent");
    assert!(
        !holds(store, &absent, Condition::compare("n", CmpOp::Ne, 1)).await,
        "absent item"
    );
}

async fn attr_absent_and_nested_and_or_conditions(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("logic#1", "a");
    store
        .put(&key, attrs(&[("a", n(1)), ("b", s("x"))]), Condition::Always)
        .await
        .expect("put");
    let yes = || Condition::equals("a", 1);
    let no = || Condition::equals("a", 2);
    assert!(holds(store, &key, Condition::AttrAbsent("zzz".into())).await);
    assert!(!holds(store, &key, Condition::AttrAbsent("b".into())).await);
    assert!(holds(store, &Key::new("logic#1", "none"), Condition::AttrAbsent("a".into())).await);
    assert!(holds(store, &key, yes().and(Condition::equals("b", "x"))).await);
    assert!(!holds(store, &key, yes().and(no())).await);
    assert!(holds(store, &key, no().or(yes())).await);
    assert!(!holds(store, &key, no().or(no())).await);
    assert!(
        holds(
            store,
            &key,
            Condition::Or(vec![no(), Condition::And(vec![yes(), Condition::ItemPresent])])
        )
        .await
    );
    assert!(holds(store, &key, Condition::And(vec![])).await, "empty AND holds");
    assert!(!holds(store, &key, Condition::Or(vec![])).await, "empty OR fails");
    assert!(holds(store, &key, Condition::Always.and(yes())).await);
}

async fn update_sets_adds_removes_and_returns_all_new(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("upd#1", "a");
    let start = attrs(&[
        ("keep", s("k")),
        ("gone", s("g")),
        ("count", n(10)),
        ("first", s("original")),
    ]);
    store.put(&key, start, Condition::Always).await.expect("put");
    let update = Update::new()
        .set("name", "new")
        .set_if_absent("first", "ignored")
        .set_if_absent("created", 7)
        .add("count", -3)
        .add("fresh", 2)
        .remove("gone");
    let after = store.update(&key, update).await.expect("update");
    let expected = attrs(&[
        ("keep", s("k")),
        ("count", n(7)),
        ("first", s("original")),
        ("name", s("new")),
        ("created", n(7)),
        ("fresh", n(2)),
    ]);
    assert_eq!(after, expected);
    assert_eq!(store.get(&key).await.expect("get"), Some(expected));
}

async fn update_creates_a_missing_item(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("upd#2", "a");
    let after = store
        .update(&key, Update::new().add("calls", 1).set_if_absent("state", "closed"))
        .await;
    let expected = attrs(&[("calls", n(1)), ("state", s("closed"))]);
    assert_eq!(after.expect("update"), expected);
    assert_eq!(store.get(&key).await.expect("get"), Some(expected));
    let empty = Key::new("upd#2", "empty");
    assert_eq!(
        store.update(&empty, Update::new()).await.expect("empty update"),
        Attrs::new()
    );
    assert_eq!(
        store.get(&empty).await.expect("get"),
        Some(Attrs::new()),
        "an empty update creates the item"
    );
}

async fn failed_conditional_update_returns_current_and_changes_nothing(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("upd#3", "a");
    let item = attrs(&[("version", n(3)), ("state", s("open"))]);
    store.put(&key, item.clone(), Condition::Always).await.expect("put");
    let stale = Update::new()
        .set("state", "closed")
        .add("version", 1)
        .when(Condition::equals("version", 2));
    assert_eq!(current_of(store.update(&key, stale).await), Some(item.clone()));
    assert_eq!(store.get(&key).await.expect("get"), Some(item));
    let missing = Update::new().add("x", 1).when(Condition::ItemPresent);
    assert_eq!(
        current_of(store.update(&Key::new("upd#3", "none"), missing).await),
        None
    );
    assert_eq!(
        store.get(&Key::new("upd#3", "none")).await.expect("get"),
        None,
        "nothing created"
    );
}

async fn delete_is_conditional(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("del#1", "a");
    store
        .delete(&key, Condition::Always)
        .await
        .expect("deleting an absent item is fine");
    let item = attrs(&[("owner", s("me"))]);
    store.put(&key, item.clone(), Condition::Always).await.expect("put");
    assert_eq!(
        current_of(store.delete(&key, Condition::equals("owner", "you")).await),
        Some(item.clone())
    );
    assert_eq!(store.get(&key).await.expect("get"), Some(item));
    store
        .delete(&key, Condition::equals("owner", "me"))
        .await
        .expect("delete");
    assert_eq!(store.get(&key).await.expect("get"), None);
    assert_eq!(current_of(store.delete(&key, Condition::ItemPresent).await), None);
}

async fn query_orders_by_sort_key_and_skips_expired(store: &SharedStore, clock: &ManualClock) {
    let pk = "query#1";
    let soon = secs(clock) + 30;
    for (sk, ttl) in [
        ("c", None),
        ("a", Some(soon)),
        ("b", None),
        ("d", Some(soon + 100)),
        ("B", None),
    ] {
        let mut item = attrs(&[("sk_copy", s(sk))]);
        if let Some(ttl) = ttl {
            item.insert(EXPIRES_AT.into(), n(ttl));
        }
        store
            .put(&Key::new(pk, sk), item, Condition::Always)
            .await
            .expect("put");
    }
    store
        .put(&Key::new("query#10", "a"), Attrs::new(), Condition::Always)
        .await
        .expect("other pk");
    store
        .put(&Key::new("query#", "a"), Attrs::new(), Condition::Always)
        .await
        .expect("prefix pk");
    let sks = |items: Vec<(String, Attrs)>| items.into_iter().map(|(sk, _)| sk).collect::<Vec<_>>();
    assert_eq!(sks(store.query(pk).await.expect("query")), ["B", "a", "b", "c", "d"]);
    clock.advance(30_000);
    let live = store.query(pk).await.expect("query");
    assert_eq!(live[0].1.get("sk_copy"), Some(&s("B")));
    assert_eq!(sks(live), ["B", "b", "c", "d"]);
    assert!(store.query("query#none").await.expect("query").is_empty());
}

async fn concurrent_adds_on_one_item_are_all_counted(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("race#add", "window");
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            for _ in 0..50 {
                store.update(&key, Update::new().add("calls", 1)).await.expect("add");
            }
        });
    }
    tasks.join_all().await;
    assert_eq!(store.get(&key).await.expect("get"), Some(attrs(&[("calls", n(400))])));
}

async fn concurrent_item_absent_puts_have_exactly_one_winner(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("race#put", "lease");
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move {
            (
                i,
                store.put(&key, attrs(&[("owner", n(i))]), Condition::ItemAbsent).await,
            )
        });
    }
    let results = tasks.join_all().await;
    let winners: Vec<i64> = results.iter().filter(|(_, r)| r.is_ok()).map(|(i, _)| *i).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = attrs(&[("owner", n(winners[0]))]);
    for (_, result) in results.into_iter().filter(|(_, r)| r.is_err()) {
        assert_eq!(current_of(result), Some(winner.clone()), "losers see the winner");
    }
}

async fn reserved_word_attribute_names_work(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("reserved#1", "state");
    let item = attrs(&[("state", s("closed")), ("total", n(1)), ("ttl", n(5))]);
    store
        .put(&key, item, Condition::AttrAbsent("state".into()))
        .await
        .expect("put");
    let update = Update::new()
        .set("state", "open")
        .add("total", 2)
        .remove("ttl")
        .set_if_absent("timestamp", 1)
        .when(Condition::equals("state", "closed").and(Condition::compare("total", CmpOp::Lt, 2)));
    let after = store.update(&key, update).await.expect("update");
    assert_eq!(
        after,
        attrs(&[("state", s("open")), ("total", n(3)), ("timestamp", n(1))])
    );
    let rows = store.query("reserved#1").await.expect("query");
    assert_eq!(rows.len(), 1);
}

async fn invalid_writes_are_rejected_before_reaching_the_store(store: &SharedStore, _: &ManualClock) {
    let key = Key::new("invalid#1", "a");
    let key_attr = store.put(&key, attrs(&[("pk", s("other"))]), Condition::Always).await;
    assert!(matches!(key_attr, Err(StoreError::Invalid(_))), "{key_attr:?}");
    let overlap = store.update(&key, Update::new().set("a", 1).add("a", 1)).await;
    assert!(matches!(overlap, Err(StoreError::Invalid(_))), "{overlap:?}");
    let empty_sk = store.get(&Key::new("invalid#1", "")).await;
    assert!(matches!(empty_sk, Err(StoreError::Invalid(_))), "{empty_sk:?}");
    assert_eq!(store.get(&key).await.expect("get"), None);
}

// ---------------------------------------------------------------------------------------------
// DynamoDB error paths an emulator cannot produce: a loopback socket that stays silent or answers
// exactly what DynamoDB answers (awsJson1_0 error body with `__type`), through the real SDK.

mod dynamo_error_paths {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};

    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

    use super::*;

    /// Reads one HTTP request (headers, then `content-length` bytes of body).
    fn read_request(stream: &mut TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            let Ok(read) = stream.read(&mut chunk) else { return };
            if read == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..read]);
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return;
            }
        }
    }

    /// An endpoint answering every request with `status` and a DynamoDB error of type `error_type`.
    fn answering(status: &'static str, error_type: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                read_request(&mut stream);
                let body = format!(r#"{{"__type":"{error_type}","message":"canned"}}"#);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: test\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        addr
    }

    /// An endpoint that accepts connections and never answers.
    fn silent() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let held: Vec<TcpStream> = listener.incoming().flatten().collect();
            drop(held);
        });
        addr
    }

    /// A store whose client talks to `addr` with the production defaults (300 ms / 800 ms, 2 attempts).
    fn store_at(addr: SocketAddr) -> DynamoStore {
        let builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "store-contract"))
            .endpoint_url(format!("http://{addr}"));
        let config = DynamoClientConfig::default().apply(builder).build();
        let clock: SharedClock = Arc::new(SystemClock);
        DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t", clock)
    }

    /// One conditional update against `addr`, with how long it took.
    async fn call(addr: SocketAddr) -> (Result<Attrs, StoreError>, Duration) {
        let store = store_at(addr);
        let started = Instant::now();
        let update = Update::new().add("calls", 1).when(Condition::ItemPresent);
        let result = store.update(&Key::new("breaker#x", "window"), update).await;
        (result, started.elapsed())
    }

    #[tokio::test]
    async fn provisioned_throughput_exceeded_is_throttled_within_the_operation_budget() {
        let addr = answering(
            "400 Bad Request",
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        );
        let (result, took) = call(addr).await;
        assert!(matches!(result, Err(StoreError::Throttled(_))), "{result:?}");
        assert!(
            took < Duration::from_secs(1),
            "retries stay inside the 800 ms budget: {took:?}"
        );
    }

    #[tokio::test]
    async fn throttling_and_request_limit_answers_are_throttled() {
        for error_type in [
            "ThrottlingException",
            "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        ] {
            let (result, _) = call(answering("400 Bad Request", error_type)).await;
            assert!(
                matches!(result, Err(StoreError::Throttled(_))),
                "{error_type}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn server_errors_are_unavailable() {
        let (result, _) = call(answering(
            "500 Internal Server Error",
            "com.amazon.coral.service#InternalFailure",
        ))
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        let (result, _) = call(answering(
            "500 Internal Server Error",
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
        ))
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    }

    #[tokio::test]
    async fn validation_answer_is_invalid() {
        let (result, _) = call(answering(
            "400 Bad Request",
            "com.amazon.coral.validate#ValidationException",
        ))
        .await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    }

    #[tokio::test]
    async fn silent_endpoint_times_out_as_unavailable_within_the_operation_budget() {
        let (result, took) = call(silent()).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(1),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn refused_connection_is_unavailable() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let (result, took) = call(addr).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
}
