//! Lambda entry point for user login: `/oauth/authorize`, `/oauth/callback`, `/miniprogram/login`,
//! `/miniprogram/decrypt`, `/miniprogram/phone`, `/me`, `/logout` (public; sessions are the
//! credential).

use lambda_http::{Error, run, service_fn};
use shared::config::{AuthConfig, Env, log_filter, metrics_namespace};
use shared::deps::{AuthDeps, Aws};
use shared::routes::auth;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "auth");
    let deps = AuthDeps::from_config(AuthConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = auth::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
