//! Lambda entry point for `GET /jssdk/config`.

use lambda_http::{Error, run, service_fn};
use shared::config::{Env, JssdkConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, JssdkDeps};
use shared::routes::jssdk;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "jssdk");
    let deps = JssdkDeps::from_config(JssdkConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = jssdk::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
