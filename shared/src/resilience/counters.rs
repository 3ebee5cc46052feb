//! Event counters: per-instance totals of resilience events, cheap to update on the call path
//! (one relaxed atomic add) and to read ([`EventCounters::snapshot`]) from metrics, health or
//! admin views. Every [`Registry`](super::Registry) keeps one; see [`events`](super::events).

use std::sync::atomic::{AtomicU64, Ordering};

use super::breaker::state::State;
use super::events::{Event, Observer, Scope};

/// Totals of resilience events, as read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Breaker transitions this instance committed in the fleet store.
    pub fleet_transitions: u64,
    /// Breaker transitions decided on local state during store outages.
    pub local_transitions: u64,
    /// Of all transitions, those to `open` (trips and failed probes), fleet or local.
    pub opened: u64,
    /// Calls refused by a breaker or a bulkhead.
    pub rejected: u64,
    /// Retries started.
    pub retries: u64,
    /// Retries refused by the retry budget.
    pub budget_exhausted: u64,
    /// Store operations that failed (or timed out) and fell back to local state.
    pub store_fallbacks: u64,
    /// Store answers that ended a fallback period.
    pub resyncs: u64,
    /// Runtime overrides ignored as invalid.
    pub overrides_rejected: u64,
}

/// Atomic event counters; an [`Observer`]. Share one behind an `Arc` and read it with
/// [`snapshot`](Self::snapshot).
#[derive(Debug, Default)]
pub struct EventCounters {
    counters: [AtomicU64; 9],
}

const FLEET: usize = 0;
const LOCAL: usize = 1;
const OPENED: usize = 2;
const REJECTED: usize = 3;
const RETRIES: usize = 4;
const BUDGET: usize = 5;
const FALLBACKS: usize = 6;
const RESYNCS: usize = 7;
const OVERRIDES: usize = 8;

impl EventCounters {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The totals so far (each counter read atomically; no lock).
    pub fn snapshot(&self) -> EventCounts {
        let n = |i: usize| self.counters[i].load(Ordering::Relaxed);
        EventCounts {
            fleet_transitions: n(FLEET),
            local_transitions: n(LOCAL),
            opened: n(OPENED),
            rejected: n(REJECTED),
            retries: n(RETRIES),
            budget_exhausted: n(BUDGET),
            store_fallbacks: n(FALLBACKS),
            resyncs: n(RESYNCS),
            overrides_rejected: n(OVERRIDES),
        }
    }

    fn bump(&self, i: usize) {
        self.counters[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl Observer for EventCounters {
    fn on_event(&self, event: &Event<'_>) {
        let counter = match *event {
            Event::Transition { to, scope, .. } => {
                if to == State::Open {
                    self.bump(OPENED);
                }
                match scope {
                    Scope::Fleet => FLEET,
                    Scope::Local => LOCAL,
                }
            }
            Event::Rejected { .. } => REJECTED,
            Event::Retry { .. } => RETRIES,
            Event::BudgetExhausted { .. } => BUDGET,
            Event::StoreFallback { .. } => FALLBACKS,
            Event::StoreResynced { .. } => RESYNCS,
            Event::OverrideRejected { .. } => OVERRIDES,
        };
        self.bump(counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn transition(from: State, to: State, version: i64, scope: Scope) -> Event<'static> {
        Event::Transition {
            breaker: "b",
            from,
            to,
            version,
            trips: 1,
            scope,
        }
    }

    #[test]
    fn event_counters_count_each_kind_and_trips_in_either_scope() {
        let counters = EventCounters::new();
        counters.on_event(&transition(State::Closed, State::Open, 1, Scope::Fleet));
        counters.on_event(&transition(State::Open, State::HalfOpen, 2, Scope::Fleet));
        counters.on_event(&transition(State::Closed, State::Open, 1, Scope::Local));
        let error = StoreError::Unavailable("down".into());
        for _ in 0..2 {
            counters.on_event(&Event::StoreFallback {
                breaker: "b",
                operation: "record",
                error: &error,
            });
        }
        counters.on_event(&Event::BudgetExhausted {
            policy: "p",
            scope: Scope::Fleet,
        });
        assert_eq!(
            counters.snapshot(),
            EventCounts {
                fleet_transitions: 2,
                local_transitions: 1,
                opened: 2,
                store_fallbacks: 2,
                budget_exhausted: 1,
                ..EventCounts::default()
            }
        );
    }
}
