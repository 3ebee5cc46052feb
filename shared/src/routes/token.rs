//! The token function: a scheduled refresh of the fleet's tokens, and `GET /jssdk/config`.
//!
//! One function serves both because both live on the token manager: EventBridge invokes it every
//! few minutes with a `Scheduled Event`, and API Gateway with the JS-SDK request. The schedule
//! runs with a wider refresh margin (`WECHAT_TOKEN_REFRESH_MARGIN_SECS`, 20 min in the template)
//! than the request paths (5 min), so the scheduled run renews the fleet's access_token and
//! jsapi_ticket before any request path finds them due: requests rarely refresh at all.

use serde_json::{Value, json};

use crate::deps::Deps;
use crate::resilience::deadline::Deadline;
use crate::wechat::{TokenKind, WechatError};

/// The schedule's budget for both refreshes (the function's timeout is 10 s).
const REFRESH_BUDGET: std::time::Duration = std::time::Duration::from_secs(8);

/// What one scheduled run did, returned as the invocation's result (never a token value).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RefreshReport {
    /// `ok` or the error of the access_token refresh.
    pub access_token: String,
    /// `ok` or the error of the jsapi_ticket refresh.
    pub jsapi_ticket: String,
    /// Upstream fetches this instance has made so far.
    pub upstream_fetches: u64,
}

/// Whether a raw Lambda payload is an EventBridge scheduled event (else: an API Gateway request).
pub fn is_scheduled_event(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some("aws.events")
        || payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// The scheduled run: makes sure both tokens are fresh for the fleet (one lease holder refreshes).
///
/// # Errors
/// `Err` with the report when a refresh failed, so the invocation shows as failed in CloudWatch
/// (the alarm on the function's errors) while the cached tokens keep serving until expiry.
#[tracing::instrument(name = "token_refresh", skip_all)]
pub async fn refresh(deps: &Deps) -> Result<RefreshReport, RefreshReport> {
    let Some(client) = deps.wechat.as_ref() else {
        let report = RefreshReport {
            access_token: "WeChat API not configured".into(),
            jsapi_ticket: "WeChat API not configured".into(),
            upstream_fetches: 0,
        };
        return Err(report);
    };
    let deadline = Deadline::after(REFRESH_BUDGET);
    // `refresh_if_due` refreshes within this invocation (a background refresh would be frozen
    // when the invocation returns), even while a still-valid token is cached.
    let access = client.tokens().refresh_if_due(TokenKind::AccessToken, deadline).await;
    let ticket = client.tokens().refresh_if_due(TokenKind::JsapiTicket, deadline).await;
    let describe = |result: &Result<(), WechatError>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    let report = RefreshReport {
        access_token: describe(&access),
        jsapi_ticket: describe(&ticket),
        upstream_fetches: client.token_stats().upstream_fetches,
    };
    tracing::info!(access_token = %report.access_token, jsapi_ticket = %report.jsapi_ticket, upstream_fetches = report.upstream_fetches, "scheduled token refresh");
    if access.is_ok() && ticket.is_ok() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The report as the invocation's JSON result.
pub fn report_json(report: &RefreshReport) -> Value {
    json!(report)
}

/// Why an invocation of the token function failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenFunctionError {
    /// The scheduled refresh did not complete; the report says which token.
    #[error("scheduled refresh failed: access_token {}, jsapi_ticket {}", .0.access_token, .0.jsapi_ticket)]
    Refresh(RefreshReport),
    /// The payload is neither a scheduled event nor an API Gateway request.
    #[error("unsupported event: {0}")]
    UnsupportedEvent(String),
}

/// The token function's entry point over a raw Lambda payload: a scheduled event refreshes, an
/// API Gateway (HTTP API v2) request goes to `/jssdk/config` and gets an HTTP API response.
pub async fn handle_event(deps: &Deps, payload: Value) -> Result<Value, TokenFunctionError> {
    if is_scheduled_event(&payload) {
        return refresh(deps)
            .await
            .map(|report| report_json(&report))
            .map_err(TokenFunctionError::Refresh);
    }
    let request = lambda_http::request::from_str(&payload.to_string())
        .map_err(|error| TokenFunctionError::UnsupportedEvent(error.to_string()))?;
    let response = super::jssdk::handle(deps, request).await;
    Ok(crate::http::to_http_api_response(response))
}
