//! `GET /wechat` (server verification) and `POST /wechat` (messages and events).
//!
//! POST flow: size limit → [`protocol::open`] (signature or msg_signature, decryption) →
//! [`protocol::parse_message`] → [`deliver`] (de-duplicate, business handler under the deadline) →
//! [`protocol::seal`] (encrypt the reply when the request was encrypted). A wrong signature is a
//! 403 before anything is read or stored; a body that cannot be opened or parsed is a 400.

mod deliver;

use std::time::Duration;

use http::{Method, StatusCode};
use lambda_http::RequestExt;

use crate::deps::Deps;
use crate::http::{ApiError, ErrorKind, Response, body_bytes, guard, text_response, xml_response};
use crate::protocol::{self, CallbackQuery, CallbackRequest, OpenError};

pub use deliver::deliver;

/// WeChat gives up on an answer after 5 s; the callback never plans beyond this.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// The callback function's entry point.
#[tracing::instrument(name = "callback", skip_all)]
pub async fn handle(deps: &Deps, req: lambda_http::Request) -> Response {
    guard("callback", req, |req, _request_id| route(deps, req)).await
}

async fn route(deps: &Deps, req: lambda_http::Request) -> Result<Response, ApiError> {
    match *req.method() {
        Method::GET => verify(deps, &req),
        Method::POST => receive(deps, &req).await,
        _ => Err(ApiError::new(
            ErrorKind::MethodNotAllowed,
            "use GET to verify or POST to deliver",
        )),
    }
}

fn query_of(req: &lambda_http::Request) -> CallbackQuery<'_> {
    let params = req.query_string_parameters_ref();
    CallbackQuery::from_lookup(|name| params.and_then(|p| p.first(name)))
}

fn open_error(error: &OpenError) -> ApiError {
    let kind = if error.status() == StatusCode::FORBIDDEN {
        ErrorKind::InvalidSignature
    } else {
        ErrorKind::BadRequest
    };
    tracing::warn!(reason = %error, "callback request refused");
    ApiError::new(kind, error.client_message())
}

/// GET: answers `echostr` verbatim once the signature checks out.
fn verify(deps: &Deps, req: &lambda_http::Request) -> Result<Response, ApiError> {
    let echostr = protocol::verify_url(deps.settings.wechat.token.expose(), &query_of(req))
        .map_err(|error| open_error(&error))?;
    Ok(text_response(StatusCode::OK, echostr))
}

/// POST: authenticate, parse, deliver once, answer (sealed when the request was encrypted).
async fn receive(deps: &Deps, req: &lambda_http::Request) -> Result<Response, ApiError> {
    let budget_ends = tokio::time::Instant::now() + budget(deps, req);
    let wechat = &deps.settings.wechat;
    let query = query_of(req);
    let request = CallbackRequest {
        mode: wechat.encrypt_mode,
        token: wechat.token.expose(),
        keys: wechat.keys.as_ref(),
        query,
        body: body_bytes(req, deps.settings.callback.max_body_bytes)?,
    };
    let opened = protocol::open(&request).map_err(|error| open_error(&error))?;
    let message = protocol::parse_message(opened.message()).map_err(|error| {
        tracing::warn!(reason = %error, "callback body is not a message");
        ApiError::bad_request("invalid message")
    })?;
    let reply = deliver(deps, &message, opened.message(), budget_ends).await?;
    let now_secs = u64::try_from(deps.clock.now_secs()).unwrap_or_default();
    let nonce = query.nonce.unwrap_or_default();
    let sealed = protocol::seal(&reply, &opened, wechat.token.expose(), now_secs, nonce, None).map_err(|error| {
        tracing::error!(reason = %error, "could not encrypt the reply");
        ApiError::internal()
    })?;
    Ok(if sealed == protocol::SUCCESS {
        text_response(StatusCode::OK, protocol::SUCCESS)
    } else {
        xml_response(sealed.into_owned())
    })
}

/// The business budget: the configured one, never past the Lambda invocation's own deadline
/// (minus a margin to answer), never more than WeChat's 5 s.
fn budget(deps: &Deps, req: &lambda_http::Request) -> Duration {
    let configured = deps.settings.callback.budget.min(WECHAT_TIMEOUT);
    let lambda_left = req.lambda_context_ref().and_then(|ctx| {
        let deadline_ms = i64::try_from(ctx.deadline).ok()?;
        let left_ms = deadline_ms.checked_sub(deps.clock.now_ms())?.checked_sub(200)?;
        u64::try_from(left_ms).ok().map(Duration::from_millis)
    });
    lambda_left.map_or(configured, |left| configured.min(left))
}
