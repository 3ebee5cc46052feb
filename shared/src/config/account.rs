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

impl CallbackAccount {
    /// `WECHAT_TOKEN`, `WECHAT_APPID`, `WECHAT_ENCODING_AES_KEY(_PREVIOUS)`, `WECHAT_ENCRYPT_MODE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
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
        let mode = env.parsed_or("WECHAT_ENCRYPT_MODE", default_mode, "one of plain, compatible, safe")?;
        if mode != EncryptMode::Plain && keys.is_none() {
            return Err(ConfigError::new(
                "WECHAT_ENCODING_AES_KEY",
                "is required when WECHAT_ENCRYPT_MODE is not plain",
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
