//! The control API's login part: what a WeChat client would obtain on the user's side.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | POST | `/__mock/oauth/code` | `{appid?, user?, scope?}` → `{code, openid}`: what the authorize page hands the browser |
//! | POST | `/__mock/miniprogram/code` | `{appid?, user?}` → `{code, openid}`: what `wx.login()` gives |
//! | POST | `/__mock/miniprogram/phone_code` | `{appid?, phone?}` → `{code}`: what the phone button gives |
//! | POST | `/__mock/miniprogram/encrypt` | `{appid?, user?, data?}` → `{encryptedData, iv}`: user data sealed with the user's newest session_key (as `wx.getUserProfile` would return it) |
//!
//! `appid` defaults to the mock's mini-program ([`crate::DEFAULT_MINIPROGRAM_APPID`]) for the
//! mini-program routes and to [`crate::DEFAULT_APPID`] for OAuth; `user` to `alice`.

use std::sync::Arc;

use aes::Aes128;
use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{DEFAULT_APPID, DEFAULT_MINIPROGRAM_APPID};
use crate::login::{mint_oauth_code, mint_phone_code, mint_wxa_code};
use crate::state::MockState;
use crate::users::{DEFAULT_USER, openid, valid_user};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MintRequest {
    appid: Option<String>,
    user: Option<String>,
    scope: Option<String>,
    phone: Option<String>,
    data: Option<Value>,
}

fn refused(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn known_app<'a>(state: &MockState, appid: Option<&'a str>, default: &'a str) -> Result<&'a str, &'static str> {
    let appid = appid.unwrap_or(default);
    if state.lock().apps.contains_key(appid) {
        Ok(appid)
    } else {
        Err("unknown appid")
    }
}

/// The request's app (or `default`) and user (or `alice`), both checked.
fn app_and_user<'a>(
    state: &MockState,
    req: &'a MintRequest,
    default: &'a str,
) -> Result<(&'a str, &'a str), &'static str> {
    let appid = known_app(state, req.appid.as_deref(), default)?;
    let user = req.user.as_deref().unwrap_or(DEFAULT_USER);
    if !valid_user(user) {
        return Err("user must be [A-Za-z0-9_-]{1,32}");
    }
    Ok((appid, user))
}

pub(crate) async fn oauth_code(State(state): State<Arc<MockState>>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let (appid, user) = match app_and_user(&state, &req, DEFAULT_APPID) {
        Ok(found) => found,
        Err(message) => return refused(message),
    };
    let scope = req.scope.as_deref().unwrap_or("snsapi_base");
    let code = mint_oauth_code(&state, appid, user, scope);
    Json(json!({ "code": code, "openid": openid(appid, user) })).into_response()
}

pub(crate) async fn miniprogram_code(State(state): State<Arc<MockState>>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let (appid, user) = match app_and_user(&state, &req, DEFAULT_MINIPROGRAM_APPID) {
        Ok(found) => found,
        Err(message) => return refused(message),
    };
    let code = mint_wxa_code(&state, appid, user);
    Json(json!({ "code": code, "openid": openid(appid, user) })).into_response()
}

pub(crate) async fn phone_code(State(state): State<Arc<MockState>>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let appid = match known_app(&state, req.appid.as_deref(), DEFAULT_MINIPROGRAM_APPID) {
        Ok(appid) => appid,
        Err(message) => return refused(message),
    };
    let phone = req.phone.as_deref().unwrap_or("+8613800138000");
    let code = mint_phone_code(&state, appid, phone);
    Json(json!({ "code": code })).into_response()
}

pub(crate) async fn encrypt(State(state): State<Arc<MockState>>, body: Option<Json<MintRequest>>) -> Response {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    let (appid, user) = match app_and_user(&state, &req, DEFAULT_MINIPROGRAM_APPID) {
        Ok(found) => found,
        Err(message) => return refused(message),
    };
    match sealed_user_data(&state, appid, user, req.data.as_ref()) {
        Ok((encrypted_data, iv)) => Json(json!({ "encryptedData": encrypted_data, "iv": iv })).into_response(),
        Err(message) => refused(message),
    }
}

/// `user`'s profile (with `extra` fields over it, and a watermark for `appid` unless `extra`
/// brings one) sealed with the user's newest session_key: `(encryptedData, iv)`.
pub(crate) fn sealed_user_data(
    state: &MockState,
    appid: &str,
    user: &str,
    extra: Option<&Value>,
) -> Result<(String, String), &'static str> {
    let user_openid = openid(appid, user);
    let session_key = state
        .lock()
        .users
        .session_keys
        .get(&format!("{appid}/{user_openid}"))
        .cloned()
        .ok_or("this user has not logged in to this mini-program (no session_key yet)")?;
    let mut data = json!({
        "openId": user_openid,
        "nickName": format!("Mock {user}"),
        "gender": 0,
        "language": "zh_CN",
        "city": "Shenzhen",
        "province": "Guangdong",
        "country": "China",
        "avatarUrl": format!("https://thirdwx.qlogo.cn/mmopen/mock/{user}/132"),
    });
    if let (Some(fields), Some(extra)) = (data.as_object_mut(), extra.and_then(Value::as_object)) {
        fields.extend(extra.clone());
    }
    if data.get("watermark").is_none() {
        data["watermark"] = json!({ "timestamp": state.now_ms() / 1000, "appid": appid });
    }
    seal(&session_key, &data).ok_or("the stored session_key is not 16 bytes of base64")
}

/// AES-128-CBC, PKCS#7, key = base64-decoded session_key, a random iv; both base64.
fn seal(session_key: &str, data: &Value) -> Option<(String, String)> {
    let key: [u8; 16] = STANDARD.decode(session_key).ok()?.try_into().ok()?;
    let iv: [u8; 16] = rand::random();
    let sealed = cbc::Encryptor::<Aes128>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(data.to_string().as_bytes());
    Some((STANDARD.encode(sealed), STANDARD.encode(iv)))
}
