//! The admin API: the fleet's breakers, steered by an operator. IAM-authorised like
//! `/messages/*` (a bearer key locally); every action is audited with who did it and when.
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/breakers` | every breaker's fleet state (state, window calls / failures / slow, failure rate, open until, probes left, version, pinned) |
//! | `GET /admin/breakers/{name}` | one |
//! | `POST /admin/breakers/{name}/force` `{"state": "forced_open" \| "closed" \| "disabled"}` | an operator's transition, fleet-wide within one cache TTL |
//! | `POST /admin/breakers/{name}/reset` | closed, with a fresh window |
//! | `PUT /admin/breakers/{name}/thresholds` `{"failure_rate_threshold": 40, …}` | validated, written as the runtime override item |
//! | `PUT` / `DELETE /admin/breakers/{name}/pin` | the tuner leaves it alone / may tune it again |
//! | `GET /admin/audit?limit=100` | the newest actions, newest first |
//! | `GET /admin/sync` | the follower sync's checkpoint: the pass under way, the last one, a pause |
//! | `POST /admin/sync` | asks for a full follower pass (begun by the sync function's next tick, within a minute) |

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{BreakerView, apply_thresholds, fleet_view};
use crate::deps::AdminDeps;
use crate::http::{
    ApiBody, ApiError, ErrorKind, Response, body_bytes, caller, json_response, query_param, require_internal, respond,
};
use crate::resilience::{Breaker, ForceError, State};
use crate::telemetry::metrics;

/// Largest admin request body.
const MAX_BODY: usize = 16 * 1024;

/// The admin function's entry point.
pub async fn handle(deps: &AdminDeps, req: lambda_http::Request) -> Response {
    respond("admin", req, |req, request_id| async move {
        require_internal(&req, deps.internal_api_key.as_ref())?;
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let data = match (req.method().clone(), segments.as_slice()) {
            (Method::GET, ["admin", "breakers"]) => json!({"breakers": views(deps, &deps.breakers).await?}),
            (Method::GET, ["admin", "breakers", name]) => {
                let breaker = known(deps, name)?;
                json!(views(deps, std::slice::from_ref(breaker)).await?.remove(0))
            }
            (Method::POST, ["admin", "breakers", name, "force"]) => {
                let body = json_body(&req)?;
                let state = forced_state(&body)?;
                transition(deps, &req, name, state, "force").await?
            }
            (Method::POST, ["admin", "breakers", name, "reset"]) => {
                transition(deps, &req, name, State::Closed, "reset").await?
            }
            (Method::PUT, ["admin", "breakers", name, "thresholds"]) => thresholds(deps, &req, name).await?,
            (Method::PUT, ["admin", "breakers", name, "pin"]) => pin(deps, &req, name, true).await?,
            (Method::DELETE, ["admin", "breakers", name, "pin"]) => pin(deps, &req, name, false).await?,
            (Method::GET, ["admin", "sync"]) => {
                let (checkpoint, running) = crate::sync::state::read(&deps.store).await.map_err(store_error)?;
                json!({"checkpoint": checkpoint, "running": running.is_some()})
            }
            (Method::POST, ["admin", "sync"]) => {
                let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
                let checkpoint = crate::sync::state::request_pass(&deps.store, now)
                    .await
                    .map_err(store_error)?;
                audit(deps, &req, "sync", "followers", "full pass requested").await?;
                json!({"requested": true, "checkpoint": checkpoint})
            }
            (Method::GET, ["admin", "audit"]) => {
                let limit = match query_param(&req, "limit") {
                    None => 100,
                    Some(raw) => raw
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| ApiError::bad_request("limit must be a whole number from 1 to 1000"))?,
                };
                json!({"entries": deps.audit.list(limit).await.map_err(store_error)?})
            }
            (_, ["admin", "breakers"] | ["admin", "breakers", _] | ["admin", "audit"] | ["admin", "sync"])
            | (_, ["admin", "breakers", _, "force" | "reset" | "thresholds" | "pin"]) => {
                return Err(ApiError::new(
                    ErrorKind::MethodNotAllowed,
                    "method not allowed on this admin route",
                ));
            }
            _ => return Err(ApiError::new(ErrorKind::NotFound, "no such admin route")),
        };
        let body = ApiBody {
            code: "OK",
            message: "ok".into(),
            data: Some(data),
            request_id: request_id.0,
        };
        Ok(json_response(StatusCode::OK, &body))
    })
    .await
}

async fn views(deps: &AdminDeps, breakers: &[std::sync::Arc<Breaker>]) -> Result<Vec<BreakerView>, ApiError> {
    let pinned = deps.pins.list().await.map_err(store_error)?;
    fleet_view(breakers, &pinned).await.map_err(force_error)
}

fn known<'a>(deps: &'a AdminDeps, name: &str) -> Result<&'a std::sync::Arc<Breaker>, ApiError> {
    deps.breaker(name)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no breaker named {name:?}")))
}

fn json_body(req: &lambda_http::Request) -> Result<Value, ApiError> {
    let bytes = body_bytes(req, MAX_BODY)?;
    serde_json::from_slice(bytes).map_err(|_| ApiError::bad_request("body must be JSON"))
}

fn forced_state(body: &Value) -> Result<State, ApiError> {
    match body["state"].as_str() {
        Some("forced_open") => Ok(State::ForcedOpen),
        Some("closed") => Ok(State::Closed),
        Some("disabled") => Ok(State::Disabled),
        _ => Err(ApiError::bad_request(
            "body must be {\"state\": \"forced_open\" | \"closed\" | \"disabled\"}",
        )),
    }
}

async fn transition(
    deps: &AdminDeps,
    req: &lambda_http::Request,
    name: &str,
    state: State,
    action: &'static str,
) -> Result<Value, ApiError> {
    let breaker = known(deps, name)?;
    let snapshot = breaker.force(state).await.map_err(force_error)?;
    audit(deps, req, action, name, state.as_str()).await?;
    Ok(json!({"breaker": name, "state": snapshot.state.as_str(), "version": snapshot.version}))
}

async fn thresholds(deps: &AdminDeps, req: &lambda_http::Request, name: &str) -> Result<Value, ApiError> {
    known(deps, name)?;
    let body = json_body(req)?;
    let base = deps.registry.config_for(name);
    let written = apply_thresholds(&deps.store, name, &base, &body)
        .await
        .map_err(|error| match error {
            crate::admin::ThresholdError::Invalid(reason) => ApiError::bad_request(reason),
            crate::admin::ThresholdError::Store(error) => store_error(error),
        })?;
    let detail = Value::Object(written.clone()).to_string();
    audit(deps, req, "thresholds", name, &detail).await?;
    Ok(json!({"breaker": name, "thresholds": written}))
}

async fn pin(deps: &AdminDeps, req: &lambda_http::Request, name: &str, pinned: bool) -> Result<Value, ApiError> {
    known(deps, name)?;
    let actor = caller(req, deps.internal_api_key.as_ref());
    deps.pins.set(name, pinned, &actor).await.map_err(store_error)?;
    audit(deps, req, if pinned { "pin" } else { "unpin" }, name, "").await?;
    Ok(json!({"breaker": name, "pinned": pinned}))
}

async fn audit(
    deps: &AdminDeps,
    req: &lambda_http::Request,
    action: &'static str,
    target: &str,
    detail: &str,
) -> Result<(), ApiError> {
    let actor = caller(req, deps.internal_api_key.as_ref());
    metrics::count_with(metrics::ADMIN_ACTIONS, "action", action);
    deps.audit
        .record(&actor, action, target, detail)
        .await
        .map(|_| ())
        .map_err(|error| {
            ApiError::new(ErrorKind::Unavailable, "done, but the audit entry could not be written").with_detail(error)
        })
}

fn store_error(error: crate::store::StoreError) -> ApiError {
    ApiError::new(ErrorKind::Unavailable, "state store unavailable; retry later").with_detail(error)
}

fn force_error(error: ForceError) -> ApiError {
    match error {
        ForceError::Illegal(illegal) => ApiError::new(ErrorKind::Conflict, illegal.to_string()),
        ForceError::Contended => ApiError::new(ErrorKind::Conflict, "the breaker kept changing; try again"),
        other => ApiError::new(ErrorKind::Unavailable, "state store unavailable; retry later").with_detail(other),
    }
}
