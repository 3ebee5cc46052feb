//! Lambda entry point for the health checks: `GET /health` and `GET /health/ready` (public).

use lambda_http::{Error, run, service_fn};
use shared::config::{Env, HealthConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, HealthDeps};
use shared::routes::health;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "health");
    let deps = HealthDeps::from_config(HealthConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = health::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
