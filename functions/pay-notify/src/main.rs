//! Lambda entry point for WeChat Pay notices: `POST /pay/notify` (public; authenticated by the
//! notice's signature).

use lambda_http::{Error, run, service_fn};
use shared::config::{Env, PayConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, PayDeps};
use shared::routes::pay_notify;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "pay-notify");
    let deps = PayDeps::from_config(PayConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = pay_notify::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
