//! Where a decision runs: the fleet store under its timeout (cut short by the caller's deadline),
//! or — when the store fails — the instance's local fallback copy. The only code of the breaker
//! that awaits the store.
//!
//! A store call the caller's deadline cuts short is not a store failure: the instance does not
//! fall back; the call's outcome counts wait for the next write (like coalesced successes), and a
//! transition whose answer was cut or lost is settled by the next answer ([`Unconfirmed`]).
//!
//! [`Unconfirmed`]: super::instance::Unconfirmed

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{BreakerConfig, LOCAL_PROBES};
use super::decision::Transition;
use super::latency::StoreLatency;
use super::record::BreakerRecord;
use super::updates::transition_update;
use super::window::Counts;
use super::{Breaker, Event, Scope};
use crate::deadline::Deadline;
use crate::store::{StoreError, Update};
use crate::store::{Unanswered, bounded};
use crate::telemetry::metrics;

/// One breaker operation's context: the configuration in force and the caller's deadline, which
/// caps every store call the operation makes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Op<'a> {
    pub config: &'a BreakerConfig,
    pub deadline: Option<&'a Deadline>,
    /// This instance's view of the store's latency (the adaptive store timeout).
    pub latency: &'a StoreLatency,
    /// Handing out probe permits: the fleet store first even while degraded, under
    /// `max_store_timeout` — a slow store must not turn N probes into N per instance.
    pub probe: bool,
}

impl<'a> Op<'a> {
    /// The same operation, handing out probe permits.
    pub(super) fn for_probes(self) -> Self {
        Self { probe: true, ..self }
    }

    fn timeout(&self) -> Duration {
        let max = self.config.max_store_timeout.max(self.config.store_timeout);
        if self.probe {
            max
        } else {
            self.latency.timeout(self.config.store_timeout, max)
        }
    }

    /// Runs one store call under the (adaptive) store timeout and the deadline, measuring how
    /// long the store took: `wechat_breaker_store_latency_ms`, `wechat_breaker_store_slow_total`
    /// for answers slower than `store_timeout`, outages counted apart.
    pub(super) async fn call<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Unanswered> {
        let timeout = self.timeout();
        let started = Instant::now();
        let result = bounded(timeout, self.deadline, operation).await;
        let elapsed = started.elapsed();
        match &result {
            Err(Unanswered::Deadline) => {}
            Err(error) if error.is_outage() => {
                if elapsed >= timeout {
                    let max = self.config.max_store_timeout.max(self.config.store_timeout);
                    self.latency.timed_out(timeout, self.config.store_timeout, max);
                }
                metrics::count(metrics::BREAKER_STORE_OUTAGES);
            }
            _ => {
                self.latency.answered(elapsed);
                metrics::record_ms(metrics::BREAKER_STORE_LATENCY_MS, elapsed);
                if elapsed > self.config.store_timeout {
                    metrics::count(metrics::BREAKER_STORE_SLOW);
                }
            }
        }
        result
    }
}

/// Where the local fallback applies an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// The fleet store.
    Fleet,
    /// The local copy; `reseeded` when this very failure started a fallback period (the copy was
    /// just seeded from the last fleet record).
    Local { reseeded: bool },
}

/// The result of running one update.
#[derive(Debug)]
pub(super) enum Applied {
    /// The update committed; the record as it is after.
    Done(Arc<BreakerRecord>, Scope),
    /// The condition failed; the record as it is (already adopted by the instance).
    Lost(Arc<BreakerRecord>, Scope),
    /// The caller's deadline ended the fleet store call: outcome unknown; the cached record.
    Cut(Arc<BreakerRecord>),
}

impl Applied {
    pub(super) fn record(&self) -> &Arc<BreakerRecord> {
        match self {
            Self::Done(record, _) | Self::Lost(record, _) | Self::Cut(record) => record,
        }
    }
}

