//! The CodeDeploy pre-traffic hook, and the same checks run locally.
//!
//! On Lambda (named `CodeDeployHook_<stack>`): CodeDeploy invokes it with `DeploymentId` and
//! `LifecycleEventHookExecutionId` before shifting traffic; it invokes the new versions
//! (`HOOK_*_VERSION`, the only thing it may invoke) with requests signed now and reports
//! `Succeeded` or `Failed` — a failure stops the deployment and rolls it back.
//!
//! Locally: `pre-traffic-hook --against http://127.0.0.1:3000 [--key INTERNAL_API_KEY]` sends the
//! same checks to a running server, signed with `WECHAT_TOKEN` (and `WECHAT_ENCODING_AES_KEY`),
//! prints one JSON line per check and exits 1 when any failed.

mod lambda;

use std::process::ExitCode;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::canary::{CheckResult, HttpInvoker, Invoke, run as run_checks, standard_checks};
use shared::clock::{Clock, SystemClock};
use shared::config::{CallbackAccount, Env, HookConfig, log_filter};
use shared::deps::{Aws, load_account};

// One invocation at a time per instance: tokio on this thread alone (docs/benchmarks.md §17).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = Env::from_process();
    shared::telemetry::init_logging(&log_filter(&env));
    let result = match args.first().map(String::as_str) {
        Some("--against") => local(&args[1..], &env).await,
        Some(other) => Err(format!(
            "unknown argument {other:?}; usage: pre-traffic-hook [--against URL [--key KEY]]"
        )),
        None => on_lambda(&env).await.map_err(|e| e.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("pre-traffic-hook: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn checks_for(config: &HookConfig, aws: &Aws) -> Result<(CallbackAccount, Vec<shared::canary::Check>), String> {
    let account = load_account(&config.account, aws).await.map_err(|e| e.to_string())?;
    let checks = standard_checks(&account, &config.test_openid, &config.page_url, SystemClock.now_secs());
    Ok((account, checks))
}

/// `--against URL [--key KEY]`: the checks over HTTP; `true` when all passed.
async fn local(args: &[String], env: &Env) -> Result<bool, String> {
    let base = args.first().ok_or("--against needs a URL")?;
    let key = match args.get(1).map(String::as_str) {
        Some("--key") => Some(args.get(2).ok_or("--key needs a value")?.clone()),
        Some(other) => return Err(format!("unknown argument {other:?}")),
        None => env.optional("INTERNAL_API_KEY").map(str::to_owned),
    };
    let config = HookConfig::from_env(env).map_err(|e| e.to_string())?;
    let (account, checks) = checks_for(&config, &Aws::default()).await?;
    let invoker = HttpInvoker::new(base, key)?;
    let results = run_checks(&invoker, &checks, &account).await;
    Ok(report(&results))
}

/// Prints each result (a JSON line on stdout: the command's output); `true` when all passed.
#[allow(clippy::print_stdout)]
fn report(results: &[CheckResult]) -> bool {
    for result in results {
        println!("{}", serde_json::to_string(result).unwrap_or_default());
    }
    !results.is_empty() && results.iter().all(|r| r.passed)
}

async fn on_lambda(env: &Env) -> Result<bool, Error> {
    let config = HookConfig::from_env(env)?;
    let aws = Aws::default();
    let sdk = aws.sdk().await;
    let invoker = lambda::LambdaInvoker::new(sdk, config.versions.clone());
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let (config, invoker, codedeploy) = (&config, &invoker, &codedeploy);
    let aws = &aws;
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let field = |name: &str| event.payload.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(deployment), Some(execution)) = (field("DeploymentId"), field("LifecycleEventHookExecutionId")) else {
            return Err(Error::from("not a CodeDeploy lifecycle event (DeploymentId, LifecycleEventHookExecutionId)"));
        };
        let passed = match checks_for(config, aws).await {
            Ok((account, checks)) => {
                let results = run_checks(invoker as &dyn Invoke, &checks, &account).await;
                for result in &results {
                    tracing::info!(check = result.name, passed = result.passed, detail = %result.detail, "pre-traffic check");
                }
                !results.is_empty() && results.iter().all(|r| r.passed)
            }
            Err(error) => {
                tracing::error!(reason = %error, "pre-traffic checks could not be prepared");
                false
            }
        };
        let status = if passed {
            aws_sdk_codedeploy::types::LifecycleEventStatus::Succeeded
        } else {
            aws_sdk_codedeploy::types::LifecycleEventStatus::Failed
        };
        codedeploy
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment)
            .lifecycle_event_hook_execution_id(execution)
            .status(status)
            .send()
            .await
            .map_err(|e| Error::from(format!("could not report to CodeDeploy: {e}")))?;
        tracing::info!(passed, "pre-traffic hook reported");
        Ok::<_, Error>(serde_json::json!({ "passed": passed }))
    }))
    .await?;
    Ok(true)
}
