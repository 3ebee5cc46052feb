//! `GET /me` and `POST /logout`, for either kind of session.
//!
//! `/me` answers what the session knows — never its secrets. A web session with the
//! `snsapi_userinfo` scope whose profile is older than `AUTH_PROFILE_MAX_AGE_SECS` is refreshed
//! with the user's WeChat tokens (renewed with the refresh token when expired); when WeChat is
//! out the stored profile is served, marked `stale`. A session answered from this instance's
//! memory (the store out) is served as it is.

use http::{HeaderValue, header};
use serde_json::json;

use super::caller::{Carrier, LOOKUP_BUDGET, signed_in};
use super::{expires_in, ok};
use crate::auth::ProfileState;
use crate::auth::login::refresh_profile;
use crate::deadline::Deadline;
use crate::deps::AuthDeps;
use crate::http::{ApiError, Response};
use crate::telemetry::metrics::{self, count_with};

/// `GET /me`.
pub(super) async fn me(deps: &AuthDeps, req: &lambda_http::Request, request_id: &str) -> Result<Response, ApiError> {
    let mut caller = signed_in(deps, req).await?;
    let profile_state = match (&deps.web, caller.remembered) {
        (Some(web), false) => {
            let max_age_ms = crate::clock::millis(deps.profile_max_age);
            let deadline = Deadline::after(deps.login_budget);
            let state = refresh_profile(
                &web.client,
                &deps.sessions,
                &deps.clock,
                (&caller.id, &mut caller.session),
                max_age_ms,
                deadline,
            )
            .await;
            if matches!(
                state,
                ProfileState::Refreshed | ProfileState::Stale | ProfileState::Reauthorize
            ) {
                count_with(metrics::AUTH_PROFILE_REFRESHES, "outcome", state.as_str());
            }
            state
        }
        _ if caller.session.profile.is_some() => ProfileState::Fresh,
        _ => ProfileState::None,
    };
    let session = &caller.session;
    Ok(ok(
        json!({
            "kind": session.kind.as_str(),
            "appid": session.appid,
            "openid": session.openid,
            "unionid": session.unionid,
            "scope": session.scope,
            "profile": session.profile,
            "profile_state": profile_state.as_str(),
            "expires_in": expires_in(deps, session.expires_ms),
        }),
        request_id,
    ))
}

/// `POST /logout`: the session is deleted from the store (every instance stops accepting it)
/// and the cookie cleared.
pub(super) async fn logout(
    deps: &AuthDeps,
    req: &lambda_http::Request,
    request_id: &str,
) -> Result<Response, ApiError> {
    let caller = signed_in(deps, req).await?;
    deps.sessions
        .delete(&caller.id, &Deadline::after(LOOKUP_BUDGET))
        .await?;
    tracing::info!(target: "wechat_ha::auth", openid = %caller.session.openid, "signed out");
    let mut response = ok(json!({ "signed_out": true }), request_id);
    if caller.carrier == Carrier::Cookie {
        let clear =
            HeaderValue::from_str(&deps.cookies.clear_session()).map_err(|e| ApiError::internal().with_detail(e))?;
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    Ok(response)
}
