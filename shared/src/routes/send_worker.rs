//! The send worker: consumes the work queue (SQS event source mapping with
//! `ReportBatchItemFailures`) and delivers each job exactly once.
//!
//! | job outcome | answer to SQS |
//! |---|---|
//! | sent now, or settled before (a redelivery after a lost ack) | success: deleted |
//! | refused by WeChat for good (not following, 48 h window, bad parameter) | success: deleted, logged as an error |
//! | in doubt (WeChat may have it, no answer), held by the default policy | success: deleted, counted and logged as an error |
//! | breaker open or quota spent (no attempt made) | requeued as a new, delayed message: waiting never uses up receives |
//! | delivery ledger down (no attempt made) | requeued, due again in 5 s: the store's return is noticed within seconds |
//! | a completion the store could not take (`Job::Complete`) | written now; store still down: requeued as above |
//! | WeChat failing, claim held elsewhere | failure: redelivered after an exponential, jittered visibility timeout |
//! | not a job at all (poison) | failure: after the queue's `maxReceiveCount` receives, SQS moves it to the DLQ |
//!
//! One failed record never redelivers its batch: only the failures are reported.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;

use crate::deadline::Deadline;
use crate::delivery::{self, DeliveryOutcome, DeliveryRecord, Job, SendKind, reply_as_customer_service};
use crate::deps::WorkerDeps;
use crate::protocol::parse_message;
use crate::queue::{MAX_DELAY, MAX_RECEIVES};
use crate::telemetry::metrics::{self, count, count_with};
use crate::wechat::WechatError;

/// How long a job waits when the breaker refuses: about one open period.
const BREAKER_WAIT: Duration = Duration::from_secs(15);
/// How long a job waits when the delivery ledger does not answer: short, so the queue drains
/// within seconds of the store's return (a requeue costs one SQS send, no receive count).
const LEDGER_WAIT: Duration = Duration::from_secs(5);

/// Why a record is not done.
#[derive(Debug)]
enum Retry {
    /// No attempt was made (the breaker is open, the quota is spent): enqueue the job afresh,
    /// delayed, and acknowledge this copy, so waiting out an outage never uses up the receives
    /// that lead to the dead-letter queue. The delivery ledger keeps the copy exactly-once.
    Requeue(Duration, String),
    /// Try again after a backoff.
    Later(String),
    /// Will never work: let the redrive policy move it to the DLQ.
    Poison(String),
}

