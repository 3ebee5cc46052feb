//! Exactly-once delivery: concurrent and retried deliveries of one message, slow handlers, store outages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::join_all;
use shared::bot::{HandlerError, MessageHandler};
use shared::clock::ManualClock;
use shared::protocol::{Message, Reply};
use shared::queue::memory::MemoryQueue;
use shared::routes::callback;
use shared::store::{Attrs, Condition, Key, SharedStore, StateStore, StoreError, Update};
use testkit::{FlakyStore, Health, SlowQueue};
use wechat_ha_tests::*;

/// A business handler that takes `delay` and counts how often it runs.
#[derive(Debug)]
struct SlowCounter {
    calls: AtomicUsize,
    delay: Duration,
}

impl SlowCounter {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
        })
    }
}

#[async_trait]
impl MessageHandler for SlowCounter {
    async fn handle(&self, _message: &Message) -> Result<Reply, HandlerError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.delay).await;
        Ok(Reply::text(format!("processed #{n}")))
    }
}

/// Three instances (separate `Deps`, as three Lambda instances) get the same message at once.
async fn three_concurrent_deliveries_are_processed_once(store: SharedStore, clock: ManualClock) {
    let handler = SlowCounter::new(Duration::from_millis(300));
    let instances: Vec<_> = (0..3)
        .map(|_| {
            deps_with_handler(
                settings("compatible", &[]),
                store.clone(),
                clock.clone(),
                handler.clone(),
            )
        })
        .collect();
    let replies = join_all(
        instances
            .iter()
            .map(|deps| callback::handle(deps, event("callback-text-post.json"))),
    )
    .await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "processed exactly once");
    for response in &replies {
        assert_eq!(response.status(), 200);
        assert_eq!(body_text(response), body_text(&replies[0]), "one identical reply");
    }
    assert!(body_text(&replies[0]).contains("processed #1"));

    // WeChat's later retry gets the stored reply without processing again.
    let retry = callback::handle(&instances[2], event("callback-text-post.json")).await;
    assert_eq!(body_text(&retry), body_text(&replies[0]));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_deliveries_on_memory_store_are_processed_once() {
    let (store, clock) = memory_store();
    three_concurrent_deliveries_are_processed_once(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_on_dynamodb_are_processed_once() {
    let clock = ManualClock::new(NOW_MS);
    let Some(store) = support_dynamo(&clock).await else {
        return;
    };
    three_concurrent_deliveries_are_processed_once(store, clock).await;
}

async fn support_dynamo(clock: &ManualClock) -> Option<SharedStore> {
    let store = wechat_ha_tests::dynamo::fresh_store(Arc::new(clock.clone())).await?;
    Some(store)
}

#[tokio::test]
async fn slow_handler_is_answered_success_within_the_budget_and_a_retry_starts_nothing() {
    let (store, clock) = memory_store();
    let handler = SlowCounter::new(Duration::from_secs(3));
    let deps = deps_with_handler(
        settings("compatible", &[("CALLBACK_BUDGET_MS", "150")]),
        store,
        clock,
        handler.clone(),
    );
    let started = Instant::now();
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "answered within the budget"
    );
    assert_eq!(body_text(&response), "success");
    let retry = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(body_text(&retry), "success");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "the retry started nothing new");
}

#[tokio::test]
async fn a_retry_during_processing_waits_for_the_first_reply() {
    let (store, clock) = memory_store();
    let handler = SlowCounter::new(Duration::from_millis(200));
    let first = deps_with_handler(
        settings("compatible", &[]),
        store.clone(),
        clock.clone(),
        handler.clone(),
    );
    let second = deps_with_handler(settings("compatible", &[]), store, clock, handler.clone());
    let (a, b) = tokio::join!(callback::handle(&first, event("callback-text-post.json")), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        callback::handle(&second, event("callback-text-post.json")).await
    });
    assert_eq!(body_text(&a), body_text(&b));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

/// A store that is down: every call fails as DynamoDB does during an outage.
#[derive(Debug)]
struct DownStore;

