//! Lambda entry point for the breaker tuner: an EventBridge schedule, every minute.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::config::{Env, TunerConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, TunerDeps};
use shared::routes::tuner;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "breaker-tuner");
    let deps = TunerDeps::from_config(TunerConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(
        move |_schedule: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            let report = tuner::handle(deps).await;
            shared::telemetry::emf::flush();
            report.map(|_| ()).map_err(|error| Error::from(error.to_string()))
        },
    ))
    .await
}
