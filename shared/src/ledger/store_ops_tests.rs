//! Ledger behaviour on the in-memory store with a manual clock and paused tokio time.

use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::store::memory::MemoryStore;

const START_MS: i64 = 1_700_000_000_000;

struct Fixture {
    ledger: Arc<Ledger>,
    store: SharedStore,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(START_MS);
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let store: SharedStore = Arc::new(MemoryStore::new(shared_clock.clone()));
    let ledger = Arc::new(Ledger::new(store.clone(), shared_clock, LedgerConfig::default()));
    Fixture { ledger, store, clock }
}

async fn claim(ledger: &Ledger, key: &str) -> Claim {
    match ledger.begin::<String>("wx1", key).await {
        Ok(Begin::Claimed(claim)) => claim,
        other => panic!("expected a claim, got {other:?}"),
    }
}

#[tokio::test]
async fn first_delivery_claims_a_pending_record() {
    let f = fixture();
    let claim = claim(&f.ledger, "m1").await;
    assert_eq!(claim.key(), &Key::new("msg#wx1", "m1"));
    assert_eq!(claim.lease_until_ms(), START_MS + 5_000);
    let stored = f.store.get(claim.key()).await.ok().flatten().unwrap_or_default();
    assert_eq!(stored.str_attr(STATUS), Some(PENDING));
    assert_eq!(stored.str_attr(OWNER), Some(claim.owner()));
    assert_eq!(stored.num_attr(EXPIRES_AT), Some(START_MS / 1000 + 86_400));
}

#[tokio::test]
async fn retry_after_completion_gets_the_stored_reply() {
    let f = fixture();
    let claim = claim(&f.ledger, "m1").await;
    f.ledger.complete(&claim, "<xml>hi</xml>").await.expect("complete");
    f.clock.advance(10_000); // well past the lease: a completed record is never taken over
    let retry = f.ledger.begin::<String>("wx1", "m1").await.expect("begin");
    assert_eq!(
        retry,
        Begin::Completed {
            result: "<xml>hi</xml>".into()
        }
    );
}

