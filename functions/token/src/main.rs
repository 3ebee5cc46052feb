//! Lambda entry point for the token function: EventBridge schedule (refresh) and `GET /jssdk/config`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use shared::deps::Deps;
use shared::routes::token;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        token::handle_event(deps, event.payload).await.map_err(Error::from)
    }))
    .await
}
