//! Lambda entry point for the token refresh: the EventBridge schedule renews the fleet's tokens.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::config::{Env, TokenRefreshConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, TokenRefreshDeps};
use shared::routes::token_refresh;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "token-refresh");
    let deps = TokenRefreshDeps::from_config(TokenRefreshConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(
        move |_schedule: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            let refreshed = token_refresh::handle(deps).await;
            shared::telemetry::emf::flush();
            refreshed.map_err(Error::from)
        },
    ))
    .await
}
