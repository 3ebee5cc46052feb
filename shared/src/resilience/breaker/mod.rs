//! The circuit breaker, its state shared by the whole fleet through the state store.
//!
//! Why shared: a Lambda fleet is hundreds of short-lived instances. A breaker in one instance's
//! memory lets every cold instance rediscover an outage and every instance send its own probes.
//! This one keeps its state in one store item (`breaker#{name}` / `state`), so the fleet trips
//! once, probes N times in total and recovers together.
//!
//! Costs, per guarded call: at most one store write — one unconditional `UpdateItem` that adds the
//! outcome to the current window bucket and returns (`ALL_NEW`) state and window together. Fast
//! successes (not slow, no retry wanted) are coalesced per instance: they ride on the next write,
//! which the first call after `flush_interval` (default 100 ms) makes at the latest, so a busy
//! instance writes about ten times a second instead of once per call. Failures, slow calls and
//! probes are always written at once, so trips are as prompt as with a write per call; the cost is
//! that the fleet sees other instances' successes up to `flush_interval` late (a failure rate at
//! most ~1 % high on a 10 s window) and an instance that goes idle keeps its last ones.
//! `flush_interval = 0` writes every call. Reads: none while the instance writes (every answer refreshes its
//! cached copy), else at most one per `cache_ttl`. An open breaker rejects with no store
//! operation until its open period ends. Transitions add one conditional write each, committed by
//! exactly one instance (the only one that emits the event); a half-open probe costs its permit
//! (a conditional decrement) plus its result. A transition write whose answer is lost (timeout,
//! deadline) may still have committed: each transition tags the item with its writer (`owner`),
//! and the writer's next fleet answer — a read forced as soon as the store is due again — emits
//! the fleet event if the tag is there (the local fallback's `Local` event was emitted already).
//! Not reported: a lost-answer transition the fleet moved past before that answer.
//!
//! Store failure: every store call runs under `store_timeout`. On any failure the breaker
//! continues on a local copy of the item (see `fallback`) and tries the store again after
//! `cache_ttl`; calls never fail because of the store.
//!
//! Scopes: [`Permit`] and [`Observation`] are per call; the cached record, pending counts and
//! fallback copy are per instance; the store item is per fleet.
//!
//! Layout: `decision` (pure: record + config + now → decision), `window` (pure bucket math),
//! `state` (states and the transition table), `record` (item codec), `updates` (decisions as
//! store updates), `apply` (runs them on the fleet store or the fallback), `permit` (acquire /
//! record / release), `operator` (force), `instance` (per-instance view), `fallback` (outage
//! fallback copy). Public: the façade ([`Breaker`], [`Permit`], [`Observation`]), the pure core
//! (`decision`, `state`, `window`), the item codec (`record`, read by admin views) and `config`.
//!
//! Deadlines: `acquire_within`, `record_within` and `release` cut every store call short at the
//! caller's deadline (a cut is not a store failure: no fallback), so a guarded call never waits
//! on the store past its deadline.

mod apply;
pub mod config;
pub mod decision;
mod fallback;
mod instance;
mod latency;
mod operator;
mod permit;
pub mod record;
pub mod state;
mod updates;
pub mod window;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

pub use config::{BreakerConfig, BreakerConfigBuilder};
pub use decision::PermitKind;
pub use operator::ForceError;
pub use state::{IllegalTransition, State};
pub use window::{Counts, Verdict};

use self::fallback::LocalFallback;
use self::instance::Instance;
use self::record::{BreakerRecord, key};
use super::budget::RetryBudget;
use super::classify::Outcome;
use super::events::{Event, Scope, SharedObserver};
use super::runtime::RuntimeHook;
use crate::clock::SharedClock;
use crate::store::{Key, SharedStore};

/// A circuit breaker whose state the whole fleet shares through the store.
///
/// Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Breaker {
    name: Arc<str>,
    /// This breaker object's random id: the prefix of its transitions' writer tags.
    owner: Arc<str>,
    key: Key,
    store: SharedStore,
    clock: SharedClock,
    observer: SharedObserver,
    config: RwLock<Arc<BreakerConfig>>,
    instance: Mutex<Instance>,
    local: LocalFallback,
    latency: latency::StoreLatency,
    /// The state last published on the state gauges (`u8::MAX`: none yet).
    published: std::sync::atomic::AtomicU8,
    runtime: Option<RuntimeHook>,
}

/// Permission to make one call; hand it back to [`Breaker::record`] with the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "record the call's outcome with Breaker::record"]
pub struct Permit {
    kind: PermitKind,
}

impl Permit {
    /// What the permit is for.
    pub const fn kind(&self) -> PermitKind {
        self.kind
    }

    /// Whether this call is a half-open probe.
    pub const fn is_probe(&self) -> bool {
        matches!(self.kind, PermitKind::Probe { .. })
    }
}

