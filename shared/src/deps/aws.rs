//! The AWS side of a cold start: the SDK configuration (loaded at most once, and only when an
//! AWS service is used), the clients built from it, and secrets read from Secrets Manager.
//!
//! The SDK configuration is the expensive part (credential chain, region); its clients are cheap.
//! It follows the standard AWS variables (`AWS_REGION`, `AWS_ENDPOINT_URL_*`, credentials), the
//! one environment reading outside `config` — done by the SDK itself.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use tokio::sync::OnceCell;

use super::StartupError;
use super::sdk_http::ConnectOnFirstUse;
use crate::clock::SharedClock;
use crate::config::{Queue, SecretRef, Store};
use crate::queue::SharedQueue;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::secret::Secret;
use crate::store::SharedStore;
use crate::store::dynamo::{DynamoClientConfig, DynamoStore};
use crate::store::memory::MemoryStore;

/// Messages a local queue delivers before its dead-letter queue (SQS: the template's redrive policy).
pub const LOCAL_MAX_RECEIVES: u32 = crate::queue::MAX_RECEIVES;

/// How long reading a secret at cold start may take.
const SECRET_TIMEOUT: Duration = Duration::from_secs(3);
/// One SQS attempt's limit.
const SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// One SQS operation's limit, its retry included.
const SQS_OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);

/// The SDK configuration, loaded on first use (at most once per cold start).
#[derive(Debug, Default)]
pub struct Aws {
    sdk: OnceCell<SdkConfig>,
}

impl Aws {
    /// Uses an already loaded configuration (tests that name their own credentials).
    pub fn with_config(sdk: SdkConfig) -> Self {
        Self {
            sdk: OnceCell::new_with(Some(sdk)),
        }
    }

    /// The SDK configuration (loaded now if it was not yet).
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| {
                aws_config::defaults(BehaviorVersion::latest())
                    .http_client(ConnectOnFirstUse::https())
                    .load()
            })
            .await
    }

    /// The state store `store` names.
    pub async fn store(&self, store: &Store, clock: &SharedClock) -> SharedStore {
        match store {
            Store::Memory => Arc::new(MemoryStore::new(clock.clone())),
            Store::Dynamodb { table } => {
                let client = DynamoClientConfig::default().client(self.sdk().await);
                Arc::new(DynamoStore::new(client, table.clone(), clock.clone()))
            }
        }
    }

    /// The work queue `queue` names. The SQS client has tight timeouts (an attempt 500 ms, the
    /// operation 1.5 s, one SDK retry): the callback hands work over inside WeChat's 5 s.
    pub async fn queue(&self, queue: &Queue) -> SharedQueue {
        match queue {
            Queue::Memory => Arc::new(MemoryQueue::new(LOCAL_MAX_RECEIVES)),
            Queue::Sqs { url } => {
                let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(SQS_ATTEMPT_TIMEOUT)
                    .operation_timeout(SQS_OPERATION_TIMEOUT)
                    .build();
                let retries = aws_sdk_sqs::config::retry::RetryConfig::standard().with_max_attempts(2);
                let conf = aws_sdk_sqs::config::Builder::from(self.sdk().await)
                    .timeout_config(timeouts)
                    .retry_config(retries)
                    .build();
                Arc::new(SqsQueue::new(aws_sdk_sqs::Client::from_conf(conf), url.clone()))
            }
        }
    }

    /// The secret `source` names, read once (the caller keeps it for the instance's life).
    ///
    /// # Errors
    /// [`StartupError::Secret`] when Secrets Manager refuses or the secret holds no usable value.
    pub async fn secret(&self, source: &SecretRef) -> Result<Secret, StartupError> {
        let (id, field) = match source {
            SecretRef::Value(secret) => return Ok(secret.clone()),
            SecretRef::SecretsManager { id, field } => (id, *field),
        };
        let raw = self.secret_string(id).await?;
        extract(raw.expose(), field)
            .map(Secret::new)
            .ok_or_else(|| StartupError::Secret(format!("secret {id} has no usable {field} string")))
    }

    /// The whole `SecretString` of secret `id` (a JSON object of several fields, say).
    ///
    /// # Errors
    /// [`StartupError::Secret`] when Secrets Manager refuses or the secret is empty.
    pub async fn secret_string(&self, id: &str) -> Result<Secret, StartupError> {
        let client = self.secrets_manager().await;
        let output = client.get_secret_value().secret_id(id).send().await.map_err(|err| {
            let message = aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string();
            StartupError::Secret(format!("secrets manager, secret {id}: {message}"))
        })?;
        output
            .secret_string()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .ok_or_else(|| StartupError::Secret(format!("secret {id} holds no string")))
    }
}

impl Aws {
    /// A Secrets Manager client with the operation timeout of secret loads.
    async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        let timeouts = TimeoutConfig::builder().operation_timeout(SECRET_TIMEOUT).build();
        let conf = aws_sdk_secretsmanager::config::Builder::from(self.sdk().await)
            .timeout_config(timeouts)
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// Whether secret `id` exists and is not scheduled for deletion — described, never read
    /// (`secretsmanager:DescribeSecret`), for readiness checks.
    ///
    /// # Errors
    /// Secrets Manager's refusal or failure, as text.
    pub async fn secret_usable(&self, id: &str) -> Result<bool, String> {
        let described = self
            .secrets_manager()
            .await
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|err| aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string())?;
        Ok(described.deleted_date().is_none())
    }
}

/// The value from a `SecretString`: the string itself, or a JSON object's `field`.
fn extract(raw: &str, field: &str) -> Option<String> {
    if !raw.starts_with('{') {
        return Some(raw.to_owned());
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    let upper = field.to_ascii_uppercase();
    [field, upper.as_str(), "WECHAT_APPSECRET"]
        .iter()
        .find_map(|k| map.get(*k).and_then(serde_json::Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_may_be_the_value_or_a_json_object() {
        assert_eq!(extract("abc", "appsecret").as_deref(), Some("abc"));
        assert_eq!(extract(r#"{"appsecret":"xyz"}"#, "appsecret").as_deref(), Some("xyz"));
        assert_eq!(extract(r#"{"other":"xyz"}"#, "appsecret"), None);
    }
}
