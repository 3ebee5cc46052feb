//! The WeChat API client's configuration: the account, the AppSecret's source, the API domains,
//! the token manager's tuning, per-API policies and resilience overrides.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `WECHAT_APPID` | required | the account |
//! | `WECHAT_APPSECRET` / `WECHAT_APPSECRET_SECRET_ID` | one required | the AppSecret, or its Secrets Manager id |
//! | `WECHAT_API_BASE` | `https://api.weixin.qq.com,https://api2.weixin.qq.com` | failover order |
//! | `WECHAT_TOKEN_MODE` | `stable` | `stable` or `classic` token endpoint |
//! | `WECHAT_TOKEN_REFRESH_MARGIN_SECS` | 300 | refresh this long before expiry (30–1800) |
//! | `WECHAT_TOKEN_LEASE_MS` | 10000 | refresh lease (500–60000) |
//! | `WECHAT_CONNECT_TIMEOUT_MS` | 1000 | TCP/TLS connect timeout (50–10000) |
//! | `WECHAT_POLICY_<API>` | — | per-API policy overrides (`timeout_ms=2000,max_attempts=2`) |
//! | `RESILIENCE_CONFIG_FILE` | — | JSON resilience overrides (`{"name": {"setting": value}}`) |
//! | `RESILIENCE__{NAME}__{SETTING}` | — | one resilience override (later wins over the file) |

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::secret_ref::SecretRef;
use crate::resilience::OverrideSet;
use crate::wechat::{Api, ApiPolicies, ApiPolicy, ClientSettings, DEFAULT_API_BASES, TokenConfig, TokenMode};

/// The client's settings and where its AppSecret comes from.
#[derive(Debug, Clone)]
pub struct WechatConfig {
    /// Everything but the secret.
    pub client: ClientSettings,
    /// The AppSecret's source, loaded once per cold start.
    pub appsecret: SecretRef,
}

impl WechatConfig {
    /// Reads and validates the variables listed in the module docs.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let client = client_settings(env)?;
        env.no_plain_secret_on_lambda("WECHAT_APPSECRET", "WECHAT_APPSECRET_SECRET_ID")?;
        let appsecret = SecretRef::required(env, "WECHAT_APPSECRET", "WECHAT_APPSECRET_SECRET_ID", "appsecret")?;
        Ok(Self { client, appsecret })
    }

    /// Whether an AppSecret (or its Secrets Manager id) is configured at all.
    pub fn is_configured(env: &Env) -> bool {
        env.optional("WECHAT_APPSECRET").is_some() || env.optional("WECHAT_APPSECRET_SECRET_ID").is_some()
    }
}

/// The client's settings without its secret — also what the admin and tuner functions need to
/// know every breaker by name and configuration.
///
/// # Errors
/// [`ConfigError`] naming the first missing or invalid variable.
pub fn client_settings(env: &Env) -> Result<ClientSettings, ConfigError> {
    let appid = env.required("WECHAT_APPID")?.to_owned();
    settings_for(env, appid)
}

/// The settings of a client of the mini-program (`MINIPROGRAM_APPID`) and where its AppSecret
/// comes from (`MINIPROGRAM_APPSECRET` / `MINIPROGRAM_APPSECRET_SECRET_ID`); domains, policies and
/// overrides are the Official Account's (one WeChat, one set of breakers).
///
/// # Errors
/// [`ConfigError`] naming the first missing or invalid variable.
pub fn miniprogram_config(env: &Env) -> Result<WechatConfig, ConfigError> {
    let appid = env.required("MINIPROGRAM_APPID")?.to_owned();
    let client = settings_for(env, appid)?;
    env.no_plain_secret_on_lambda("MINIPROGRAM_APPSECRET", "MINIPROGRAM_APPSECRET_SECRET_ID")?;
    let appsecret = SecretRef::required(
        env,
        "MINIPROGRAM_APPSECRET",
        "MINIPROGRAM_APPSECRET_SECRET_ID",
        "appsecret",
    )?;
    Ok(WechatConfig { client, appsecret })
}

