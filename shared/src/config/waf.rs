//! The callback IP refresh's configuration: the account and the WAF IP set it keeps current.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CALLBACK_IP_SET_NAME`, `CALLBACK_IP_SET_ID` | — (required) | the `AWS::WAFv2::IPSet` of WeChat's callback servers |
//! | `CALLBACK_IP_SET_SCOPE` | `CLOUDFRONT` | its scope (`CLOUDFRONT` sets live in us-east-1; `REGIONAL`) |
//! | `CALLBACK_IP_SET_REGION` | `us-east-1` for `CLOUDFRONT`, else `AWS_REGION` | where its API is |

use super::env::{ConfigError, Env};
use super::store::Store;
use super::wechat::WechatConfig;

/// The IP set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSetRef {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// `CLOUDFRONT` or `REGIONAL`.
    pub scope: String,
    /// The region of its API.
    pub region: String,
}

/// The callback-ip-refresh function (hourly).
#[derive(Debug, Clone)]
pub struct CallbackIpConfig {
    /// The account's client (`get_callback_ip`).
    pub wechat: WechatConfig,
    /// The fleet's tokens.
    pub store: Store,
    /// The IP set to keep current.
    pub ip_set: IpSetRef,
}

impl CallbackIpConfig {
    /// Reads the function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let scope = env.optional("CALLBACK_IP_SET_SCOPE").unwrap_or("CLOUDFRONT").to_owned();
        if !matches!(scope.as_str(), "CLOUDFRONT" | "REGIONAL") {
            return Err(ConfigError::new(
                "CALLBACK_IP_SET_SCOPE",
                "must be CLOUDFRONT or REGIONAL",
            ));
        }
        let region = match env.optional("CALLBACK_IP_SET_REGION") {
            Some(region) => region.to_owned(),
            // A CloudFront web ACL and its IP sets are global: their API is in us-east-1.
            None if scope == "CLOUDFRONT" => "us-east-1".to_owned(),
            None => env.required("AWS_REGION")?.to_owned(),
        };
        Ok(Self {
            wechat: WechatConfig::from_env(env)?,
            store: Store::from_env(env)?,
            ip_set: IpSetRef {
                name: env.required("CALLBACK_IP_SET_NAME")?.to_owned(),
                id: env.required("CALLBACK_IP_SET_ID")?.to_owned(),
                scope,
                region,
            },
        })
    }
}
