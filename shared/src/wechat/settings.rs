//! The WeChat client's settings: plain data, filled in by the configuration module (which reads
//! the environment) or by tests; the loaded AppSecret is passed to the client separately.

use std::time::Duration;

use super::api::ApiPolicies;
use super::token::{TokenConfig, TokenMode};
use crate::resilience::{BreakerConfig, OverrideSet};

/// WeChat's API domains in the documented failover order.
pub const DEFAULT_API_BASES: &str = "https://api.weixin.qq.com,https://api2.weixin.qq.com";

/// Everything the client needs besides the store, the clock and the loaded AppSecret.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The account.
    pub appid: String,
    /// API base URLs in failover order (no trailing slash).
    pub api_bases: Vec<String>,
    /// stable_token (default) or classic.
    pub token_mode: TokenMode,
    /// Token manager tuning.
    pub token: TokenConfig,
    /// Per-API policies.
    pub policies: ApiPolicies,
    /// Connect timeout of the HTTP client.
    pub connect_timeout: Duration,
    /// Breaker settings of the per-API breakers (`wechat.token`, `wechat.message`, ...).
    pub api_breaker: BreakerConfig,
    /// Breaker settings of the per-domain breakers (`wechat.domain.{host}`).
    pub domain_breaker: BreakerConfig,
    /// Resilience overrides applied over the defaults above, in order (later wins), e.g. a JSON
    /// file's then variables'. Runtime overrides from the store (`config#breaker`) win over all.
    pub overrides: Vec<OverrideSet>,
    /// The region whose breaker state this client keeps (`AWS_REGION` of a multi-region
    /// deployment, `MULTI_REGION=true`); `None`: one state for the whole table.
    pub breaker_region: Option<String>,
}

impl ClientSettings {
    /// Settings for `appid` with defaults everywhere (tests, the local server).
    pub fn new(appid: &str, api_bases: Vec<String>) -> Self {
        Self {
            appid: appid.to_owned(),
            api_bases,
            token_mode: TokenMode::Stable,
            token: TokenConfig::default(),
            policies: ApiPolicies::default(),
            connect_timeout: Duration::from_secs(1),
            api_breaker: BreakerConfig::default(),
            domain_breaker: BreakerConfig::default(),
            overrides: Vec::new(),
            breaker_region: None,
        }
    }
}
