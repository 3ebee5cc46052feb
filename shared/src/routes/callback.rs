//! `GET /wechat` (server verification) and `POST /wechat` (messages and events).
//!
//! A POST's way: [`body_bytes`](crate::http::body_bytes) (size limit) → [`protocol::check_fresh`]
//! and [`protocol::open`] (freshness window, signature or msg_signature, decryption) and
//! [`protocol::parse_message`] → the replay guard (plaintext only: one signed query, one body) →
//! [`Ledger::run_once`](crate::ledger::Ledger::run_once) (once fleet-wide) → the bot under the
//! budget → [`protocol::seal`] (encrypted when the request was). A stale timestamp, a wrong
//! signature or a replayed query is a 403 before anything is read or stored; a body that cannot
//! be opened or parsed is a 400.
//!
//! Time is counted from the request's arrival at API Gateway (`requestContext.timeEpoch`), not
//! from when this instance got it (a cold start may have eaten a second): the bot has until
//! arrival + `CALLBACK_BUDGET_MS` (≤ 4 s), and everything after it — the hand-over to the queue,
//! storing the reply — until arrival + [`ANSWER_WITHIN`] (4.5 s), inside WeChat's 5 s.
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

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use lambda_http::RequestExt;
use tokio::time::Instant;

use crate::bot::HandlerError;
use crate::deadline::Deadline;
use crate::delivery::Job;
use crate::deps::CallbackDeps;
use crate::http::{
    ApiError, ErrorKind, Response, arrival_ms, body_bytes, query_pairs, respond, sealed_response, text_response,
};
use crate::ledger::{RunOnce, Wait};
use crate::protocol::{self, CallbackQuery, CallbackRequest, Message, PassiveReply, RANDOM_LEN};
use crate::replay::SignedQuery;
use crate::telemetry::metrics::{self, CallbackOutcome};

/// How long a follower event's write may take (it runs before the bot, inside its budget).
const FOLLOWER_WRITE_TIMEOUT: Duration = Duration::from_millis(300);

/// WeChat gives up on an answer after 5 s; the callback never plans beyond this.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything is done by arrival + this: the rest of WeChat's 5 s is for the answer's way back.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(4500);

/// The callback function's entry point. A function returning [`respond`]'s future rather than an
/// `async fn` awaiting it: that would hold the request once more in its own state, and move the
/// whole future into it, on every message.
pub fn handle(deps: &CallbackDeps, req: lambda_http::Request) -> impl Future<Output = Response> + '_ {
    respond("callback", req, move |req, _request_id| async move {
        // The wall clock read once for the checks and deadlines (a clock read costs as much
        // as a short parse on a virtualised host), once more for the answer's latency.
        let now_ms = deps.clock.now_ms();
        // API Gateway's arrival (`requestContext.timeEpoch`), read once; never after now (a
        // clock ahead of ours would otherwise lend the bot time it does not have).
        let arrived_ms = arrival_ms(&req).map_or(now_ms, |arrived| arrived.min(now_ms));
        let progress = Progress::default();
        let result = match *req.method() {
            Method::GET => verify(deps, &req, now_ms, &progress).await,
            // Boxed: a POST's state (ledger, bot, queue hand-over) is several times a GET's,
            // and a future is as large as its largest branch — inline, every GET's future
            // would carry (and copy on each move) the POST's kilobytes.
            Method::POST => Box::pin(receive(deps, &req, now_ms, arrived_ms, &progress)).await,
            _ => Err(ApiError::new(
                ErrorKind::MethodNotAllowed,
                "use GET to verify or POST to deliver",
            )),
        };
        let answered_in = u64::try_from(deps.clock.now_ms() - arrived_ms).unwrap_or(0);
        deps.metrics
            .answered(progress.outcome(&result), Duration::from_millis(answered_in));
        result
    })
}

/// How far a request got, for its outcome on `wechat_callback_requests_total`.
#[derive(Debug, Default)]
struct Progress {
    stage: AtomicU8,
}

impl Progress {
    const CHECKING: u8 = 0;
    const FRESHNESS: u8 = 1;
    const REPLAY: u8 = 2;
    const VERIFIED: u8 = 3;
    const REPLIED: u8 = 4;
    const REPLAYED: u8 = 5;
    const BUSY: u8 = 6;
    const HANDED_OVER: u8 = 7;

    fn at(&self, stage: u8) {
        self.stage.store(stage, Ordering::Relaxed);
    }

