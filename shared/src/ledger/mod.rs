//! The ledger: exactly-once work on the state store, with leased claims and typed results.
//!
//! WeChat retries a callback up to three times within about 15 s when it gets no answer in 5 s,
//! callers retry API requests, SQS redelivers, and Lambda may run each of those on a different
//! instance. [`Ledger::run_once`] is the one way to do something once across that fleet: one
//! conditional put claims the record; the winner works and stores its result (any serde type),
//! every later attempt gets that result without working again, and one that arrives while the
//! winner works can wait for it. A claim is a lease: a holder that dies leaves a `pending` record
//! whose lease runs out, and the next attempt takes it over; the stale holder's `complete` is then
//! refused ([`LedgerError::ClaimLost`]). Records expire after [`LedgerConfig::record_ttl`].
//!
//! The loser learns which case applies from the item returned with the failed condition, so a
//! duplicate costs one write and no read. Nothing here is callback-specific: `scope` is any
//! namespace (an appid for callbacks, an API for send requests) and the partition-key prefix is
//! configurable ([`LedgerConfig::with_namespace`]).

mod config;
mod error;
mod record;
mod run_once;
mod store_ops;

pub use self::config::{LedgerConfig, LedgerConfigError};
pub use self::error::LedgerError;
pub use self::run_once::{RunOnce, Wait};
pub use self::store_ops::{Begin, Claim, Ledger, WaitOutcome};
