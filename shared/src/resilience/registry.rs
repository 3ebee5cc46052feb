//! The registry: named policies and breakers of one instance, configured once per cold start.
//!
//! Configuration per name = code defaults (or the config given for that name) + overrides from
//! the JSON file and the environment (validated at `build`, so bad values fail the cold start) +
//! runtime overrides from the store (picked up while running by every policy and every breaker
//! the registry hands out; invalid ones are ignored).
//! Breakers and bulkheads are per dependency name; policies per (operation, dependency), so
//! several policies (per-API retry settings) can share one breaker (per API domain).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::breaker::Breaker;
use super::bulkhead::Bulkhead;
use super::counters::EventCounters;
use super::error::ConfigError;
use super::events::{Observers, SharedObserver};
use super::overrides::{DEFAULT_NAME, OverrideSet, normalize};
use super::policy::Policy;
use super::policy_config::PolicyConfig;
use super::runtime::{RuntimeHook, RuntimeOverrides};
use crate::clock::SharedClock;
use crate::store::SharedStore;

/// Named policies and breakers sharing one store, clock and observer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: SharedStore,
    clock: SharedClock,
    observer: SharedObserver,
    counters: Arc<EventCounters>,
    defaults: PolicyConfig,
    named: BTreeMap<String, PolicyConfig>,
    runtime: Option<Arc<RuntimeOverrides>>,
    region: Option<String>,
    breakers: Mutex<HashMap<String, Dependency>>,
    policies: Mutex<HashMap<(String, String), Arc<Policy>>>,
}

/// Builder for [`Registry`].
#[derive(Debug)]
pub struct RegistryBuilder {
    store: SharedStore,
    clock: SharedClock,
    observer: SharedObserver,
    defaults: PolicyConfig,
    configs: Vec<(String, PolicyConfig)>,
    overrides: OverrideSet,
    runtime_every: Option<Duration>,
    region: Option<String>,
}

impl RegistryBuilder {
    /// Keeps the breakers' state per `region` (a multi-region deployment; see
    /// [`Breaker::in_region`]). `None`: one state for the whole table.
    pub fn region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// The event observer (default: none). The registry also counts every event in its own
    /// [`EventCounters`] ([`Registry::counters`]), whatever the observer.
    pub fn observer(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// The configuration of names without their own (default: [`PolicyConfig::default`]).
    pub fn defaults(mut self, config: PolicyConfig) -> Self {
        self.defaults = config;
        self
    }

    /// The configuration of `name` (a policy, a breaker, or both).
    pub fn config(mut self, name: &str, config: PolicyConfig) -> Self {
        self.configs.push((name.to_owned(), config));
        self
    }

    /// Overrides from a file or the environment; later calls win over earlier ones.
    pub fn overrides(mut self, overrides: OverrideSet) -> Self {
        self.overrides = std::mem::take(&mut self.overrides).merged(overrides);
        self
    }

    /// How often runtime overrides are read from the store (`None` disables them; default 1 s).
    pub fn runtime_overrides(mut self, every: Option<Duration>) -> Self {
        self.runtime_every = every;
        self
    }

    /// Validates every configured and overridden name.
    ///
    /// # Errors
    /// [`ConfigError`] naming the policy and setting (`wechat-api.max_attempts`).
    pub fn build(self) -> Result<Registry, ConfigError> {
        let defaults = self
            .overrides
            .for_name(DEFAULT_NAME)
            .apply(&self.defaults, false)
            .map_err(|e| e.in_scope(DEFAULT_NAME))?;
        let mut named = BTreeMap::new();
        for (name, config) in &self.configs {
            let config = self
                .overrides
                .for_name(name)
                .apply(config, false)
                .map_err(|e| e.in_scope(name))?;
            named.insert(normalize(name), config);
        }
        for name in self.overrides.names() {
            if !named.contains_key(name) {
                let config = self
                    .overrides
                    .for_name(name)
                    .apply(&self.defaults, false)
                    .map_err(|e| e.in_scope(name))?;
                named.insert(name.to_owned(), config);
            }
        }
        let counters = Arc::new(EventCounters::new());
        let observer: SharedObserver = Arc::new(Observers(vec![
            counters.clone(),
            Arc::new(super::metrics::MetricsObserver),
            self.observer,
        ]));
        let runtime = self.runtime_every.map(|every| {
            let timeout = defaults.breaker.store_timeout();
            Arc::new(RuntimeOverrides::new(
                Arc::clone(&self.store),
                Arc::clone(&self.clock),
                Arc::clone(&observer),
                every,
                timeout,
            ))
        });
        Ok(Registry {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                observer,
                counters,
                defaults,
                named,
                runtime,
                region: self.region,
                breakers: Mutex::default(),
                policies: Mutex::default(),
            }),
        })
    }
}

