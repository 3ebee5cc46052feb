//! `POST /messages/{custom,template,subscribe}`: send a message now, or queue it and answer 202.
//!
//! The body is WeChat's own JSON for that API, so existing payloads work unchanged. The flow:
//! auth → validate → the request ledger (`Idempotency-Key`: a retried request gets the first
//! answer, through [`Ledger::run_once`](crate::ledger::Ledger::run_once)) → [`delivery::deliver`]
//! under the send budget → 200 `sent`, or — when the breaker is open, the quota is spent, WeChat
//! is failing or the budget would be missed — the job goes to the queue and the answer is 202
//! `queued` with the message id. A message WeChat refuses outright is 422; one that may have
//! reached WeChat without an answer is 202 `in_doubt` (held, not sent again: see `delivery`).
//! `X-Dry-Run: true` validates the payload and gets an access token, and sends nothing (the
//! pre-traffic hook's check of a new version).

mod answer;

use serde_json::Value;

use crate::deadline::Deadline;
use crate::delivery::{self, DeliveryOutcome, DeliveryRecord, Job, RECORD_SLACK, SendKind};
use crate::deps::SendDeps;
use crate::http::{ApiError, ErrorKind, Response, body_bytes, require_internal, respond};
use crate::ledger::{RunOnce, Wait};
use crate::telemetry::metrics;

use answer::Answer;

/// The send function's entry point.
pub async fn handle(deps: &SendDeps, req: lambda_http::Request) -> Response {
    respond("send", req, |req, request_id| async move {
        route(deps, req).await.map(|a| a.into_response(&request_id.0))
    })
    .await
}

async fn route(deps: &SendDeps, req: lambda_http::Request) -> Result<Answer, ApiError> {
    require_internal(&req, deps.internal_api_key.as_ref())?;
    if req.method() != http::Method::POST {
        return Err(ApiError::new(ErrorKind::MethodNotAllowed, "use POST"));
    }
    let kind = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .and_then(SendKind::from_segment)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                "use /messages/custom, /messages/template or /messages/subscribe",
            )
        })?;
    let payload = payload(kind, body_bytes(&req, deps.max_body_bytes)?)?;
    if is_dry_run(&req)? {
        // What a release check needs to know without messaging anyone: the request is valid,
        // the AppSecret works and WeChat answers the token call (from the fleet's cache if fresh).
        deps.client.access_token(Deadline::after(deps.send_budget)).await?;
        return Ok(Answer::dry_run(kind.as_str()));
    }
    let Some(key) = idempotency_key(&req)? else {
        let message_id = format!("msg-{:032x}", rand::random::<u128>());
        return send_or_queue(deps, &message_id, kind, payload).await;
    };
    // A retried request (same Idempotency-Key) gets the first answer, without a second send.
    let send = || send_or_queue(deps, &key, kind, payload.clone());
    let record_by = Deadline::after(deps.send_budget + RECORD_SLACK * 2);
    match deps
        .requests
        .run_once(kind.as_str(), &key, record_by, Wait::No, send)
        .await
    {
        // An unrecorded answer: a retry of this request runs again, and the delivery ledger keeps
        // it from sending twice.
        Ok(RunOnce::Ran(answer) | RunOnce::Unrecorded(answer, _)) => Ok(answer),
        Ok(RunOnce::Replayed(answer)) => Ok(answer.replayed()),
        Ok(RunOnce::Busy) => Err(ApiError::new(
            ErrorKind::Conflict,
            "a request with this Idempotency-Key is in progress",
        )),
        Ok(RunOnce::Failed(error)) => Err(error),
        // Without the request ledger the delivery ledger still prevents a double send.
        Err(error) => {
            tracing::warn!(reason = %error, "request ledger unreachable; relying on the delivery ledger");
            send_or_queue(deps, &key, kind, payload).await
        }
    }
}

async fn send_or_queue(deps: &SendDeps, id: &str, kind: SendKind, payload: Value) -> Result<Answer, ApiError> {
    let deadline = Deadline::after(deps.send_budget);
    let reason = match delivery::deliver(&deps.client, &deps.deliveries, id, kind, &payload, deadline).await {
        Ok(DeliveryOutcome::Settled(record) | DeliveryOutcome::AlreadySettled(record)) => {
            let outcome = match &record {
                DeliveryRecord::Sent { .. } => "sent",
                DeliveryRecord::Rejected { .. } => "rejected",
                DeliveryRecord::InDoubt { .. } => "in_doubt",
            };
            metrics::count_with(metrics::SENDS, "outcome", outcome);
            return Ok(Answer::settled(id, &record));
        }
        Ok(DeliveryOutcome::InProgress) => "another delivery of this message is in progress".to_owned(),
        Ok(DeliveryOutcome::Deferred(error)) => error.to_string(),
        Err(error) => format!("delivery ledger unavailable: {error}"),
    };
    let job = Job::Send {
        id: id.to_owned(),
        kind,
        payload,
    };
    match deps.queue.send(&job.to_body()).await {
        Ok(queue_message_id) => {
            metrics::count_with(metrics::SENDS, "outcome", "queued");
            tracing::info!(message_id = %id, %reason, %queue_message_id, "send deferred to the queue");
            Ok(Answer::queued(id, &reason))
        }
        Err(error) => Err({
            metrics::count_with(metrics::SENDS, "outcome", "unavailable");
            ApiError::new(
                ErrorKind::Unavailable,
                "WeChat and the queue are both unavailable; retry later",
            )
            .with_detail(format_args!("could not send ({reason}) nor queue ({error})"))
        }),
    }
}

/// `X-Dry-Run: true` (the pre-traffic hook): validate and authenticate, send nothing.
fn is_dry_run(req: &lambda_http::Request) -> Result<bool, ApiError> {
    match req.headers().get("x-dry-run").map(|v| v.to_str().unwrap_or_default()) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request("X-Dry-Run must be true or false")),
    }
}

/// WeChat's JSON for `kind`, checked for the fields WeChat requires.
fn payload(kind: SendKind, body: &[u8]) -> Result<Value, ApiError> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request("body must be WeChat's JSON for this API"))?;
    let object = payload
        .as_object()
        .ok_or_else(|| ApiError::bad_request("body must be a JSON object"))?;
    if let Some(missing) = kind
        .required_fields()
        .iter()
        .find(|field| !object.contains_key(**field))
    {
        return Err(ApiError::bad_request(format!(
            "missing field {missing:?} for a {} message",
            kind.as_str()
        )));
    }
    Ok(payload)
}

fn idempotency_key(req: &lambda_http::Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|k| {
        !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    });
    key.map(|k| Some(k.to_owned()))
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key must be 1-128 characters of [A-Za-z0-9-_.:]"))
}
