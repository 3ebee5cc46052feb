//! Lambda entry point for the follower sync: every-minute ticks continue a pass, the nightly
//! schedule (input `{"action": "start"}`) begins one; each run stops before the invocation's
//! deadline and the next tick resumes from the fleet's checkpoint.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::clock::SystemClock;
use shared::config::{Env, SyncConfig, log_filter, metrics_namespace};
use shared::deadline::Deadline;
use shared::deps::{Aws, SyncDeps};
use shared::routes::sync::{self, Trigger};

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "sync");
    let deps = SyncDeps::from_config(SyncConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .map(|epoch_ms| Deadline::at_ms(epoch_ms, &SystemClock));
        let report = sync::handle(deps, Trigger::of(&event.payload), deadline).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(report)
    }))
    .await
}
