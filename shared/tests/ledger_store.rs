//! The idempotency ledger's core scenarios on the DynamoDB store (moto), where the conditional
//! writes and the item returned with a failed condition come from the real SDK path. Skipped with
//! a message when `AWS_ENDPOINT_URL_DYNAMODB` is unset, a failure under `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use shared::clock::{Clock, ManualClock, SharedClock, SystemClock};
use shared::ledger::{Begin, Claim, Ledger, LedgerConfig, LedgerError, WaitOutcome};
use testkit::emulator::emulator_store;

struct Fixture {
    ledger: Arc<Ledger>,
    clock: ManualClock,
}

/// A ledger on a fresh DynamoDB table, or `None` (after saying so) without an emulator.
async fn fixture() -> Option<Fixture> {
    let clock = ManualClock::new(SystemClock.now_ms());
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let store = emulator_store("dedup", shared_clock.clone()).await?;
    let ledger = Ledger::new(Arc::new(store), shared_clock, LedgerConfig::default());
    Some(Fixture {
        ledger: Arc::new(ledger),
        clock,
    })
}

async fn claim(ledger: &Ledger, key: &str) -> Claim {
    match ledger.begin::<String>("wx1", key).await {
        Ok(Begin::Claimed(claim)) => claim,
        other => panic!("expected a claim, got {other:?}"),
    }
}

#[tokio::test]
async fn delivery_then_retries_get_in_progress_then_the_stored_reply() {
    let Some(f) = fixture().await else { return };
    let first = claim(&f.ledger, "m1").await;
    let during = f.ledger.begin::<String>("wx1", "m1").await.expect("begin");
    assert_eq!(
        during,
        Begin::InProgress {
            lease_until_ms: first.lease_until_ms()
        }
    );
    f.ledger.complete(&first, "<xml>reply</xml>").await.expect("complete");
    let after = f.ledger.begin::<String>("wx1", "m1").await.expect("begin");
    assert_eq!(
        after,
        Begin::Completed {
            result: "<xml>reply</xml>".into()
        }
    );
    let waited = f
        .ledger
        .wait_for_result::<String>("wx1", "m1", f.clock.now_ms() + 1_000, Duration::from_millis(50))
        .await;
    assert_eq!(
        waited.ok(),
        Some(WaitOutcome::Completed {
            result: "<xml>reply</xml>".into()
        })
    );
}

#[tokio::test]
async fn expired_lease_is_taken_over_and_the_stale_holder_is_refused() {
    let Some(f) = fixture().await else { return };
    let stale = claim(&f.ledger, "m1").await;
    f.clock.advance(5_000);
    let fresh = claim(&f.ledger, "m1").await;
    assert!(matches!(
        f.ledger.complete(&stale, "stale").await,
        Err(LedgerError::ClaimLost)
    ));
    f.ledger.complete(&fresh, "fresh").await.expect("complete");
    assert_eq!(
        f.ledger.begin::<String>("wx1", "m1").await.ok(),
        Some(Begin::Completed { result: "fresh".into() })
    );
}

#[tokio::test]
async fn released_and_expired_records_are_claimed_again() {
    let Some(f) = fixture().await else { return };
    let first = claim(&f.ledger, "m1").await;
    f.ledger.release(&first).await.expect("release");
    let second = claim(&f.ledger, "m1").await;
    f.ledger.complete(&second, "r").await.expect("complete");
    f.clock.advance(LedgerConfig::DEFAULT_RECORD_TTL.as_millis() as i64);
    claim(&f.ledger, "m1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_deliveries_have_exactly_one_claim() {
    let Some(f) = fixture().await else { return };
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
