//! The token manager's upstream: WeChat's token, stable_token and getticket endpoints, called
//! through the same policies and failover as every other API (breaker `wechat.token`).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::api::Api;
use super::core::Core;
use super::error::WechatError;
use super::token::{Fetched, TokenMode, TokenSource};
use super::transport::Call;
use crate::deadline::Deadline;
use crate::secret::Secret;

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct TicketAnswer {
    ticket: String,
    expires_in: i64,
}

/// Fetches credentials of one account from WeChat.
#[derive(Debug)]
pub(crate) struct Upstream {
    core: Arc<Core>,
    appid: String,
    secret: Secret,
    mode: TokenMode,
}

impl Upstream {
    pub fn new(core: Arc<Core>, appid: &str, secret: Secret, mode: TokenMode) -> Self {
        Self {
            core,
            appid: appid.to_owned(),
            secret,
            mode,
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(api: Api, value: serde_json::Value) -> Result<T, WechatError> {
    serde_json::from_value(value).map_err(|e| WechatError::Decode {
        domain: api.name().to_owned(),
        message: format!("unexpected answer shape: {e}"),
    })
}

#[async_trait]
impl TokenSource for Upstream {
    async fn access_token(&self, force_refresh: bool, deadline: Deadline) -> Result<Fetched, WechatError> {
        let (api, answer) = match self.mode {
            TokenMode::Stable => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret.expose(),
                    "force_refresh": force_refresh,
                });
                let call = Call {
                    api: Api::StableToken,
                    query: Vec::new(),
                    body: Some(&body),
                };
                (Api::StableToken, self.core.call(&call, deadline).await?)
            }
            TokenMode::Classic => {
                let query = vec![
                    ("grant_type", Secret::new("client_credential")),
                    ("appid", Secret::new(self.appid.clone())),
                    ("secret", self.secret.clone()),
                ];
                (
                    Api::Token,
                    self.core
                        .call(
                            &Call {
                                api: Api::Token,
                                query,
                                body: None,
                            },
                            deadline,
                        )
                        .await?,
                )
            }
        };
        let answer: TokenAnswer = decode(api, answer)?;
        Ok(Fetched {
            value: Secret::new(answer.access_token),
            expires_in_secs: answer.expires_in,
        })
    }

    async fn jsapi_ticket(&self, access_token: &Secret, deadline: Deadline) -> Result<Fetched, WechatError> {
        let query = vec![("access_token", access_token.clone()), ("type", Secret::new("jsapi"))];
        let answer = self
            .core
            .call(
                &Call {
                    api: Api::Ticket,
                    query,
                    body: None,
                },
                deadline,
            )
            .await?;
        let answer: TicketAnswer = decode(Api::Ticket, answer)?;
        Ok(Fetched {
            value: Secret::new(answer.ticket),
            expires_in_secs: answer.expires_in,
        })
    }
}