fn settings_for(env: &Env, appid: String) -> Result<ClientSettings, ConfigError> {
    let api_bases = parse_bases(env.optional("WECHAT_API_BASE").unwrap_or(DEFAULT_API_BASES))?;
    let mut client = ClientSettings::new(&appid, api_bases);
    client.token_mode = env.parsed_or("WECHAT_TOKEN_MODE", TokenMode::Stable, "stable or classic")?;
    client.token = TokenConfig {
        refresh_margin: env.secs_in("WECHAT_TOKEN_REFRESH_MARGIN_SECS", 300, 30, 1800)?,
        lease: env.millis_in("WECHAT_TOKEN_LEASE_MS", 10_000, 500, 60_000)?,
        ..TokenConfig::default()
    };
    client.connect_timeout = env.millis_in("WECHAT_CONNECT_TIMEOUT_MS", 1_000, 50, 10_000)?;
    client.policies = api_policies(env)?;
    client.overrides = overrides(env)?;
    client.breaker_region = breaker_region(env)?;
    if client.breaker_region.is_some() {
        // One token for the world, which only stable_token gives: a classic refresh in one
        // region would invalidate the other region's token.
        if client.token_mode == TokenMode::Classic {
            return Err(ConfigError::new(
                "WECHAT_TOKEN_MODE",
                "classic is refused with MULTI_REGION=true: each region's refresh would invalidate the other's token; use stable",
            ));
        }
    }
    Ok(client)
}

/// The region whose breakers a multi-region deployment's clients keep (`AWS_REGION` when
/// `MULTI_REGION=true`): each region sees its own path to WeChat (and WeChat Pay).
///
/// # Errors
/// [`ConfigError`] for an invalid `MULTI_REGION`, or `AWS_REGION` missing with it.
pub fn breaker_region(env: &Env) -> Result<Option<String>, ConfigError> {
    if env.flag("MULTI_REGION")? {
        Ok(Some(env.required("AWS_REGION")?.to_owned()))
    } else {
        Ok(None)
    }
}

/// The override variable of `api`.
fn policy_var(api: Api) -> &'static str {
    match api {
        Api::StableToken => "WECHAT_POLICY_STABLE_TOKEN",
        Api::Token => "WECHAT_POLICY_TOKEN",
        Api::Ticket => "WECHAT_POLICY_TICKET",
        Api::CustomSend => "WECHAT_POLICY_CUSTOM_SEND",
        Api::TemplateSend => "WECHAT_POLICY_TEMPLATE_SEND",
        Api::SubscribeSend => "WECHAT_POLICY_SUBSCRIBE_SEND",
        Api::OauthCode => "WECHAT_POLICY_OAUTH_CODE",
        Api::OauthRefresh => "WECHAT_POLICY_OAUTH_REFRESH",
        Api::OauthUserinfo => "WECHAT_POLICY_OAUTH_USERINFO",
        Api::JsCodeSession => "WECHAT_POLICY_JSCODE2SESSION",
        Api::PhoneNumber => "WECHAT_POLICY_PHONE_NUMBER",
        Api::UserList => "WECHAT_POLICY_USER_LIST",
        Api::UserInfoBatch => "WECHAT_POLICY_USER_INFO_BATCH",
        Api::TagsGet => "WECHAT_POLICY_TAGS_GET",
        Api::CallbackIp => "WECHAT_POLICY_CALLBACK_IP",
    }
}

/// Defaults with every `WECHAT_POLICY_<API>` override applied.
fn api_policies(env: &Env) -> Result<ApiPolicies, ConfigError> {
    let mut policies = ApiPolicies::default();
    for api in Api::ALL {
        if let Some(spec) = env.optional(policy_var(api)) {
            policies.set(api, with_overrides(policies.get(api), policy_var(api), spec)?);
        }
    }
    Ok(policies)
}

/// `policy` with the overrides in `spec` (`key=value` pairs, comma-separated; keys `timeout_ms`,
/// `max_attempts`, `base_delay_ms`, `max_delay_ms`, `idempotent`, `breaker`).
fn with_overrides(mut policy: ApiPolicy, var: &'static str, spec: &str) -> Result<ApiPolicy, ConfigError> {
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| ConfigError::new(var, format!("expected key=value, got {pair:?}")))?;
        let number = |min: u64, max: u64| -> Result<u64, ConfigError> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(
                        var,
                        format!("{key} must be a whole number in {min}..={max}, got {value:?}"),
                    )
                })
        };
        match key {
            "timeout_ms" => policy.timeout = Duration::from_millis(number(1, 30_000)?),
            "max_attempts" => policy.max_attempts = u32::try_from(number(1, 10)?).unwrap_or(1),
            "base_delay_ms" => policy.base_delay = Duration::from_millis(number(0, 60_000)?),
            "max_delay_ms" => policy.max_delay = Duration::from_millis(number(0, 60_000)?),
            "idempotent" => {
                policy.idempotent = value
                    .parse()
                    .map_err(|_| ConfigError::new(var, format!("idempotent must be true or false, got {value:?}")))?;
            }
            "breaker" if !value.is_empty() => policy.breaker = value.to_owned(),
            _ => return Err(ConfigError::new(var, format!("unknown or empty key {key:?}"))),
        }
    }
    if policy.base_delay > policy.max_delay {
        return Err(ConfigError::new(var, "base_delay_ms must not exceed max_delay_ms"));
    }
    Ok(policy)
}

