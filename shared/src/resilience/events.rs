//! Resilience events through one observer interface: transitions, rejections, retries, budget
//! exhaustion and store fallbacks.
//!
//! Only the instance whose conditional write committed a transition emits it, after the write
//! and outside any lock, so the fleet reports each transition exactly once. When that write's
//! answer was lost (timeout, deadline), the writer falls back (a `Local` event) and emits the
//! `Fleet` event once its next fleet answer shows the transition with its writer tag (`owner`);
//! only a lost-answer transition the fleet moves past before that answer goes unreported. Implementations:
//! `()` (no-op), [`TracingObserver`] (structured logs under [`EVENT_TARGET`]) and
//! [`CountingObserver`] (counters and a transition log, for tests and metrics).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::breaker::state::State;
use super::classify::Outcome;
use super::error::Rejection;
use crate::store::StoreError;

/// The tracing target of every resilience event.
pub const EVENT_TARGET: &str = "wechat_ha::resilience";

/// Where a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Committed in the fleet store: every instance follows.
    Fleet,
    /// Decided on instance-local state while the store is unreachable.
    Local,
}

impl Scope {
    /// Stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Local => "local",
        }
    }
}

/// One resilience event.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A breaker changed state (emitted by the transition's winner only).
    Transition {
        /// Breaker name.
        breaker: &'a str,
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// Version after.
        version: i64,
        /// Consecutive trips after.
        trips: u32,
        /// Fleet or local decision.
        scope: Scope,
    },
    /// A call was refused by a breaker or a bulkhead.
    Rejected {
        /// Breaker (or policy) name.
        breaker: &'a str,
        /// Why.
        reason: Rejection,
    },
    /// A retry is about to wait `delay` and then make attempt `attempt`.
    Retry {
        /// Policy name.
        policy: &'a str,
        /// The attempt about to be made (2 = first retry).
        attempt: u32,
        /// Backoff before it.
        delay: Duration,
        /// The outcome that caused it.
        outcome: Outcome,
    },
    /// A retryable failure was not retried: the retry budget is spent.
    BudgetExhausted {
        /// Policy name.
        policy: &'a str,
        /// Whether the fleet budget (or the local fallback budget) refused.
        scope: Scope,
    },
    /// A store operation failed or timed out; the breaker decides locally for a while.
    StoreFallback {
        /// Breaker name.
        breaker: &'a str,
        /// The store operation (`read`, `record`, `transition`, `probe`).
        operation: &'static str,
        /// What went wrong.
        error: &'a StoreError,
    },
    /// The store answered again after a fallback; the instance adopted the fleet state.
    StoreResynced {
        /// Breaker name.
        breaker: &'a str,
    },
    /// A runtime configuration override was invalid and ignored.
    OverrideRejected {
        /// Policy name.
        policy: &'a str,
        /// Why.
        error: &'a str,
    },
}

/// Receives resilience events. Must be cheap and must not block: it runs on the call path.
pub trait Observer: Send + Sync + fmt::Debug {
    /// Handles one event.
    fn on_event(&self, event: &Event<'_>);
}

/// A shared observer, as held by breakers and policies.
pub type SharedObserver = Arc<dyn Observer>;

const _: Option<&dyn Observer> = None; // object safety

impl Observer for () {
    fn on_event(&self, _event: &Event<'_>) {}
}

/// Logs every event with `tracing` under [`EVENT_TARGET`], with fields `breaker`, `from`, `to`,
/// `version`, `trips` for transitions.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_event(&self, event: &Event<'_>) {
        match *event {
            Event::Transition {
                breaker,
                from,
                to,
                version,
                trips,
                scope,
            } => tracing::info!(
                target: EVENT_TARGET, breaker, from = from.as_str(), to = to.as_str(), version, trips,
                scope = scope.as_str(), "breaker state changed"
            ),
            Event::Rejected { breaker, reason } => {
                tracing::debug!(target: EVENT_TARGET, breaker, reason = reason.as_str(), "call rejected")
            }
            Event::Retry {
                policy,
                attempt,
                delay,
                outcome,
            } => tracing::debug!(
                target: EVENT_TARGET, policy, attempt, delay_ms = delay.as_millis() as u64,
                outcome = outcome.as_str(), "retrying"
            ),
            Event::BudgetExhausted { policy, scope } => {
                tracing::warn!(target: EVENT_TARGET, policy, scope = scope.as_str(), "retry budget exhausted")
            }
            Event::StoreFallback {
                breaker,
                operation,
                error,
            } => tracing::warn!(
                target: EVENT_TARGET, breaker, operation, error = %error, "state store failed; deciding locally"
            ),
            Event::StoreResynced { breaker } => {
                tracing::info!(target: EVENT_TARGET, breaker, "state store back; fleet state adopted")
            }
            Event::OverrideRejected { policy, error } => {
                tracing::warn!(target: EVENT_TARGET, policy, error, "runtime override ignored")
            }
        }
    }
}

