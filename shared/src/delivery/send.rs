//! Sending one message at most once: [`Ledger::run_once`] around the WeChat call, keyed by the
//! message id, with the outcome recorded as a typed [`DeliveryRecord`].
//!
//! Three cases where the ledger alone cannot keep the promise, and what happens:
//! - **in doubt** — WeChat may have the message but did not answer (timeout, broken connection,
//!   HTTP 500/504): held as [`DeliveryRecord::InDoubt`] (default) or released to be sent again,
//!   as [`InDoubt`] says; counted either way.
//! - **unrecorded** — sent, but the completion write kept failing: the completion is handed to the
//!   queue ([`Job::Complete`]) and the worker writes it once the store answers, so a delivered
//!   message does not stay pending (and be sent again after its lease) because of a store blip.
//! - **ledger down** — per API, queued (exactly once, later) or sent now on instance memory
//!   ([`LedgerDown`]).

use std::time::Duration;

use serde_json::Value;

use super::job::{Completion, Job, SendKind};
use super::policy::{DeliveryPolicy, InDoubt, LedgerDown};
use super::record::DeliveryRecord;
use crate::deadline::Deadline;
use crate::ledger::{Claim, Ledger, LedgerError, RunOnce, Wait};
use crate::queue::SharedQueue;
use crate::telemetry::metrics::{self, count};
use crate::wechat::{ErrcodeClass, WechatClient, WechatError};

/// The delivery ledger's scope for sends (records live at `out#send` / `{message id}`).
const SCOPE: &str = "send";

/// How long past the send's deadline its record may still be written: a message WeChat accepted
/// must be recorded, or a redelivery would send it again.
pub const RECORD_SLACK: Duration = Duration::from_millis(1500);

/// How long a deferred completion waits on the queue before the worker writes it.
const COMPLETION_DELAY: Duration = Duration::from_secs(2);

/// What happened to one delivery attempt.
#[derive(Debug)]
pub enum DeliveryOutcome {
    /// Settled now: sent, refused by WeChat for good, or held in doubt (see the record).
    Settled(DeliveryRecord),
    /// It was settled before: nothing was sent now.
    AlreadySettled(DeliveryRecord),
    /// Another holder is sending it right now.
    InProgress,
    /// WeChat is unhealthy, the quota is spent, or the deadline is too close: try again later.
    Deferred(WechatError),
}

/// The delivery ledger with its policy: the fleet ledger, the same ledger falling back to
/// instance memory (for the APIs that send while it is down), and the queue that takes
/// completions the store could not.
#[derive(Debug)]
pub struct Deliveries {
    fleet: Ledger,
    with_local_fallback: Ledger,
    policy: DeliveryPolicy,
    queue: SharedQueue,
}

impl Deliveries {
    /// `fleet` and `with_local_fallback` share the fleet store; the second falls back to an
    /// instance-memory ledger on an outage ([`Ledger::with_fallback`]).
    pub fn new(fleet: Ledger, with_local_fallback: Ledger, policy: DeliveryPolicy, queue: SharedQueue) -> Self {
        Self {
            fleet,
            with_local_fallback,
            policy,
            queue,
        }
    }

    /// The fleet ledger (for tests and the admin view).
    pub fn ledger(&self) -> &Ledger {
        &self.fleet
    }

    /// The policy in force.
    pub fn policy(&self) -> DeliveryPolicy {
        self.policy
    }

    /// The delivery ledger key of message `id`.
    pub fn key(&self, id: &str) -> crate::store::Key {
        self.fleet.record_key(SCOPE, id)
    }

    fn ledger_for(&self, kind: SendKind) -> &Ledger {
        match self.policy.ledger_down(kind) {
            LedgerDown::Queue => &self.fleet,
            LedgerDown::Send => &self.with_local_fallback,
        }
    }

