//! An observer that counts every resilience event and logs every transition (unbounded: tests
//! only); share one across instances to check fleet-wide claims.

use std::sync::Mutex;

use shared::resilience::breaker::State;
use shared::resilience::events::{Event, Observer, Scope};
use shared::resilience::{EventCounters, EventCounts};

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

/// [`EventCounters`] plus a log of every transition.
#[derive(Debug, Default)]
pub struct CountingObserver {
    counters: EventCounters,
    transitions: Mutex<Vec<TransitionRecord>>,
}

impl CountingObserver {
    /// A fresh counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The totals so far.
    pub fn counts(&self) -> EventCounts {
        self.counters.snapshot()
    }
    /// Rejected calls.
    pub fn rejected(&self) -> u64 {
        self.counts().rejected
    }
    /// Retries started.
    pub fn retries(&self) -> u64 {
        self.counts().retries
    }
    /// Retries refused by the budget.
    pub fn budget_exhausted(&self) -> u64 {
        self.counts().budget_exhausted
    }
    /// Store operations that failed over to local state.
    pub fn store_fallbacks(&self) -> u64 {
        self.counts().store_fallbacks
    }
    /// Re-syncs after a store outage.
    pub fn resyncs(&self) -> u64 {
        self.counts().resyncs
    }
    /// Runtime overrides ignored as invalid.
    pub fn overrides_rejected(&self) -> u64 {
        self.counts().overrides_rejected
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
        self.counters.on_event(event);
        if let Event::Transition {
            breaker,
            from,
            to,
            version,
            trips,
            scope,
        } = *event
        {
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resilience::Rejection;

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
    fn counting_observer_counts_each_kind_and_logs_transitions_in_order() {
        let observer = CountingObserver::new();
        observer.on_event(&transition(State::Closed, State::Open, 1, Scope::Fleet));
        observer.on_event(&transition(State::Open, State::HalfOpen, 2, Scope::Fleet));
        observer.on_event(&Event::Rejected {
            breaker: "b",
            reason: Rejection::HalfOpen,
        });
        assert_eq!(observer.rejected(), 1);
        assert_eq!(observer.count_transitions(State::Closed, State::Open, Scope::Fleet), 1);
        let versions: Vec<_> = observer.transitions().iter().map(|t| t.version).collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(observer.counts().fleet_transitions, 2);
    }
}
