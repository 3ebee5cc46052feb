//! The token functions' dependencies (the scheduled refresh, the JS-SDK route), and the one way a
//! function builds its WeChat client: the AppSecret loaded once, the client over the fleet store.

use std::sync::Arc;

use super::{Aws, StartupError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{JssdkConfig, TokenRefreshConfig, WechatConfig};
use crate::store::SharedStore;
use crate::wechat::WechatClient;

/// The WeChat client `config` describes: its AppSecret loaded (once), breakers and tokens on `store`.
///
/// # Errors
/// [`StartupError`] when the secret cannot be loaded or a policy is out of range.
pub async fn wechat_client(
    config: &WechatConfig,
    store: SharedStore,
    clock: SharedClock,
    aws: &Aws,
) -> Result<WechatClient, StartupError> {
    let appsecret = aws.secret(&config.appsecret).await?;
    Ok(WechatClient::new(&config.client, appsecret, store, clock)?)
}

/// Everything `routes::token_refresh` needs.
#[derive(Debug)]
pub struct TokenRefreshDeps {
    /// The WeChat client (its token manager refreshes).
    pub client: WechatClient,
}

impl TokenRefreshDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] when the AppSecret cannot be loaded or a policy is out of range.
    pub async fn from_config(config: TokenRefreshConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        Ok(Self {
            client: wechat_client(&config.wechat, store, clock, aws).await?,
        })
    }
}

/// Everything `routes::jssdk` needs.
#[derive(Debug)]
pub struct JssdkDeps {
    /// The WeChat client (the jsapi_ticket).
    pub client: WechatClient,
    /// Wall clock (signature timestamps).
    pub clock: SharedClock,
    /// Page hosts the route signs for (any host when empty).
    pub allowed_hosts: Vec<String>,
}

impl JssdkDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] when the AppSecret cannot be loaded or a policy is out of range.
    pub async fn from_config(config: JssdkConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let client = wechat_client(&config.wechat, store, clock.clone(), aws).await?;
        Ok(Self::new(config, client, clock))
    }

    /// Assembles the deps from given parts (tests, the local server).
    pub fn new(config: JssdkConfig, client: WechatClient, clock: SharedClock) -> Self {
        Self {
            client,
            clock,
            allowed_hosts: config.allowed_hosts,
        }
    }
}