    /// Writes a completion handed over by [`deliver`] ([`Job::Complete`]).
    ///
    /// # Errors
    /// [`LedgerError::Store`] when the store still fails (the job waits and comes back).
    pub async fn complete_later(&self, completion: &Completion) -> Result<(), LedgerError> {
        let claim = Claim::held(completion.key.clone(), completion.owner.clone());
        match self.fleet.complete(&claim, &completion.record).await {
            Ok(()) => {
                count(metrics::DELIVERY_COMPLETION_WRITTEN);
                tracing::info!(target: "wechat_ha::delivery", key = %completion.key, "deferred completion written");
                Ok(())
            }
            Err(LedgerError::ClaimLost) => {
                tracing::warn!(target: "wechat_ha::delivery", key = %completion.key, "deferred completion found the record taken over; the message may have been sent twice");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// Sends `payload` through `kind`'s API unless message `id` was settled before.
///
/// # Errors
/// [`LedgerError`] when the ledger cannot be read or claimed (and `kind` queues while it is
/// down): the caller defers (queues or requeues) rather than sending without the exactly-once guard.
pub async fn deliver(
    client: &WechatClient,
    deliveries: &Deliveries,
    id: &str,
    kind: SendKind,
    payload: &Value,
    deadline: Deadline,
) -> Result<DeliveryOutcome, LedgerError> {
    let in_doubt = deliveries.policy.in_doubt;
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
            Err(error) if error.may_have_been_processed() => {
                count(metrics::DELIVERY_IN_DOUBT);
                tracing::error!(target: "wechat_ha::delivery", message_id = %id, reason = %error, policy = ?in_doubt, "send in doubt: WeChat may have the message");
                match in_doubt {
                    InDoubt::Hold => Ok(DeliveryRecord::InDoubt {
                        reason: error.to_string(),
                    }),
                    InDoubt::Resend => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    };
    let ledger = deliveries.ledger_for(kind);
    let fallbacks_before = ledger.fallbacks();
    let record_by = Deadline::at(deadline.instant() + RECORD_SLACK);
    let outcome = ledger.run_once(SCOPE, id, record_by, Wait::No, send).await?;
    if ledger.fallbacks() > fallbacks_before {
        count(metrics::DELIVERY_WITHOUT_LEDGER);
    }
    Ok(match outcome {
        RunOnce::Ran(record) => DeliveryOutcome::Settled(record),
        RunOnce::Unrecorded(record, claim) => {
            hand_over_completion(deliveries, id, &record, &claim).await;
            DeliveryOutcome::Settled(record)
        }
        RunOnce::Replayed(record) => DeliveryOutcome::AlreadySettled(record),
        RunOnce::Busy => DeliveryOutcome::InProgress,
        RunOnce::Failed(error) => DeliveryOutcome::Deferred(error),
    })
}

/// The completion of a settled send could not be written: the queue takes it, the worker writes it.
async fn hand_over_completion(deliveries: &Deliveries, id: &str, record: &DeliveryRecord, claim: &Claim) {
    let completion = Completion {
        key: claim.key().clone(),
        owner: claim.owner().to_owned(),
        record: record.clone(),
    };
    let job = Job::Complete(completion);
    match deliveries.queue.send_delayed(&job.to_body(), COMPLETION_DELAY).await {
        Ok(_) => {
            count(metrics::DELIVERY_COMPLETION_DEFERRED);
            tracing::warn!(target: "wechat_ha::delivery", message_id = %id, "settled, but the record could not be written: completion handed to the queue");
        }
        Err(error) => {
            count(metrics::DELIVERY_IN_DOUBT);
            tracing::error!(target: "wechat_ha::delivery", message_id = %id, reason = %error, "settled, but neither the store nor the queue took its record: after the lease it may be sent again");
        }
    }
}

/// Errors that no retry can fix for this message. Configuration errors (IP whitelist, bad
/// credentials) are not among them: the message waits on the queue, and reaches the DLQ for a
/// redrive if the fix takes longer than its receives.
fn is_permanent(error: &WechatError) -> bool {
    match error {
        WechatError::Api(api) => api.class() == ErrcodeClass::Rejected,
        WechatError::Http { status, .. } => (400..500).contains(status) && *status != 429 && *status != 408,
        _ => false,
    }
}
