//! The pre-traffic hook's configuration.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HOOK_CALLBACK_VERSION` | — (required on Lambda) | the callback's new version (ARN) |
//! | `HOOK_SEND_VERSION`, `HOOK_JSSDK_VERSION` | — (not checked) | the send and JS-SDK functions' new versions |
//! | `HOOK_TEST_OPENID` | `wechat-ha-canary` | the sender of the test message, the recipient of the dry-run send |
//! | `HOOK_JSSDK_URL` | `https://example.com/` | the page the JS-SDK check signs for (one of `JSSDK_ALLOWED_HOSTS` when set) |
//! | the callback's account variables | — | `WECHAT_CALLBACK_SECRET_ID` (or `WECHAT_TOKEN`…), `WECHAT_APPID`, `WECHAT_ENCRYPT_MODE` |

use super::account::AccountSource;
use super::env::{ConfigError, Env};

/// What the hook checks and how it signs.
#[derive(Debug, Clone)]
pub struct HookConfig {
    /// The new versions (ARNs): callback, send, JS-SDK.
    pub versions: HookVersions,
    /// The callback's account (token and keys sign the checks).
    pub account: AccountSource,
    /// `HOOK_TEST_OPENID`.
    pub test_openid: String,
    /// `HOOK_JSSDK_URL`.
    pub page_url: String,
}

/// The versions a deployment is about to send traffic to.
#[derive(Debug, Clone, Default)]
pub struct HookVersions {
    /// `HOOK_CALLBACK_VERSION`.
    pub callback: Option<String>,
    /// `HOOK_SEND_VERSION`.
    pub send: Option<String>,
    /// `HOOK_JSSDK_VERSION`.
    pub jssdk: Option<String>,
}

impl HookConfig {
    /// Reads the hook's variables (on Lambda the callback's version is required).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let version = |name: &str| env.optional(name).map(str::to_owned);
        let versions = HookVersions {
            callback: version("HOOK_CALLBACK_VERSION"),
            send: version("HOOK_SEND_VERSION"),
            jssdk: version("HOOK_JSSDK_VERSION"),
        };
        if env.on_lambda() && versions.callback.is_none() {
            return Err(ConfigError::new(
                "HOOK_CALLBACK_VERSION",
                "is required: the version to check",
            ));
        }
        Ok(Self {
            versions,
            account: AccountSource::from_env(env)?,
            test_openid: env
                .optional("HOOK_TEST_OPENID")
                .unwrap_or("wechat-ha-canary")
                .to_owned(),
            page_url: env
                .optional("HOOK_JSSDK_URL")
                .unwrap_or("https://example.com/")
                .to_owned(),
        })
    }
}