/// One committed transition, as recorded by [`CountingObserver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// Breaker name.
    pub breaker: String,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Version after.
    pub version: i64,
    /// Consecutive trips after.
    pub trips: u32,
    /// Fleet or local.
    pub scope: Scope,
}

/// Counts events and logs transitions; share one across instances to check fleet-wide claims.
#[derive(Debug, Default)]
pub struct CountingObserver {
    rejected: AtomicU64,
    retries: AtomicU64,
    budget_exhausted: AtomicU64,
    store_fallbacks: AtomicU64,
    resyncs: AtomicU64,
    overrides_rejected: AtomicU64,
    transitions: Mutex<Vec<TransitionRecord>>,
}

impl CountingObserver {
    /// A fresh counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rejected calls.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
    /// Retries started.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// Retries refused by the budget.
    pub fn budget_exhausted(&self) -> u64 {
        self.budget_exhausted.load(Ordering::Relaxed)
    }
    /// Store operations that failed over to local state.
    pub fn store_fallbacks(&self) -> u64 {
        self.store_fallbacks.load(Ordering::Relaxed)
    }
    /// Re-syncs after a store outage.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(Ordering::Relaxed)
    }
    /// Runtime overrides ignored as invalid.
    pub fn overrides_rejected(&self) -> u64 {
        self.overrides_rejected.load(Ordering::Relaxed)
    }

    /// Every transition seen, in order.
    pub fn transitions(&self) -> Vec<TransitionRecord> {
        self.transitions
            .lock()
            .map(|log| log.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Transitions `from → to` in `scope`.
    pub fn count_transitions(&self, from: State, to: State, scope: Scope) -> usize {
        self.transitions()
            .iter()
            .filter(|t| t.from == from && t.to == to && t.scope == scope)
            .count()
    }
}

impl Observer for CountingObserver {
    fn on_event(&self, event: &Event<'_>) {
        let counter = match *event {
            Event::Transition {
                breaker,
                from,
                to,
                version,
                trips,
                scope,
            } => {
                let record = TransitionRecord {
                    breaker: breaker.to_owned(),
                    from,
                    to,
                    version,
                    trips,
                    scope,
                };
                match self.transitions.lock() {
                    Ok(mut log) => log.push(record),
                    Err(poisoned) => poisoned.into_inner().push(record),
                }
                return;
            }
            Event::Rejected { .. } => &self.rejected,
            Event::Retry { .. } => &self.retries,
            Event::BudgetExhausted { .. } => &self.budget_exhausted,
            Event::StoreFallback { .. } => &self.store_fallbacks,
            Event::StoreResynced { .. } => &self.resyncs,
            Event::OverrideRejected { .. } => &self.overrides_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_observer_counts_each_kind_and_logs_transitions_in_order() {
        let observer = CountingObserver::new();
        let transition = |from, to, version| Event::Transition {
            breaker: "b",
            from,
            to,
            version,
            trips: 1,
            scope: Scope::Fleet,
        };
        observer.on_event(&transition(State::Closed, State::Open, 1));
        observer.on_event(&transition(State::Open, State::HalfOpen, 2));
        observer.on_event(&Event::Rejected {
            breaker: "b",
            reason: Rejection::HalfOpen,
        });
        let error = StoreError::Unavailable("down".into());
        observer.on_event(&Event::StoreFallback {
            breaker: "b",
            operation: "record",
            error: &error,
        });
        assert_eq!(observer.rejected(), 1);
        assert_eq!(observer.store_fallbacks(), 1);
        assert_eq!(observer.count_transitions(State::Closed, State::Open, Scope::Fleet), 1);
        let versions: Vec<_> = observer.transitions().iter().map(|t| t.version).collect();
        assert_eq!(versions, [1, 2]);
    }

    #[test]
    fn unit_and_tracing_observers_accept_every_event() {
        let error = StoreError::Throttled("slow down".into());
        let events = [
            Event::Rejected {
                breaker: "b",
                reason: Rejection::BulkheadFull,
            },
            Event::Retry {
                policy: "p",
                attempt: 2,
                delay: Duration::from_millis(5),
                outcome: Outcome::Retryable,
            },
            Event::BudgetExhausted {
                policy: "p",
                scope: Scope::Local,
            },
            Event::StoreFallback {
                breaker: "b",
                operation: "read",
                error: &error,
            },
            Event::StoreResynced { breaker: "b" },
            Event::OverrideRejected {
                policy: "p",
                error: "bad",
            },
        ];
        for event in &events {
            ().on_event(event);
            TracingObserver.on_event(event);
        }
    }
}
