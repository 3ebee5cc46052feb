//! WeChat's user-login endpoints: the web authorization page and its OAuth API, the
//! mini-program's `jscode2session` and the phone-number API.
//!
//! | path | answer |
//! |---|---|
//! | `GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state` | 302 to `redirect_uri?code&state` for the mock user (`mock_user=…`, default `alice`; `mock_decline=1`: no code) |
//! | `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code` | `{access_token, expires_in, refresh_token, openid, scope, unionid}`; 40029 / 40163 / 42003 |
//! | `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token` | a new access token; 40030 / 42002 |
//! | `GET /sns/userinfo?access_token&openid&lang` | the profile; 40001 / 42001 / 48001 (`snsapi_base`) / 40003 |
//! | `GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code` | `{openid, session_key, unionid}` (a new session_key each login) |
//! | `POST /wxa/business/getuserphonenumber?access_token` `{code}` | `{errcode:0, phone_info:{…, watermark}}` |

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::MockState;
use crate::tokens::WxError;
use crate::users::{
    Code, DEFAULT_USER, REFRESH_TTL_MS, USER_TOKEN_TTL_MS, UserToken, openid, random_session_key, random_value,
    take_code, unionid, valid_user,
};

type Params = Query<HashMap<String, String>>;

fn wx_error(err: WxError) -> Response {
    Json(json!({ "errcode": err.errcode, "errmsg": err.errmsg })).into_response()
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> &'a str {
    q.get(name).map_or("", String::as_str)
}

