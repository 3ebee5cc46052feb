//! A named policy: the retry settings of one operation, the breaker and the bulkhead of the
//! dependency it calls. [`execute`](super::execute()) applies it.
//!
//! Scope: a `Policy` lives per instance (built once per cold start, shared behind `Arc`); its
//! breaker's state is per fleet; its bulkhead per instance. Several policies may share one breaker
//! (per-API retry settings over a per-domain breaker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::breaker::Breaker;
use super::bulkhead::Bulkhead;
use super::events::SharedObserver;
use super::policy_config::PolicyConfig;
use super::retry::RetryConfig;
use super::runtime::RuntimeHook;
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::store::SharedStore;

/// A named policy, ready for [`execute`](super::execute()).
#[derive(Debug)]
pub struct Policy {
    name: Arc<str>,
    retry: RwLock<Arc<RetryConfig>>,
    breaker: Arc<Breaker>,
    bulkhead: Arc<Bulkhead>,
    observer: SharedObserver,
    seeds: AtomicU64,
    runtime: Option<RuntimeHook>,
}

impl Policy {
    /// A policy over an existing breaker and bulkhead (shared with other policies).
    pub fn new(
        name: &str,
        retry: RetryConfig,
        breaker: Arc<Breaker>,
        bulkhead: Arc<Bulkhead>,
        observer: SharedObserver,
    ) -> Self {
        Self {
            name: Arc::from(name),
            retry: RwLock::new(Arc::new(retry)),
            breaker,
            bulkhead,
            observer,
            seeds: AtomicU64::new(initial_seed(name)),
            runtime: None,
        }
    }

    /// A policy with its own breaker (named like the policy) and bulkhead.
    pub fn standalone(
        name: &str,
        config: PolicyConfig,
        store: SharedStore,
        clock: SharedClock,
        observer: SharedObserver,
    ) -> Self {
        let breaker = Arc::new(Breaker::new(name, config.breaker, store, clock, Arc::clone(&observer)));
        Self::new(
            name,
            config.retry,
            breaker,
            Arc::new(Bulkhead::new(config.bulkhead)),
            observer,
        )
    }

    pub(crate) fn with_runtime(mut self, hook: RuntimeHook) -> Self {
        self.runtime = Some(hook);
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The retry settings in force.
    pub fn retry_config(&self) -> Arc<RetryConfig> {
        Arc::clone(&self.retry.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Replaces the retry settings (runtime overrides); the next call uses them.
    pub fn set_retry_config(&self, config: RetryConfig) {
        *self.retry.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(config);
    }

    /// The dependency's breaker.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// The dependency's bulkhead.
    pub fn bulkhead(&self) -> &Arc<Bulkhead> {
        &self.bulkhead
    }

    /// The event observer.
    pub fn observer(&self) -> &SharedObserver {
        &self.observer
    }

    /// Whether the breaker is refusing calls right now (cached state, no I/O).
    pub fn is_rejecting(&self) -> bool {
        self.breaker.is_rejecting()
    }

    /// A jitter seed for one call: distinct per call and per instance, no syscall.
    pub(crate) fn next_seed(&self) -> u64 {
        splitmix(self.seeds.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    /// Picks up runtime overrides (at most one store read per refresh interval per registry),
    /// waiting on the store no later than `deadline`.
    pub(crate) async fn sync_runtime(&self, deadline: &Deadline) {
        if let Some(hook) = &self.runtime {
            hook.refresh(Some(deadline)).await;
            if let Some(config) = hook.changed(&self.name) {
                self.set_retry_config(config.retry);
            }
        }
    }
}

fn initial_seed(name: &str) -> u64 {
    // Differs per instance (address of a fresh allocation, time) and per policy name.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let here = Box::new(0u8);
    let addr = std::ptr::addr_of!(*here) as usize as u64;
    name.bytes()
        .fold(nanos ^ addr.rotate_left(32), |acc, b| splitmix(acc ^ u64::from(b)))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    #[test]
    fn standalone_policy_owns_a_breaker_of_its_name_and_seeds_differ_per_call() {
        let clock: SharedClock = Arc::new(ManualClock::new(0));
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::clone(&clock)));
        let policy = Policy::standalone("send", PolicyConfig::default(), store, clock, Arc::new(()));
        assert_eq!(policy.breaker().name(), "send");
        assert_ne!(policy.next_seed(), policy.next_seed());
        policy.set_retry_config(RetryConfig::no_retry());
        assert_eq!(policy.retry_config().max_attempts(), 1);
        assert!(!policy.is_rejecting());
    }
}
