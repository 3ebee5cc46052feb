//! The validated settings every function starts from, read once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::secret::Secret;
use crate::protocol::{EncryptMode, KeyRing};
use crate::wechat::ClientSettings;

/// Everything configurable, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The WeChat account.
    pub wechat: WechatSettings,
    /// Where fleet-wide state lives.
    pub store: StoreSettings,
    /// The callback route's limits and budgets.
    pub callback: CallbackSettings,
    /// The WeChat API client, when an AppSecret (or its Secrets Manager id) is configured.
    pub client: Option<ClientSettings>,
    /// The outbound path: send budget, queue, worker backoff.
    pub outbound: OutboundSettings,
    /// Bearer key for internal routes on the local server (`INTERNAL_API_KEY`).
    pub internal_api_key: Option<Secret>,
    /// Local server port (`PORT`, default 3000).
    pub port: u16,
    /// Whether this process is a Lambda instance (`AWS_LAMBDA_FUNCTION_NAME` is set by the runtime).
    pub on_lambda: bool,
    /// `JSSDK_ALLOWED_HOSTS`: page hosts `/jssdk/config` signs for (any host when empty).
    pub jssdk_allowed_hosts: Vec<String>,
}

/// The WeChat account and its callback crypto.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// Callback token (`WECHAT_TOKEN`, required).
    pub token: Secret,
    /// AppID (`WECHAT_APPID`): the receive id checked after decryption.
    pub appid: String,
    /// Current and previous EncodingAESKey, when safe/compatible mode is possible.
    pub keys: Option<KeyRing>,
    /// `WECHAT_ENCRYPT_MODE`.
    pub encrypt_mode: EncryptMode,
}

/// Which state store implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Per-process memory (local runs).
    Memory,
    /// DynamoDB (the fleet).
    Dynamodb,
}

/// State store selection.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `STATE_STORE`: `memory` (default) or `dynamodb`.
    pub kind: StoreKind,
    /// `DYNAMODB_TABLE`, required with `dynamodb`.
    pub table: Option<String>,
}

/// Callback limits and budgets.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// `MAX_BODY_BYTES` (default 64 KiB): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `CALLBACK_BUDGET_MS` (default 4000 of WeChat's 5000): the business handler's deadline.
    pub budget: Duration,
    /// `DEDUP_TTL_SECS` (default 3600, at least 60): how long idempotency records live.
    pub dedup_ttl: Duration,
    /// `DEDUP_LEASE_MS` (default 5000): after this long an unfinished claim can be taken over.
    pub dedup_lease: Duration,
    /// `REPLY_RULES_FILE`: rule file of the built-in handler; the demo rules when unset.
    pub rules_file: Option<PathBuf>,
}

/// The outbound message path.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// `SEND_QUEUE_URL`: the SQS queue for deferred sends; in-memory (local runs) when unset.
    pub queue_url: Option<String>,
    /// `SEND_BUDGET_MS` (default 2500): how long the send API tries before queueing instead.
    pub send_budget: Duration,
    /// `WORKER_BUDGET_MS` (default 8000): the worker's deadline per message.
    pub worker_budget: Duration,
    /// `WORKER_RETRY_BASE_SECS` (default 10): first redelivery delay; doubles per receive.
    pub retry_base: Duration,
    /// `WORKER_RETRY_MAX_SECS` (default 900): the longest redelivery delay.
    pub retry_max: Duration,
}

