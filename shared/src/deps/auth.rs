//! The login function's dependencies: the sessions, login states and exchange ledger on the
//! fleet store, and one WeChat client per configured login (the Official Account for the web,
//! the mini-program for its login), both over one resilience registry — one breaker per login
//! API family (`wechat.oauth`, `wechat.miniprogram`) and per domain for the whole fleet.

use std::sync::Arc;
use std::time::Duration;

use super::{Aws, StartupError};
use crate::auth::{CookiePolicy, LoginStates, ReturnHosts, Sessions};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AuthConfig, ConfigError};
use crate::ledger::{Ledger, LedgerConfig};
use crate::resilience::{Registry, TracingObserver};
use crate::secret::Secret;
use crate::store::SharedStore;
use crate::wechat::{ClientSettings, WechatClient, register};

/// How long an exchange's record answers its concurrent duplicates (the ledger's minimum; a
/// later duplicate is a replay and refused anyway).
const EXCHANGE_RECORD_TTL: Duration = LedgerConfig::MIN_RECORD_TTL;
/// One store call's limit on the login paths.
const STORE_TIMEOUT: Duration = Duration::from_millis(800);

/// The web login's parts.
#[derive(Debug)]
pub struct WebLogin {
    /// The Official Account's client.
    pub client: WechatClient,
    /// This deployment's `/oauth/callback`.
    pub redirect_uri: String,
    /// WeChat's authorize page.
    pub authorize_url: String,
    /// The scope when the request names none.
    pub default_scope: String,
    /// Where `return_to` may point.
    pub return_hosts: ReturnHosts,
    /// Where the browser goes without `return_to`.
    pub default_return_to: String,
}

/// Everything `routes::auth` needs.
#[derive(Debug)]
pub struct AuthDeps {
    /// The fleet's sessions.
    pub sessions: Sessions,
    /// OAuth states.
    pub states: LoginStates,
    /// Code exchanges, exactly once (namespace `authonce`).
    pub ledger: Ledger,
    /// The web login, when configured.
    pub web: Option<WebLogin>,
    /// The mini-program's client, when configured.
    pub miniprogram: Option<WechatClient>,
    /// How the session cookie is set.
    pub cookies: CookiePolicy,
    /// How long a login may wait for WeChat.
    pub login_budget: Duration,
    /// `/me` refreshes a web profile older than this.
    pub profile_max_age: Duration,
    /// Wall clock.
    pub clock: SharedClock,
}

impl AuthDeps {
    /// The cold start: the secrets of the configured logins, loaded once.
    ///
    /// # Errors
    /// [`StartupError`] naming what is missing or invalid.
    pub async fn from_config(config: AuthConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let web_secret = match &config.web {
            Some(web) => Some(aws.secret(&web.wechat.appsecret).await?),
            None => None,
        };
        let miniprogram_secret = match &config.miniprogram {
            Some(miniprogram) => Some(aws.secret(&miniprogram.appsecret).await?),
            None => None,
        };
        Self::new(config, (web_secret, miniprogram_secret), store, clock)
    }

    /// Assembles the deps from given parts (tests, the local server): the AppSecrets of the web
    /// login and of the mini-program, in that order, for the logins `config` turns on.
    ///
    /// # Errors
    /// [`StartupError`] when a policy is out of range or a configured login lacks its secret.
    pub fn new(
        config: AuthConfig,
        (web_secret, miniprogram_secret): (Option<Secret>, Option<Secret>),
        store: SharedStore,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let missing = |var: &'static str| StartupError::Config(ConfigError::new(var, "no secret was loaded"));
        let settings = config
            .web
            .as_ref()
            .map(|web| &web.wechat.client)
            .or(config.miniprogram.as_ref().map(|mp| &mp.client))
            .ok_or_else(|| missing("OAUTH_REDIRECT_URI"))?;
        let builder = Registry::builder(store.clone(), clock.clone()).observer(Arc::new(TracingObserver));
        let registry = register(settings, builder)
            .and_then(crate::resilience::RegistryBuilder::build)
            .map_err(|e| StartupError::Client(e.into()))?;
        let client = |settings: &ClientSettings,
                      secret: Option<Secret>,
                      var: &'static str|
         -> Result<WechatClient, StartupError> {
            let secret = secret.ok_or_else(|| missing(var))?;
            WechatClient::with_registry(settings, secret, &registry, store.clone(), clock.clone())
                .map_err(|e| StartupError::Client(e.into()))
        };
        let web = match config.web {
            None => None,
            Some(web) => Some(WebLogin {
                client: client(&web.wechat.client, web_secret, "WECHAT_APPSECRET")?,
                redirect_uri: web.redirect_uri,
                authorize_url: web.authorize_url,
                default_scope: web.default_scope,
                return_hosts: web.return_hosts,
                default_return_to: web.default_return_to,
            }),
        };
        let miniprogram = match &config.miniprogram {
            None => None,
            Some(mp) => Some(client(&mp.client, miniprogram_secret, "MINIPROGRAM_APPSECRET")?),
        };
        let lease = config.login_budget + Duration::from_secs(2);
        let ledger_config = LedgerConfig::new(EXCHANGE_RECORD_TTL, lease.min(EXCHANGE_RECORD_TTL / 2))?
            .with_namespace("authonce")?
            .with_store_timeout(STORE_TIMEOUT);
        Ok(Self {
            sessions: Sessions::new(store.clone(), clock.clone(), config.session_ttl, STORE_TIMEOUT),
            states: LoginStates::new(store.clone(), clock.clone(), STORE_TIMEOUT),
            ledger: Ledger::new(store, clock.clone(), ledger_config),
            web,
            miniprogram,
            cookies: CookiePolicy {
                domain: config.cookie_domain,
            },
            login_budget: config.login_budget,
            profile_max_age: config.profile_max_age,
            clock,
        })
    }
}
