//! Processing a payment event exactly once across the fleet, through the one way anything runs
//! once here ([`Ledger::run_once`]): keyed on the notice id *and* on the order (or refund) and its
//! state, so the same notice twice, two notices of one order, and a notice after the
//! reconciliation found the order paid all run the hook once.
//!
//! A duplicate that meets the first delivery still working waits for its result within the
//! answer budget: answering 200 while the first might still fail would lose the notice. A hook
//! failure releases both claims (nothing half-recorded) and is answered 5xx, so WeChat Pay retries.
//! An event the hook refuses as unacceptable is kept (`pay#unacceptable` / `{order key}`), counted,
//! logged as an error and answered 200: WeChat Pay would only send it again.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::hook::{HookError, HookOutcome, PaymentHook};
use super::notice::PayEvent;
use crate::deadline::Deadline;
use crate::ledger::{Ledger, LedgerError, RunOnce, Wait};
use crate::store::{AttrValue, Attrs, Condition, EXPIRES_AT, Key, SharedStore};
use crate::telemetry::metrics::{self, count, count_with};

/// How long an unacceptable event is kept for an operator (seconds): 30 days.
const KEEP_UNACCEPTABLE_SECS: i64 = 30 * 86_400;

/// What the ledger keeps for a processed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PayRecord {
    /// The hook took it.
    Accepted {
        /// The business key.
        order_key: String,
    },
    /// The hook refused it for good; kept at `pay#unacceptable`.
    Unacceptable {
        /// The business key.
        order_key: String,
        /// Why.
        reason: String,
    },
}

/// What processing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The hook ran now.
    Now(PayRecord),
    /// It ran before (this notice, another notice of the order, or the reconciliation).
    Duplicate(PayRecord),
}

/// Why an event was not processed (the notice is answered 5xx and WeChat Pay retries).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProcessError {
    /// The hook failed.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// Another delivery is still working on it past the wait.
    #[error("another delivery of this event is still being processed")]
    Busy,
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The ledger's scopes.
const NOTICE_SCOPE: &str = "notice";
const ORDER_SCOPE: &str = "order";

/// Runs `hook` on `event` once fleet-wide; `notice_id` is `None` for the reconciliation.
/// Store calls end by `deadline`; a duplicate waits for a live first delivery until `wait_until`.
///
/// # Errors
/// [`ProcessError`].
pub async fn process(
    ledger: &Ledger,
    hook: &dyn PaymentHook,
    store: &SharedStore,
    notice_id: Option<&str>,
    event: &PayEvent,
    deadline: Deadline,
    wait_until: Instant,
) -> Result<Processed, ProcessError> {
    let order_key = event.order_key(notice_id.unwrap_or("reconciliation"));
    let ran = AtomicBool::new(false);
    let by_order = || async {
        let work = || async {
            ran.store(true, Ordering::Relaxed);
            match hook.handle(notice_id, event).await? {
                HookOutcome::Accepted => Ok(PayRecord::Accepted {
                    order_key: order_key.clone(),
                }),
                HookOutcome::Unacceptable(reason) => {
                    keep_unacceptable(store, &order_key, notice_id, event, &reason).await?;
                    Ok::<_, HookError>(PayRecord::Unacceptable {
                        order_key: order_key.clone(),
                        reason,
                    })
                }
            }
        };
        match ledger
            .run_once(ORDER_SCOPE, &order_key, deadline, Wait::Until(wait_until), work)
            .await?
        {
            RunOnce::Ran(record) | RunOnce::Unrecorded(record, _) | RunOnce::Replayed(record) => Ok(record),
            RunOnce::Busy => Err(ProcessError::Busy),
            RunOnce::Failed(error) => Err(ProcessError::Hook(error)),
        }
    };
    let outcome = match notice_id {
        None => by_order().await.map(|record| (record, false)),
        Some(id) => match ledger
            .run_once(NOTICE_SCOPE, id, deadline, Wait::Until(wait_until), by_order)
            .await?
        {
            RunOnce::Ran(record) | RunOnce::Unrecorded(record, _) => Ok((record, false)),
            RunOnce::Replayed(record) => Ok((record, true)),
            RunOnce::Busy => Err(ProcessError::Busy),
            RunOnce::Failed(error) => Err(error),
        },
    };
    let (record, replayed) = outcome?;
    if replayed || !ran.load(Ordering::Relaxed) {
        count(metrics::PAY_DUPLICATES);
        Ok(Processed::Duplicate(record))
    } else {
        Ok(Processed::Now(record))
    }
}

/// Keeps an event the hook refused, for an operator, and says so loudly.
async fn keep_unacceptable(
    store: &SharedStore,
    order_key: &str,
    notice_id: Option<&str>,
    event: &PayEvent,
    reason: &str,
) -> Result<(), HookError> {
    count_with(metrics::PAY_REJECTED, "reason", "unacceptable");
    tracing::error!(target: "wechat_ha::pay", order_key, ?notice_id, reason, "authentic payment event the business refused; kept at pay#unacceptable");
    let mut attrs = Attrs::new();
    attrs.insert("reason".into(), AttrValue::from(reason));
    attrs.insert(
        "notice_id".into(),
        AttrValue::from(notice_id.unwrap_or("reconciliation")),
    );
    attrs.insert(
        "event".into(),
        AttrValue::from(serde_json::to_string(event).unwrap_or_default()),
    );
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    attrs.insert(EXPIRES_AT.into(), AttrValue::N(now_secs + KEEP_UNACCEPTABLE_SECS));
    store
        .put(&Key::new("pay#unacceptable", order_key), attrs, Condition::Always)
        .await
        .map_err(|e| HookError(format!("keeping the unacceptable event: {e}")))
}
