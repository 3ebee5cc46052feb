//! Delivering one message exactly once: idempotency claim, business handler under the deadline.
//!
//! | what the ledger says | what happens |
//! |---|---|
//! | claimed (first delivery, or a dead holder's lease ran out) | run the handler, store its reply, answer it |
//! | completed (WeChat's retry of an answered message) | answer the stored reply, run nothing |
//! | in progress (retry while the first delivery still runs) | wait for the stored reply within the budget, else `success` |
//! | store unreachable | same protocol on the instance-local ledger: retries reaching this instance are still de-duplicated |
//!
//! A handler that overruns the budget is answered with `success` (WeChat then neither retries nor
//! shows an error), its record is completed as `success`, so a retry starts nothing new, and the
//! message goes to the work queue: the worker runs the handler again, without WeChat's clock, and
//! sends the reply as a customer-service message.
//! A handler that fails releases its claim and answers 503, so WeChat's retry gets another chance.

use std::time::Duration;

use tokio::time::Instant;

use crate::dedup::{Begin, IdempotencyLedger, WaitOutcome};
use crate::deps::Deps;
use crate::http::{ApiError, ErrorKind};
use crate::outbound::Job;
use crate::protocol::{Message, SUCCESS};

/// How often a duplicate delivery polls for the first delivery's reply.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Processes `message` at most once fleet-wide and returns the plaintext reply (`success` for none).
///
/// `raw` is the plaintext message as received: when the handler overruns the budget it goes to
/// the work queue, and the worker runs the handler again and sends its reply as a
/// customer-service message.
pub async fn deliver(deps: &Deps, message: &Message, raw: &[u8], budget_ends: Instant) -> Result<String, ApiError> {
    let scope = message.header.to_user_name.as_str();
    let key = message.dedup_key();
    match deliver_on(deps, &deps.ledger, scope, &key, message, raw, budget_ends).await {
        Err(Fallback) => {
            tracing::warn!(dedup_key = %key, "state store unreachable; de-duplicating on instance memory");
            deliver_on(deps, &deps.local_ledger, scope, &key, message, raw, budget_ends)
                .await
                .map_err(|Fallback| ApiError::internal())?
        }
        Ok(result) => result,
    }
}

/// The ledger's store failed: try again on the local ledger.
struct Fallback;

async fn deliver_on(
    deps: &Deps,
    ledger: &IdempotencyLedger,
    scope: &str,
    key: &str,
    message: &Message,
    raw: &[u8],
    budget_ends: Instant,
) -> Result<Result<String, ApiError>, Fallback> {
    // One takeover at most: a record abandoned while we waited is claimed again once.
    for _ in 0..2 {
        let claim = match ledger.begin(scope, key).await.map_err(|_| Fallback)? {
            Begin::Claimed(claim) => claim,
            Begin::Completed { reply } => {
                tracing::info!(dedup_key = %key, "duplicate delivery answered from the ledger");
                return Ok(Ok(reply));
            }
            Begin::InProgress { .. } => {
                let until_ms = deps.clock.now_ms() + remaining_ms(budget_ends);
                match ledger
                    .wait_for_reply(scope, key, until_ms, WAIT_POLL)
                    .await
                    .map_err(|_| Fallback)?
                {
                    WaitOutcome::Completed { reply } => return Ok(Ok(reply)),
                    WaitOutcome::TimedOut => return Ok(Ok(SUCCESS.to_owned())),
                    WaitOutcome::Abandoned => continue,
                }
            }
        };
        let outcome = tokio::time::timeout_at(budget_ends, deps.handler.handle(message)).await;
        let reply = match outcome {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                tracing::error!(dedup_key = %key, reason = %error, "business handler failed; claim released");
                if let Err(release_error) = ledger.release(&claim).await {
                    tracing::warn!(reason = %release_error, "could not release the claim; its lease will expire");
                }
                return Ok(Err(ApiError::new(ErrorKind::Unavailable, "temporarily unavailable")));
            }
            Err(_elapsed) => {
                hand_over(deps, key, raw).await;
                crate::protocol::Reply::Success
            }
        };
        let create_time = u64::try_from(deps.clock.now_secs()).unwrap_or_default();
        let xml = match reply.to_xml_for(&message.header, create_time) {
            Ok(xml) => xml,
            Err(error) => {
                tracing::error!(dedup_key = %key, reason = %error, "business handler returned an unrenderable reply");
                let _ = ledger.release(&claim).await;
                return Ok(Err(ApiError::internal()));
            }
        };
        if let Err(error) = ledger.complete(&claim, &xml).await {
            // The reply is still correct for this delivery; a retry may re-process if the record was lost.
            tracing::warn!(dedup_key = %key, reason = %error, "could not store the reply");
        }
        return Ok(Ok(xml));
    }
    Ok(Ok(SUCCESS.to_owned()))
}

/// Queues a message whose handler overran the budget; its reply will reach the user as a
/// customer-service message. The ledger record is completed as `success` by the caller, so a
/// WeChat retry starts nothing new.
async fn hand_over(deps: &Deps, key: &str, raw: &[u8]) {
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

fn remaining_ms(budget_ends: Instant) -> i64 {
    i64::try_from(budget_ends.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(i64::MAX)
}