#[async_trait]
impl StateStore for DownStore {
    async fn get(&self, _: &Key) -> Result<Option<Attrs>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn put(&self, _: &Key, _: Attrs, _: Condition) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn update(&self, _: &Key, _: Update) -> Result<Attrs, StoreError> {
        Err(StoreError::Throttled("ProvisionedThroughputExceededException".into()))
    }
    async fn delete(&self, _: &Key, _: Condition) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn query(&self, _: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn store_outage_never_fails_the_user_and_still_dedups_on_the_instance() {
    let clock = ManualClock::new(NOW_MS);
    let handler = SlowCounter::new(Duration::from_millis(1));
    let deps = deps_with_handler(settings("compatible", &[]), Arc::new(DownStore), clock, handler.clone());
    let first = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(first.status(), 200);
    assert!(body_text(&first).contains("processed #1"));
    let retry = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(body_text(&retry), body_text(&first));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
}

/// The dedup key of the text sample event (MsgId:FromUserName:CreateTime).
const TEXT_KEY: (&str, &str) = ("msg#gh_123456789abc", "1234567890123456:oUser123:1700000000");

#[tokio::test]
async fn a_corrupt_ledger_record_is_an_error_not_a_silent_second_run() {
    let (store, clock) = memory_store();
    let mut junk = Attrs::new();
    junk.insert("status".into(), "garbled".into());
    store
        .put(&Key::new(TEXT_KEY.0, TEXT_KEY.1), junk, Condition::Always)
        .await
        .unwrap();
    let handler = SlowCounter::new(Duration::from_millis(1));
    let deps = deps_with_handler(settings("compatible", &[]), store, clock, handler.clone());
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(response.status(), 500, "{}", body_text(&response));
    assert_eq!(body_json(&response)["code"], "INTERNAL");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0, "nothing ran");
    assert_eq!(deps.ledger.fallbacks(), 0, "a corrupt record is no outage");
}

#[tokio::test]
async fn a_failed_wait_answers_success_and_never_runs_the_handler_a_second_time() {
    let (memory, clock) = memory_store();
    let flaky = Arc::new(FlakyStore::new(memory.clone(), Duration::from_secs(1)));
    let handler = SlowCounter::new(Duration::from_millis(1));
    // Another instance holds the claim (a live lease) ...
    let mut pending = Attrs::new();
    pending.insert("status".into(), "pending".into());
    pending.insert("owner".into(), "other-instance".into());
    pending.insert("lease_until".into(), (NOW_MS + 60_000).into());
    memory
        .put(&Key::new(TEXT_KEY.0, TEXT_KEY.1), pending, Condition::Always)
        .await
        .unwrap();
    // ... and reading its result fails.
    flaky.set(Health::ReadsDown);
    let deps = deps_with_handler(settings("compatible", &[]), flaky, clock, handler.clone());
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(
        (response.status().as_u16(), body_text(&response)),
        (200, "success".to_owned())
    );
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        0,
        "the holder runs it, not this instance"
    );
    assert_eq!(deps.ledger.fallbacks(), 0, "no local claim");
}

#[tokio::test]
async fn dedup_falls_back_to_instance_memory_on_an_outage_only_and_counts_it() {
    let (memory, clock) = memory_store();
    let flaky = Arc::new(FlakyStore::new(memory, Duration::from_secs(1)));
    flaky.set(Health::Down);
    let handler = SlowCounter::new(Duration::from_millis(1));
    let deps = deps_with_handler(settings("compatible", &[]), flaky.clone(), clock, handler.clone());
    let first = callback::handle(&deps, event("callback-text-post.json")).await;
    let retry = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(first.status(), 200);
    assert_eq!(body_text(&first), body_text(&retry));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "deduplicated on the instance");
    assert_eq!(deps.ledger.fallbacks(), 2, "each fallback counted");
}

#[tokio::test(start_paused = true)]
async fn a_black_holed_store_still_gets_an_answer_within_wechats_five_seconds() {
    let (memory, clock) = memory_store();
    let flaky = Arc::new(FlakyStore::new(memory, Duration::from_secs(3600)));
    flaky.set(Health::Stalled);
    let deps = deps_on(settings("compatible", &[]), flaky, clock);
    let started = tokio::time::Instant::now();
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(response.status(), 200);
    assert!(
        body_text(&response).contains("hello"),
        "answered from the instance-local ledger"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn with_a_slow_queue_an_overrunning_handler_is_still_answered_in_time() {
    let (store, clock) = memory_store();
    let queue = Arc::new(SlowQueue::new(Arc::new(MemoryQueue::new(5)), Duration::from_secs(10)));
    let handler = SlowCounter::new(Duration::from_secs(30));
    let deps = deps_with_queue(settings("compatible", &[]), store, clock, handler, queue.clone());
    let started = tokio::time::Instant::now();
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    let elapsed = started.elapsed();
    assert_eq!(body_text(&response), "success");
    assert!(
        elapsed <= shared::routes::callback::ANSWER_WITHIN,
        "answered {elapsed:?} after arrival"
    );
    assert!(elapsed >= Duration::from_secs(3), "the bot had its budget: {elapsed:?}");
}
