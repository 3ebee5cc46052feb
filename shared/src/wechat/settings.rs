//! The WeChat client's settings, read from the environment once per cold start.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `WECHAT_APPID` | required | the account |
//! | `WECHAT_APPSECRET` / `WECHAT_APPSECRET_SECRET_ID` | one required | see [`SecretSource`] |
//! | `WECHAT_API_BASE` | `https://api.weixin.qq.com,https://api2.weixin.qq.com` | failover order |
//! | `WECHAT_TOKEN_MODE` | `stable` | `stable` or `classic` token endpoint |
//! | `WECHAT_TOKEN_REFRESH_MARGIN_SECS` | 300 | refresh this long before expiry (30–1800) |
//! | `WECHAT_TOKEN_LEASE_MS` | 10000 | refresh lease (500–60000) |
//! | `WECHAT_CONNECT_TIMEOUT_MS` | 1000 | TCP/TLS connect timeout (50–10000) |
//! | `WECHAT_POLICY_<API>` | — | per-API policy overrides, see [`super::api`] |
//! | `RESILIENCE_CONFIG_FILE` | — | JSON resilience overrides (`{"name": {"setting": value}}`) |
//! | `RESILIENCE__{NAME}__{SETTING}` | — | one resilience override (later wins over the file) |

use std::time::Duration;

use super::api::{Api, ApiPolicies};
use super::guard::{domain_breaker_name, policy_name};
use super::secret::SecretSource;
use super::token::{TokenConfig, TokenMode};
use crate::config::{ConfigError, Env};
use crate::resilience::OverrideSet;
use crate::resilience::retry::RetryConfig;
use crate::resilience::{BreakerConfig, PolicyConfig, RegistryBuilder};

/// Slack between an API's own HTTP timeout and the resilience attempt limit, so the HTTP
/// timeout (which knows whether the API is idempotent) normally fires first.
const ATTEMPT_SLACK: Duration = Duration::from_millis(250);

/// WeChat's API domains in the documented failover order.
pub const DEFAULT_API_BASES: &str = "https://api.weixin.qq.com,https://api2.weixin.qq.com";

/// Everything the client needs besides the store, the clock and the loaded secret.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The account.
    pub appid: String,
    /// Where the AppSecret comes from.
    pub secret: SecretSource,
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
    /// Resilience overrides applied over the defaults above, in order (later wins): the JSON file
    /// `RESILIENCE_CONFIG_FILE`, then `RESILIENCE__{NAME}__{SETTING}` variables. Runtime
    /// overrides from the store (`config#breaker`) win over both.
    pub overrides: Vec<OverrideSet>,
}

impl ClientSettings {
    /// Settings for `appid` with defaults everywhere (tests, the local server).
    pub fn new(appid: &str, secret: SecretSource, api_bases: Vec<String>) -> Self {
        Self {
            appid: appid.to_owned(),
            secret,
            api_bases,
            token_mode: TokenMode::Stable,
            token: TokenConfig::default(),
            policies: ApiPolicies::default(),
            connect_timeout: Duration::from_secs(1),
            api_breaker: BreakerConfig::default(),
            domain_breaker: BreakerConfig::default(),
            overrides: Vec::new(),
        }
    }

    /// Adds this client's named configurations to a resilience registry: one retry policy per
    /// API (`wechat.api.{name}`), the API breakers and one breaker per domain. Overrides given
    /// to the registry (`RESILIENCE__WECHAT_API_CUSTOM_SEND__MAX_ATTEMPTS=2`, runtime items) win.
    ///
    /// # Errors
    /// A resilience [`ConfigError`](crate::resilience::ConfigError) naming the policy and field.
    pub fn register(&self, mut builder: RegistryBuilder) -> Result<RegistryBuilder, crate::resilience::ConfigError> {
        let mut breakers = Vec::new();
        for api in Api::ALL {
            let own = self.policies.get(api);
            let name = policy_name(api);
            let retry = RetryConfig::builder()
                .max_attempts(own.max_attempts)
                .base_delay(own.base_delay)
                .max_delay(own.max_delay)
                .attempt_timeout(Some(own.timeout + ATTEMPT_SLACK))
                .build()
                .map_err(|e| e.in_scope(&name))?;
            builder = builder.config(
                &name,
                PolicyConfig {
                    retry,
                    ..PolicyConfig::default()
                },
            );
            if !breakers.contains(&own.breaker) {
                breakers.push(own.breaker);
            }
        }
        for name in breakers {
            builder = builder.config(
                &name,
                PolicyConfig {
                    breaker: self.api_breaker.clone(),
                    ..PolicyConfig::default()
                },
            );
        }
        for overrides in &self.overrides {
            builder = builder.overrides(overrides.clone());
        }
        for base in &self.api_bases {
            let breaker = self.domain_breaker.clone();
            builder = builder.config(
                &domain_breaker_name(base),
                PolicyConfig {
                    breaker,
                    ..PolicyConfig::default()
                },
            );
        }
        Ok(builder)
    }

