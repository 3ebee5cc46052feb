//! Sending one message at most once: a claim in the delivery ledger around the WeChat call.

use serde_json::{Value, json};

use super::job::SendKind;
use crate::dedup::{Begin, IdempotencyLedger};
use crate::resilience::deadline::Deadline;
use crate::store::StoreError;
use crate::wechat::{ErrcodeClass, WechatClient, WechatError};

/// The delivery ledger's scope for sends (records live at `out#send` / `{message id}`).
const SCOPE: &str = "send";

/// What happened to one delivery attempt.
#[derive(Debug)]
pub enum DeliveryOutcome {
    /// WeChat accepted it now; `record` is what the ledger keeps (`{"status":"sent","msgid":…}`).
    Sent {
        /// The stored delivery record.
        record: Value,
    },
    /// It was settled before (sent or permanently rejected): nothing was sent now.
    AlreadySettled {
        /// The stored delivery record.
        record: Value,
    },
    /// Another holder is sending it right now.
    InProgress,
    /// WeChat is unhealthy, the quota is spent, or the deadline is too close: try again later.
    Deferred(WechatError),
    /// WeChat refused the message itself (errcode class `Rejected`, or HTTP 4xx): retrying cannot help.
    Rejected {
        /// The stored delivery record (`{"status":"rejected","errcode":…,"errmsg":…}`).
        record: Value,
        /// The error.
        error: WechatError,
    },
}

/// The delivery ledger key of message `id` (for tests and the admin view).
pub fn send_ledger_key(ledger: &IdempotencyLedger, id: &str) -> crate::store::Key {
    ledger.record_key(SCOPE, id)
}

/// Sends `payload` through `kind`'s API unless message `id` was settled before.
///
/// # Errors
/// [`StoreError`] when the ledger cannot be read or claimed: the caller defers (queues or
/// redelivers) rather than sending without the exactly-once guard.
pub async fn deliver(
    client: &WechatClient,
    ledger: &IdempotencyLedger,
    id: &str,
    kind: SendKind,
    payload: &Value,
    deadline: Deadline,
) -> Result<DeliveryOutcome, StoreError> {
    let claim = match ledger.begin(SCOPE, id).await? {
        Begin::Claimed(claim) => claim,
        Begin::Completed { reply } => {
            return Ok(DeliveryOutcome::AlreadySettled {
                record: serde_json::from_str(&reply).unwrap_or(Value::Null),
            });
        }
        Begin::InProgress { .. } => return Ok(DeliveryOutcome::InProgress),
    };
    let result = match kind {
        SendKind::Custom => client.send_custom(payload, deadline).await,
        SendKind::Template => client.send_template(payload, deadline).await,
        SendKind::Subscribe => client.send_subscribe(payload, deadline).await,
    };
    let (outcome, record) = match result {
        Ok(receipt) => {
            let record = json!({"status": "sent", "msgid": receipt.msgid});
            (DeliveryOutcome::Sent { record: record.clone() }, record)
        }
        Err(error) if is_permanent(&error) => {
            let record = json!({"status": "rejected", "errcode": error.errcode(), "errmsg": error.to_string()});
            (
                DeliveryOutcome::Rejected {
                    record: record.clone(),
                    error,
                },
                record,
            )
        }
        Err(error) => {
            if let Err(release_error) = ledger.release(&claim).await {
                tracing::warn!(message_id = %id, reason = %release_error, "could not release the delivery claim; its lease will expire");
            }
            return Ok(DeliveryOutcome::Deferred(error));
        }
    };
    if let Err(error) = ledger.complete(&claim, &record.to_string()).await {
        // WeChat has the message; only the record is missing. Logged loudly: a redelivery of this
        // id before the lease expires is refused, after it the message is in doubt (see module docs).
        tracing::error!(message_id = %id, reason = %error, "sent, but the delivery record could not be completed");
    }
    Ok(outcome)
}

/// Errors that no retry can fix for this message. Configuration errors (IP whitelist, bad
/// credentials) are not among them: the message waits on the queue, and reaches the DLQ for a
/// redrive if the fix takes longer than its receives.
fn is_permanent(error: &WechatError) -> bool {
    match error {
        WechatError::Api(api) => api.class() == ErrcodeClass::Rejected,
        WechatError::Http { status, .. } => (400..500).contains(status) && *status != 429,
        _ => false,
    }
}
