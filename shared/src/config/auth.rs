//! The login function's configuration: which logins are on, their accounts, the session and
//! cookie settings, and the web login's redirect and allow-list.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OAUTH_REDIRECT_URI` | — (web login off) | this deployment's `/oauth/callback` URL, on the domain set as 网页授权域名 |
//! | `WECHAT_APPID`, `WECHAT_APPSECRET` / `_SECRET_ID` | required for the web login | the Official Account |
//! | `OAUTH_AUTHORIZE_URL` | `https://open.weixin.qq.com/connect/oauth2/authorize` | WeChat's authorize page (the mock's locally) |
//! | `OAUTH_SCOPE` | `snsapi_base` | default scope; `/oauth/authorize?scope=` may ask for `snsapi_userinfo` |
//! | `AUTH_RETURN_HOSTS` | — (paths only) | hosts `return_to` may point at (`shop.example.com,*.example.org`) |
//! | `AUTH_DEFAULT_RETURN_TO` | `/me` | where the browser goes without `return_to` |
//! | `MINIPROGRAM_APPID`, `MINIPROGRAM_APPSECRET` / `_SECRET_ID` | — (mini-program login off) | the mini-program |
//! | `AUTH_SESSION_TTL_SECS` | 604800 (7 days; 3600–2592000) | session lifetime |
//! | `AUTH_LOGIN_BUDGET_MS` | 3000 (500–20000) | how long a login may wait for WeChat before answering 503 |
//! | `AUTH_PROFILE_MAX_AGE_SECS` | 86400 (60–2592000) | `/me` refreshes an older web profile |
//! | `AUTH_COOKIE_DOMAIN` | — (this host only) | share the session cookie with sibling hosts |

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::store::Store;
use super::wechat::{WechatConfig, miniprogram_config};
use crate::auth::ReturnHosts;

/// WeChat's web-authorization page.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://open.weixin.qq.com/connect/oauth2/authorize";

/// The web login (Official Account OAuth).
#[derive(Debug, Clone)]
pub struct WebLoginConfig {
    /// The Official Account's client.
    pub wechat: WechatConfig,
    /// `OAUTH_REDIRECT_URI`.
    pub redirect_uri: String,
    /// `OAUTH_AUTHORIZE_URL`.
    pub authorize_url: String,
    /// `OAUTH_SCOPE`.
    pub default_scope: String,
    /// `AUTH_RETURN_HOSTS`.
    pub return_hosts: ReturnHosts,
    /// `AUTH_DEFAULT_RETURN_TO`.
    pub default_return_to: String,
}

/// The login function (`/oauth/*`, `/miniprogram/*`, `/me`, `/logout`).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where sessions, login states and exchange records live.
    pub store: Store,
    /// The web login, when `OAUTH_REDIRECT_URI` is set.
    pub web: Option<WebLoginConfig>,
    /// The mini-program's client, when `MINIPROGRAM_APPID` is set.
    pub miniprogram: Option<WechatConfig>,
    /// `AUTH_SESSION_TTL_SECS`.
    pub session_ttl: Duration,
    /// `AUTH_LOGIN_BUDGET_MS`.
    pub login_budget: Duration,
    /// `AUTH_PROFILE_MAX_AGE_SECS`.
    pub profile_max_age: Duration,
    /// `AUTH_COOKIE_DOMAIN`.
    pub cookie_domain: Option<String>,
}

impl AuthConfig {
    /// Whether any login is configured (the local server mounts the routes then).
    pub fn is_configured(env: &Env) -> bool {
        env.optional("OAUTH_REDIRECT_URI").is_some() || env.optional("MINIPROGRAM_APPID").is_some()
    }