/// Why [`Breaker::acquire_within`] gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// The breaker refused the call.
    Rejected(super::error::Rejection),
    /// The caller's deadline ended a store call the decision needed.
    DeadlineExceeded,
}

/// What happened to one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The classified result.
    pub outcome: Outcome,
    /// How long the call took (slow calls count toward the slow-call rate).
    pub elapsed: Duration,
    /// `Some(budget)` when the caller wants to retry: a retry is reserved in the same write and
    /// granted only within `budget`.
    pub retry: Option<RetryBudget>,
}

/// The answer to a retry request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryGrant {
    /// No retry was requested.
    NotRequested,
    /// The retry may go ahead; hand the ticket to [`Breaker::release_retry`] if it does not.
    Granted(RetryTicket),
    /// The budget is spent (fleet-wide, or locally while the store is down).
    Denied(Scope),
}

/// A granted retry reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "release the reservation if the retry is abandoned"]
pub struct RetryTicket {
    bucket: Option<i64>,
}

/// A breaker's state as this instance sees it (for health and admin views).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    /// Breaker name.
    pub name: String,
    /// State.
    pub state: State,
    /// Transition counter.
    pub version: i64,
    /// Consecutive trips.
    pub trips: u32,
    /// End of the open period (epoch ms).
    pub open_until_ms: i64,
    /// Probe permits left in the current round.
    pub probes_left: i64,
    /// Window totals as last seen.
    pub window: Counts,
    /// Whether the instance is deciding locally because the store failed.
    pub degraded: bool,
}

impl Breaker {
    /// The same breaker, its state kept per `region` (`breaker#{region}#{name}` / `state`).
    #[must_use]
    pub fn in_region(mut self, region: &str) -> Self {
        self.key = record::regional_key(region, &self.name);
        self
    }

    /// A breaker named `name` (the store item is `breaker#{name}` / `state`).
    pub fn new(
        name: &str,
        config: BreakerConfig,
        store: SharedStore,
        clock: SharedClock,
        observer: SharedObserver,
    ) -> Self {
        Self {
            name: Arc::from(name),
            owner: Arc::from(format!("{:016x}", rand::random::<u64>())),
            key: key(name),
            local: LocalFallback::new(Arc::clone(&clock)),
            latency: latency::StoreLatency::default(),
            published: std::sync::atomic::AtomicU8::new(u8::MAX),
            store,
            clock,
            observer,
            config: RwLock::new(Arc::new(config)),
            instance: Mutex::new(Instance::default()),
            runtime: None,
        }
    }

    /// Follows runtime overrides from `hook` (registry breakers).
    pub(crate) fn with_runtime(mut self, hook: RuntimeHook) -> Self {
        self.runtime = Some(hook);
        self
    }

    /// Applies runtime overrides already read, if they changed (no I/O).
    fn apply_runtime(&self) {
        if let Some(config) = self.runtime.as_ref().and_then(|hook| hook.changed(&self.name)) {
            self.set_config(config.breaker);
        }
    }

    /// Re-reads runtime overrides if due (cut short by `deadline`) and applies them.
    async fn refresh_runtime(&self, deadline: Option<&crate::deadline::Deadline>) {
        if let Some(hook) = &self.runtime {
            hook.refresh(deadline).await;
            self.apply_runtime();
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<BreakerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Replaces the configuration (runtime overrides); the next call uses it.
    pub fn set_config(&self, config: BreakerConfig) {
        *self.config.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
    }

    /// Whether calls are being refused right now, from the cached state alone: no I/O, no
    /// `.await`. A caller with an alternative (the next API domain) can skip this dependency.
    pub fn is_rejecting(&self) -> bool {
        let now = self.clock.now_ms();
        decision::is_rejecting(&self.lock().record, now)
    }

    /// The rejection a call would meet right now, from the cached state alone (no I/O).
    pub fn rejection(&self) -> Option<super::error::Rejection> {
        let now = self.clock.now_ms();
        decision::rejection(&self.lock().record, now)
    }

    /// The cached state.
    pub fn state(&self) -> State {
        self.lock().record.state
    }

    /// Publishes the state gauges when this instance's view of the state changed.
    pub(super) fn note_state(&self, state: State) {
        let code = state as u8;
        if self.published.swap(code, std::sync::atomic::Ordering::Relaxed) != code {
            super::metrics::state_gauges(&self.name, state);
        }
    }

    /// The cached view of the breaker.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now_ms();
        let config = self.config();
        let instance = self.lock();
        let record: &BreakerRecord = &instance.record;
        BreakerSnapshot {
            name: self.name.to_string(),
            state: record.state,
            version: record.version,
            trips: record.trips,
            open_until_ms: record.open_until,
            probes_left: record.probes_left,
            window: record.window.totals(now, record.window_from, &config),
            degraded: instance.degraded.is_some(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Instance> {
        // Every critical section leaves the instance consistent (plain assignments), so a
        // poisoned lock is safe to keep using.
        self.instance.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, event: Event<'_>) {
        self.observer.on_event(&event);
    }
}
