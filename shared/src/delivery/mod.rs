//! Delivering outbound messages: send now when WeChat is healthy, otherwise queue, and deliver
//! exactly once.
//!
//! Two idempotency ledgers keep the promises (both on the fleet store):
//! - the **delivery ledger** (namespace `out`) is keyed by message id: a message is sent only by
//!   the holder of its claim, and a completed record means "WeChat accepted it" — the send API, the
//!   worker and WeChat-side retries all check it first, so an accepted message is never sent again;
//! - the **request ledger** (namespace `req`) is keyed by the caller's `Idempotency-Key`: a retried
//!   API request gets the first answer (200 sent, 202 queued, or the rejection) without a second send.
//!
//! The window that remains: a send WeChat accepted whose answer never reached us (timeout, broken
//! connection, or a crash before the delivery record was completed). WeChat's send APIs have no
//! idempotency key, so that message is in doubt; its claim's lease expires and the next holder
//! sends it again (at-least-once). The window is the round trip of one send plus one store write;
//! transport errors that prove nothing was sent (connection refused, breaker open) are outside it.

mod customer_service;
mod job;
mod send;

pub use customer_service::reply_as_customer_service;
pub use job::{Job, JobError, SendKind};
pub use send::{DeliveryOutcome, DeliveryRecord, RECORD_SLACK, deliver, send_ledger_key};
