//! The `auth` function: both logins, one session store, one cold start.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize?return_to=…&scope=…` | 302 to WeChat's authorize page with a `state` bound to this browser |
//! | `GET /oauth/callback?code=…&state=…` | checks `state`, exchanges the code once, sets the session cookie, 302 to `return_to` |
//! | `POST /miniprogram/login` `{code}` | `wx.login()`'s code → a bearer session |
//! | `POST /miniprogram/decrypt` `{encryptedData, iv, rawData?, signature?}` | the checked plaintext |
//! | `POST /miniprogram/phone` `{code}` | the phone number behind a one-time phone code |
//! | `GET /me` | the session's openid, unionid and profile (kept fresh with the user's refresh token) |
//! | `POST /logout` | revokes the session |
//!
//! One function rather than one per login: `/me` and `/logout` serve both kinds of session, both
//! logins share the session store, the exchange ledger and the resilience registry, and a login
//! is rare enough per user that a second function would mostly add a second cold start.
//! A login that is not configured answers 404.
//!
//! Every answer is `Cache-Control: no-store`; `/me` and `/logout` answer CORS (with
//! credentials) for origins on `AUTH_RETURN_HOSTS`.

mod account;
mod caller;
mod miniprogram;
mod web;

use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;

use crate::deps::AuthDeps;
use crate::http::{ApiBody, ApiError, ErrorKind, Response, arrival_ms, json_response, respond};

/// Bodies of the JSON routes are small: a code, or user data of a few KiB.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The auth function's entry point.
pub async fn handle(deps: &AuthDeps, req: lambda_http::Request) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let arrived_ms = arrival_ms(&req).map_or_else(|| deps.clock.now_ms(), |at| at.min(deps.clock.now_ms()));
    let mut response = respond("auth", req, |req, request_id| async move {
        route(deps, &req, arrived_ms, &request_id.0).await
    })
    .await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let allowed = origin.filter(|o| allows_origin(deps, o));
    if let Some(value) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn route(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    arrived_ms: i64,
    request_id: &str,
) -> Result<Response, ApiError> {
    let path = req.uri().path().trim_end_matches('/');
    let method = req.method();
    let route = Route::of(path).ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such route"))?;
    if method == Method::OPTIONS {
        return Ok(preflight(route));
    }
    if method != route.method() {
        return Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!("use {}", route.method()),
        ));
    }
    match route {
        Route::Authorize => web::authorize(deps, req, request_id).await,
        Route::Callback => web::callback(deps, req, arrived_ms, request_id).await,
        Route::MiniProgramLogin => miniprogram::login(deps, req, arrived_ms, request_id).await,
        Route::MiniProgramDecrypt => miniprogram::decrypt(deps, req, request_id).await,
        Route::MiniProgramPhone => miniprogram::phone(deps, req, arrived_ms, request_id).await,
        Route::Me => account::me(deps, req, request_id).await,
        Route::Logout => account::logout(deps, req, request_id).await,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Authorize,
    Callback,
    MiniProgramLogin,
    MiniProgramDecrypt,
    MiniProgramPhone,
    Me,
    Logout,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/oauth/authorize" => Self::Authorize,
            "/oauth/callback" => Self::Callback,
            "/miniprogram/login" => Self::MiniProgramLogin,
            "/miniprogram/decrypt" => Self::MiniProgramDecrypt,
            "/miniprogram/phone" => Self::MiniProgramPhone,
            "/me" => Self::Me,
            "/logout" => Self::Logout,
            _ => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Self::Authorize | Self::Callback | Self::Me => Method::GET,
            _ => Method::POST,
        }
    }
}

/// A CORS preflight: the route's method, `Authorization` and `Content-Type` (the origin is
/// added by [`handle`] when allowed).
fn preflight(route: Route) -> Response {
    let mut response = http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(lambda_http::Body::Empty)
        .unwrap_or_default();
    let headers = response.headers_mut();
    if let Ok(method) = HeaderValue::from_str(route.method().as_str()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

fn allows_origin(deps: &AuthDeps, origin: &str) -> bool {
    deps.web
        .as_ref()
        .is_some_and(|web| web.return_hosts.allows_origin(origin))
}

/// 200 with the unified body around `data`.
fn ok<T: Serialize>(data: T, request_id: &str) -> Response {
    json_response(
        StatusCode::OK,
        &ApiBody {
            code: "OK",
            message: "ok".into(),
            data: Some(data),
            request_id: request_id.to_owned(),
        },
    )
}

/// Seconds from now until `expires_ms`.
fn expires_in(deps: &AuthDeps, expires_ms: i64) -> u64 {
    u64::try_from(expires_ms.saturating_sub(deps.clock.now_ms()).div_euclid(1000)).unwrap_or(0)
}

/// A JSON body as `T`, 400 when it is not.
fn json_body<T: serde::de::DeserializeOwned>(req: &lambda_http::Request) -> Result<T, ApiError> {
    let bytes = crate::http::body_bytes(req, MAX_BODY_BYTES)?;
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("the body must be JSON of the documented shape").with_detail(e))
}

/// A login or phone code as the client sent it: 1..=256 visible ASCII characters.
fn checked_code(code: &str) -> Result<&str, ApiError> {
    let code = code.trim();
    if code.is_empty() || code.len() > 256 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request("code is required"));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_one_method_and_unknown_paths_none() {
        assert_eq!(Route::of("/oauth/authorize").map(Route::method), Some(Method::GET));
        assert_eq!(Route::of("/miniprogram/phone").map(Route::method), Some(Method::POST));
        assert_eq!(Route::of("/logout").map(Route::method), Some(Method::POST));
        assert_eq!(Route::of("/oauth"), None);
    }

    #[test]
    fn codes_must_be_short_visible_text() {
        assert_eq!(checked_code(" abc ").unwrap(), "abc");
        for bad in ["", "   ", "a b", &"x".repeat(257), "é"] {
            assert!(checked_code(bad).is_err(), "{bad:?}");
        }
    }
}
