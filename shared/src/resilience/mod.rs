//! Resilience: deadline-aware retry with jitter and a fleet-wide budget, and a circuit breaker
//! whose state the whole Lambda fleet shares through the state store.
//!
//! One entry point, [`execute()`], applies a named [`Policy`] to an async operation in a fixed
//! order — bulkhead → breaker → retry (with budget) → per-attempt timeout — and returns the value
//! or an [`ExecuteError`]. Each question has its own module:
//!
//! | module | question | state scope |
//! |---|---|---|
//! | [`classify`] | what does this result mean (retry? breaker failure?) | — (pure) |
//! | [`backoff`] | how long before the next attempt | — (pure) |
//! | [`deadline`] | how much time is left | per call |
//! | [`retry`] | retry this outcome, after how long | per call ([`retry::RetryState`]) |
//! | [`budget`] | may the fleet afford another retry | per fleet (breaker window) |
//! | [`breaker`] | is the dependency healthy | per fleet (store item), cached per instance |
//! | [`bulkhead`] | is this instance already busy with it | per instance |
//! | [`policy`], [`registry`], [`overrides`], [`runtime`] | which settings apply | per instance |
//! | [`events`], [`counters`] | who hears about it, how often it happened | per instance |
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use shared::resilience::*;
//! # #[derive(Debug)] struct MyError;
//! # impl Classify for MyError { fn classify(&self) -> Outcome { Outcome::Retryable } }
//! # impl From<AttemptTimedOut> for MyError { fn from(_: AttemptTimedOut) -> Self { MyError } }
//! # async fn demo(store: shared::store::SharedStore) -> Result<(), ConfigError> {
//! let registry = Registry::builder(store, shared::clock::system())
//!     .observer(Arc::new(TracingObserver))
//!     .overrides(OverrideSet::from_env(std::env::vars())?)
//!     .build()?;
//! let policy = registry.policy_for("wechat.send", "api.weixin.qq.com");
//! let deadline = Deadline::after(Duration::from_secs(4));
//! let answer = execute(&policy, deadline, |attempt: Attempt| async move {
//!     if attempt.refresh_credentials { /* refresh the token first */ }
//!     Ok::<_, MyError>(42)
//! })
//! .await;
//! # let _ = answer; Ok(()) }
//! ```

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod classify;
pub mod counters;
pub mod deadline;
pub mod error;
pub mod events;
pub mod execute;
pub mod overrides;
pub mod policy;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod testing;

pub use backoff::{Backoff, BackoffKind, Jitter};
pub use breaker::{Breaker, BreakerConfig, BreakerSnapshot, State};
pub use budget::RetryBudget;
pub use bulkhead::{Bulkhead, BulkheadConfig};
pub use classify::{Classify, Outcome};
pub use counters::{EventCounters, EventCounts};
pub use deadline::Deadline;
pub use error::{AttemptTimedOut, ConfigError, ExecuteError, Rejection};
pub use events::{CountingObserver, Event, Observer, Observers, SharedObserver, TracingObserver};
pub use execute::execute;
pub use overrides::{OverrideSet, Overrides};
pub use policy::{Policy, PolicyConfig};
pub use registry::{Registry, RegistryBuilder};
pub use retry::{Attempt, RetryConfig};
