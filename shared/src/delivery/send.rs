//! Sending one message at most once: [`Ledger::run_once`] around the WeChat call, keyed by the
//! message id, with the outcome recorded as a typed [`DeliveryRecord`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::job::SendKind;
use crate::deadline::Deadline;
use crate::ledger::{Ledger, LedgerError, RunOnce, Wait};
use crate::wechat::{ErrcodeClass, WechatClient, WechatError};

/// The delivery ledger's scope for sends (records live at `out#send` / `{message id}`).
const SCOPE: &str = "send";

/// How long past the send's deadline its record may still be written: a message WeChat accepted
/// must be recorded, or a redelivery would send it again.
pub const RECORD_SLACK: Duration = Duration::from_millis(1500);

/// What the delivery ledger keeps for a settled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryRecord {
    /// WeChat accepted it.
    Sent {
        /// WeChat's message id (template and subscribe sends).
        msgid: Option<i64>,
    },
    /// WeChat refused the message itself: retrying cannot help.
    Rejected {
        /// WeChat's errcode, when it answered with one.
        errcode: Option<i64>,
        /// What went wrong.
        errmsg: String,
    },
}

/// What happened to one delivery attempt.
#[derive(Debug)]
pub enum DeliveryOutcome {
    /// Settled now: sent, or refused by WeChat for good (see the record).
    Settled(DeliveryRecord),
    /// It was settled before (sent or permanently rejected): nothing was sent now.
    AlreadySettled(DeliveryRecord),
    /// Another holder is sending it right now.
    InProgress,
    /// WeChat is unhealthy, the quota is spent, or the deadline is too close: try again later.
    Deferred(WechatError),
}

/// The delivery ledger key of message `id` (for tests and the admin view).
pub fn send_ledger_key(ledger: &Ledger, id: &str) -> crate::store::Key {
    ledger.record_key(SCOPE, id)
}

/// Sends `payload` through `kind`'s API unless message `id` was settled before.
///
/// # Errors
/// [`LedgerError`] when the ledger cannot be read or claimed: the caller defers (queues or
/// redelivers) rather than sending without the exactly-once guard.
pub async fn deliver(
    client: &WechatClient,
    ledger: &Ledger,
    id: &str,
    kind: SendKind,
    payload: &Value,
    deadline: Deadline,
) -> Result<DeliveryOutcome, LedgerError> {
    let send = || async {
        let result = match kind {
            SendKind::Custom => client.send_custom(payload, deadline).await,
            SendKind::Template => client.send_template(payload, deadline).await,
            SendKind::Subscribe => client.send_subscribe(payload, deadline).await,
        };
        match result {
            Ok(receipt) => Ok(DeliveryRecord::Sent { msgid: receipt.msgid }),
            Err(error) if is_permanent(&error) => Ok(DeliveryRecord::Rejected {
                errcode: error.errcode(),
                errmsg: error.to_string(),
            }),
            Err(error) => Err(error),
        }
    };
    let record_by = Deadline::at(deadline.instant() + RECORD_SLACK);
    Ok(match ledger.run_once(SCOPE, id, record_by, Wait::No, send).await? {
        RunOnce::Ran(record) => DeliveryOutcome::Settled(record),
        RunOnce::Replayed(record) => DeliveryOutcome::AlreadySettled(record),
        RunOnce::Busy => DeliveryOutcome::InProgress,
        RunOnce::Failed(error) => DeliveryOutcome::Deferred(error),
    })
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
