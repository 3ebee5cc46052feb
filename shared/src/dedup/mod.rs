//! Exactly-once processing on the state store: an idempotency ledger with leased claims.
//!
//! WeChat retries a callback up to three times within about 15 s when it gets no answer in 5 s,
//! and Lambda may run those retries on different instances. Before processing, a handler calls
//! [`IdempotencyLedger::begin`], one conditional put of a `pending` record:
//! - the first delivery wins the put and gets a [`Claim`]; it processes, then
//!   [`IdempotencyLedger::complete`] stores the reply (or [`IdempotencyLedger::release`] on failure);
//! - a retry after completion gets [`Begin::Completed`] with the stored reply, no second processing;
//! - a retry during processing gets [`Begin::InProgress`] and can
//!   [`IdempotencyLedger::wait_for_reply`] within its budget.
//!
//! The loser learns which case applies from the item returned with the failed condition, so a
//! duplicate costs one write and no read. A claim is a lease: a holder that dies leaves a
//! `pending` record whose lease runs out, and the next delivery takes it over; the stale holder's
//! `complete` is then refused ([`DedupError::ClaimLost`]). Records expire after
//! [`DedupConfig::record_ttl`].
//!
//! Nothing here is callback-specific: `scope` is any namespace (an appid for callbacks, a
//! mchid for payment notifications, a sender for outbound message ids) and the partition-key
//! prefix is configurable ([`DedupConfig::with_namespace`]).

mod config;
mod error;
mod ledger;
mod record;

pub use self::config::{DedupConfig, DedupConfigError};
pub use self::error::DedupError;
pub use self::ledger::{Begin, Claim, IdempotencyLedger, WaitOutcome};