/// The JSON file (`RESILIENCE_CONFIG_FILE`), then `RESILIENCE__{NAME}__{SETTING}` variables.
fn overrides(env: &Env) -> Result<Vec<OverrideSet>, ConfigError> {
    let mut sets = Vec::new();
    if let Some(path) = env.optional("RESILIENCE_CONFIG_FILE") {
        let text = env.read_file("RESILIENCE_CONFIG_FILE", path)?;
        let file =
            OverrideSet::from_json(&text).map_err(|e| ConfigError::new("RESILIENCE_CONFIG_FILE", e.to_string()))?;
        sets.push(file);
    }
    let vars =
        OverrideSet::from_variables(env.pairs()).map_err(|e| ConfigError::new("RESILIENCE__*", e.to_string()))?;
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
    fn multi_region_keeps_breakers_per_region_and_refuses_classic_tokens() {
        let base = [
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("AWS_REGION", "eu-west-1"),
        ];
        let single = client_settings(&Env::from_pairs(base)).unwrap();
        assert_eq!(single.breaker_region, None);
        let mut env = Env::from_pairs(base);
        env.set("MULTI_REGION", "true");
        assert_eq!(
            client_settings(&env).unwrap().breaker_region.as_deref(),
            Some("eu-west-1")
        );
        env.set("WECHAT_TOKEN_MODE", "classic");
        assert_eq!(client_settings(&env).unwrap_err().var, "WECHAT_TOKEN_MODE");
        env.set("MULTI_REGION", "yes");
        assert_eq!(client_settings(&env).unwrap_err().var, "MULTI_REGION");
    }

    #[test]
    fn defaults_use_both_wechat_domains_and_stable_token() {
        let env = Env::from_pairs([("WECHAT_APPID", "wx1"), ("WECHAT_APPSECRET", "s")]);
        let settings = WechatConfig::from_env(&env).expect("valid").client;
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
        let settings = WechatConfig::from_env(&env).expect("valid").client;
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
            WechatConfig::from_env(&bad).map_err(|e| e.var).err(),
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
        let settings = WechatConfig::from_env(&env).expect("valid").client;
        let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::ManualClock::new(0));
        let store: crate::store::SharedStore =
            std::sync::Arc::new(crate::store::memory::MemoryStore::new(clock.clone()));
        let registry = crate::wechat::register(&settings, crate::resilience::Registry::builder(store, clock))
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
        let error = WechatConfig::from_env(&env).unwrap_err();
        assert_eq!(error.var, "RESILIENCE__*");
        assert!(error.problem.contains("RESILIENCE__X__NOPE"), "{error}");
    }

    #[test]
    fn env_overrides_one_api_without_touching_the_others() {
        let env = Env::from_pairs([(
            "WECHAT_POLICY_CUSTOM_SEND",
            "timeout_ms=500, max_attempts=1,idempotent=true",
        )]);
        let policies = api_policies(&env).expect("valid");
        let custom = policies.get(Api::CustomSend);
        assert_eq!(
            (custom.timeout, custom.max_attempts, custom.idempotent),
            (Duration::from_millis(500), 1, true)
        );
        assert_eq!(policies.get(Api::TemplateSend), Api::TemplateSend.default_policy());
    }

    #[test]
    fn invalid_overrides_name_the_variable_and_key() {
        let env = Env::from_pairs([("WECHAT_POLICY_TICKET", "max_attempts=0")]);
        let err = api_policies(&env).expect_err("invalid");
        assert_eq!(err.var, "WECHAT_POLICY_TICKET");
        assert!(err.problem.contains("max_attempts"));
        let env = Env::from_pairs([("WECHAT_POLICY_TICKET", "colour=blue")]);
        assert!(api_policies(&env).is_err());
    }

    #[test]
    fn a_missing_resilience_file_names_the_variable_and_the_file() {
        let env = Env::from_pairs([
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("RESILIENCE_CONFIG_FILE", "/nonexistent/resilience.json"),
        ]);
        let error = WechatConfig::from_env(&env).unwrap_err();
        assert_eq!(error.var, "RESILIENCE_CONFIG_FILE");
        assert!(error.problem.contains("/nonexistent/resilience.json"), "{error}");
    }
}