impl Settings {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::from_process())
    }

    /// Reads and validates `env`.
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            wechat: wechat(env)?,
            store: store(env)?,
            callback: callback(env)?,
            client: client(env)?,
            outbound: outbound(env)?,
            internal_api_key: env.optional("INTERNAL_API_KEY").map(Secret::new),
            port: env.int_in("PORT", 3000, 1, 65535)? as u16,
            on_lambda: env.optional("AWS_LAMBDA_FUNCTION_NAME").is_some(),
            jssdk_allowed_hosts: env
                .optional("JSSDK_ALLOWED_HOSTS")
                .map(|hosts| {
                    hosts
                        .split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

fn wechat(env: &Env) -> Result<WechatSettings, ConfigError> {
    let token = env.required("WECHAT_TOKEN")?;
    if token.len() < 3
        || token.len() > 32
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::new(
            "WECHAT_TOKEN",
            "must be 3-32 characters of [A-Za-z0-9_-]",
        ));
    }
    let appid = env.optional("WECHAT_APPID").unwrap_or_default().to_owned();
    let keys = match env.optional("WECHAT_ENCODING_AES_KEY") {
        None => {
            if env.optional("WECHAT_ENCODING_AES_KEY_PREVIOUS").is_some() {
                return Err(ConfigError::new(
                    "WECHAT_ENCODING_AES_KEY_PREVIOUS",
                    "is set but WECHAT_ENCODING_AES_KEY is not",
                ));
            }
            None
        }
        Some(current) => {
            if appid.is_empty() {
                return Err(ConfigError::new(
                    "WECHAT_APPID",
                    "is required when WECHAT_ENCODING_AES_KEY is set",
                ));
            }
            let previous = env.optional("WECHAT_ENCODING_AES_KEY_PREVIOUS");
            check_aes_key("WECHAT_ENCODING_AES_KEY", current)?;
            if let Some(previous) = previous {
                check_aes_key("WECHAT_ENCODING_AES_KEY_PREVIOUS", previous)?;
            }
            Some(
                KeyRing::from_encoding_aes_keys(appid.clone(), current, previous)
                    .map_err(|_| ConfigError::new("WECHAT_ENCODING_AES_KEY", "is not a valid EncodingAESKey"))?,
            )
        }
    };
    let default_mode = if keys.is_some() {
        EncryptMode::Compatible
    } else {
        EncryptMode::Plain
    };
    let encrypt_mode = env.parsed_or("WECHAT_ENCRYPT_MODE", default_mode, "one of plain, compatible, safe")?;
    if encrypt_mode != EncryptMode::Plain && keys.is_none() {
        return Err(ConfigError::new(
            "WECHAT_ENCODING_AES_KEY",
            "is required when WECHAT_ENCRYPT_MODE is not plain",
        ));
    }
    Ok(WechatSettings {
        token: Secret::new(token),
        appid,
        keys,
        encrypt_mode,
    })
}

fn check_aes_key(var: &'static str, key: &str) -> Result<(), ConfigError> {
    if key.len() == 43 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!("must be 43 characters of [A-Za-z0-9], got {} characters", key.len()),
        ))
    }
}

/// The client is optional: a callback-only deployment needs no AppSecret.
fn client(env: &Env) -> Result<Option<ClientSettings>, ConfigError> {
    let has_secret = env.optional("WECHAT_APPSECRET").is_some() || env.optional("WECHAT_APPSECRET_SECRET_ID").is_some();
    if has_secret {
        ClientSettings::from_env(env).map(Some)
    } else {
        Ok(None)
    }
}

fn outbound(env: &Env) -> Result<OutboundSettings, ConfigError> {
    let retry_base = env.int_in("WORKER_RETRY_BASE_SECS", 10, 1, 900)?;
    let retry_max = env.int_in("WORKER_RETRY_MAX_SECS", 900, 1, 12 * 3600)?;
    if retry_max < retry_base {
        return Err(ConfigError::new(
            "WORKER_RETRY_MAX_SECS",
            "must not be below WORKER_RETRY_BASE_SECS",
        ));
    }
    Ok(OutboundSettings {
        queue_url: env.optional("SEND_QUEUE_URL").map(str::to_owned),
        send_budget: Duration::from_millis(env.int_in("SEND_BUDGET_MS", 2500, 100, 25_000)?),
        worker_budget: Duration::from_millis(env.int_in("WORKER_BUDGET_MS", 8000, 500, 60_000)?),
        retry_base: Duration::from_secs(retry_base),
        retry_max: Duration::from_secs(retry_max),
    })
}

