//! The follower sync's and the follower read API's configuration.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SYNC_CALLS_PER_MINUTE` | 600 (1–6000) | upstream calls a run makes per minute at most (list, batch and tag calls) |
//! | `SYNC_CONCURRENCY` | 2 (1–8) | profile batches in flight at most |
//! | `SYNC_RUN_MARGIN_MS` | 10000 (1000–60000) | a run stops this long before the invocation's deadline |
//! | `INTERNAL_API_KEY` | — | the read API's bearer key (unset: IAM-signed requests only), as `/messages/*` |

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::store::Store;
use super::wechat::WechatConfig;
use crate::secret::Secret;
use crate::sync::Politeness;

/// The sync function (EventBridge ticks).
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The WeChat client.
    pub wechat: WechatConfig,
    /// The fleet's table.
    pub store: Store,
    /// Rate and concurrency caps.
    pub politeness: Politeness,
    /// A run stops this long before the invocation's deadline.
    pub run_margin: Duration,
}

impl SyncConfig {
    /// Reads the sync function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let calls = env.int_in("SYNC_CALLS_PER_MINUTE", 600, 1, 6000)?;
        let concurrency = env.int_in("SYNC_CONCURRENCY", 2, 1, 8)?;
        Ok(Self {
            wechat: WechatConfig::from_env(env)?,
            store: Store::from_env(env)?,
            politeness: Politeness {
                calls_per_minute: u32::try_from(calls).unwrap_or(600),
                concurrency: usize::try_from(concurrency).unwrap_or(2),
            },
            run_margin: env.millis_in("SYNC_RUN_MARGIN_MS", 10_000, 1_000, 60_000)?,
        })
    }
}

/// The follower read API (`GET /followers…`).
#[derive(Debug, Clone)]
pub struct FollowersConfig {
    /// The fleet's table.
    pub store: Store,
    /// `INTERNAL_API_KEY`.
    pub internal_api_key: Option<Secret>,
}

impl FollowersConfig {
    /// Reads the read API's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(env)?,
            internal_api_key: env.optional("INTERNAL_API_KEY").map(Secret::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_have_defaults_and_ranges_named_in_errors() {
        let env = Env::from_pairs([("WECHAT_APPID", "wx1"), ("WECHAT_APPSECRET", "s")]);
        let config = SyncConfig::from_env(&env).unwrap();
        assert_eq!(config.politeness.calls_per_minute, 600);
        assert_eq!(config.politeness.concurrency, 2);
        let env = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("SYNC_CONCURRENCY", "50"),
        ]);
        assert_eq!(SyncConfig::from_env(&env).unwrap_err().var, "SYNC_CONCURRENCY");
    }
}
