//! `GET /health` (liveness: the process answers, nothing else is asked) and `GET /health/ready`
//! (readiness: the store answers within its timeout, the secrets the deployment names exist,
//! and the WeChat breakers' fleet states). Cheap enough for a health checker every 10 s: one
//! store read per breaker, the secret check reused for a minute, no WeChat call.
//! Ready answers 200 when the store and the secrets are fine (an open WeChat breaker is reported,
//! not a failure: the fleet still answers WeChat), 503 otherwise — same body either way.

use http::StatusCode;
use serde_json::{Value, json};

use crate::deps::HealthDeps;
use crate::http::{ApiBody, ApiError, ErrorKind, Response, json_response, respond};

/// How long a secret check is reused.
const SECRET_CHECK_EVERY_MS: i64 = 60_000;

/// The health function's entry point.
pub async fn handle(deps: &HealthDeps, req: lambda_http::Request) -> Response {
    respond("health", req, |req, request_id| async move {
        if req.method() != http::Method::GET {
            return Err(ApiError::new(ErrorKind::MethodNotAllowed, "use GET"));
        }
        let (status, data) = match req.uri().path().trim_end_matches('/') {
            "/health" => (StatusCode::OK, json!({"status": "ok"})),
            "/health/ready" => ready(deps).await,
            _ => return Err(ApiError::new(ErrorKind::NotFound, "use /health or /health/ready")),
        };
        let ok = status == StatusCode::OK;
        let body = ApiBody {
            code: if ok { "OK" } else { "UNAVAILABLE" },
            message: if ok { "ready".into() } else { "not ready".into() },
            data: Some(data),
            request_id: request_id.0,
        };
        Ok(json_response(status, &body))
    })
    .await
}

async fn ready(deps: &HealthDeps) -> (StatusCode, Value) {
    // The breakers' fleet records: what the fleet decides on, and the store check in one.
    let started = std::time::Instant::now();
    let mut store_error = None;
    let mut breakers = Vec::with_capacity(deps.breakers.len());
    for breaker in &deps.breakers {
        let read = tokio::time::timeout(deps.store_timeout, breaker.fleet_snapshot()).await;
        match read {
            Ok(Ok(snapshot)) => breakers.push(json!({"name": breaker.name(), "state": snapshot.state.as_str()})),
            Ok(Err(error)) => {
                store_error.get_or_insert(error.to_string());
            }
            Err(_) => {
                store_error.get_or_insert(format!("no answer within {} ms", deps.store_timeout.as_millis()));
            }
        }
        if store_error.is_some() {
            break;
        }
    }
    let store = match &store_error {
        None => json!({"ok": true, "ms": started.elapsed().as_millis()}),
        Some(error) => json!({"ok": false, "error": error}),
    };
    let secrets = secrets(deps).await;
    let ok = store_error.is_none() && secrets.is_ok();
    let data = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "store": store,
        "secrets": match &secrets { Ok(()) => json!({"ok": true}), Err(error) => json!({"ok": false, "error": error}) },
        "breakers": breakers,
    });
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        data,
    )
}

/// Whether every named secret exists (described, never read), reusing a check younger than a minute.
async fn secrets(deps: &HealthDeps) -> Result<(), String> {
    let (Some(aws), false) = (&deps.aws, deps.secret_ids.is_empty()) else {
        return Ok(());
    };
    let now = deps.clock.now_ms();
    if let Some((at, result)) = deps
        .secrets_checked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        && now - at < SECRET_CHECK_EVERY_MS
    {
        return result;
    }
    let mut result = Ok(());
    for id in &deps.secret_ids {
        match aws.secret_usable(id).await {
            Ok(true) => {}
            Ok(false) => result = Err(format!("secret {id} is scheduled for deletion")),
            Err(error) => result = Err(format!("secret {id}: {error}")),
        }
        if result.is_err() {
            break;
        }
    }
    *deps
        .secrets_checked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, result.clone()));
    result
}
