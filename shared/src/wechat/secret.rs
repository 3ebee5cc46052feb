//! Where the AppSecret comes from: the environment locally, AWS Secrets Manager on Lambda.
//!
//! Loaded once per cold start (the caller keeps the [`Secret`]). Secrets Manager was chosen over
//! SSM Parameter Store because its SDK crate is far smaller to build (SSM models ~150 operations);
//! the secret's `SecretString` is either the AppSecret itself or a JSON object holding it under
//! `appsecret` (or `WECHAT_APPSECRET`).

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;

use crate::config::{ConfigError, Env, Secret};

/// The AppSecret's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Given directly (`WECHAT_APPSECRET`, local runs and tests).
    Value(Secret),
    /// A Secrets Manager secret id or ARN (`WECHAT_APPSECRET_SECRET_ID`).
    SecretsManager(String),
}

/// Why the AppSecret could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Secrets Manager refused or failed the call.
    #[error("secrets manager: {0}")]
    Aws(String),
    /// The secret exists but holds no usable string.
    #[error("secret {0} has no usable AppSecret string")]
    Empty(String),
}

impl SecretSource {
    /// `WECHAT_APPSECRET_SECRET_ID` when set, else `WECHAT_APPSECRET`.
    ///
    /// # Errors
    /// [`ConfigError`] naming `WECHAT_APPSECRET` when neither is set.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        if let Some(id) = env.optional("WECHAT_APPSECRET_SECRET_ID") {
            return Ok(Self::SecretsManager(id.to_owned()));
        }
        env.optional("WECHAT_APPSECRET")
            .map(|v| Self::Value(Secret::new(v)))
            .ok_or_else(|| {
                ConfigError::new(
                    "WECHAT_APPSECRET",
                    "is required (or set WECHAT_APPSECRET_SECRET_ID to read it from Secrets Manager)",
                )
            })
    }

    /// Loads the secret, reading the AWS configuration from the standard environment if needed.
    ///
    /// # Errors
    /// [`SecretError`] when Secrets Manager fails or the secret is empty.
    pub async fn load(&self) -> Result<Secret, SecretError> {
        match self {
            Self::Value(secret) => Ok(secret.clone()),
            Self::SecretsManager(_) => {
                let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
                self.load_with(&sdk).await
            }
        }
    }

    /// Loads the secret with an already loaded AWS configuration (the cold start's one).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub async fn load_with(&self, sdk: &SdkConfig) -> Result<Secret, SecretError> {
        let id = match self {
            Self::Value(secret) => return Ok(secret.clone()),
            Self::SecretsManager(id) => id,
        };
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(Duration::from_secs(3))
            .build();
        let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        let client = aws_sdk_secretsmanager::Client::from_conf(conf);
        let output = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|err| SecretError::Aws(aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string()))?;
        let raw = output.secret_string().map(str::trim).filter(|s| !s.is_empty());
        raw.and_then(extract)
            .map(Secret::new)
            .ok_or_else(|| SecretError::Empty(id.clone()))
    }
}

/// The AppSecret from a `SecretString`: the string itself, or a JSON object's `appsecret` field.
fn extract(raw: &str) -> Option<String> {
    if !raw.starts_with('{') {
        return Some(raw.to_owned());
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    ["appsecret", "WECHAT_APPSECRET"]
        .iter()
        .find_map(|k| map.get(*k).and_then(serde_json::Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_id_wins_over_a_plain_value_and_one_of_them_is_required() {
        let both = Env::from_pairs([
            ("WECHAT_APPSECRET", "plain"),
            ("WECHAT_APPSECRET_SECRET_ID", "wechat/app"),
        ]);
        assert_eq!(
            SecretSource::from_env(&both),
            Ok(SecretSource::SecretsManager("wechat/app".into()))
        );
        let plain = Env::from_pairs([("WECHAT_APPSECRET", "plain")]);
        assert_eq!(
            SecretSource::from_env(&plain),
            Ok(SecretSource::Value(Secret::new("plain")))
        );
        assert_eq!(
            SecretSource::from_env(&Env::default()).map_err(|e| e.var),
            Err("WECHAT_APPSECRET")
        );
    }

    #[test]
    fn secret_string_may_be_the_value_or_a_json_object() {
        assert_eq!(extract("abc").as_deref(), Some("abc"));
        assert_eq!(extract(r#"{"appsecret":"xyz"}"#).as_deref(), Some("xyz"));
        assert_eq!(extract(r#"{"other":"xyz"}"#), None);
    }

    #[test]
    fn debug_of_a_source_never_shows_the_value() {
        let shown = format!("{:?}", SecretSource::Value(Secret::new("topsecret")));
        assert!(!shown.contains("topsecret"));
    }
}
