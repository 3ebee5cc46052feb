//! Runtime overrides: settings read from the store (`config#breaker` / `{name}` items) and applied
//! without a redeploy, within one refresh interval (default: the breaker cache TTL, 1 s).
//!
//! Reach: every policy (its retry settings, picked up before its first attempt) and every breaker
//! (its settings, picked up when it grants a permit; a change already read is applied, without
//! I/O, before it decides) of the registry — breakers from `Registry::breaker(name)` included.
//!
//! Cost: one `query` of the `config#breaker` partition per refresh interval per registry (per
//! instance) in total, whichever policy or breaker asks first; made by a call that was already
//! permitted — a rejected call never triggers it — and cut short by that call's deadline. A
//! failed read keeps the settings in force; an invalid item is reported and ignored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::events::{Event, SharedObserver};
use super::overrides::{DEFAULT_NAME, Overrides, normalize};
use super::policy_config::PolicyConfig;
use crate::clock::SharedClock;
use crate::clock::millis;
use crate::deadline::Deadline;
use crate::store::{SharedStore, Unanswered, bounded};

/// The partition holding runtime overrides, one item per name (sort key = policy/breaker name).
pub const CONFIG_PK: &str = "config#breaker";

/// The store-backed source of runtime overrides, shared by a registry's policies. Scope: per
/// instance (a cached copy of fleet-wide items).
#[derive(Debug)]
pub struct RuntimeOverrides {
    store: SharedStore,
    clock: SharedClock,
    observer: SharedObserver,
    every_ms: i64,
    timeout: Duration,
    next_at: AtomicI64,
    generation: AtomicU64,
    items: RwLock<Arc<BTreeMap<String, Overrides>>>,
}

impl RuntimeOverrides {
    /// Reads at most once per `every`, each read limited to `timeout`.
    pub fn new(
        store: SharedStore,
        clock: SharedClock,
        observer: SharedObserver,
        every: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            observer,
            every_ms: millis(every).max(1),
            timeout,
            next_at: AtomicI64::new(i64::MIN),
            generation: AtomicU64::new(0),
            items: RwLock::new(Arc::default()),
        }
    }

    /// Re-reads the items if the interval has passed (one caller at a time; others go on). The
    /// read is cut short by `deadline`; a read the deadline cut is left to the next caller.
    pub async fn refresh_if_due(&self, deadline: Option<&Deadline>) {
        let now = self.clock.now_ms();
        let next = self.next_at.load(Ordering::Acquire);
        let claimed = now + self.every_ms;
        if now < next
            || self
                .next_at
                .compare_exchange(next, claimed, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let items = match bounded(self.timeout, deadline, self.store.query(CONFIG_PK)).await {
            Ok(items) => items,
            Err(Unanswered::Deadline) => {
                let _ = self
                    .next_at
                    .compare_exchange(claimed, next, Ordering::AcqRel, Ordering::Acquire);
                return;
            }
            Err(Unanswered::Store(error)) => {
                self.observer.on_event(&Event::StoreFallback {
                    breaker: CONFIG_PK,
                    operation: "config",
                    error: &error,
                });
                return;
            }
        };
        let mut parsed = BTreeMap::new();
        for (name, attrs) in items {
            match Overrides::from_attrs(&attrs) {
                Ok(overrides) => {
                    parsed.insert(normalize(&name), overrides);
                }
                Err(error) => self.observer.on_event(&Event::OverrideRejected {
                    policy: &name,
                    error: &error.to_string(),
                }),
            }
        }
        let mut current = self.items.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if **current != parsed {
            *current = Arc::new(parsed);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Bumped whenever the items change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The runtime settings for `name`: the `default` item's, then its own.
    pub fn get(&self, name: &str) -> Overrides {
        let items = Arc::clone(&self.items.read().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let default = items.get(DEFAULT_NAME).cloned().unwrap_or_default();
        match items.get(&normalize(name)) {
            Some(own) => default.merged(own),
            None => default,
        }
    }
}

/// Runtime overrides for one name (a policy or a breaker): the shared source, that name's
/// deploy-time configuration, and the source generation last applied.
#[derive(Debug)]
pub(crate) struct RuntimeHook {
    source: Arc<RuntimeOverrides>,
    base: PolicyConfig,
    applied: AtomicU64,
}

impl RuntimeHook {
    /// A hook over `source`; `base` is the name's deploy-time configuration.
    pub(crate) fn new(source: Arc<RuntimeOverrides>, base: PolicyConfig) -> Self {
        Self {
            source,
            base,
            applied: AtomicU64::new(0),
        }
    }

    /// Re-reads the shared source if its interval has passed (one read per registry per interval,
    /// whichever policy or breaker asks first), cut short by `deadline`.
    pub(crate) async fn refresh(&self, deadline: Option<&Deadline>) {
        self.source.refresh_if_due(deadline).await;
    }

    /// `name`'s configuration (deploy-time base + runtime items) when the items changed since the
    /// last call; `None` when they did not, or when they are invalid for `name` (reported as
    /// `OverrideRejected`; the configuration in force stays). No I/O.
    pub(crate) fn changed(&self, name: &str) -> Option<PolicyConfig> {
        let generation = self.source.generation();
        // A plain load first: this runs on every breaker decision, and a swap is a write.
        if self.applied.load(Ordering::Acquire) == generation
            || self.applied.swap(generation, Ordering::AcqRel) == generation
        {
            return None;
        }
        match self.source.get(name).apply(&self.base, true) {
            Ok(config) => Some(config),
            Err(error) => {
                self.source.observer.on_event(&Event::OverrideRejected {
                    policy: name,
                    error: &error.to_string(),
                });
                None
            }
        }
    }
}
