//! Answers given without calling WeChat: the daily quota (45009, until the daily reset, through
//! the account's [`DailyQuota`](crate::wechat::daily_quota::DailyQuota)) and configuration errors
//! (40164 IP whitelist, 40013 AppID, 40125 AppSecret, … for
//! [`TokenConfig::config_error_backoff`](super::TokenConfig::config_error_backoff)).
//!
//! Why: with no valid token cached, every user request would otherwise call the token endpoint
//! again — a configuration error cannot heal by itself, and each such call spends the daily quota
//! until it is gone. Both blocks are fleet-wide (one store item, written once per block) with an
//! instance-local twin for store outages.

use super::limits::{block_config, read_config_block};
use super::manager::TokenManager;
use super::record::TokenKind;
use super::source::TokenMode;
use crate::clock::millis;
use crate::deadline::Deadline;
use crate::wechat::api::Api;
use crate::wechat::errcode::{
    DAILY_QUOTA, Errcode, ErrcodeClass, INVALID_APPID, INVALID_APPSECRET, IP_NOT_WHITELISTED,
};
use crate::wechat::error::WechatError;

const LOG: &str = "wechat.token";

/// What to do about a configuration error (never contains a secret).
pub fn config_fix(errcode: i64) -> &'static str {
    match errcode {
        IP_NOT_WHITELISTED => {
            "add the fleet's fixed egress IP (the NAT gateway's Elastic IP) to the account's IP whitelist \
             in the WeChat console; a function without a fixed egress IP cannot be whitelisted"
        }
        INVALID_APPID => "check WECHAT_APPID: WeChat does not know this AppID",
        INVALID_APPSECRET => {
            "check the AppSecret (WECHAT_APPSECRET or the Secrets Manager secret): it is wrong or was reset"
        }
        _ => "check the account's configuration and the API permissions in the WeChat console",
    }
}

impl TokenManager {
    /// The WeChat API that fetches `kind` (its daily quota is that API's).
    fn endpoint(&self, kind: TokenKind) -> Api {
        match (kind, self.mode) {
            (TokenKind::AccessToken, TokenMode::Stable) => Api::StableToken,
            (TokenKind::AccessToken, TokenMode::Classic) => Api::Token,
            (TokenKind::JsapiTicket, _) => Api::Ticket,
        }
    }

    /// The error to answer with instead of calling the endpoint of `kind`, if a block is in force.
    pub(super) async fn blocked(&self, kind: TokenKind, now_ms: i64, deadline: Deadline) -> Option<WechatError> {
        if let Some(until_ms) = self.quota.blocked_until(self.endpoint(kind), deadline).await {
            return Some(WechatError::QuotaExhausted { until_ms });
        }
        if let Some(answer) = self.local_block(kind, now_ms) {
            return Some(answer);
        }
        if !self.store_usable() {
            return None;
        }
        match read_config_block(&self.fleet, kind, now_ms, deadline).await {
            Ok(Some((error, until))) => self.lock().limits.block_config(kind, error, until),
            Ok(None) => {}
            Err(err) => self.store_failed(&err),
        }
        self.local_block(kind, now_ms)
    }

    fn local_block(&self, kind: TokenKind, now_ms: i64) -> Option<WechatError> {
        let local = self.lock();
        let (error, until_ms) = local.limits.config_error(kind, now_ms)?;
        tracing::debug!(target: LOG, kind = kind.as_str(), errcode = error.errcode, until_ms, "configuration error still blocks the token endpoint");
        Some(WechatError::Api(error))
    }

    /// Records what a failed fetch means for the next ones; returns the error to answer with.
    pub(super) async fn after_failed_fetch(
        &self,
        kind: TokenKind,
        err: WechatError,
        deadline: Deadline,
    ) -> WechatError {
        let WechatError::Api(api) = &err else {
            return err;
        };
        if api.errcode == DAILY_QUOTA {
            let until_ms = self.quota.block(self.endpoint(kind), deadline).await;
            return WechatError::QuotaExhausted { until_ms };
        }
        if api.class() == ErrcodeClass::Config {
            self.block_config_error(kind, api, deadline).await;
        }
        err
    }

    async fn block_config_error(&self, kind: TokenKind, error: &Errcode, deadline: Deadline) {
        let until_ms = self.now() + millis(self.config.config_error_backoff);
        tracing::error!(
            target: LOG, appid = self.appid(), kind = kind.as_str(), errcode = error.errcode, errmsg = %error.errmsg,
            blocked_for_ms = millis(self.config.config_error_backoff), fix = config_fix(error.errcode),
            "CONFIGURATION ERROR: WeChat refused the token request; answering with this error without calling WeChat until the block ends"
        );
        self.lock().limits.block_config(kind, error.clone(), until_ms);
        if self.store_usable()
            && let Err(store_err) = block_config(&self.fleet, kind, error, until_ms, deadline).await
        {
            self.store_failed(&store_err);
        }
    }
}
