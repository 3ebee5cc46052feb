//! `GET /wechat` (server verification) and `POST /wechat` (messages and events).
//!
//! A POST's way: [`body_bytes`](crate::http::body_bytes) (size limit) → [`protocol::open`]
//! (signature or msg_signature, decryption) and [`protocol::parse_message`] →
//! [`Ledger::run_once`](crate::ledger::Ledger::run_once) (once fleet-wide) → the bot under the
//! budget → [`protocol::seal`] (encrypted when the request was). A wrong signature is a 403
//! before anything is read or stored; a body that cannot be opened or parsed is a 400.
//!
//! | what the ledger says | what happens |
//! |---|---|
//! | claimed (first delivery, or a dead holder's lease ran out) | run the bot, store its reply, answer it |
//! | done (WeChat's retry of an answered message) | answer the stored reply, run nothing |
//! | in progress (retry while the first delivery still runs) | wait for the stored reply within the budget, else `success` |
//! | fleet store out | the same on the instance-local ledger: retries reaching this instance are still de-duplicated |
//!
//! A bot that overruns the budget is answered with `success` (WeChat then neither retries nor
//! shows an error), its record is completed as `success`, so a retry starts nothing new, and the
//! message goes to the work queue: the worker runs the bot again, without WeChat's clock, and
//! sends the reply as a customer-service message. A bot that fails releases its claim and
//! answers 503, so WeChat's retry gets another chance.

use std::time::Duration;

use http::{Method, StatusCode};
use lambda_http::RequestExt;
use tokio::time::Instant;

use crate::bot::HandlerError;
use crate::delivery::Job;
use crate::deps::CallbackDeps;
use crate::http::{ApiError, ErrorKind, Response, body_bytes, respond, sealed_response, text_response};
use crate::ledger::{RunOnce, Wait};
use crate::protocol::{self, CallbackQuery, CallbackRequest, Message, PassiveReply, RANDOM_LEN};

/// WeChat gives up on an answer after 5 s; the callback never plans beyond this.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// The callback function's entry point.
#[tracing::instrument(name = "callback", skip_all)]
pub async fn handle(deps: &CallbackDeps, req: lambda_http::Request) -> Response {
    respond("callback", req, |req, _request_id| async move {
        match *req.method() {
            Method::GET => verify(deps, &req),
            Method::POST => receive(deps, &req).await,
            _ => Err(ApiError::new(
                ErrorKind::MethodNotAllowed,
                "use GET to verify or POST to deliver",
            )),
        }
    })
    .await
}

fn query_of(req: &lambda_http::Request) -> CallbackQuery<'_> {
    let params = req.query_string_parameters_ref();
    CallbackQuery::from_lookup(|name| params.and_then(|p| p.first(name)))
}

/// GET: answers `echostr` verbatim once the signature checks out.
fn verify(deps: &CallbackDeps, req: &lambda_http::Request) -> Result<Response, ApiError> {
    let echostr = protocol::verify_url(deps.account.token.expose(), &query_of(req))?;
    Ok(text_response(StatusCode::OK, echostr))
}

/// POST: authenticate, parse, run once, answer (sealed when the request was encrypted).
async fn receive(deps: &CallbackDeps, req: &lambda_http::Request) -> Result<Response, ApiError> {
    let budget_ends = Instant::now() + budget(deps, req);
    let account = &deps.account;
    let query = query_of(req);
    let request = CallbackRequest {
        mode: account.mode,
        token: account.token.expose(),
        keys: account.keys.as_ref(),
        query,
        body: body_bytes(req, deps.max_body_bytes)?,
    };
    let opened = protocol::open(&request)?;
    let message = protocol::parse_message(opened.message())?;
    let scope = message.header.to_user_name.as_str();
    let key = message.dedup_key();
    let work = || reply_within_budget(deps, &message, opened.message(), &key, budget_ends);
    let reply = match deps
        .ledger
        .run_once(scope, &key, Wait::Until(budget_ends), work)
        .await?
    {
        RunOnce::Ran(reply) => reply,
        RunOnce::Replayed(reply) => {
            tracing::info!(dedup_key = %key, "duplicate delivery answered from the ledger");
            reply
        }
        RunOnce::Busy => PassiveReply::Success,
        RunOnce::Failed(error) => return Err(error),
    };
    let now_secs = u64::try_from(deps.clock.now_secs()).unwrap_or_default();
    let random: [u8; RANDOM_LEN] = rand::random();
    let sealed = protocol::seal(
        reply,
        &opened,
        account.token.expose(),
        now_secs,
        query.nonce.unwrap_or_default(),
        &random,
    )?;
    Ok(sealed_response(sealed))
}

/// The bot's reply, rendered; `success` (and the work handed to the queue) when it overruns.
async fn reply_within_budget(
    deps: &CallbackDeps,
    message: &Message,
    raw: &[u8],
    key: &str,
    budget_ends: Instant,
) -> Result<PassiveReply, ApiError> {
    let reply = match tokio::time::timeout_at(budget_ends, deps.bot.handle(message)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(HandlerError(reason))) => {
            return Err(ApiError::new(ErrorKind::Unavailable, "temporarily unavailable")
                .with_detail(format_args!("business handler failed; claim released: {reason}")));
        }
        Err(_elapsed) => {
            hand_over(deps, key, raw).await;
            return Ok(PassiveReply::Success);
        }
    };
    let create_time = u64::try_from(deps.clock.now_secs()).unwrap_or_default();
    Ok(reply.render(&message.header, create_time)?)
}

/// Queues a message whose bot overran the budget; its reply will reach the user as a
/// customer-service message. The ledger record is completed as `success`, so a WeChat retry
/// starts nothing new.
async fn hand_over(deps: &CallbackDeps, key: &str, raw: &[u8]) {
    let job = Job::CallbackReply {
        id: key.to_owned(),
        message: String::from_utf8_lossy(raw).into_owned(),
    };
    match deps.queue.send(&job.to_body()).await {
        Ok(queue_message_id) => {
            tracing::warn!(dedup_key = %key, %queue_message_id, "business handler overran the budget; answered success and queued the work");
        }
        Err(error) => {
            tracing::error!(dedup_key = %key, reason = %error, "business handler overran the budget and the queue is unavailable; the reply is lost");
        }
    }
}

/// The business budget: the configured one, never past the Lambda invocation's own deadline
/// (minus a margin to answer), never more than WeChat's 5 s.
fn budget(deps: &CallbackDeps, req: &lambda_http::Request) -> Duration {
    let configured = deps.budget.min(WECHAT_TIMEOUT);
    let lambda_left = req.lambda_context_ref().and_then(|ctx| {
        let deadline_ms = i64::try_from(ctx.deadline).ok()?;
        let left_ms = deadline_ms.checked_sub(deps.clock.now_ms())?.checked_sub(200)?;
        u64::try_from(left_ms).ok().map(Duration::from_millis)
    });
    lambda_left.map_or(configured, |left| configured.min(left))
}
