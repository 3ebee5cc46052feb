//! One HTTP exchange with one WeChat domain: build the request, send it under a timeout, turn the
//! answer into JSON or a typed [`WechatError`]. No retry, no failover: those are layered above.

use std::time::Duration;

use serde_json::Value;

use super::api::Api;
use super::errcode::Status;
use super::error::WechatError;
use crate::secret::Secret;

/// What to send: the API, its query parameters (secret ones kept as [`Secret`]) and the body.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    pub api: Api,
    pub query: Vec<(&'static str, Secret)>,
    pub body: Option<&'a Value>,
}

/// The shared HTTP client (rustls, connection pool).
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
}

impl Transport {
    /// A client with `connect_timeout`; per-request timeouts are set per attempt.
    pub fn new(connect_timeout: Duration) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| WechatError::Connect {
                domain: "-".into(),
                message: e.without_url().to_string(),
            })?;
        Ok(Self { http })
    }

    /// Sends `call` to `base` and waits at most `timeout` for the whole answer.
    pub async fn send(&self, base: &str, call: &Call<'_>, timeout: Duration) -> Result<Value, WechatError> {
        let url = format!("{base}{}", call.api.path());
        let query: Vec<(&str, &str)> = call.query.iter().map(|(k, v)| (*k, v.expose())).collect();
        let request = if call.api.is_post() {
            let body = call.body.cloned().unwrap_or(Value::Object(serde_json::Map::new()));
            self.http.post(url).query(&query).json(&body)
        } else {
            self.http.get(url).query(&query)
        };
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| WechatError::from_reqwest(base, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WechatError::Http {
                domain: base.to_owned(),
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(|e| WechatError::from_reqwest(base, e))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| WechatError::Decode {
            domain: base.to_owned(),
            message: e.to_string(),
        })?;
        let status: Status = serde_json::from_value(value.clone()).unwrap_or_default();
        status.check()?;
        Ok(value)
    }
}
