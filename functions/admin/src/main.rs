//! Lambda entry point for the admin API: `/admin/*` (IAM-authorised at API Gateway).

use lambda_http::{Error, run, service_fn};
use shared::config::{AdminConfig, Env, log_filter, metrics_namespace};
use shared::deps::{AdminDeps, Aws};
use shared::routes::admin;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "admin");
    let deps = AdminDeps::from_config(AdminConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = admin::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
