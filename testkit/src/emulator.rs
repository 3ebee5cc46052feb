//! The emulator gate: a [`DynamoStore`] on a fresh table of the emulator the environment names.
//!
//! Every DynamoDB-backed test (here and in the workspace's `tests/`) starts the same way: skip with a
//! clear line when no emulator is configured, fail under `CI=true` (where a missing emulator is a
//! broken pipeline, never a silent skip), otherwise create a uniquely named table so tests run in
//! parallel without cleaning up. `scripts/test.sh` starts moto and sets the variables.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shared::clock::SharedClock;
use shared::store::dynamo::{DynamoClientConfig, DynamoStore, create_table_if_missing};

/// Whether the emulator is configured; prints "skipped: …" when not, and panics under `CI=true`.
pub fn emulator_configured() -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        assert!(
            std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
            "AWS_ENDPOINT_URL_DYNAMODB is set but AWS_ACCESS_KEY_ID is not: set AWS_ACCESS_KEY_ID=test \
             AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 (or run scripts/test.sh)"
        );
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but AWS_ENDPOINT_URL_DYNAMODB is unset: run the tests through scripts/test.sh"
    );
    eprintln!("skipped: set AWS_ENDPOINT_URL_DYNAMODB (scripts/test.sh starts moto and sets it)");
    false
}

/// The SDK configuration from the standard AWS environment (`AWS_REGION`, credentials,
/// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`): the emulator `scripts/test.sh` starts.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// A store on a new table named `{prefix}-{pid}-{ms}-{n}`, or `None` without an emulator.
///
/// The client has generous timeouts (the emulator shares two cores with the compiler) and one
/// attempt only, so a timed-out but applied `ADD` is never applied twice.
///
/// # Panics
/// Under `CI=true` without an emulator, or when the table cannot be created.
pub async fn emulator_store(prefix: &str, clock: SharedClock) -> Option<DynamoStore> {
    if !emulator_configured() {
        return None;
    }
    static TABLES: AtomicU32 = AtomicU32::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let table = format!(
        "{prefix}-{}-{ms}-{}",
        std::process::id(),
        TABLES.fetch_add(1, Ordering::Relaxed)
    );
    let config = DynamoClientConfig::new(Duration::from_secs(5), Duration::from_secs(10), 1).expect("valid config");
    let store = DynamoStore::new(config.client(&sdk_config().await), table.clone(), clock);
    create_table_if_missing(store.client(), &table)
        .await
        .expect("create the test table");
    Some(store)
}