    fn outcome(&self, result: &Result<Response, ApiError>) -> CallbackOutcome {
        let stage = self.stage.load(Ordering::Relaxed);
        match result {
            Ok(_) => match stage {
                Self::VERIFIED => CallbackOutcome::Verified,
                Self::REPLAYED => CallbackOutcome::Replayed,
                Self::BUSY => CallbackOutcome::Busy,
                Self::HANDED_OVER => CallbackOutcome::HandedOver,
                _ => CallbackOutcome::Replied,
            },
            Err(error) => match (error.kind, stage) {
                (ErrorKind::InvalidSignature, Self::FRESHNESS) => CallbackOutcome::RejectedFreshness,
                (ErrorKind::InvalidSignature, Self::REPLAY) => CallbackOutcome::RejectedReplay,
                (ErrorKind::InvalidSignature, _) => CallbackOutcome::RejectedSignature,
                (ErrorKind::PayloadTooLarge, _) => CallbackOutcome::RejectedSize,
                (ErrorKind::BadRequest | ErrorKind::MethodNotAllowed, _) => CallbackOutcome::BadRequest,
                (ErrorKind::Unavailable, _) => CallbackOutcome::Unavailable,
                _ => CallbackOutcome::Error,
            },
        }
    }
}

/// The callback's query, read in one pass over the request's pairs (`crate::http::query`), once
/// its timestamp is inside the freshness window at `now_ms` (the clock when the request began).
fn fresh_query<'r>(
    deps: &CallbackDeps,
    req: &'r lambda_http::Request,
    now_ms: i64,
    progress: &Progress,
) -> Result<CallbackQuery<'r>, ApiError> {
    let query = CallbackQuery::from_pairs(query_pairs(req));
    progress.at(Progress::FRESHNESS);
    protocol::check_fresh(&query, now_ms.div_euclid(1000), deps.max_skew_secs)?;
    progress.at(Progress::CHECKING);
    Ok(query)
}

/// GET: answers `echostr` verbatim once the timestamp and signature check out, and the signed
/// query was not used with another `echostr` before. `now_ms`: the clock when the request began.
async fn verify(
    deps: &CallbackDeps,
    req: &lambda_http::Request,
    now_ms: i64,
    progress: &Progress,
) -> Result<Response, ApiError> {
    let query = fresh_query(deps, req, now_ms, progress)?;
    let echostr = protocol::verify_url(deps.account.token.expose(), &query)?;
    progress.at(Progress::REPLAY);
    admit(deps, &query, b"echostr:", echostr.as_bytes()).await?;
    progress.at(Progress::VERIFIED);
    Ok(text_response(StatusCode::OK, echostr))
}

/// POST: authenticate, parse, run once, answer (sealed when the request was encrypted).
/// `now_ms`: the clock when the request began; `arrived_ms`: when it reached API Gateway.
async fn receive(
    deps: &CallbackDeps,
    req: &lambda_http::Request,
    now_ms: i64,
    arrived_ms: i64,
    progress: &Progress,
) -> Result<Response, ApiError> {
    let (budget_ends, answer_by) = deadlines(req, now_ms, arrived_ms, deps.budget);
    let account = &deps.account;
    let query = fresh_query(deps, req, now_ms, progress)?;
    let request = CallbackRequest {
        mode: account.mode,
        token: account.token.expose(),
        keys: account.keys.as_ref(),
        query,
        body: body_bytes(req, deps.max_body_bytes)?,
    };
    let opened = protocol::open(&request)?;
    let message = protocol::parse_message(opened.message())?;
    if !opened.was_encrypted() {
        progress.at(Progress::REPLAY);
        admit(deps, &query, b"body:", request.body).await?;
        progress.at(Progress::CHECKING);
    }
    follow_event(deps, &message, &Deadline::at(budget_ends)).await;
    let scope = message.header.to_user_name.as_str();
    let key = message.dedup_key();
    let work = || reply_within_budget(deps, &message, opened.message(), &key, budget_ends, answer_by, progress);
    let deadline = Deadline::at(answer_by);
    let reply = match deps
        .ledger
        .run_once(scope, &key, deadline, Wait::Until(budget_ends), work)
        .await?
    {
        // An unrecorded reply is answered all the same; WeChat's retries (within 15 s) find the
        // record pending under its lease and get `success`.
        RunOnce::Ran(reply) | RunOnce::Unrecorded(reply, _) => reply,
        RunOnce::Replayed(reply) => {
            progress.at(Progress::REPLAYED);
            tracing::info!(dedup_key = %key, "duplicate delivery answered from the ledger");
            reply
        }
        RunOnce::Busy => {
            progress.at(Progress::BUSY);
            PassiveReply::Success
        }
        RunOnce::Failed(error) => return Err(error),
    };
    // Only an encrypted envelope uses the time and the random prefix: a plaintext answer
    // reads neither the clock nor the RNG.
    let (now_secs, random): (u64, [u8; RANDOM_LEN]) = if opened.was_encrypted() {
        (u64::try_from(deps.clock.now_secs()).unwrap_or_default(), rand::random())
    } else {
        (0, [0; RANDOM_LEN])
    };
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

/// A subscribe / unsubscribe event updates the follower's item at once (the full sync fills the
/// profile). Every delivery tries — the write is conditional on being newer, so a WeChat retry
/// repeats it harmlessly — and a failure only costs freshness until the next full pass: it is
/// counted and logged, never the message's answer.
async fn follow_event(deps: &CallbackDeps, message: &Message, deadline: &Deadline) {
    let subscribed = match message.event() {
        Some(protocol::Event::Subscribe { .. }) => true,
        Some(protocol::Event::Unsubscribe) => false,
        _ => return,
    };
    let openid = &message.header.from_user_name;
    let event_ms = i64::try_from(message.header.create_time)
        .unwrap_or_default()
        .saturating_mul(1000);
    let write = crate::sync::follower::store_event(&deps.store, openid, subscribed, event_ms, deps.clock.now_ms());
    let outcome = match crate::store::bounded(FOLLOWER_WRITE_TIMEOUT, Some(deadline), write).await {
        Ok(crate::sync::Written::Stored) => "stored",
        Ok(crate::sync::Written::KeptNewer) => "kept_newer",
        Err(error) => {
            tracing::warn!(target: "wechat_ha::sync", reason = %error, "follower event not stored; the next full pass repairs it");
            "failed"
        }
    };
    metrics::count_with(metrics::SYNC_EVENTS, "outcome", outcome);
}

/// Refuses a signed query that already carried other content (plaintext requests: the
/// signature does not cover the body). `kind` keeps a GET's echostr and a POST's body apart.
async fn admit(deps: &CallbackDeps, query: &CallbackQuery<'_>, kind: &[u8], content: &[u8]) -> Result<(), ApiError> {
    let signed = SignedQuery {
        timestamp: query.timestamp.unwrap_or_default(),
        nonce: query.nonce.unwrap_or_default(),
        signature: query.signature.unwrap_or_default(),
    };
    deps.replay
        .admit(&deps.account.appid, &signed, kind, content)
        .await
        .map_err(|replayed| ApiError::new(ErrorKind::InvalidSignature, "invalid signature").with_detail(replayed))
}

/// The bot's reply, rendered; `success` (and the work handed to the queue) when it overruns.
async fn reply_within_budget(
    deps: &CallbackDeps,
    message: &Message,
    raw: &[u8],
    key: &str,
    budget_ends: Instant,
    answer_by: Instant,
    progress: &Progress,
) -> Result<PassiveReply, ApiError> {
    progress.at(Progress::REPLIED);
    let reply = match tokio::time::timeout_at(budget_ends, deps.bot.handle(message)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(HandlerError(reason))) => {
            return Err(ApiError::new(ErrorKind::Unavailable, "temporarily unavailable")
                .with_detail(format_args!("business handler failed; claim released: {reason}")));
        }
        Err(_elapsed) => {
            progress.at(Progress::HANDED_OVER);
            hand_over(deps, key, raw, answer_by).await;
            return Ok(PassiveReply::Success);
        }
    };
    let create_time = u64::try_from(deps.clock.now_secs()).unwrap_or_default();
    Ok(reply.render(&message.header, create_time)?)
}

