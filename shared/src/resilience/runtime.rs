//! Runtime overrides: settings read from the store (`config#breaker` / `{name}` items) and applied
//! without a redeploy, within one refresh interval (default: the breaker cache TTL, 1 s).
//!
//! Cost: one `query` of the `config#breaker` partition per refresh interval per registry (per
//! instance), made by a call that was already permitted — a rejected call never triggers it. A
//! failed read keeps the settings in force; an invalid item is reported and ignored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::breaker::config::duration_ms;
use super::breaker::shared::{Unanswered, within_deadline};
use super::deadline::Deadline;
use super::events::{Event, SharedObserver};
use super::overrides::{DEFAULT_NAME, Overrides, normalize};
use super::policy::{Policy, PolicyConfig};
use crate::clock::SharedClock;
use crate::store::SharedStore;

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
            every_ms: duration_ms(every).max(1),
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
        let items = match within_deadline(self.timeout, deadline, self.store.query(CONFIG_PK)).await {
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

/// Applies runtime overrides to one policy and its breaker when they change.
#[derive(Debug)]
pub(crate) struct RuntimeHook {
    source: Arc<RuntimeOverrides>,
    policy_base: PolicyConfig,
    breaker_base: PolicyConfig,
    applied: AtomicU64,
}

impl RuntimeHook {
    /// A hook over `source`; the bases are the deploy-time configs of the policy and breaker names.
    pub(crate) fn new(source: Arc<RuntimeOverrides>, policy_base: PolicyConfig, breaker_base: PolicyConfig) -> Self {
        Self {
            source,
            policy_base,
            breaker_base,
            applied: AtomicU64::new(0),
        }
    }

    pub(crate) async fn sync(&self, policy: &Policy, deadline: &Deadline) {
        self.source.refresh_if_due(Some(deadline)).await;
        let generation = self.source.generation();
        if self.applied.swap(generation, Ordering::AcqRel) == generation {
            return;
        }
        let reject = |name: &str, error: String| {
            policy.observer().on_event(&Event::OverrideRejected {
                policy: name,
                error: &error,
            });
        };
        match self.source.get(policy.name()).apply(&self.policy_base, true) {
            Ok(config) => policy.set_retry_config(config.retry),
            Err(error) => reject(policy.name(), error.to_string()),
        }
        let breaker = policy.breaker();
        match self.source.get(breaker.name()).apply(&self.breaker_base, true) {
            Ok(config) => breaker.set_config(config.breaker),
            Err(error) => reject(breaker.name(), error.to_string()),
        }
    }
}
