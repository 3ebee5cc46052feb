//! Fault injection: "the next N calls to this path on this domain fail like so", applied as middleware.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::server::ConnInfo;
use crate::state::MockState;

/// What an injected fault does to a matching call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer HTTP 200 with `{"errcode":..,"errmsg":..}` without processing.
    Errcode {
        /// WeChat error code, e.g. -1, 45009, 40164.
        errcode: i64,
        /// Message; a WeChat-like default is used when empty.
        errmsg: String,
    },
    /// Answer with this HTTP status (e.g. 502, 503) and a short text body, without processing.
    Status(u16),
    /// Wait this many ms, then process normally.
    DelayMs(u64),
    /// Close the connection without answering and without processing.
    Drop,
    /// Process the call (a message *is* recorded), then close the connection without answering.
    DropAfterProcessing,
}

/// One fault rule: matches calls by path and domain (`None` = any) and fires `times` times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What to do.
    pub kind: FaultKind,
    /// Exact request path, e.g. `/cgi-bin/stable_token`; `None` matches every WeChat path.
    #[serde(default)]
    pub path: Option<String>,
    /// Domain name as given to the mock's listeners, e.g. `api`; `None` matches every domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// How many matching calls fail (then the rule is spent).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault of `kind` for the next matching call.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            path: None,
            domain: None,
            times: 1,
        }
    }
    /// Answer with WeChat errcode `errcode` (default message).
    pub fn errcode(errcode: i64) -> Self {
        Self::new(FaultKind::Errcode {
            errcode,
            errmsg: String::new(),
        })
    }
    /// Answer with HTTP `status`.
    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status(status))
    }
    /// Delay by `ms`, then answer normally.
    pub fn delay_ms(ms: u64) -> Self {
        Self::new(FaultKind::DelayMs(ms))
    }
    /// Close the connection before processing.
    pub fn drop_connection() -> Self {
        Self::new(FaultKind::Drop)
    }
    /// Only calls to `path`.
    pub fn on_path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }
    /// Only calls arriving on `domain`.
    pub fn on_domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_owned());
        self
    }
    /// Fire for the next `times` matching calls (`u32::MAX` ≈ forever).
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    pub(crate) fn matches(&self, domain: &str, path: &str) -> bool {
        self.times > 0
            && self.path.as_deref().is_none_or(|p| p == path)
            && self.domain.as_deref().is_none_or(|d| d == domain)
    }
}

fn default_errmsg(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40164 => "invalid ip, not in whitelist",
        42001 => "access_token expired",
        45009 => "reach max api daily quota limit",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        _ => "mock fault",
    }
}

/// Middleware on every WeChat route: counts the call, then applies the first matching fault.
pub(crate) async fn inject(State(state): State<Arc<MockState>>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let domain = conn.as_ref().map_or("default", |c| c.domain.as_ref()).to_owned();
    let path = req.uri().path().to_owned();
    let Some(kind) = state.record_call(&domain, &path) else {
        return next.run(req).await;
    };
    tracing::debug!(%domain, %path, ?kind, "mock fault");
    match kind {
        FaultKind::Errcode { errcode, errmsg } => {
            let errmsg = if errmsg.is_empty() {
                default_errmsg(errcode).to_owned()
            } else {
                errmsg
            };
            Json(serde_json::json!({ "errcode": errcode, "errmsg": errmsg })).into_response()
        }
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, "mock upstream failure").into_response()
        }
        FaultKind::DelayMs(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(req).await
        }
        FaultKind::Drop => abort(conn).await,
        FaultKind::DropAfterProcessing => {
            let _processed = next.run(req).await;
            abort(conn).await
        }
    }
}

/// Asks the connection task to drop the socket, and never answers.
async fn abort(conn: Option<ConnInfo>) -> Response {
    match conn {
        Some(conn) => {
            conn.kill.notify_one();
            std::future::pending::<Response>().await
        }
        None => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_matches_only_its_path_and_domain_while_not_spent() {
        let fault = Fault::errcode(-1).on_path("/a").on_domain("api").times(1);
        assert!(fault.matches("api", "/a"));
        assert!(!fault.matches("api2", "/a"));
        assert!(!fault.matches("api", "/b"));
        assert!(!Fault { times: 0, ..fault }.matches("api", "/a"));
        assert!(Fault::status(503).matches("any", "/x"));
    }

    #[test]
    fn fault_json_form_uses_defaults() {
        let fault: Fault = serde_json::from_str(r#"{"kind":{"status":503},"domain":"api"}"#).expect("valid");
        assert_eq!(fault, Fault::status(503).on_domain("api"));
    }
}
