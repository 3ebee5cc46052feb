//! Lambda entry point for the callback IP refresh (hourly): WeChat's callback server addresses
//! into the WAF IP set that lets only them reach `/wechat`.

use callback_ip_refresh::refresh;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::clock::{SharedClock, SystemClock};
use shared::config::{CallbackIpConfig, Env, log_filter, metrics_namespace};
use shared::deadline::Deadline;
use shared::deps::{Aws, wechat_client};

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    shared::telemetry::emf::install(&metrics_namespace(&env), "callback-ip-refresh");
    let config = CallbackIpConfig::from_env(&env)?;
    let aws = Aws::default();
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let store = aws.store(&config.store, &clock).await;
    let wechat = wechat_client(&config.wechat, store, clock, &aws).await?;
    // The set's API region (us-east-1 for a CloudFront web ACL's sets), whatever the stack's.
    let waf_sdk = aws
        .sdk()
        .await
        .to_builder()
        .region(aws_config::Region::new(config.ip_set.region.clone()))
        .build();
    let waf = aws_sdk_wafv2::Client::new(&waf_sdk);
    let (wechat, waf, set) = (&wechat, &waf, &config.ip_set);
    run(service_fn(
        move |_schedule: LambdaEvent<serde_json::Value>| async move {
            let report = refresh(wechat, waf, set, Deadline::after(std::time::Duration::from_secs(20))).await;
            shared::telemetry::emf::flush();
            report.map_err(Error::from)
        },
    ))
    .await
}
