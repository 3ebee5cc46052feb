//! Lambda entry point for the follower read API: `GET /followers/{openid}`, `GET /followers`,
//! `GET /followers/export` (internal: IAM-signed or the bearer key).

use lambda_http::{Error, run, service_fn};
use shared::config::{Env, FollowersConfig, log_filter, metrics_namespace};
use shared::deps::{Aws, FollowersDeps};
use shared::routes::followers;

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "followers");
    let deps = FollowersDeps::from_config(FollowersConfig::from_env(&env)?, &Aws::default()).await;
    let deps = &deps;
    run(service_fn(move |req| async move {
        let answer = followers::handle(deps, req).await;
        shared::telemetry::emf::flush();
        Ok::<_, Error>(answer)
    }))
    .await
}
