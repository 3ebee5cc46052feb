//! Exactly-once delivery: concurrent and retried deliveries of one message, slow handlers, store outages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::join_all;
use shared::bot::{HandlerError, MessageHandler};
use shared::clock::ManualClock;
use shared::protocol::{Message, Reply};
use shared::routes::callback;
use shared::store::{Attrs, Condition, Key, SharedStore, StateStore, StoreError, Update};
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
