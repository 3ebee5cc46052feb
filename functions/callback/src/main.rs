//! Lambda entry point for the WeChat callback: `GET /wechat` (verify) and `POST /wechat` (messages).

use lambda_http::{Error, run, service_fn};
use shared::config::{CallbackConfig, Env, log_filter, metrics_namespace};
use shared::deps::{Aws, CallbackDeps};
use shared::routes::callback;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "callback");
    let deps = CallbackDeps::from_config(CallbackConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = callback::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
