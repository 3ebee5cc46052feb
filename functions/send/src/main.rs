//! Lambda entry point for the send API: `POST /messages/{custom,template,subscribe}`.

use lambda_http::{Error, run, service_fn};
use shared::config::{Env, SendConfig, log_filter};
use shared::deps::{Aws, SendDeps};
use shared::routes::send;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    let deps = SendDeps::from_config(SendConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(send::handle(deps, req).await)
    }))
    .await
}