impl Breaker {
    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// One operation's context under `config`, cut short by `deadline`.
    pub(super) fn op<'a>(&'a self, config: &'a BreakerConfig, deadline: Option<&'a Deadline>) -> Op<'a> {
        Op {
            config,
            deadline,
            latency: &self.latency,
            probe: false,
        }
    }

    /// Runs `make(Target::Fleet)` on the fleet store when `shared_first`, falling back to the
    /// local copy (`make(Target::Local)`) if the store fails; straight on the local copy otherwise.
    pub(super) async fn apply(
        &self,
        operation: &'static str,
        shared_first: bool,
        make: impl Fn(Target) -> Update,
        op: &Op<'_>,
    ) -> Applied {
        let mut reseeded = false;
        // Probe permits are coordinated on the fleet store whenever it answers in time, even by
        // an instance that is otherwise deciding locally.
        if shared_first || op.probe {
            match self.try_shared(make(Target::Fleet), op).await {
                Ok(applied) => return applied,
                Err(Unanswered::Deadline) => return Applied::Cut(Arc::clone(&self.lock().record)),
                Err(Unanswered::Store(error)) => reseeded = self.degrade(operation, &error, op.config).await,
            }
        }
        self.apply_local(make(Target::Local { reseeded })).await
    }

    /// One update on the fleet store. Outages and undecodable items are errors (→ fallback).
    pub(super) async fn try_shared(&self, update: Update, op: &Op<'_>) -> Result<Applied, Unanswered> {
        let now = self.now();
        let request = self.lock().next_request();
        let decode = |item: Option<&crate::store::Attrs>| {
            BreakerRecord::from_item(item).map(Arc::new).map_err(Unanswered::Store)
        };
        match op.call(self.store.update(&self.key, update)).await {
            Ok(attrs) => {
                let record = decode(Some(&attrs))?;
                self.adopt_shared(Arc::clone(&record), now, request);
                Ok(Applied::Done(record, Scope::Fleet))
            }
            Err(Unanswered::Store(StoreError::ConditionFailed { current })) => {
                let record = decode(current.as_ref())?;
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
        self.note_state(record.state);
        if lost {
            Applied::Lost(record, Scope::Local)
        } else {
            Applied::Done(record, Scope::Local)
        }
    }

    /// Adopts a fleet record answering `request`; reports the end of a degraded period, and a
    /// transition of this instance whose answer was lost if the record shows it committed.
    pub(super) fn adopt_shared(&self, record: Arc<BreakerRecord>, now: i64, request: u64) {
        let (resynced, revealed) = {
            let mut instance = self.lock();
            let revealed = instance.settle(&record, request);
            (instance.adopt_shared(Arc::clone(&record), now, request), revealed)
        };
        self.note_state(record.state);
        if resynced {
            self.emit(Event::StoreResynced { breaker: &self.name });
        }
        if let Some(transition) = revealed {
            self.emit_transition(&transition, &record, Scope::Fleet);
        }
    }

    /// Reads the fleet record (cache refresh); on failure the instance degrades. `false` when the
    /// caller's deadline ended the read (nothing learned, nothing degraded).
    pub(super) async fn refresh(&self, op: &Op<'_>) -> bool {
        let now = self.now();
        let request = self.lock().next_request();
        let read = op
            .call(self.store.get(&self.key))
            .await
            .and_then(|item| BreakerRecord::from_item(item.as_ref()).map_err(Unanswered::Store));
        match read {
            Ok(record) => self.adopt_shared(Arc::new(record), now, request),
            Err(Unanswered::Deadline) => return false,
            Err(Unanswered::Store(error)) => {
                self.degrade("read", &error, op.config).await;
            }
        }
        true
    }

    /// The store failed: log and count it, decide locally until the store is due again, and seed
    /// the local copy from the last fleet record when a degraded period starts (then `true`).
    pub(super) async fn degrade(&self, operation: &'static str, error: &StoreError, config: &BreakerConfig) -> bool {
        let now = self.now();
        let seed = {
            let mut instance = self.lock();
            instance
                .degrade(now, config, self.latency.take_grown())
                .then(|| Arc::clone(&instance.record))
        };
        self.emit(Event::StoreFallback {
            breaker: &self.name,
            operation,
            error,
        });
        let reseeded = seed.is_some();
        if let Some(record) = seed {
            // A half-open round continues locally with at most this instance's own probe.
            let mut local = BreakerRecord::clone(&record);
            local.probes_left = local.probes_left.min(LOCAL_PROBES);
            self.local.seed(&self.key, &local).await;
        }
        metrics::count(metrics::BREAKER_STORE_FALLBACKS);
        reseeded
    }

    /// Commits `transition` (fleet store first when due); only the winner emits the event. A
    /// fleet write left unanswered is remembered until an answer shows whether it committed.
    pub(super) async fn run_transition(&self, transition: Transition, op: &Op<'_>) -> Applied {
        let now = self.now();
        let (shared_first, known, tag) = {
            let mut instance = self.lock();
            let known = if transition.reset_window {
                instance.record.window.names()
            } else {
                Vec::new()
            };
            (instance.store_due(now), known, instance.next_tag(&self.owner))
        };
        let update = |target| match target {
            // Decided on local state: this instance's own probe, none for anyone else to take.
            Target::Local { .. } if transition.takes_probe() => {
                let local = Transition {
                    probes_left: transition.probes_left.min(LOCAL_PROBES - 1),
                    ..transition.clone()
                };
                transition_update(&local, &known, op.config, &tag)
            }
            _ => transition_update(&transition, &known, op.config, &tag),
        };
        let applied = self.apply("transition", shared_first, update, op).await;
        let answered = matches!(applied, Applied::Done(_, Scope::Fleet) | Applied::Lost(_, Scope::Fleet));
        if shared_first && !answered {
            self.lock().note_unconfirmed(transition.clone(), tag.clone());
        }
        if let Applied::Done(record, scope) = &applied {
            self.emit_transition(&transition, record, *scope);
        }
        applied
    }

    /// Reports `transition`, committed as `record` shows, in `scope` (the winner only).
    pub(super) fn emit_transition(&self, transition: &Transition, record: &BreakerRecord, scope: Scope) {
        self.emit(Event::Transition {
            breaker: &self.name,
            from: transition.from,
            to: transition.to,
            version: record.version,
            trips: record.trips,
            scope,
        });
    }

    /// Hands back a refused or abandoned retry reservation made in bucket `bucket`: with the next
    /// fleet write, and at once on the local copy while degraded.
    pub(super) async fn refund(&self, bucket: i64) {
        let refund = Counts {
            retries: -1,
            ..Counts::default()
        };
        let degraded = {
            let mut instance = self.lock();
            let degraded = instance.degraded.is_some();
            if degraded {
                instance.add_pending_local(bucket, refund);
            } else {
                instance.add_pending(bucket, refund);
            }
            degraded
        };
        if degraded {
            let name = super::window::attr_name("r_", bucket);
            // Cannot fail on the in-memory copy; a lost refund only makes the budget stricter.
            let _ = self.local.update(&self.key, Update::new().add(name, -1)).await;
        }
    }
}
