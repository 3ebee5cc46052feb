//! Lambda entry point for the WeChat callback: `GET /wechat` (verify) and `POST /wechat` (messages).

use lambda_http::{Error, run, service_fn};
use shared::deps::Deps;
use shared::routes::callback;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_logging();
    let deps = Deps::from_env().await?;
    let deps = &deps;
    run(service_fn(move |req| async move {
        Ok::<_, Error>(callback::handle(deps, req).await)
    }))
    .await
}
