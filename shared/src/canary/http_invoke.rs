//! The checks over HTTP, against a running server (`wechat-local`, or any deployment's URL):
//! what `pre-traffic-hook --against URL` uses to try a build before it is deployed.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Invoke, Target};

/// Sends each check's event as an HTTP request to `base`.
#[derive(Debug, Clone)]
pub struct HttpInvoker {
    base: String,
    bearer: Option<String>,
    client: reqwest::Client,
}

impl HttpInvoker {
    /// Requests to `base` (`http://127.0.0.1:3000`), internal routes with `bearer` (the
    /// server's `INTERNAL_API_KEY`).
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(base: &str, bearer: Option<String>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            bearer,
            client,
        })
    }
}

#[async_trait]
impl Invoke for HttpInvoker {
    async fn invoke(&self, target: Target, event: &Value) -> Result<Value, String> {
        let method = event
            .pointer("/requestContext/http/method")
            .and_then(Value::as_str)
            .unwrap_or("GET");
        let path = event.get("rawPath").and_then(Value::as_str).unwrap_or("/");
        let query = event.get("rawQueryString").and_then(Value::as_str).unwrap_or_default();
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.client.request(method, url);
        if let Some(headers) = event.get("headers").and_then(Value::as_object) {
            for (name, value) in headers {
                if name != "host" {
                    request = request.header(name.as_str(), value.as_str().unwrap_or_default());
                }
            }
        }
        if target == Target::Send
            && let Some(bearer) = &self.bearer
        {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = event.get("body").and_then(Value::as_str) {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.without_url().to_string())?;
        Ok(json!({"statusCode": status, "body": body}))
    }

    fn has(&self, _target: Target) -> bool {
        true
    }
}
