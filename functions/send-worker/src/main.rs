//! Lambda entry point for the send worker: SQS batches in, the failed message ids out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::deps::Deps;
use shared::routes::send_worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(send_worker::handle(deps, event.payload).await)
    }))
    .await
}
