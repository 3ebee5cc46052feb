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
//! connection, HTTP 500/504). WeChat's send APIs have no idempotency key, so that message is *in
//! doubt*: held and counted (default) or sent again (`DELIVERY_IN_DOUBT=resend`), see `policy`.
//! A completion the store could not take goes to the queue and is written by the worker; only a
//! crash between WeChat's answer and that hand-over leaves a pending claim whose lease expires
//! and whose message is sent again. Transport errors that prove nothing was sent (connection
//! refused, HTTP 502/503, breaker open) are outside the window.

mod customer_service;
mod job;
mod policy;
mod record;
mod send;

pub use customer_service::reply_as_customer_service;
pub use job::{Completion, Job, JobError, SendKind};
pub use policy::{DeliveryPolicy, InDoubt, LedgerDown};
pub use record::DeliveryRecord;
pub use send::{Deliveries, DeliveryOutcome, RECORD_SLACK, deliver};