    /// Reads the login function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable; neither login configured
    /// is one too.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let web = match env.optional("OAUTH_REDIRECT_URI") {
            None => None,
            Some(redirect_uri) => Some(web_login(env, redirect_uri)?),
        };
        let miniprogram = match env.optional("MINIPROGRAM_APPID") {
            None => None,
            Some(_) => Some(miniprogram_config(env)?),
        };
        if web.is_none() && miniprogram.is_none() {
            return Err(ConfigError::new(
                "OAUTH_REDIRECT_URI",
                "set it (web login) and/or MINIPROGRAM_APPID (mini-program login)",
            ));
        }
        Ok(Self {
            store: Store::from_env(env)?,
            web,
            miniprogram,
            session_ttl: env.secs_in("AUTH_SESSION_TTL_SECS", 7 * 86_400, 3600, 30 * 86_400)?,
            login_budget: env.millis_in("AUTH_LOGIN_BUDGET_MS", 3000, 500, 20_000)?,
            profile_max_age: env.secs_in("AUTH_PROFILE_MAX_AGE_SECS", 86_400, 60, 30 * 86_400)?,
            cookie_domain: env
                .optional("AUTH_COOKIE_DOMAIN")
                .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
        })
    }
}

fn web_login(env: &Env, redirect_uri: &str) -> Result<WebLoginConfig, ConfigError> {
    let url = |var: &'static str, value: &str| -> Result<String, ConfigError> {
        let parsed =
            reqwest::Url::parse(value).map_err(|e| ConfigError::new(var, format!("{value:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
            return Err(ConfigError::new(var, format!("{value:?} is not an http(s) URL")));
        }
        Ok(value.to_owned())
    };
    let default_scope = env.optional("OAUTH_SCOPE").unwrap_or("snsapi_base").to_owned();
    if !matches!(default_scope.as_str(), "snsapi_base" | "snsapi_userinfo") {
        return Err(ConfigError::new(
            "OAUTH_SCOPE",
            "must be snsapi_base or snsapi_userinfo",
        ));
    }
    let return_hosts = ReturnHosts::parse(env.optional("AUTH_RETURN_HOSTS").unwrap_or(""));
    let default_return_to = env.optional("AUTH_DEFAULT_RETURN_TO").unwrap_or("/me").to_owned();
    return_hosts
        .check(&default_return_to)
        .map_err(|e| ConfigError::new("AUTH_DEFAULT_RETURN_TO", e.to_string()))?;
    Ok(WebLoginConfig {
        wechat: WechatConfig::from_env(env)?,
        redirect_uri: url("OAUTH_REDIRECT_URI", redirect_uri)?,
        authorize_url: url(
            "OAUTH_AUTHORIZE_URL",
            env.optional("OAUTH_AUTHORIZE_URL").unwrap_or(DEFAULT_AUTHORIZE_URL),
        )?,
        default_scope,
        return_hosts,
        default_return_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_login_is_a_cold_start_failure_naming_the_variable() {
        let error = AuthConfig::from_env(&Env::default()).unwrap_err();
        assert_eq!(error.var, "OAUTH_REDIRECT_URI");
    }

    #[test]
    fn the_web_login_needs_the_account_and_a_valid_redirect() {
        let env = Env::from_pairs([("OAUTH_REDIRECT_URI", "https://api.example.com/oauth/callback")]);
        assert_eq!(AuthConfig::from_env(&env).unwrap_err().var, "WECHAT_APPID");
        let env = Env::from_pairs([
            ("OAUTH_REDIRECT_URI", "ftp://x/"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
        ]);
        assert_eq!(AuthConfig::from_env(&env).unwrap_err().var, "OAUTH_REDIRECT_URI");
        let env = Env::from_pairs([
            ("OAUTH_REDIRECT_URI", "https://api.example.com/oauth/callback"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("AUTH_DEFAULT_RETURN_TO", "https://evil.example.net/"),
        ]);
        assert_eq!(AuthConfig::from_env(&env).unwrap_err().var, "AUTH_DEFAULT_RETURN_TO");
    }

    #[test]
    fn the_mini_program_alone_is_enough_and_uses_its_own_account() {
        let env = Env::from_pairs([("MINIPROGRAM_APPID", "wxmp"), ("MINIPROGRAM_APPSECRET", "s")]);
        let config = AuthConfig::from_env(&env).unwrap();
        assert!(config.web.is_none());
        assert_eq!(config.miniprogram.unwrap().client.appid, "wxmp");
        assert_eq!(config.session_ttl, Duration::from_secs(7 * 86_400));
        let env = Env::from_pairs([("MINIPROGRAM_APPID", "wxmp")]);
        assert_eq!(AuthConfig::from_env(&env).unwrap_err().var, "MINIPROGRAM_APPSECRET");
    }
}
