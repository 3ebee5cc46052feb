//! Where a decision runs: the fleet store under its timeout, or — when that fails — the
//! instance's local fallback copy. The only code of the breaker that awaits the store.

use std::sync::Arc;

use super::config::BreakerConfig;
use super::decision::Transition;
use super::record::BreakerRecord;
use super::shared::{transition_update, within};
use super::window::Counts;
use super::{Breaker, Event, Scope};
use crate::store::{StoreError, Update};

/// The result of running one conditional update.
#[derive(Debug)]
pub(super) enum Applied {
    /// The update committed; the record as it is after.
    Done(Arc<BreakerRecord>, Scope),
    /// The condition failed; the record as it is (already adopted by the instance).
    Lost(Arc<BreakerRecord>, Scope),
}

impl Applied {
    pub(super) fn record(&self) -> &Arc<BreakerRecord> {
        match self {
            Self::Done(record, _) | Self::Lost(record, _) => record,
        }
    }

    pub(super) fn scope(&self) -> Scope {
        match self {
            Self::Done(_, scope) | Self::Lost(_, scope) => *scope,
        }
    }
}

impl Breaker {
    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs `make()` on the fleet store when `shared_first`, falling back to the local copy if the
    /// store fails; straight on the local copy otherwise.
    pub(super) async fn apply(
        &self,
        operation: &'static str,
        shared_first: bool,
        make: impl Fn() -> Update,
        config: &BreakerConfig,
    ) -> Applied {
        if shared_first {
            match self.try_shared(make(), config).await {
                Ok(applied) => return applied,
                Err(error) => self.degrade(operation, &error, config).await,
            }
        }
        self.apply_local(make()).await
    }

    /// One update on the fleet store. Outages and undecodable items are errors (→ fallback).
    pub(super) async fn try_shared(&self, update: Update, config: &BreakerConfig) -> Result<Applied, StoreError> {
        let now = self.now();
        let request = self.lock().next_request();
        match within(config.store_timeout, self.store.update(&self.key, update)).await {
            Ok(attrs) => {
                let record = Arc::new(BreakerRecord::from_item(Some(&attrs))?);
                self.adopt_shared(Arc::clone(&record), now, request);
                Ok(Applied::Done(record, Scope::Fleet))
            }
            Err(StoreError::ConditionFailed { current }) => {
                let record = Arc::new(BreakerRecord::from_item(current.as_ref())?);
                self.adopt_shared(Arc::clone(&record), now, request);
                Ok(Applied::Lost(record, Scope::Fleet))
            }
            Err(error) => Err(error),
        }
    }

    async fn apply_local(&self, update: Update) -> Applied {
        let (result, lost) = match self.local.update(&self.key, update).await {
            Ok(attrs) => (BreakerRecord::from_item(Some(&attrs)), false),
            Err(StoreError::ConditionFailed { current }) => (BreakerRecord::from_item(current.as_ref()), true),
            // The in-memory copy cannot fail otherwise; keep the cached record if it ever does.
            Err(_) => (Ok(BreakerRecord::clone(&self.lock().record)), true),
        };
        let record = Arc::new(result.unwrap_or_else(|_| BreakerRecord::clone(&self.lock().record)));
        self.lock().adopt_local(Arc::clone(&record));
        if lost {
            Applied::Lost(record, Scope::Local)
        } else {
            Applied::Done(record, Scope::Local)
        }
    }

    /// Adopts a fleet record answering `request`; reports the end of a degraded period.
    pub(super) fn adopt_shared(&self, record: Arc<BreakerRecord>, now: i64, request: u64) {
        let resynced = self.lock().adopt_shared(record, now, request);
        if resynced {
            self.emit(Event::StoreResynced { breaker: &self.name });
        }
    }

    /// Reads the fleet record (cache refresh); on failure the instance degrades.
    pub(super) async fn refresh(&self, config: &BreakerConfig) {
        let now = self.now();
        let request = self.lock().next_request();
        let read = within(config.store_timeout, self.store.get(&self.key)).await;
        match read.and_then(|item| BreakerRecord::from_item(item.as_ref())) {
            Ok(record) => self.adopt_shared(Arc::new(record), now, request),
            Err(error) => self.degrade("read", &error, config).await,
        }
    }

    /// The store failed: log and count it, decide locally until the store is due again, and seed
    /// the local copy from the last fleet record when a degraded period starts.
    pub(super) async fn degrade(&self, operation: &'static str, error: &StoreError, config: &BreakerConfig) {
        let now = self.now();
        let seed = {
            let mut instance = self.lock();
            instance.degrade(now, config).then(|| Arc::clone(&instance.record))
        };
        self.emit(Event::StoreFallback {
            breaker: &self.name,
            operation,
            error,
        });
        if let Some(record) = seed {
            self.local.seed(&self.key, &record).await;
        }
    }

    /// Commits `transition` (fleet store first when due); only the winner emits the event.
    pub(super) async fn run_transition(&self, transition: Transition, config: &BreakerConfig) -> Applied {
        let now = self.now();
        let (shared_first, known) = {
            let instance = self.lock();
            let known = if transition.reset_window {
                instance.record.window.names()
            } else {
                Vec::new()
            };
            (instance.store_due(now), known)
        };
        let applied = self
            .apply(
                "transition",
                shared_first,
                || transition_update(&transition, &known, config),
                config,
            )
            .await;
        if let Applied::Done(record, scope) = &applied {
            self.emit(Event::Transition {
                breaker: &self.name,
                from: transition.from,
                to: transition.to,
                version: record.version,
                trips: record.trips,
                scope: *scope,
            });
        }
        applied
    }

    /// Hands back a refused or abandoned retry reservation made in bucket `bucket`: with the next
    /// fleet write, and at once on the local copy while degraded.
    pub(super) async fn refund(&self, bucket: i64) {
        let degraded = {
            let mut instance = self.lock();
            instance.add_pending(
                bucket,
                Counts {
                    retries: -1,
                    ..Counts::default()
                },
            );
            instance.degraded.is_some()
        };
        if degraded {
            let name = super::window::attr_name("r_", bucket);
            // Cannot fail on the in-memory copy; a lost refund only makes the budget stricter.
            let _ = self.local.update(&self.key, Update::new().add(&name, -1)).await;
        }
    }
}
