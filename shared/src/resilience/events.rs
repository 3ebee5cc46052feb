//! Resilience events through one observer interface: transitions, rejections, retries, budget
//! exhaustion and store fallbacks.
//!
//! Only the instance whose conditional write committed a transition emits it, after the write
//! and outside any lock, so the fleet reports each transition exactly once. When that write's
//! answer was lost (timeout, deadline), the writer falls back (a `Local` event) and emits the
//! `Fleet` event once its next fleet answer shows the transition with its writer tag (`owner`);
//! only a lost-answer transition the fleet moves past before that answer goes unreported. Implementations:
//! `()` (no-op), [`TracingObserver`] (structured logs under [`EVENT_TARGET`]), [`EventCounters`](super::EventCounters)
//! (atomic totals per kind, read with `snapshot`) and [`Observers`] (fan-out to
//! several); the test kit adds a recording observer.
//!
//! Counting in production: every [`Registry`](super::Registry) counts the events of its
//! policies and breakers in its own `EventCounters`, whatever observer it was given (that one
//! still gets every event, e.g. [`TracingObserver`] for logs). Read them with
//! `registry.counters().snapshot()` — a handful of relaxed atomic loads, no lock, no I/O — for
//! metrics, a health or an admin view. Store failures are thus counted (`store_fallbacks`), not
//! only logged. Scope: per instance.

use std::fmt;
use std::sync::Arc;
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

/// Fans every event out to several observers, in order: e.g. logs and counters,
/// `Observers(vec![Arc::new(TracingObserver), counters.clone()])`.
#[derive(Debug, Clone, Default)]
pub struct Observers(pub Vec<SharedObserver>);

impl Observer for Observers {
    fn on_event(&self, event: &Event<'_>) {
        for observer in &self.0 {
            observer.on_event(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::counters::EventCounters;

    #[test]
    fn observers_fan_every_event_out_in_order() {
        let (first, second) = (Arc::new(EventCounters::new()), Arc::new(EventCounters::new()));
        let both = Observers(vec![first.clone(), second.clone(), Arc::new(TracingObserver)]);
        both.on_event(&Event::Rejected {
            breaker: "b",
            reason: Rejection::HalfOpen,
        });
        assert_eq!((first.snapshot().rejected, second.snapshot().rejected), (1, 1));
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
