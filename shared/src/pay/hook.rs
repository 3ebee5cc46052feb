//! The business side of a payment notice: a trait, like the message handler, and the default
//! that records the order's state in the table and publishes the event to a queue for the
//! merchant's own systems.
//!
//! Store layout of the default hook (the merchant's systems may read these):
//! - `pay#order` / `{out_trade_no}`: `trade_state`, `transaction_id`, `amount_total`, `notice_id`,
//!   `updated_at_ms`;
//! - `pay#refund` / `{out_refund_no}`: `refund_status`, `out_trade_no`, `refund_id`, `amount_refund`,
//!   `notice_id`, `updated_at_ms`;
//! - `pay#pending` / `{out_trade_no}` (written by the merchant, see `orders`): removed once the
//!   order reached a final state.

use async_trait::async_trait;
use serde_json::json;

use super::notice::PayEvent;
use super::orders::{PendingOrders, is_final};
use crate::clock::SharedClock;
use crate::queue::SharedQueue;
use crate::store::{AttrValue, Attrs, Condition, Key, SharedStore};

/// What the hook made of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Done.
    Accepted,
    /// Authentic, but the business cannot take it (another merchant, an amount that does not
    /// match the order): kept and alarmed, not retried — WeChat Pay would only send it again.
    Unacceptable(String),
}

/// A failure worth a retry (the store or the queue is down): the notice is answered 5xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// What the merchant does with a payment event. Must be idempotent per event: a crash after it
/// ran and before its result was recorded runs it again.
#[async_trait]
pub trait PaymentHook: Send + Sync + std::fmt::Debug {
    /// Handles `event` (from notice `notice_id`, or from reconciliation when `None`).
    async fn handle(&self, notice_id: Option<&str>, event: &PayEvent) -> Result<HookOutcome, HookError>;
}

/// The default hook: the order's state in the table, the event on a queue.
#[derive(Debug, Clone)]
pub struct RecordingHook {
    store: SharedStore,
    events: Option<SharedQueue>,
    mchid: String,
    clock: SharedClock,
}

impl RecordingHook {
    /// Records in `store`, publishes to `events` (when set), accepts events of merchant `mchid` only.
    pub fn new(store: SharedStore, events: Option<SharedQueue>, mchid: &str, clock: SharedClock) -> Self {
        Self {
            store,
            events,
            mchid: mchid.to_owned(),
            clock,
        }
    }

    async fn put(&self, key: Key, attrs: Attrs) -> Result<(), HookError> {
        self.store
            .put(&key, attrs, Condition::Always)
            .await
            .map_err(|e| HookError(format!("recording {key}: {e}")))
    }
}

#[async_trait]
impl PaymentHook for RecordingHook {
    async fn handle(&self, notice_id: Option<&str>, event: &PayEvent) -> Result<HookOutcome, HookError> {
        if let Some(mchid) = event.mchid()
            && mchid != self.mchid
        {
            return Ok(HookOutcome::Unacceptable(format!(
                "for merchant {mchid}, not {}",
                self.mchid
            )));
        }
        let now = self.clock.now_ms();
        let notice = AttrValue::from(notice_id.unwrap_or("reconciliation"));
        let pending = PendingOrders::new(self.store.clone());
        match event {
            PayEvent::Transaction(transaction) => {
                let paid = transaction.amount.as_ref().map(|a| a.total);
                if let Some(expected) = pending
                    .expected_total(&transaction.out_trade_no)
                    .await
                    .map_err(HookError)?
                    && paid.is_some_and(|paid| paid != expected)
                {
                    return Ok(HookOutcome::Unacceptable(format!(
                        "order {} expects {expected} fen, the notice says {paid:?}",
                        transaction.out_trade_no
                    )));
                }
                let mut attrs = Attrs::new();
                attrs.insert("trade_state".into(), AttrValue::from(transaction.trade_state.as_str()));
                attrs.insert(
                    "transaction_id".into(),
                    AttrValue::from(transaction.transaction_id.clone().unwrap_or_default()),
                );
                attrs.insert("amount_total".into(), AttrValue::N(paid.unwrap_or(0)));
                attrs.insert("notice_id".into(), notice);
                attrs.insert("updated_at_ms".into(), AttrValue::N(now));
                self.put(Key::new("pay#order", &transaction.out_trade_no), attrs)
                    .await?;
                if is_final(&transaction.trade_state) {
                    pending.settle(&transaction.out_trade_no).await.map_err(HookError)?;
                }
            }
            PayEvent::Refund(refund) => {
                let mut attrs = Attrs::new();
                attrs.insert("refund_status".into(), AttrValue::from(refund.refund_status.as_str()));
                attrs.insert("out_trade_no".into(), AttrValue::from(refund.out_trade_no.as_str()));
                attrs.insert(
                    "refund_id".into(),
                    AttrValue::from(refund.refund_id.clone().unwrap_or_default()),
                );
                attrs.insert(
                    "amount_refund".into(),
                    AttrValue::N(refund.amount.as_ref().map_or(0, |a| a.refund)),
                );
                attrs.insert("notice_id".into(), notice);
                attrs.insert("updated_at_ms".into(), AttrValue::N(now));
                self.put(Key::new("pay#refund", &refund.out_refund_no), attrs).await?;
            }
            PayEvent::Other { .. } => {}
        }
        if let Some(queue) = &self.events {
            let message = json!({"notice_id": notice_id, "event": event}).to_string();
            queue
                .send(&message)
                .await
                .map_err(|e| HookError(format!("publishing the event: {e}")))?;
        }
        Ok(HookOutcome::Accepted)
    }
}