/// A dependency's breaker and bulkhead.
type Dependency = (Arc<Breaker>, Arc<Bulkhead>);

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    /// A builder over `store` (fleet state) and `clock`.
    pub fn builder(store: SharedStore, clock: SharedClock) -> RegistryBuilder {
        RegistryBuilder {
            store,
            clock,
            observer: Arc::new(()),
            defaults: PolicyConfig::default(),
            configs: Vec::new(),
            overrides: OverrideSet::default(),
            runtime_every: Some(Duration::from_secs(1)),
            region: None,
        }
    }

    /// The deploy-time configuration of `name` (before runtime overrides).
    pub fn config_for(&self, name: &str) -> PolicyConfig {
        self.inner
            .named
            .get(&normalize(name))
            .cloned()
            .unwrap_or_else(|| self.inner.defaults.clone())
    }

    /// The breaker named `name` (created on first use with that name's configuration).
    pub fn breaker(&self, name: &str) -> Arc<Breaker> {
        Arc::clone(&self.dependency(name).0)
    }

    fn dependency(&self, name: &str) -> Dependency {
        let mut breakers = locked(&self.inner.breakers);
        let (breaker, bulkhead) = breakers.entry(name.to_owned()).or_insert_with(|| {
            let config = self.config_for(name);
            let mut breaker = Breaker::new(
                name,
                config.breaker.clone(),
                Arc::clone(&self.inner.store),
                Arc::clone(&self.inner.clock),
                Arc::clone(&self.inner.observer),
            );
            let bulkhead = Arc::new(Bulkhead::new(config.bulkhead));
            if let Some(region) = &self.inner.region {
                breaker = breaker.in_region(region);
            }
            if let Some(source) = &self.inner.runtime {
                breaker = breaker.with_runtime(RuntimeHook::new(Arc::clone(source), config));
            }
            (Arc::new(breaker), bulkhead)
        });
        (Arc::clone(breaker), Arc::clone(bulkhead))
    }

    /// The policy named `name` over the breaker of the same name.
    pub fn policy(&self, name: &str) -> Arc<Policy> {
        self.policy_for(name, name)
    }

    /// The policy `policy` (its retry settings) over the breaker and bulkhead `breaker`, e.g. a
    /// WeChat API's retry policy over one API domain's breaker.
    pub fn policy_for(&self, policy: &str, breaker: &str) -> Arc<Policy> {
        let key = (policy.to_owned(), breaker.to_owned());
        if let Some(existing) = locked(&self.inner.policies).get(&key) {
            return Arc::clone(existing);
        }
        let (shared_breaker, bulkhead) = self.dependency(breaker);
        let policy_config = self.config_for(policy);
        let mut built = Policy::new(
            policy,
            policy_config.retry.clone(),
            shared_breaker,
            bulkhead,
            Arc::clone(&self.inner.observer),
        );
        if let Some(source) = &self.inner.runtime {
            built = built.with_runtime(RuntimeHook::new(Arc::clone(source), policy_config));
        }
        let mut policies = locked(&self.inner.policies);
        Arc::clone(policies.entry(key).or_insert_with(|| Arc::new(built)))
    }

    /// Every breaker created so far (health and admin views).
    pub fn breakers(&self) -> Vec<Arc<Breaker>> {
        let mut all: Vec<_> = locked(&self.inner.breakers)
            .values()
            .map(|(b, _)| Arc::clone(b))
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// The observer every policy and breaker reports to (the registry's counters, then the
    /// observer it was built with).
    pub fn observer(&self) -> &SharedObserver {
        &self.inner.observer
    }

    /// The registry's event counters: `registry.counters().snapshot()` for metrics, health and
    /// admin views (relaxed atomic loads; keep the `Arc` to read them later without the registry).
    pub fn counters(&self) -> &Arc<EventCounters> {
        &self.inner.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::resilience::State;
    use crate::store::Key;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_regional_registry_keeps_its_breakers_state_under_its_region() {
        let clock: SharedClock = Arc::new(ManualClock::new(1_000));
        let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        let regional = Registry::builder(store.clone(), clock.clone())
            .region(Some("eu-west-1".into()))
            .build()
            .unwrap();
        regional
            .breaker("wechat.message")
            .force(State::ForcedOpen)
            .await
            .unwrap();
        let key = |pk: &str| Key::new(pk, "state");
        assert!(
            store
                .get(&key("breaker#eu-west-1#wechat.message"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.get(&key("breaker#wechat.message")).await.unwrap().is_none());
        let other = Registry::builder(store.clone(), clock)
            .region(Some("ap-northeast-1".into()))
            .build()
            .unwrap();
        assert_eq!(
            other.breaker("wechat.message").fleet_snapshot().await.unwrap().state,
            State::Closed,
            "another region's breaker is its own"
        );
    }
}
