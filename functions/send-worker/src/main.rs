//! Lambda entry point for the send worker: SQS batches in, the failed message ids out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::config::{Env, WorkerConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, WorkerDeps};
use shared::routes::send_worker;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "send-worker");
    let deps = WorkerDeps::from_config(WorkerConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let answer = send_worker::handle(deps, event.payload).await;
        shared::telemetry::emf::flush();
        Ok::<SqsBatchResponse, Error>(answer)
    }))
    .await
}