fn store(env: &Env) -> Result<StoreSettings, ConfigError> {
    let kind = match env.optional("STATE_STORE").unwrap_or("memory") {
        "memory" => StoreKind::Memory,
        "dynamodb" => StoreKind::Dynamodb,
        other => {
            return Err(ConfigError::new(
                "STATE_STORE",
                format!("must be memory or dynamodb, got {other:?}"),
            ));
        }
    };
    let table = env.optional("DYNAMODB_TABLE").map(str::to_owned);
    if kind == StoreKind::Dynamodb && table.is_none() {
        return Err(ConfigError::new(
            "DYNAMODB_TABLE",
            "is required when STATE_STORE=dynamodb",
        ));
    }
    Ok(StoreSettings { kind, table })
}

fn callback(env: &Env) -> Result<CallbackSettings, ConfigError> {
    Ok(CallbackSettings {
        max_body_bytes: env.int_in("MAX_BODY_BYTES", 64 * 1024, 1024, 1024 * 1024)? as usize,
        budget: Duration::from_millis(env.int_in("CALLBACK_BUDGET_MS", 4000, 100, 4800)?),
        dedup_ttl: Duration::from_secs(env.int_in("DEDUP_TTL_SECS", 3600, 60, 30 * 86400)?),
        dedup_lease: Duration::from_millis(env.int_in("DEDUP_LEASE_MS", 5000, 500, 60_000)?),
        rules_file: env.optional("REPLY_RULES_FILE").map(PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        Settings::from(&Env::from_pairs(pairs.iter().copied())).unwrap_err()
    }

    #[test]
    fn minimal_environment_gives_documented_defaults() {
        let settings = Settings::from(&Env::from_pairs([("WECHAT_TOKEN", "tok")])).unwrap();
        assert_eq!(settings.wechat.encrypt_mode, EncryptMode::Plain);
        assert_eq!(settings.store.kind, StoreKind::Memory);
        assert_eq!(settings.callback.max_body_bytes, 65536);
        assert_eq!(settings.callback.budget, Duration::from_secs(4));
        assert_eq!(settings.port, 3000);
        assert!(settings.client.is_none(), "no AppSecret, no client");
        assert_eq!(settings.outbound.send_budget, Duration::from_millis(2500));
    }

    #[test]
    fn a_key_defaults_the_mode_to_compatible() {
        let env = Env::from_pairs([
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_ENCODING_AES_KEY", KEY),
        ]);
        assert_eq!(
            Settings::from(&env).unwrap().wechat.encrypt_mode,
            EncryptMode::Compatible
        );
    }

    #[test]
    fn each_invalid_variable_is_named() {
        assert_eq!(err(&[]).var, "WECHAT_TOKEN");
        let short = err(&[
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_ENCODING_AES_KEY", "short"),
        ]);
        assert_eq!(short.var, "WECHAT_ENCODING_AES_KEY");
        assert!(short.problem.contains("43 characters"), "{short}");
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCODING_AES_KEY", KEY)]).var,
            "WECHAT_APPID"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCRYPT_MODE", "safe")]).var,
            "WECHAT_ENCODING_AES_KEY"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCRYPT_MODE", "loud")]).var,
            "WECHAT_ENCRYPT_MODE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("STATE_STORE", "dynamodb")]).var,
            "DYNAMODB_TABLE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("STATE_STORE", "redis")]).var,
            "STATE_STORE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("CALLBACK_BUDGET_MS", "6000")]).var,
            "CALLBACK_BUDGET_MS"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("DEDUP_TTL_SECS", "10")]).var,
            "DEDUP_TTL_SECS"
        );
        let bad_base = [
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_API_BASE", "ftp://x"),
        ];
        assert_eq!(err(&bad_base).var, "WECHAT_API_BASE");
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_APPSECRET", "s")]).var,
            "WECHAT_APPID"
        );
        let retry = [
            ("WECHAT_TOKEN", "tok"),
            ("WORKER_RETRY_BASE_SECS", "60"),
            ("WORKER_RETRY_MAX_SECS", "30"),
        ];
        assert_eq!(err(&retry).var, "WORKER_RETRY_MAX_SECS");
        assert_eq!(err(&[("WECHAT_TOKEN", "tok"), ("PORT", "0")]).var, "PORT");
    }
}
