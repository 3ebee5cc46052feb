//! The checks through the Lambda API: each event invokes the new version itself (its ARN, as
//! CodeDeploy is about to route traffic to it) — the one thing the hook is allowed to invoke.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;
use shared::canary::{Invoke, Target};
use shared::config::HookVersions;

/// Invokes versions by ARN.
#[derive(Debug)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    versions: HookVersions,
}

impl LambdaInvoker {
    /// An invoker of `versions`.
    pub fn new(sdk: &aws_config::SdkConfig, versions: HookVersions) -> Self {
        Self {
            client: aws_sdk_lambda::Client::new(sdk),
            versions,
        }
    }

    fn version(&self, target: Target) -> Option<&str> {
        match target {
            Target::Callback => self.versions.callback.as_deref(),
            Target::Send => self.versions.send.as_deref(),
            Target::Jssdk => self.versions.jssdk.as_deref(),
        }
    }
}

#[async_trait]
impl Invoke for LambdaInvoker {
    async fn invoke(&self, target: Target, event: &Value) -> Result<Value, String> {
        let version = self.version(target).ok_or("no version to invoke")?;
        let answer = self
            .client
            .invoke()
            .function_name(version)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| format!("invoke {version}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))?;
        let payload = answer.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
        if let Some(error) = answer.function_error() {
            return Err(format!(
                "{version} failed ({error}): {}",
                String::from_utf8_lossy(&payload)
            ));
        }
        serde_json::from_slice(&payload).map_err(|e| format!("{version} answered no JSON: {e}"))
    }

    fn has(&self, target: Target) -> bool {
        self.version(target).is_some()
    }
}
