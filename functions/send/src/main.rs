//! Lambda entry point for the send API: `POST /messages/{custom,template,subscribe}`.

use lambda_http::{Error, run, service_fn};
use shared::deps::Deps;
use shared::routes::send;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(send::handle(deps, req).await)
    }))
    .await
}
