//! DynamoDB (moto server) stores for the cross-function tests: one fresh table per call.

use std::sync::Arc;

use shared::clock::SharedClock;
use shared::store::dynamo::DynamoStore;
use testkit::emulator_store;

/// A store on a fresh table of the emulator at `AWS_ENDPOINT_URL_DYNAMODB`, or `None` (with a
/// printed "skipped" line) when the variable is unset. Under `CI=true` a missing emulator fails.
pub async fn fresh_store(clock: SharedClock) -> Option<Arc<DynamoStore>> {
    emulator_store("wechat-ha-tests", clock).await.map(Arc::new)
}