    /// Reads and validates the variables listed in the module docs.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let appid = env.required("WECHAT_APPID")?.to_owned();
        let secret = SecretSource::from_env(env)?;
        let api_bases = parse_bases(env.optional("WECHAT_API_BASE").unwrap_or(DEFAULT_API_BASES))?;
        let token_mode = env.parsed_or("WECHAT_TOKEN_MODE", TokenMode::Stable, "stable or classic")?;
        let token = TokenConfig {
            refresh_margin: Duration::from_secs(env.int_in("WECHAT_TOKEN_REFRESH_MARGIN_SECS", 300, 30, 1800)?),
            lease: Duration::from_millis(env.int_in("WECHAT_TOKEN_LEASE_MS", 10_000, 500, 60_000)?),
            ..TokenConfig::default()
        };
        let connect_timeout = Duration::from_millis(env.int_in("WECHAT_CONNECT_TIMEOUT_MS", 1_000, 50, 10_000)?);
        let policies = ApiPolicies::from_env(env)?;
        Ok(Self {
            appid,
            secret,
            api_bases,
            token_mode,
            token,
            policies,
            connect_timeout,
            api_breaker: BreakerConfig::default(),
            domain_breaker: BreakerConfig::default(),
            overrides: overrides(env)?,
        })
    }
}

fn overrides(env: &Env) -> Result<Vec<OverrideSet>, ConfigError> {
    let mut sets = Vec::new();
    if let Some(path) = env.optional("RESILIENCE_CONFIG_FILE") {
        let file = OverrideSet::from_json_file(std::path::Path::new(path))
            .map_err(|e| ConfigError::new("RESILIENCE_CONFIG_FILE", e.to_string()))?;
        sets.push(file);
    }
    let vars = OverrideSet::from_env(env.pairs()).map_err(|e| ConfigError::new("RESILIENCE__*", e.to_string()))?;
    sets.push(vars);
    Ok(sets)
}

fn parse_bases(raw: &str) -> Result<Vec<String>, ConfigError> {
    let bases: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| b.trim_end_matches('/').to_owned())
        .collect();
    if bases.is_empty() {
        return Err(ConfigError::new("WECHAT_API_BASE", "must list at least one base URL"));
    }
    if let Some(bad) = bases
        .iter()
        .find(|b| !(b.starts_with("https://") || b.starts_with("http://")))
    {
        return Err(ConfigError::new(
            "WECHAT_API_BASE",
            format!("{bad:?} is not an http(s) URL"),
        ));
    }
    Ok(bases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_both_wechat_domains_and_stable_token() {
        let env = Env::from_pairs([("WECHAT_APPID", "wx1"), ("WECHAT_APPSECRET", "s")]);
        let settings = ClientSettings::from_env(&env).expect("valid");
        assert_eq!(
            settings.api_bases,
            ["https://api.weixin.qq.com", "https://api2.weixin.qq.com"]
        );
        assert_eq!(settings.token_mode, TokenMode::Stable);
        assert_eq!(settings.token.refresh_margin, Duration::from_secs(300));
    }

    #[test]
    fn bases_are_trimmed_and_validated() {
        let env = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_API_BASE", " http://127.0.0.1:1/ ,https://sh.api.weixin.qq.com"),
            ("WECHAT_TOKEN_MODE", "classic"),
        ]);
        let settings = ClientSettings::from_env(&env).expect("valid");
        assert_eq!(
            settings.api_bases,
            ["http://127.0.0.1:1", "https://sh.api.weixin.qq.com"]
        );
        assert_eq!(settings.token_mode, TokenMode::Classic);
        let bad = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_API_BASE", "ftp://x"),
        ]);
        assert_eq!(
            ClientSettings::from_env(&bad).map_err(|e| e.var).err(),
            Some("WECHAT_API_BASE")
        );
    }

    #[test]
    fn resilience_overrides_from_the_environment_reach_the_registry() {
        let env = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("RESILIENCE__WECHAT_MESSAGE__FAILURE_RATE_THRESHOLD", "60"),
        ]);
        let settings = ClientSettings::from_env(&env).expect("valid");
        let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::ManualClock::new(0));
        let store: crate::store::SharedStore =
            std::sync::Arc::new(crate::store::memory::MemoryStore::new(clock.clone()));
        let registry = settings
            .register(crate::resilience::Registry::builder(store, clock))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(registry.breaker("wechat.message").config().failure_rate_threshold, 60.0);
        assert_ne!(registry.breaker("wechat.token").config().failure_rate_threshold, 60.0);
    }

    #[test]
    fn an_unknown_resilience_setting_fails_naming_the_variable() {
        let env = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("RESILIENCE__X__NOPE", "1"),
        ]);
        let error = ClientSettings::from_env(&env).unwrap_err();
        assert_eq!(error.var, "RESILIENCE__*");
        assert!(error.problem.contains("RESILIENCE__X__NOPE"), "{error}");
    }
}
