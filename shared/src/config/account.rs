//! The callback's account: token, AppID, EncodingAESKeys and the encryption mode.

use super::env::{ConfigError, Env};
use crate::protocol::{EncryptMode, KeyRing};
use crate::secret::Secret;

/// What the callback needs to authenticate WeChat and open its messages.
#[derive(Debug, Clone)]
pub struct CallbackAccount {
    /// Callback token (`WECHAT_TOKEN`, required).
    pub token: Secret,
    /// AppID (`WECHAT_APPID`): the receive id checked after decryption.
    pub appid: String,
    /// Current and previous EncodingAESKey, when safe/compatible mode is possible.
    pub keys: Option<KeyRing>,
    /// `WECHAT_ENCRYPT_MODE`.
    pub mode: EncryptMode,
}

/// The account's secret values and settings, before validation (from the environment, or from
/// the fields of a Secrets Manager secret).
#[derive(Debug, Clone, Copy)]
pub struct AccountParts<'a> {
    /// The callback token.
    pub token: &'a str,
    /// The AppID ("" when unset).
    pub appid: &'a str,
    /// The current EncodingAESKey.
    pub key: Option<&'a str>,
    /// The previous EncodingAESKey (rotation).
    pub previous: Option<&'a str>,
    /// `WECHAT_ENCRYPT_MODE`, when set.
    pub mode: Option<EncryptMode>,
}

/// Where the callback's secrets come from.
#[derive(Debug, Clone)]
pub enum AccountSource {
    /// Read from the environment and validated (local runs, tests).
    Ready(CallbackAccount),
    /// The token and EncodingAESKeys are the fields `token`, `encoding_aes_key` and
    /// `encoding_aes_key_previous` of a Secrets Manager secret (`WECHAT_CALLBACK_SECRET_ID`),
    /// loaded and validated at cold start; AppID and mode stay plain variables.
    SecretsManager {
        /// The secret id or ARN.
        id: String,
        /// `WECHAT_APPID`.
        appid: String,
        /// `WECHAT_ENCRYPT_MODE`, when set.
        mode: Option<EncryptMode>,
    },
}

/// The variable named in errors about the secret's fields.
pub const CALLBACK_SECRET_VAR: &str = "WECHAT_CALLBACK_SECRET_ID";

/// Tokens shorter than this are accepted (WeChat allows 3) but warned about: the signature is
/// SHA-1 over the token and two public values, so a captured query allows an offline search.
pub const SHORT_TOKEN: usize = 16;

impl AccountSource {
    /// `WECHAT_CALLBACK_SECRET_ID` when set (the secret holds token and keys), else the plain
    /// variables `WECHAT_TOKEN`, `WECHAT_ENCODING_AES_KEY(_PREVIOUS)`; always `WECHAT_APPID` and
    /// `WECHAT_ENCRYPT_MODE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env.optional("WECHAT_ENCRYPT_MODE") {
            None => None,
            Some(_) => Some(env.parsed_or(
                "WECHAT_ENCRYPT_MODE",
                EncryptMode::Plain,
                "one of plain, compatible, safe",
            )?),
        };
        let appid = env.optional("WECHAT_APPID").unwrap_or_default();
        for var in [
            "WECHAT_TOKEN",
            "WECHAT_ENCODING_AES_KEY",
            "WECHAT_ENCODING_AES_KEY_PREVIOUS",
        ] {
            env.no_plain_secret_on_lambda(var, CALLBACK_SECRET_VAR)?;
        }
        if env.on_lambda()
            && env.optional(CALLBACK_SECRET_VAR).is_none()
            && env.optional("ALLOW_PLAIN_SECRETS") != Some("true")
        {
            return Err(ConfigError::new(
                CALLBACK_SECRET_VAR,
                "is required on Lambda: the callback reads its token and EncodingAESKeys from that Secrets Manager secret",
            ));
        }
        if let Some(id) = env.optional(CALLBACK_SECRET_VAR) {
            return Ok(Self::SecretsManager {
                id: id.to_owned(),
                appid: appid.to_owned(),
                mode,
            });
        }
        let parts = AccountParts {
            token: env.required("WECHAT_TOKEN")?,
            appid,
            key: env.optional("WECHAT_ENCODING_AES_KEY"),
            previous: env.optional("WECHAT_ENCODING_AES_KEY_PREVIOUS"),
            mode,
        };
        CallbackAccount::from_parts(parts, None).map(Self::Ready)
    }
}

