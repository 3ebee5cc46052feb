//! Lambda entry point for the WeChat callback: `GET /wechat` (verify) and `POST /wechat` (messages).

use lambda_http::{Error, run, service_fn};
use shared::config::{CallbackConfig, Env, log_filter};
use shared::deps::{Aws, CallbackDeps};
use shared::routes::callback;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    let deps = CallbackDeps::from_config(CallbackConfig::from_env(&env)?, &Aws::default()).await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(callback::handle(deps, req).await)
    }))
    .await
}
