//! Lambda entry point for the payment reconciliation: an EventBridge schedule.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::config::{Env, PayConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, PayDeps};
use shared::routes::pay_reconcile;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "pay-reconcile");
    let deps = PayDeps::from_config(PayConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(
        move |_schedule: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            let report = pay_reconcile::handle(deps).await;
            shared::telemetry::emf::flush();
            report.map(|_| ()).map_err(Error::from)
        },
    ))
    .await
}
