//! The WeChat API routes: token, stable_token, getticket and the three message sends.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::ConnInfo;
use crate::state::{MockState, SentMessage};
use crate::tokens::WxError;

type Params = Query<HashMap<String, String>>;

fn wx_error(err: WxError) -> Response {
    Json(json!({ "errcode": err.errcode, "errmsg": err.errmsg })).into_response()
}

fn token_answer(value: &str, expires_in: i64) -> Response {
    Json(json!({ "access_token": value, "expires_in": expires_in })).into_response()
}

fn check_credentials(state: &MockState, grant_type: Option<&str>, appid: &str, secret: &str) -> Result<(), WxError> {
    if grant_type != Some("client_credential") {
        return Err(WxError::new(40002, "invalid grant_type"));
    }
    let inner = state.lock();
    let app = inner
        .apps
        .get(appid)
        .ok_or_else(|| WxError::new(40013, "invalid appid"))?;
    if app.secret != secret {
        return Err(WxError::new(40125, "invalid appsecret"));
    }
    Ok(())
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`
pub(crate) async fn classic_token(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = q.get("appid").map_or("", String::as_str);
    let secret = q.get("secret").map_or("", String::as_str);
    if let Err(err) = check_credentials(&state, q.get("grant_type").map(String::as_str), appid, secret) {
        return wx_error(err);
    }
    let now = state.now_ms();
    let mut inner = state.lock();
    let value = MockState::next_value(&mut inner, "CLASSIC", appid);
    let Some(app) = inner.apps.get_mut(appid) else {
        return wx_error(WxError::new(40013, "invalid appid"));
    };
    match app.classic(&state.config, value, now) {
        Ok(issued) => token_answer(&issued.value, issued.expires_in(now)),
        Err(err) => wx_error(err),
    }
}

#[derive(Debug, Deserialize)]
struct StableRequest {
    grant_type: Option<String>,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

/// `POST /cgi-bin/stable_token` with a JSON body.
pub(crate) async fn stable_token(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<StableRequest>(&body) else {
        return wx_error(WxError::new(47001, "data format error"));
    };
    if req.force_refresh {
        state.lock().counters.forced_refreshes += 1;
    }
    if let Err(err) = check_credentials(&state, req.grant_type.as_deref(), &req.appid, &req.secret) {
        return wx_error(err);
    }
    let now = state.now_ms();
    let mut inner = state.lock();
    let value = MockState::next_value(&mut inner, "STABLE", &req.appid);
    let Some(app) = inner.apps.get_mut(&req.appid) else {
        return wx_error(WxError::new(40013, "invalid appid"));
    };
    match app.stable(&state.config, req.force_refresh, value, now) {
        Ok(issued) => token_answer(&issued.value, issued.expires_in(now)),
        Err(err) => wx_error(err),
    }
}

/// Resolves the `access_token` query parameter to its appid, or the WeChat error for it.
pub(crate) fn authorise(state: &MockState, q: &HashMap<String, String>) -> Result<String, WxError> {
    let token = q
        .get("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| WxError::new(41001, "access_token missing"))?;
    let now = state.now_ms();
    let inner = state.lock();
    for (appid, app) in &inner.apps {
        if let Some(verdict) = app.check(token, now) {
            return verdict.map(|()| appid.clone());
        }
    }
    Err(WxError::invalid_token())
}

/// `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi`
pub(crate) async fn get_ticket(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = match authorise(&state, &q) {
        Ok(appid) => appid,
        Err(err) => return wx_error(err),
    };
    if !matches!(q.get("type").map(String::as_str), Some("jsapi" | "wx_card")) {
        return wx_error(WxError::new(40097, "invalid args"));
    }
    let now = state.now_ms();
    let mut inner = state.lock();
    let value = MockState::next_value(&mut inner, "TICKET", &appid);
    let Some(app) = inner.apps.get_mut(&appid) else {
        return wx_error(WxError::invalid_token());
    };
    let issued = app.ticket(&state.config, value, now);
    Json(json!({ "errcode": 0, "errmsg": "ok", "ticket": issued.value, "expires_in": issued.expires_in(now) }))
        .into_response()
}

/// The addresses the mock says WeChat's callback servers send from (documentation ranges).
pub const CALLBACK_IPS: [&str; 3] = ["203.0.113.10", "203.0.113.11", "198.51.100.0/24"];

/// `GET /cgi-bin/get_callback_ip?access_token=`
pub(crate) async fn callback_ip(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    if let Err(err) = authorise(&state, &q) {
        return wx_error(err);
    }
    Json(json!({ "ip_list": CALLBACK_IPS })).into_response()
}

/// The three message sends differ only in kind, required fields and whether a msgid is returned.
fn send(
    state: &MockState,
    q: &HashMap<String, String>,
    conn: Option<Extension<ConnInfo>>,
    body: &[u8],
    kind: &str,
) -> Response {
    let appid = match authorise(state, q) {
        Ok(appid) => appid,
        Err(err) => return wx_error(err),
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return wx_error(WxError::new(47001, "data format error"));
    };
    if body.get("touser").and_then(Value::as_str).is_none_or(str::is_empty) {
        return wx_error(WxError::new(40003, "invalid openid"));
    }
    if kind != "custom"
        && body
            .get("template_id")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return wx_error(WxError::new(40037, "invalid template_id"));
    }
    if kind == "custom" && body.get("msgtype").and_then(Value::as_str).is_none() {
        return wx_error(WxError::new(40008, "invalid message type"));
    }
    let domain = conn.map_or_else(|| "default".to_owned(), |Extension(c)| c.domain.to_string());
    let mut inner = state.lock();
    inner.seq += 1;
    let msgid = 200_000_000 + inner.seq as i64;
    inner.messages.push(SentMessage {
        kind: kind.to_owned(),
        domain,
        appid,
        body,
        msgid,
    });
    if kind == "custom" {
        Json(json!({ "errcode": 0, "errmsg": "ok" })).into_response()
    } else {
        Json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })).into_response()
    }
}

type Conn = Option<Extension<ConnInfo>>;

/// `POST /cgi-bin/message/custom/send?access_token=`
pub(crate) async fn custom_send(
    State(state): State<Arc<MockState>>,
    Query(q): Params,
    conn: Conn,
    body: Bytes,
) -> Response {
    send(&state, &q, conn, &body, "custom")
}

/// `POST /cgi-bin/message/template/send?access_token=`
pub(crate) async fn template_send(
    State(state): State<Arc<MockState>>,
    Query(q): Params,
    conn: Conn,
    body: Bytes,
) -> Response {
    send(&state, &q, conn, &body, "template")
}

/// `POST /cgi-bin/message/subscribe/send?access_token=`
pub(crate) async fn subscribe_send(
    State(state): State<Arc<MockState>>,
    Query(q): Params,
    conn: Conn,
    body: Bytes,
) -> Response {
    send(&state, &q, conn, &body, "subscribe")
}
