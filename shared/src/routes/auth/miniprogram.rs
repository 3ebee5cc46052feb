//! The mini-program: `POST /miniprogram/login`, `/miniprogram/decrypt`, `/miniprogram/phone`.
//!
//! A login code (`wx.login()`) is exchanged exactly once for a bearer session that holds the
//! session_key server-side; encrypted user data is opened with that key and answered only when
//! its watermark names this mini-program (and its `openId`, if any, the session's user); a phone
//! code is exchanged exactly once, bound to the session that sent it.

use serde::Deserialize;
use serde_json::json;

use super::caller::miniprogram_caller;
use super::{checked_code, expires_in, json_body, ok};
use crate::auth::login::{exchange_once, miniprogram_session, phone_number};
use crate::auth::{LoginError, UserDataError, check_raw_data, decrypt_user_data};
use crate::deadline::Deadline;
use crate::deps::AuthDeps;
use crate::http::{ApiError, ErrorKind, Response};
use crate::telemetry::metrics::{self, count_with2};
use crate::wechat::WechatClient;

fn client(deps: &AuthDeps) -> Result<&WechatClient, ApiError> {
    deps.miniprogram
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "mini-program login is not configured"))
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDataBody {
    encrypted_data: String,
    iv: String,
    raw_data: Option<String>,
    signature: Option<String>,
}

/// `POST /miniprogram/login` `{code}` → `{session, token_type, openid, unionid, expires_in}`.
pub(super) async fn login(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    arrived_ms: i64,
    request_id: &str,
) -> Result<Response, ApiError> {
    let client = client(deps)?;
    let body: CodeBody = json_body(req)?;
    let code = checked_code(&body.code)?;
    let deadline = Deadline::after(deps.login_budget);
    let exchanged = exchange_once(
        &deps.ledger,
        &deps.clock,
        ("wxa", code),
        None,
        arrived_ms,
        deadline,
        || miniprogram_session(client, &deps.sessions, code, deadline),
    )
    .await;
    let count = |outcome: &str| {
        count_with2(
            metrics::AUTH_LOGINS,
            ("flow", "miniprogram".into()),
            ("outcome", outcome.into()),
        );
    };
    let (session, exchange) = exchanged.inspect_err(|error| count(error.outcome()))?;
    count(exchange.as_str());
    tracing::info!(target: "wechat_ha::auth", openid = %session.openid, exchange = exchange.as_str(), "mini-program login");
    Ok(ok(
        json!({
            "session": session.id,
            "token_type": "Bearer",
            "openid": session.openid,
            "unionid": session.unionid,
            "expires_in": expires_in(deps, session.expires_ms),
        }),
        request_id,
    ))
}

/// `POST /miniprogram/decrypt` → the decrypted, checked user data.
pub(super) async fn decrypt(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let client = client(deps)?;
    let caller = miniprogram_caller(deps, req).await?;
    let body: UserDataBody = json_body(req)?;
    let count = |outcome: &str| {
        count_with2(
            metrics::AUTH_USER_DATA,
            ("kind", "decrypt".into()),
            ("outcome", outcome.into()),
        );
    };
    let Some(session_key) = caller.session.secrets.session_key.as_ref() else {
        return Err(ApiError::internal().with_detail("a mini-program session without its session_key"));
    };
    let checked = match (&body.raw_data, &body.signature) {
        (Some(raw), Some(signature)) => check_raw_data(session_key, raw, signature),
        (None, None) => Ok(()),
        _ => return Err(ApiError::bad_request("rawData and signature go together")),
    }
    .and_then(|()| {
        decrypt_user_data(
            session_key,
            &body.encrypted_data,
            &body.iv,
            client.appid(),
            &caller.session.openid,
        )
    });
    let data = checked.inspect_err(|error| count(user_data_outcome(error)))?;
    count("ok");
    Ok(ok(data, request_id))
}

/// `POST /miniprogram/phone` `{code}` → `{phoneNumber, purePhoneNumber, countryCode}`.
pub(super) async fn phone(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    arrived_ms: i64,
    request_id: &str,
) -> Result<Response, ApiError> {
    let client = client(deps)?;
    let caller = miniprogram_caller(deps, req).await?;
    let body: CodeBody = json_body(req)?;
    let code = checked_code(&body.code)?;
    let count = |outcome: &str| {
        count_with2(
            metrics::AUTH_USER_DATA,
            ("kind", "phone".into()),
            ("outcome", outcome.into()),
        );
    };
    let deadline = Deadline::after(deps.login_budget);
    let session = &caller.session;
    let exchanged = exchange_once(
        &deps.ledger,
        &deps.clock,
        ("wxa-phone", code),
        Some(caller.id.digest()),
        arrived_ms,
        deadline,
        || phone_number(client, session, code, deadline),
    )
    .await;
    let (number, _) = exchanged.inspect_err(|error| {
        count(match error {
            LoginError::CodeRefused(_) | LoginError::Replayed => "rejected",
            LoginError::Unavailable(_) | LoginError::Store(_) | LoginError::InProgress | LoginError::Throttled => {
                "unavailable"
            }
            _ => "error",
        });
    })?;
    count("ok");
    Ok(ok(number, request_id))
}

fn user_data_outcome(error: &UserDataError) -> &'static str {
    match error {
        UserDataError::ForeignAppid | UserDataError::OtherUser => "foreign",
        UserDataError::Undecryptable | UserDataError::BadSignature => "rejected",
    }
}
