//! Who is calling: the session a request carries (`Authorization: Bearer wxs_…` from a
//! mini-program, or the session cookie from a browser), looked up in the fleet's store.

use std::time::Duration;

use crate::auth::cookies::cookie;
use crate::auth::{Lookup, Session, SessionId, SessionKind};
use crate::deadline::Deadline;
use crate::deps::AuthDeps;
use crate::http::{ApiError, ErrorKind};
use crate::telemetry::metrics::{self, count_with};

/// A session lookup's share of a request.
pub(super) const LOOKUP_BUDGET: Duration = Duration::from_millis(1500);

/// Where the session id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carrier {
    Bearer,
    Cookie,
}

/// A signed-in caller.
#[derive(Debug)]
pub(super) struct Caller {
    pub id: SessionId,
    pub session: Session,
    /// The store was out and this instance's recent copy answered.
    pub remembered: bool,
    pub carrier: Carrier,
}

/// The session id in `req`, if any (a bearer header wins over the cookie).
pub(super) fn presented(deps: &AuthDeps, req: &lambda_http::Request) -> Option<(Option<SessionId>, Carrier)> {
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    if let Some(token) = bearer {
        return Some((SessionId::parse(token.trim()), Carrier::Bearer));
    }
    cookie(req.headers(), deps.cookies.session_name()).map(|value| (SessionId::parse(value), Carrier::Cookie))
}

/// The caller's live session: 401 without one, or for one unknown, expired or revoked; 503
/// when the store is out and this instance has not seen the session recently.
pub(super) async fn signed_in(deps: &AuthDeps, req: &lambda_http::Request) -> Result<Caller, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorKind::Unauthorized, message);
    let (id, carrier) = presented(deps, req).ok_or_else(|| unauthorized("sign in first"))?;
    let id = id.ok_or_else(|| {
        count_with(metrics::AUTH_SESSION_CHECKS, "outcome", "missing");
        unauthorized("the session is unknown or expired; sign in again")
    })?;
    let lookup = deps.sessions.lookup(&id, &Deadline::after(LOOKUP_BUDGET)).await;
    let (session, remembered) = match lookup {
        Ok(Lookup::Found(session)) => (session, false),
        Ok(Lookup::Remembered(session)) => (session, true),
        Ok(Lookup::Missing) => {
            count_with(metrics::AUTH_SESSION_CHECKS, "outcome", "missing");
            return Err(unauthorized("the session is unknown or expired; sign in again"));
        }
        Err(error) => {
            count_with(metrics::AUTH_SESSION_CHECKS, "outcome", "unavailable");
            return Err(error.into());
        }
    };
    count_with(
        metrics::AUTH_SESSION_CHECKS,
        "outcome",
        if remembered { "remembered" } else { "valid" },
    );
    Ok(Caller {
        id,
        session,
        remembered,
        carrier,
    })
}

/// The caller's mini-program session: 403 for a web session (it holds no session_key).
pub(super) async fn miniprogram_caller(deps: &AuthDeps, req: &lambda_http::Request) -> Result<Caller, ApiError> {
    let caller = signed_in(deps, req).await?;
    if caller.session.kind != SessionKind::MiniProgram {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "this route needs a mini-program session",
        ));
    }
    Ok(caller)
}
