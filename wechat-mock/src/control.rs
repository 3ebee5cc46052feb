//! The control API under `/__mock/...`: faults, token invalidation, time, counters, messages, reset.
//!
//! | method | path | body / answer |
//! |---|---|---|
//! | POST | `/__mock/faults` | a [`crate::Fault`] as JSON, e.g. `{"kind":{"errcode":{"errcode":-1,"errmsg":""}},"path":"/cgi-bin/stable_token","times":2}` |
//! | DELETE | `/__mock/faults` | clears all faults |
//! | POST | `/__mock/tokens/invalidate` | `{"appid":"wx.."}` (omit for all accounts) |
//! | POST | `/__mock/time` | `{"advance_ms":1000}` → `{"now_ms":..}` |
//! | GET | `/__mock/counters` | `{"calls":[{"domain","path","count"}]}` |
//! | GET | `/__mock/messages` | the recorded messages |
//! | POST | `/__mock/reset` | forgets everything |

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::faults::Fault;
use crate::state::MockState;

pub(crate) async fn add_fault(State(state): State<Arc<MockState>>, Json(fault): Json<Fault>) -> Response {
    state.lock().faults.push(fault);
    Json(json!({ "ok": true })).into_response()
}

pub(crate) async fn clear_faults(State(state): State<Arc<MockState>>) -> Response {
    state.lock().faults.clear();
    Json(json!({ "ok": true })).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct InvalidateRequest {
    appid: Option<String>,
}

pub(crate) async fn invalidate(State(state): State<Arc<MockState>>, Json(req): Json<InvalidateRequest>) -> Response {
    invalidate_tokens(&state, req.appid.as_deref());
    Json(json!({ "ok": true })).into_response()
}

pub(crate) fn invalidate_tokens(state: &MockState, appid: Option<&str>) {
    let now = state.now_ms();
    let mut inner = state.lock();
    for (id, app) in inner.apps.iter_mut() {
        if appid.is_none_or(|wanted| wanted == id) {
            app.invalidate(now);
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TimeRequest {
    #[serde(default)]
    advance_ms: i64,
}

pub(crate) async fn time(State(state): State<Arc<MockState>>, Json(req): Json<TimeRequest>) -> Response {
    state.lock().offset_ms += req.advance_ms;
    Json(json!({ "now_ms": state.now_ms() })).into_response()
}

pub(crate) async fn counters(State(state): State<Arc<MockState>>) -> Response {
    let counters = state.lock().counters.clone();
    let calls: Vec<_> = counters
        .calls
        .iter()
        .map(|((domain, path), count)| json!({ "domain": domain, "path": path, "count": count }))
        .collect();
    Json(json!({ "calls": calls, "forced_refreshes": counters.forced_refreshes })).into_response()
}

pub(crate) async fn messages(State(state): State<Arc<MockState>>) -> Response {
    Json(json!({ "messages": state.lock().messages })).into_response()
}

pub(crate) async fn reset(State(state): State<Arc<MockState>>) -> Response {
    state.reset();
    Json(json!({ "ok": true })).into_response()
}
