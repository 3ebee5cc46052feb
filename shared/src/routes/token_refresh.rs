//! The token-refresh function: an EventBridge schedule renews the fleet's access_token and
//! jsapi_ticket ahead of every request path.
//!
//! The schedule runs with a wider refresh margin (`WECHAT_TOKEN_REFRESH_MARGIN_SECS`, 20 min in
//! the template) than the request paths (5 min), so the scheduled run renews both tokens before
//! any request path finds them due: requests rarely refresh at all.

use std::time::Duration;

use serde::Serialize;

use crate::deadline::Deadline;
use crate::deps::TokenRefreshDeps;
use crate::wechat::{TokenKind, WechatError};

/// The schedule's budget for both refreshes (the function's timeout is 10 s).
const REFRESH_BUDGET: Duration = Duration::from_secs(8);

/// What one scheduled run did, returned as the invocation's result (never a token value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// `ok` or the error of the access_token refresh.
    pub access_token: String,
    /// `ok` or the error of the jsapi_ticket refresh.
    pub jsapi_ticket: String,
    /// Upstream fetches this instance has made so far.
    pub upstream_fetches: u64,
}

/// A scheduled run that did not complete; the report says which token. The invocation then shows
/// as failed in CloudWatch (the alarm on the function's errors) while the cached tokens keep
/// serving until their expiry.
#[derive(Debug, thiserror::Error)]
#[error("scheduled refresh failed: access_token {}, jsapi_ticket {}", .0.access_token, .0.jsapi_ticket)]
pub struct RefreshFailed(pub RefreshReport);

/// The scheduled run: makes sure both tokens are fresh for the fleet (one lease holder refreshes).
///
/// # Errors
/// [`RefreshFailed`] with the report when a refresh failed.
#[tracing::instrument(name = "token_refresh", skip_all)]
pub async fn handle(deps: &TokenRefreshDeps) -> Result<RefreshReport, RefreshFailed> {
    let client = &deps.client;
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
        Err(RefreshFailed(report))
    }
}