impl CallbackAccount {
    /// `WECHAT_TOKEN`, `WECHAT_APPID`, `WECHAT_ENCODING_AES_KEY(_PREVIOUS)`, `WECHAT_ENCRYPT_MODE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable, or `WECHAT_CALLBACK_SECRET_ID`
    /// when the account comes from Secrets Manager (then use [`AccountSource`]).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match AccountSource::from_env(env)? {
            AccountSource::Ready(account) => Ok(account),
            AccountSource::SecretsManager { .. } => Err(ConfigError::new(
                CALLBACK_SECRET_VAR,
                "is set: the account is loaded from Secrets Manager at cold start",
            )),
        }
    }

    /// Validates `parts`. `secret`: the variable naming the secret they came from (errors name
    /// it and the field); `None`: they came from the plain variables (errors name those).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable (or secret) and the broken rule.
    pub fn from_parts(parts: AccountParts<'_>, secret: Option<&'static str>) -> Result<Self, ConfigError> {
        let name = |var: &'static str| secret.unwrap_or(var);
        let field = |field: &str, problem: &str| match secret {
            Some(_) => format!("field {field}: {problem}"),
            None => problem.to_owned(),
        };
        let token = parts.token;
        if token.len() < 3
            || token.len() > 32
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                name("WECHAT_TOKEN"),
                field("token", "must be 3-32 characters of [A-Za-z0-9_-]"),
            ));
        }
        if token.len() < SHORT_TOKEN {
            tracing::warn!(
                length = token.len(),
                "the callback token is short: a captured signed request allows an offline search for it; use 32 random characters"
            );
        }
        let appid = parts.appid.to_owned();
        let keys = match parts.key {
            None => {
                if parts.previous.is_some() {
                    return Err(ConfigError::new(
                        name("WECHAT_ENCODING_AES_KEY_PREVIOUS"),
                        field("encoding_aes_key_previous", "is set but the current key is not"),
                    ));
                }
                None
            }
            Some(current) => {
                if appid.is_empty() {
                    return Err(ConfigError::new(
                        "WECHAT_APPID",
                        "is required when an EncodingAESKey is set",
                    ));
                }
                check_aes_key(
                    name("WECHAT_ENCODING_AES_KEY"),
                    secret.map(|_| "encoding_aes_key"),
                    current,
                )?;
                if let Some(previous) = parts.previous {
                    check_aes_key(
                        name("WECHAT_ENCODING_AES_KEY_PREVIOUS"),
                        secret.map(|_| "encoding_aes_key_previous"),
                        previous,
                    )?;
                }
                Some(
                    KeyRing::from_encoding_aes_keys(appid.clone(), current, parts.previous).map_err(|_| {
                        ConfigError::new(
                            name("WECHAT_ENCODING_AES_KEY"),
                            field("encoding_aes_key", "is not a valid EncodingAESKey"),
                        )
                    })?,
                )
            }
        };
        let default_mode = if keys.is_some() {
            EncryptMode::Compatible
        } else {
            EncryptMode::Plain
        };
        let mode = parts.mode.unwrap_or(default_mode);
        if mode != EncryptMode::Plain && keys.is_none() {
            return Err(ConfigError::new(
                name("WECHAT_ENCODING_AES_KEY"),
                field("encoding_aes_key", "is required when WECHAT_ENCRYPT_MODE is not plain"),
            ));
        }
        Ok(Self {
            token: Secret::new(token),
            appid,
            keys,
            mode,
        })
    }
}

fn check_aes_key(var: &'static str, field: Option<&str>, key: &str) -> Result<(), ConfigError> {
    if key.len() == 43 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(());
    }
    let problem = format!("must be 43 characters of [A-Za-z0-9], got {} characters", key.len());
    Err(ConfigError::new(
        var,
        field.map_or_else(|| problem.clone(), |f| format!("field {f}: {problem}")),
    ))
}
