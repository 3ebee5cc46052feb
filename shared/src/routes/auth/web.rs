//! The Official Account's web authorization: `GET /oauth/authorize` and `GET /oauth/callback`.
//!
//! `authorize` checks `return_to` against the allow-list, gives the browser a login-binding
//! cookie (kept if it has one), stores a random `state` bound to that cookie and sends the
//! browser to WeChat. `callback` accepts the `state` only from the browser it was issued to and
//! only with one code (a second code for one state is refused), exchanges the code exactly once
//! (a concurrent duplicate — a double load — shares the session; a later replay is refused),
//! revokes the browser's previous session, sets the session cookie and sends the browser to
//! `return_to`. A user who declines comes back without a code: the state is ended and the
//! browser sent to `return_to` with `wxha_login=declined`.

use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::caller::presented;
use super::{expires_in, ok};
use crate::auth::cookies::{LOGIN_COOKIE, cookie, set_login_binding};
use crate::auth::login::{digest, exchange_once, web_session};
use crate::auth::{LoginError, STATE_TTL, StartedLogin};
use crate::deadline::Deadline;
use crate::deps::{AuthDeps, WebLogin};
use crate::http::{ApiError, ErrorKind, Response, query_param};
use crate::telemetry::metrics::{self, count_with2};

/// The scopes WeChat's web authorization knows.
const SCOPES: [&str; 2] = ["snsapi_base", "snsapi_userinfo"];

fn web_login(deps: &AuthDeps) -> Result<&WebLogin, ApiError> {
    deps.web
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "web login is not configured"))
}

fn counted(outcome: &str) {
    count_with2(
        metrics::AUTH_LOGINS,
        ("flow", "web".into()),
        ("outcome", outcome.into()),
    );
}

/// `GET /oauth/authorize?return_to=…&scope=…`: 302 to WeChat's authorize page.
pub(super) async fn authorize(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let web = web_login(deps)?;
    let return_to = web
        .return_hosts
        .check(query_param(req, "return_to").unwrap_or(&web.default_return_to))?;
    let scope = query_param(req, "scope").unwrap_or(&web.default_scope);
    if !SCOPES.contains(&scope) {
        return Err(ApiError::bad_request("scope must be snsapi_base or snsapi_userinfo"));
    }
    let binding = cookie(req.headers(), LOGIN_COOKIE)
        .filter(|value| well_formed_binding(value))
        .map_or_else(|| hex::encode(rand::random::<[u8; 32]>()), str::to_owned);
    let deadline = Deadline::after(deps.login_budget);
    let state = deps.states.start(&binding, &return_to, scope, &deadline).await?;
    let mut url = reqwest::Url::parse_with_params(
        &web.authorize_url,
        [
            ("appid", web.client.appid()),
            ("redirect_uri", web.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state.as_str()),
        ],
    )
    .map_err(|e| ApiError::internal().with_detail(e))?;
    url.set_fragment(Some("wechat_redirect"));
    let mut response = ok(json!({ "authorize_url": url.as_str() }), request_id);
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    insert(headers, header::LOCATION, url.as_str())?;
    append(headers, header::SET_COOKIE, &set_login_binding(&binding, STATE_TTL))?;
    Ok(response)
}

