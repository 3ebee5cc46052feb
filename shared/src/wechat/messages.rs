//! Typed send APIs: customer-service, template and subscribe messages, taking WeChat's own JSON.
//!
//! None of these is idempotent: a timeout or an ambiguous 5xx (500/502/504) may have delivered
//! the message, so by default they are retried only when nothing was processed (no connection,
//! HTTP 503 / 429) or WeChat said "busy" (-1 / 45011). 45009 blocks the one API until WeChat's
//! daily reset ([`WechatError::QuotaExhausted`]). The body is passed through untouched.

use serde::Deserialize;
use serde_json::Value;

use super::api::Api;
use super::client::WechatClient;
use super::error::WechatError;
use crate::deadline::Deadline;

/// WeChat's answer to an accepted send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct SendReceipt {
    /// The message id (template and subscribe sends).
    #[serde(default)]
    pub msgid: Option<i64>,
}

impl WechatClient {
    async fn send(&self, api: Api, message: &Value, deadline: Deadline) -> Result<SendReceipt, WechatError> {
        let answer = self.call_with_token(api, Some(message), deadline).await?;
        Ok(serde_json::from_value(answer).unwrap_or_default())
    }

    /// `message/custom/send` with WeChat's JSON body (`{"touser":..,"msgtype":"text",..}`).
    ///
    /// # Errors
    /// The typed [`WechatError`], e.g. errcode 45015 outside the 48-hour window.
    pub async fn send_custom(&self, message: &Value, deadline: Deadline) -> Result<SendReceipt, WechatError> {
        self.send(Api::CustomSend, message, deadline).await
    }

    /// `message/template/send`; the receipt carries the msgid.
    ///
    /// # Errors
    /// As [`Self::send_custom`].
    pub async fn send_template(&self, message: &Value, deadline: Deadline) -> Result<SendReceipt, WechatError> {
        self.send(Api::TemplateSend, message, deadline).await
    }

    /// `message/subscribe/send`.
    ///
    /// # Errors
    /// As [`Self::send_custom`].
    pub async fn send_subscribe(&self, message: &Value, deadline: Deadline) -> Result<SendReceipt, WechatError> {
        self.send(Api::SubscribeSend, message, deadline).await
    }
}