#[tokio::test]
async fn retry_during_processing_is_in_progress() {
    let f = fixture();
    let claim = claim(&f.ledger, "m1").await;
    f.clock.advance(4_999);
    let retry = f.ledger.begin::<String>("wx1", "m1").await.expect("begin");
    assert_eq!(
        retry,
        Begin::InProgress {
            lease_until_ms: claim.lease_until_ms()
        }
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over_and_the_stale_holder_cannot_complete() {
    let f = fixture();
    let stale = claim(&f.ledger, "m1").await;
    f.clock.advance(5_000);
    let fresh = claim(&f.ledger, "m1").await;
    assert_ne!(fresh.owner(), stale.owner());
    assert!(matches!(
        f.ledger.complete(&stale, "stale").await,
        Err(LedgerError::ClaimLost)
    ));
    assert!(matches!(f.ledger.release(&stale).await, Err(LedgerError::ClaimLost)));
    f.ledger.complete(&fresh, "fresh").await.expect("complete");
    let retry = f.ledger.begin::<String>("wx1", "m1").await.expect("begin");
    assert_eq!(retry, Begin::Completed { result: "fresh".into() });
}

#[tokio::test]
async fn completing_twice_is_harmless() {
    let f = fixture();
    let claim = claim(&f.ledger, "m1").await;
    f.ledger.complete(&claim, "r").await.expect("complete");
    f.ledger.complete(&claim, "r").await.expect("again");
    f.ledger
        .release(&claim)
        .await
        .expect("release after completion is a no-op");
    assert_eq!(
        f.ledger.begin::<String>("wx1", "m1").await.ok(),
        Some(Begin::Completed { result: "r".into() })
    );
}

#[tokio::test]
async fn released_claim_is_claimed_by_the_next_delivery_at_once() {
    let f = fixture();
    let first = claim(&f.ledger, "m1").await;
    f.ledger.release(&first).await.expect("release");
    f.ledger
        .release(&first)
        .await
        .expect("releasing a gone record is a no-op");
    let second = claim(&f.ledger, "m1").await;
    assert_ne!(second.owner(), first.owner());
}

#[tokio::test]
async fn records_expire_after_their_ttl() {
    let f = fixture();
    let first = claim(&f.ledger, "m1").await;
    f.ledger.complete(&first, "old").await.expect("complete");
    f.clock.advance(86_400_000 - 1_000);
    assert_eq!(
        f.ledger.begin::<String>("wx1", "m1").await.ok(),
        Some(Begin::Completed { result: "old".into() })
    );
    f.clock.advance(1_000);
    claim(&f.ledger, "m1").await;
}

#[tokio::test]
async fn scopes_and_namespaces_keep_records_apart() {
    let f = fixture();
    claim(&f.ledger, "m1").await;
    assert!(matches!(
        f.ledger.begin::<String>("wx2", "m1").await,
        Ok(Begin::Claimed(_))
    ));
    let config = LedgerConfig::default().with_namespace("out").expect("namespace");
    let outbound = Ledger::new(f.store.clone(), Arc::new(f.clock.clone()), config);
    let Ok(Begin::Claimed(out)) = outbound.begin::<String>("wx1", "m1").await else {
        panic!("separate namespace")
    };
    assert_eq!(out.key().pk, "out#wx1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_concurrent_deliveries_have_exactly_one_claim() {
    let f = fixture();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let ledger = f.ledger.clone();
        tasks.spawn(async move { ledger.begin::<String>("wx1", "m1").await });
    }
    let outcomes: Vec<Begin<String>> = tasks.join_all().await.into_iter().map(|r| r.expect("begin")).collect();
    let claimed = outcomes.iter().filter(|o| matches!(o, Begin::Claimed(_))).count();
    let in_progress = outcomes
        .iter()
        .filter(|o| matches!(o, Begin::InProgress { .. }))
        .count();
    assert_eq!((claimed, in_progress), (1, 2), "{outcomes:?}");
}

#[tokio::test(start_paused = true)]
async fn waiting_returns_the_reply_once_the_holder_completes() {
    let f = fixture();
    let claim = claim(&f.ledger, "m1").await;
    let holder = f.ledger.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        holder.complete(&claim, "done").await
    });
    let started = tokio::time::Instant::now();
    let waited = f
        .ledger
        .wait_for_result::<String>("wx1", "m1", START_MS + 3_000, Duration::from_millis(100))
        .await;
    assert_eq!(waited.ok(), Some(WaitOutcome::Completed { result: "done".into() }));
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_times_out_exactly_at_the_budget() {
    let f = fixture();
    claim(&f.ledger, "m1").await;
    let started = tokio::time::Instant::now();
    let waited = f
        .ledger
        .wait_for_result::<String>("wx1", "m1", START_MS + 2_500, Duration::from_millis(400))
        .await;
    assert_eq!(waited.ok(), Some(WaitOutcome::TimedOut));
    assert_eq!(started.elapsed(), Duration::from_millis(2_500));
}

#[tokio::test(start_paused = true)]
async fn waiting_on_an_abandoned_record_returns_at_once() {
    let f = fixture();
    let nothing = f
        .ledger
        .wait_for_result::<String>("wx1", "none", START_MS + 2_000, Duration::from_millis(100))
        .await;
    assert_eq!(nothing.ok(), Some(WaitOutcome::Abandoned));
    claim(&f.ledger, "m1").await;
    f.clock.advance(5_000);
    let started = tokio::time::Instant::now();
    let dead = f
        .ledger
        .wait_for_result::<String>("wx1", "m1", START_MS + 9_000, Duration::from_millis(100))
        .await;
    assert_eq!(dead.ok(), Some(WaitOutcome::Abandoned));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn corrupt_records_and_empty_keys_are_errors() {
    let f = fixture();
    let key = f.ledger.record_key("wx1", "bad");
    let mut junk = Attrs::new();
    junk.insert(STATUS.into(), "weird".into());
    f.store.put(&key, junk, Condition::Always).await.expect("put");
    assert!(matches!(
        f.ledger.begin::<String>("wx1", "bad").await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        f.ledger.begin::<String>("wx1", "").await,
        Err(StoreError::Invalid(_))
    ));
}