/// `GET /oauth/callback?code=…&state=…`: the session cookie and a 302 to `return_to`.
pub(super) async fn callback(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    arrived_ms: i64,
    request_id: &str,
) -> Result<Response, ApiError> {
    let web = web_login(deps)?;
    let state = query_param(req, "state").filter(|s| !s.is_empty()).ok_or_else(|| {
        counted("rejected_state");
        ApiError::bad_request("state is required")
    })?;
    let binding = cookie(req.headers(), LOGIN_COOKIE);
    let deadline = Deadline::after(deps.login_budget);
    let Some(code) = query_param(req, "code").filter(|c| !c.is_empty()) else {
        let started = deps
            .states
            .abandon(state, binding, &deadline)
            .await
            .inspect_err(|_| counted("rejected_state"))?;
        counted("declined");
        return redirect_to(&started, Some("declined"), request_id);
    };
    let code = super::checked_code(code)?;
    let started = deps
        .states
        .bind(state, binding, code, &deadline)
        .await
        .inspect_err(|_| counted("rejected_state"))?;
    let exchanged = exchange_once(
        &deps.ledger,
        &deps.clock,
        ("oauth", code),
        Some(digest(state)),
        arrived_ms,
        deadline,
        || web_session(&web.client, &deps.sessions, &deps.clock, code, deadline),
    )
    .await;
    let (session, exchange) = match exchanged {
        Ok(done) => done,
        Err(error) => {
            counted(error.outcome());
            // The state may take another code (the user retries from WeChat) unless this one
            // is still being exchanged or was used.
            if !matches!(error, LoginError::Replayed | LoginError::InProgress) {
                deps.states.unbind(state, code, &deadline).await;
            }
            return Err(error.into());
        }
    };
    counted(exchange.as_str());
    revoke_previous(deps, req, &session.id).await;
    tracing::info!(target: "wechat_ha::auth", openid = %session.openid, exchange = exchange.as_str(), "web login");
    let mut response = redirect_to(&started, None, request_id)?;
    let max_age = std::time::Duration::from_secs(expires_in(deps, session.expires_ms));
    let headers = response.headers_mut();
    append(
        headers,
        header::SET_COOKIE,
        &deps.cookies.set_session(&session.id, max_age),
    )?;
    append(
        headers,
        header::SET_COOKIE,
        &set_login_binding("", std::time::Duration::ZERO),
    )?;
    Ok(response)
}

/// Signing in again from a browser that holds another session ends that one.
async fn revoke_previous(deps: &AuthDeps, req: &lambda_http::Request, new_id: &str) {
    let Some((Some(previous), _)) = presented(deps, req) else {
        return;
    };
    if previous.expose() == new_id {
        return;
    }
    if let Err(error) = deps
        .sessions
        .delete(&previous, &Deadline::after(super::caller::LOOKUP_BUDGET))
        .await
    {
        tracing::warn!(target: "wechat_ha::auth", reason = %error, "previous session not revoked; it expires by itself");
    }
}

fn redirect_to(started: &StartedLogin, outcome: Option<&str>, request_id: &str) -> Result<Response, ApiError> {
    let target = match outcome {
        None => started.return_to.clone(),
        Some(outcome) => {
            let separator = if started.return_to.contains('?') { '&' } else { '?' };
            format!("{}{separator}wxha_login={outcome}", started.return_to)
        }
    };
    let mut response = ok(
        json!({ "return_to": target, "login": outcome.unwrap_or("ok") }),
        request_id,
    );
    *response.status_mut() = StatusCode::FOUND;
    insert(response.headers_mut(), header::LOCATION, &target)?;
    Ok(response)
}

fn well_formed_binding(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn insert(headers: &mut http::HeaderMap, name: header::HeaderName, value: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(value).map_err(|e| ApiError::internal().with_detail(e))?;
    headers.insert(name, value);
    Ok(())
}

fn append(headers: &mut http::HeaderMap, name: header::HeaderName, value: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(value).map_err(|e| ApiError::internal().with_detail(e))?;
    headers.append(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declined_login_returns_with_the_outcome_appended() {
        let started = StartedLogin {
            return_to: "/shop?x=1".into(),
            scope: "snsapi_base".into(),
        };
        let response = redirect_to(&started, Some("declined"), "r").unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::LOCATION], "/shop?x=1&wxha_login=declined");
    }

    #[test]
    fn only_well_formed_bindings_are_kept() {
        assert!(well_formed_binding(&"a1".repeat(32)));
        assert!(!well_formed_binding("short"));
        assert!(!well_formed_binding(&"z".repeat(64)));
    }
}