/// The worker's entry point: one batch in, the failed message ids out.
#[tracing::instrument(name = "send_worker", skip_all, fields(records = event.records.len()))]
pub async fn handle(deps: &WorkerDeps, event: SqsEvent) -> SqsBatchResponse {
    let results = join_all(event.records.iter().map(|record| process(deps, record))).await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in event.records.iter().zip(results) {
        let Err(retry) = result else { continue };
        let message_id = record.message_id.clone().unwrap_or_default();
        let receives = receive_count(record);
        if let Retry::Requeue(delay, reason) = &retry {
            let body = record.body.as_deref().unwrap_or_default();
            match deps.queue.send_delayed(body, *delay).await {
                Ok(_) => {
                    count_with(metrics::WORKER_JOBS, "outcome", "requeued");
                    tracing::info!(%message_id, %reason, delay_secs = delay.as_secs(), "no attempt possible; requeued");
                    continue;
                }
                Err(error) => tracing::warn!(%message_id, reason = %error, "requeue failed; redelivering instead"),
            }
        }
        if receives >= MAX_RECEIVES {
            count(metrics::WORKER_DLQ_ARRIVALS);
        }
        match &retry {
            Retry::Poison(reason) => {
                count_with(metrics::WORKER_JOBS, "outcome", "poison");
                tracing::error!(%message_id, receives, %reason, "poison message: left for the dead-letter queue");
            }
            Retry::Later(reason) | Retry::Requeue(_, reason) => {
                count_with(metrics::WORKER_JOBS, "outcome", "deferred");
                let delay = backoff(deps, receives);
                tracing::warn!(%message_id, receives, %reason, delay_secs = delay.as_secs(), "delivery deferred");
                if let Some(receipt) = record.receipt_handle.as_deref()
                    && let Err(error) = deps.queue.change_visibility(receipt, delay).await
                {
                    tracing::warn!(%message_id, reason = %error, "could not set the backoff; the queue default applies");
                }
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message_id;
        response.batch_item_failures.push(failure);
    }
    response
}

async fn process(deps: &WorkerDeps, record: &SqsMessage) -> Result<(), Retry> {
    let body = record.body.as_deref().unwrap_or_default();
    let job = Job::from_body(body).map_err(|error| Retry::Poison(error.to_string()))?;
    let deadline = Deadline::after(deps.worker_budget);
    match job {
        Job::Send { id, kind, payload } => send(deps, &id, kind, &payload, deadline).await,
        Job::Complete(completion) => {
            deps.deliveries
                .complete_later(&completion)
                .await
                .map_err(|error| Retry::Requeue(LEDGER_WAIT, format!("delivery ledger unavailable: {error}")))?;
            count_with(metrics::WORKER_JOBS, "outcome", "completed");
            Ok(())
        }
        Job::CallbackReply { id, message } => {
            let message = parse_message(message.as_bytes()).map_err(|e| Retry::Poison(e.to_string()))?;
            let reply = tokio::time::timeout(deadline.remaining(), deps.bot.handle(&message))
                .await
                .map_err(|_| Retry::Later("business handler overran the worker budget".into()))?
                .map_err(|error| Retry::Later(error.to_string()))?;
            match reply_as_customer_service(&message.header.from_user_name, &reply) {
                Some(payload) => send(deps, &format!("reply:{id}"), SendKind::Custom, &payload, deadline).await,
                None => Ok(()),
            }
        }
    }
}

async fn send(
    deps: &WorkerDeps,
    id: &str,
    kind: SendKind,
    payload: &serde_json::Value,
    deadline: Deadline,
) -> Result<(), Retry> {
    match delivery::deliver(&deps.client, &deps.deliveries, id, kind, payload, deadline).await {
        Ok(DeliveryOutcome::Settled(DeliveryRecord::Sent { .. })) => {
            count_with(metrics::WORKER_JOBS, "outcome", "delivered");
            tracing::info!(message_id = %id, kind = kind.as_str(), "delivered");
            Ok(())
        }
        Ok(DeliveryOutcome::AlreadySettled(_)) => {
            count_with(metrics::WORKER_JOBS, "outcome", "already_settled");
            tracing::info!(message_id = %id, "already settled; redelivery acknowledged without sending");
            Ok(())
        }
        Ok(DeliveryOutcome::Settled(DeliveryRecord::Rejected { errcode, errmsg })) => {
            count_with(metrics::WORKER_JOBS, "outcome", "rejected");
            tracing::error!(message_id = %id, ?errcode, reason = %errmsg, "WeChat refused the message for good; dropped");
            Ok(())
        }
        Ok(DeliveryOutcome::Settled(DeliveryRecord::InDoubt { reason })) => {
            count_with(metrics::WORKER_JOBS, "outcome", "in_doubt");
            tracing::error!(message_id = %id, %reason, "in doubt: WeChat may have it; held, not sent again");
            Ok(())
        }
        Ok(DeliveryOutcome::InProgress) => Err(Retry::Later("another delivery holds the claim".into())),
        Ok(DeliveryOutcome::Deferred(error)) => Err(deferral(deps, error)),
        Err(error) => {
            count(metrics::DELIVERY_LEDGER_WAIT);
            Err(Retry::Requeue(
                LEDGER_WAIT,
                format!("delivery ledger unavailable: {error}"),
            ))
        }
    }
}

/// A deferral where WeChat was never called becomes a requeue (delayed past the open period or
/// to the quota reset); anything that did reach WeChat is a normal redelivery with backoff.
fn deferral(deps: &WorkerDeps, error: WechatError) -> Retry {
    match &error {
        WechatError::CircuitOpen(_) => Retry::Requeue(deps.redelivery.base.max(BREAKER_WAIT), error.to_string()),
        WechatError::QuotaExhausted { until_ms } => {
            let wait_ms = u64::try_from(until_ms.saturating_sub(deps.clock.now_ms())).unwrap_or(0);
            Retry::Requeue(
                Duration::from_millis(wait_ms).clamp(BREAKER_WAIT, MAX_DELAY),
                error.to_string(),
            )
        }
        _ => Retry::Later(error.to_string()),
    }
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

/// The redelivery delay after `receives` receives: the worker's backoff (exponential, equal
/// jitter: half fixed, half random, capped), retry number = receives.
fn backoff(deps: &WorkerDeps, receives: u32) -> Duration {
    deps.redelivery.delay(receives.max(1), Duration::ZERO, &mut rand::rng())
}
