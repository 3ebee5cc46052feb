//! The control API's follower part: the account's followers subscribing and unsubscribing.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | POST | `/__mock/followers/subscribe` | `{openid}` → `{ok:true, subscribe_time}` (mock time, epoch s): a known follower re-subscribes in place, a new one is appended (unionid `u_<openid>`, no tags) |
//! | POST | `/__mock/followers/unsubscribe` | `{openid}` → `{ok:true}`; 400 `{error:"unknown openid"}` |
//! | GET | `/__mock/followers` | `{total, all}`: followers subscribed now, and every follower the list holds |
//!
//! The population itself comes from [`crate::MockConfig::with_followers`] (see `followers.rs`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::state::MockState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OpenidRequest {
    openid: String,
}

fn refused(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// Subscribes `openid` at mock time and returns the subscribe_time (epoch seconds).
pub(crate) fn subscribe_now(state: &MockState, openid: &str) -> Result<i64, &'static str> {
    // `now_ms` takes the lock itself: read the clock before locking.
    let now_secs = state.now_ms().div_euclid(1000);
    state.lock().followers.subscribe(openid, now_secs)
}

pub(crate) async fn subscribe(State(state): State<Arc<MockState>>, body: Option<Json<OpenidRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    match subscribe_now(&state, &req.openid) {
        Ok(subscribe_time) => Json(json!({ "ok": true, "subscribe_time": subscribe_time })).into_response(),
        Err(message) => refused(message),
    }
}

pub(crate) async fn unsubscribe(State(state): State<Arc<MockState>>, body: Option<Json<OpenidRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let known = state.lock().followers.unsubscribe(&req.openid);
    if known {
        Json(json!({ "ok": true })).into_response()
    } else {
        refused("unknown openid")
    }
}

pub(crate) async fn summary(State(state): State<Arc<MockState>>) -> Response {
    let (total, all) = {
        let inner = state.lock();
        (inner.followers.subscribed(), inner.followers.all())
    };
    Json(json!({ "total": total, "all": all })).into_response()
}
