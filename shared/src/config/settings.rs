//! The validated settings every function starts from, read once per cold start.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Env};
use super::secret::Secret;
use crate::protocol::{EncryptMode, KeyRing};

/// Everything configurable, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The WeChat account.
    pub wechat: WechatSettings,
    /// Where fleet-wide state lives.
    pub store: StoreSettings,
    /// The callback route's limits and budgets.
    pub callback: CallbackSettings,
    /// Bearer key for internal routes on the local server (`INTERNAL_API_KEY`).
    pub internal_api_key: Option<Secret>,
    /// Local server port (`PORT`, default 3000).
    pub port: u16,
}

/// The WeChat account and its callback crypto.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// Callback token (`WECHAT_TOKEN`, required).
    pub token: Secret,
    /// AppID (`WECHAT_APPID`): the receive id checked after decryption.
    pub appid: String,
    /// AppSecret (`WECHAT_APPSECRET`), for API calls.
    pub appsecret: Option<Secret>,
    /// Current and previous EncodingAESKey, when safe/compatible mode is possible.
    pub keys: Option<KeyRing>,
    /// `WECHAT_ENCRYPT_MODE`.
    pub encrypt_mode: EncryptMode,
    /// API base URLs in failover order (`WECHAT_API_BASE`).
    pub api_bases: Vec<String>,
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

/// Official API domains in WeChat's documented failover order.
pub const DEFAULT_API_BASES: &str = "https://api.weixin.qq.com,https://api2.weixin.qq.com";

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
            internal_api_key: env.optional("INTERNAL_API_KEY").map(Secret::new),
            port: env.int_in("PORT", 3000, 1, 65535)? as u16,
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
    let api_bases = api_bases(env.optional("WECHAT_API_BASE").unwrap_or(DEFAULT_API_BASES))?;
    Ok(WechatSettings {
        token: Secret::new(token),
        appid,
        appsecret: env.optional("WECHAT_APPSECRET").map(Secret::new),
        keys,
        encrypt_mode,
        api_bases,
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

fn api_bases(raw: &str) -> Result<Vec<String>, ConfigError> {
    let bases: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    if bases.is_empty()
        || !bases
            .iter()
            .all(|b| b.starts_with("https://") || b.starts_with("http://"))
    {
        return Err(ConfigError::new(
            "WECHAT_API_BASE",
            "must be a comma-separated list of http(s) URLs",
        ));
    }
    Ok(bases)
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
        assert_eq!(
            settings.wechat.api_bases,
            ["https://api.weixin.qq.com", "https://api2.weixin.qq.com"]
        );
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
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_API_BASE", "ftp://x")]).var,
            "WECHAT_API_BASE"
        );
        assert_eq!(err(&[("WECHAT_TOKEN", "tok"), ("PORT", "0")]).var, "PORT");
    }
}