/// Queues a message whose bot overran the budget; its reply will reach the user as a
/// customer-service message. The ledger record is completed as `success`, so a WeChat retry
/// starts nothing new. The queue gets until `answer_by`: WeChat's answer comes first.
async fn hand_over(deps: &CallbackDeps, key: &str, raw: &[u8], answer_by: Instant) {
    let job = Job::CallbackReply {
        id: key.to_owned(),
        message: String::from_utf8_lossy(raw).into_owned(),
    };
    let sent = tokio::time::timeout_at(answer_by, deps.queue.send(&job.to_body())).await;
    match sent {
        Ok(Ok(queue_message_id)) => {
            tracing::warn!(dedup_key = %key, %queue_message_id, "business handler overran the budget; answered success and queued the work");
        }
        Ok(Err(error)) => {
            tracing::error!(dedup_key = %key, reason = %error, "business handler overran the budget and the queue is unavailable; the reply is lost");
        }
        Err(_late) => {
            tracing::error!(dedup_key = %key, "business handler overran the budget and the queue did not answer in time; the reply is lost");
        }
    }
}

/// When the bot's budget ends and when everything must be done, both counted from the request's
/// arrival at API Gateway (`arrived_ms`, at most `now_ms`), never past the Lambda invocation's
/// own deadline (minus a margin to answer).
fn deadlines(req: &lambda_http::Request, now_ms: i64, arrived_ms: i64, budget: Duration) -> (Instant, Instant) {
    let elapsed = Duration::from_millis(u64::try_from(now_ms - arrived_ms).unwrap_or(0));
    let now = Instant::now();
    let mut answer_by = now + ANSWER_WITHIN.saturating_sub(elapsed);
    if let Some(lambda_left) = req.lambda_context_ref().and_then(|ctx| {
        let left_ms = i64::try_from(ctx.deadline)
            .ok()?
            .checked_sub(now_ms)?
            .checked_sub(200)?;
        u64::try_from(left_ms).ok().map(Duration::from_millis)
    }) {
        answer_by = answer_by.min(now + lambda_left);
    }
    let budget_ends = (now + budget.min(WECHAT_TIMEOUT).saturating_sub(elapsed)).min(answer_by);
    (budget_ends, answer_by)
}
