//! Resilience: deadline-aware retry with jitter and a fleet-wide budget, and a circuit breaker
//! whose state the whole Lambda fleet shares through the state store.
//!
//! One entry point, [`execute()`], applies a named [`Policy`] to an async operation in a fixed
//! order — bulkhead → breaker → retry (with budget) → per-attempt timeout — and returns the value
//! or an [`ExecuteError`]. Each question has its own module:
//!
//! | module | question | state scope |
//! |---|---|---|
//! | [`classify`] | what a result means: the [`Outcome`] vocabulary (the caller classifies) | — (pure) |
//! | [`backoff`] | how long before the next attempt | — (pure) |
//! | [`retry`] | retry this outcome, after how long | per call ([`retry::RetryState`]) |
//! | [`budget`] | may the fleet afford another retry | per fleet (breaker window) |
//! | [`breaker`] | is the dependency healthy | per fleet (store item), cached per instance |
//! | [`bulkhead`] | is this instance already busy with it | per instance |
//! | [`policy`], [`registry`], [`overrides`], `runtime` | which settings apply | per instance |
//! | [`events`], `counters` | who hears about it, how often it happened | per instance |
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use shared::deadline::Deadline;
//! # use shared::resilience::*;
//! # #[derive(Debug)] struct MyError { transient: bool }
//! # async fn demo(store: shared::store::SharedStore) -> Result<(), ConfigError> {
//! let registry = Registry::builder(store, shared::clock::system())
//!     .observer(Arc::new(TracingObserver))
//!     .build()?;
//! let policy = registry.policy_for("inventory.lookup", "inventory.example.com");
//! let deadline = Deadline::after(Duration::from_secs(4));
//! // The caller says what a result means; the core knows nothing of the dependency.
//! let classify = |result: &Result<u32, AttemptError<MyError>>| match result {
//!     Ok(_) => Outcome::Success,
//!     Err(AttemptError::TimedOut { .. }) => Outcome::Retryable,
//!     Err(AttemptError::Failed(e)) if e.transient => Outcome::Retryable,
//!     Err(AttemptError::Failed(_)) => Outcome::NotRetryable,
//! };
//! let answer = execute(&policy, deadline, classify, |attempt: Attempt| async move {
//!     Ok::<_, MyError>(attempt.number)
//! })
//! .await;
//! # let _ = answer; Ok(()) }
//! ```

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod classify;
mod counters;
pub mod error;
pub mod events;
mod execute;
pub mod metrics;
pub mod overrides;
pub mod policy;
mod policy_config;
pub mod registry;
pub mod retry;
mod runtime;
pub mod tuning;

pub use backoff::{Backoff, BackoffKind, Jitter};
pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, ForceError, State};
pub use budget::RetryBudget;
pub use bulkhead::{Bulkhead, BulkheadConfig};
pub use classify::Outcome;
pub use counters::{EventCounters, EventCounts};
pub use error::{AttemptError, ConfigError, ExecuteError, Rejection};
pub use events::{Event, Observer, Observers, Scope, SharedObserver, TracingObserver};
pub use execute::execute;
pub use overrides::{OverrideSet, Overrides};
pub use policy::Policy;
pub use policy_config::PolicyConfig;
pub use registry::{Registry, RegistryBuilder};
pub use retry::{Attempt, RetryConfig};
pub use runtime::CONFIG_PK;
