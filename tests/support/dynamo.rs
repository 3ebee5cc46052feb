//! DynamoDB (moto server) stores for tests: one fresh table per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use shared::clock::SharedClock;
use shared::store::dynamo::{DynamoClientConfig, DynamoStore, create_table_if_missing};

/// A store on a fresh table of the emulator at `AWS_ENDPOINT_URL_DYNAMODB`, or `None` (with a
/// printed "skipped" line) when the variable is unset. Under `CI=true` a missing emulator fails.
pub async fn fresh_store(clock: SharedClock) -> Option<Arc<DynamoStore>> {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AWS_ENDPOINT_URL_DYNAMODB is unset: run the tests through scripts/test.sh"
        );
        eprintln!("skipped: set AWS_ENDPOINT_URL_DYNAMODB (scripts/test.sh starts moto) to run this test");
        return None;
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let table = format!(
        "wechat-ha-tests-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let store = DynamoStore::from_env(table.clone(), clock, DynamoClientConfig::default()).await;
    create_table_if_missing(store.client(), &table)
        .await
        .expect("create test table");
    Some(Arc::new(store))
}