/// The app's secret must match (40013 unknown appid, 40125 wrong secret).
fn check_app(state: &MockState, appid: &str, secret: &str) -> Result<(), WxError> {
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

fn page(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

/// Mints a web-authorization code for `user` (the authorize page and the control API).
pub(crate) fn mint_oauth_code(state: &MockState, appid: &str, user: &str, scope: &str) -> String {
    issue_oauth_code(state, random_value("oc_"), appid, user, scope)
}

/// Issues `code` as a web-authorization code for `user` (sample events carry fixed codes).
pub(crate) fn issue_oauth_code(state: &MockState, code: String, appid: &str, user: &str, scope: &str) -> String {
    let now = state.now_ms();
    let entry = Code {
        appid: appid.to_owned(),
        user: user.to_owned(),
        detail: scope.to_owned(),
        issued_ms: now,
        used: false,
    };
    state.lock().users.oauth_codes.insert(code.clone(), entry);
    code
}

/// `GET /connect/oauth2/authorize`: the user agrees at once (or declines with `mock_decline=1`).
pub(crate) async fn authorize(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = param(&q, "appid");
    if !state.lock().apps.contains_key(appid) {
        return page(StatusCode::BAD_REQUEST, "appid invalid (10003)");
    }
    let scope = param(&q, "scope");
    if !matches!(scope, "snsapi_base" | "snsapi_userinfo") || param(&q, "response_type") != "code" {
        return page(StatusCode::BAD_REQUEST, "scope or response_type invalid (10005)");
    }
    let Ok(mut target) = reqwest_like_url(param(&q, "redirect_uri")) else {
        return page(StatusCode::BAD_REQUEST, "redirect_uri invalid (10003)");
    };
    let user = q.get("mock_user").map_or(DEFAULT_USER, String::as_str);
    if !valid_user(user) {
        return page(StatusCode::BAD_REQUEST, "mock_user must be [A-Za-z0-9_-]{1,32}");
    }
    let state_param = param(&q, "state");
    if q.get("mock_decline").is_none_or(|v| v != "1") {
        let code = mint_oauth_code(&state, appid, user, scope);
        target.push_query("code", &code);
    }
    target.push_query("state", state_param);
    (StatusCode::FOUND, [(header::LOCATION, target.text)]).into_response()
}

/// A redirect target with query parameters appended (the mock has no URL crate: an absolute
/// http(s) URL without a fragment is all it accepts).
struct Target {
    text: String,
}

impl Target {
    fn push_query(&mut self, name: &str, value: &str) {
        let separator = if self.text.contains('?') { '&' } else { '?' };
        self.text.push(separator);
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(&encode(value));
    }
}

fn reqwest_like_url(raw: &str) -> Result<Target, ()> {
    let ok = (raw.starts_with("http://") || raw.starts_with("https://"))
        && !raw.contains('#')
        && raw.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(Target { text: raw.to_owned() })
    } else {
        Err(())
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn issue_user_tokens(state: &MockState, grant: &Code) -> (String, String) {
    let now = state.now_ms();
    let access = random_value("uat_");
    let refresh = random_value("urt_");
    let token = |ttl| UserToken {
        appid: grant.appid.clone(),
        user: grant.user.clone(),
        scope: grant.detail.clone(),
        expires_ms: now + ttl,
    };
    let mut inner = state.lock();
    inner
        .users
        .access_tokens
        .insert(access.clone(), token(USER_TOKEN_TTL_MS));
    inner
        .users
        .refresh_tokens
        .insert(refresh.clone(), token(REFRESH_TTL_MS));
    (access, refresh)
}

/// `GET /sns/oauth2/access_token`.
pub(crate) async fn oauth_access_token(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = param(&q, "appid");
    if let Err(err) = check_app(&state, appid, param(&q, "secret")) {
        return wx_error(err);
    }
    if param(&q, "grant_type") != "authorization_code" {
        return wx_error(WxError::new(40002, "invalid grant_type"));
    }
    let now = state.now_ms();
    let taken = take_code(&mut state.lock().users.oauth_codes, appid, param(&q, "code"), now);
    let grant = match taken {
        Ok(grant) => grant,
        Err(err) => return wx_error(err),
    };
    let (access, refresh) = issue_user_tokens(&state, &grant);
    Json(json!({
        "access_token": access,
        "expires_in": USER_TOKEN_TTL_MS / 1000,
        "refresh_token": refresh,
        "openid": openid(appid, &grant.user),
        "scope": grant.detail,
        "unionid": unionid(&grant.user),
    }))
    .into_response()
}

/// `GET /sns/oauth2/refresh_token`: a new access token, the same refresh token.
pub(crate) async fn oauth_refresh(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = param(&q, "appid");
    if param(&q, "grant_type") != "refresh_token" {
        return wx_error(WxError::new(40002, "invalid grant_type"));
    }
    let refresh = param(&q, "refresh_token");
    let now = state.now_ms();
    let found = state.lock().users.refresh_tokens.get(refresh).cloned();
    let grant = match found {
        Some(token) if token.appid == appid && token.expires_ms > now => token,
        Some(token) if token.appid == appid => return wx_error(WxError::new(42002, "refresh_token timeout")),
        _ => return wx_error(WxError::new(40030, "invalid refresh_token")),
    };
    let access = random_value("uat_");
    let token = UserToken {
        expires_ms: now + USER_TOKEN_TTL_MS,
        ..grant.clone()
    };
    state.lock().users.access_tokens.insert(access.clone(), token);
    Json(json!({
        "access_token": access,
        "expires_in": USER_TOKEN_TTL_MS / 1000,
        "refresh_token": refresh,
        "openid": openid(appid, &grant.user),
        "scope": grant.scope,
    }))
    .into_response()
}

/// `GET /sns/userinfo`.
pub(crate) async fn userinfo(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let now = state.now_ms();
    let found = state.lock().users.access_tokens.get(param(&q, "access_token")).cloned();
    let token = match found {
        None => return wx_error(WxError::invalid_token()),
        Some(token) if token.expires_ms <= now => {
            return wx_error(WxError::new(42001, "access_token expired"));
        }
        Some(token) => token,
    };
    if !token.scope.split(',').any(|s| s == "snsapi_userinfo") {
        return wx_error(WxError::new(48001, "api unauthorized"));
    }
    let expected = openid(&token.appid, &token.user);
    if param(&q, "openid") != expected {
        return wx_error(WxError::new(40003, "invalid openid"));
    }
    Json(json!({
        "openid": expected,
        "nickname": format!("Mock {}", token.user),
        "sex": 0,
        "province": "Guangdong",
        "city": "Shenzhen",
        "country": "CN",
        "headimgurl": format!("https://thirdwx.qlogo.cn/mmopen/mock/{}/132", token.user),
        "privilege": [],
        "unionid": unionid(&token.user),
    }))
    .into_response()
}

/// Mints a mini-program login code (what `wx.login()` gives the client).
pub(crate) fn mint_wxa_code(state: &MockState, appid: &str, user: &str) -> String {
    issue_wxa_code(state, random_value("wc_"), appid, user)
}

/// Issues `code` as a mini-program login code for `user` (sample events carry fixed codes).
pub(crate) fn issue_wxa_code(state: &MockState, code: String, appid: &str, user: &str) -> String {
    let entry = Code {
        appid: appid.to_owned(),
        user: user.to_owned(),
        detail: String::new(),
        issued_ms: state.now_ms(),
        used: false,
    };
    state.lock().users.wxa_codes.insert(code.clone(), entry);
    code
}

/// `GET /sns/jscode2session`: every login gets a new session_key (the older one stops working
/// for data encrypted from now on, as with WeChat).
pub(crate) async fn jscode2session(State(state): State<Arc<MockState>>, Query(q): Params) -> Response {
    let appid = param(&q, "appid");
    if let Err(err) = check_app(&state, appid, param(&q, "secret")) {
        return wx_error(err);
    }
    if param(&q, "grant_type") != "authorization_code" {
        return wx_error(WxError::new(40002, "invalid grant_type"));
    }
    let now = state.now_ms();
    let mut inner = state.lock();
    let login = match take_code(&mut inner.users.wxa_codes, appid, param(&q, "js_code"), now) {
        Ok(login) => login,
        Err(err) => return wx_error(err),
    };
    let user_openid = openid(appid, &login.user);
    let session_key = random_session_key();
    inner
        .users
        .session_keys
        .insert(format!("{appid}/{user_openid}"), session_key.clone());
    Json(json!({
        "openid": user_openid,
        "session_key": session_key,
        "unionid": unionid(&login.user),
    }))
    .into_response()
}

/// Mints a phone code for `phone` (what `<button open-type="getPhoneNumber">` gives the client).
pub(crate) fn mint_phone_code(state: &MockState, appid: &str, phone: &str) -> String {
    let code = random_value("pc_");
    let entry = Code {
        appid: appid.to_owned(),
        user: String::new(),
        detail: phone.to_owned(),
        issued_ms: state.now_ms(),
        used: false,
    };
    state.lock().users.phone_codes.insert(code.clone(), entry);
    code
}

/// `POST /wxa/business/getuserphonenumber?access_token` `{code}`.
pub(crate) async fn phone_number(State(state): State<Arc<MockState>>, Query(q): Params, body: Bytes) -> Response {
    let appid = match crate::api::authorise(&state, &q) {
        Ok(appid) => appid,
        Err(err) => return wx_error(err),
    };
    let Some(code) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
    else {
        return wx_error(WxError::new(47001, "data format error"));
    };
    let now = state.now_ms();
    let taken = take_code(&mut state.lock().users.phone_codes, &appid, &code, now);
    let number = match taken {
        Ok(number) => number.detail,
        Err(err) => return wx_error(err),
    };
    let pure = number.strip_prefix("+86").unwrap_or(&number).to_owned();
    Json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": number,
            "purePhoneNumber": pure,
            "countryCode": 86,
            "watermark": { "timestamp": now / 1000, "appid": appid },
        },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_get_their_parameters_encoded() {
        let mut target = reqwest_like_url("https://app.example.com/oauth/callback").unwrap();
        target.push_query("code", "a b");
        target.push_query("state", "x&y");
        assert_eq!(
            target.text,
            "https://app.example.com/oauth/callback?code=a%20b&state=x%26y"
        );
        assert!(reqwest_like_url("javascript:alert(1)").is_err());
        assert!(reqwest_like_url("https://x/#frag").is_err());
    }
}
