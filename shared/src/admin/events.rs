//! The latest resilience events of this instance, kept in a bounded ring for a status page.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::resilience::{Event, Observer};

/// Events kept.
const KEPT: usize = 50;

/// One event as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentEvent {
    /// When (epoch ms).
    pub at_ms: i64,
    /// What happened.
    pub text: String,
}

/// An observer remembering the last [`KEPT`] transitions, fallbacks and budget refusals.
#[derive(Debug)]
pub struct RecentEvents {
    clock: SharedClock,
    events: Mutex<VecDeque<RecentEvent>>,
}

impl RecentEvents {
    /// An empty ring judging time by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            events: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }

    /// The kept events, newest first.
    pub fn newest_first(&self) -> Vec<RecentEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}

impl Observer for RecentEvents {
    fn on_event(&self, event: &Event<'_>) {
        let text = match *event {
            Event::Transition {
                breaker,
                from,
                to,
                version,
                scope,
                ..
            } => format!("{breaker}: {from} → {to} ({}, version {version})", scope.as_str()),
            Event::BudgetExhausted { policy, scope } => format!("{policy}: retry budget spent ({})", scope.as_str()),
            Event::StoreFallback { breaker, operation, .. } => {
                format!("{breaker}: state store failed on {operation}; deciding locally")
            }
            Event::StoreResynced { breaker } => format!("{breaker}: state store back"),
            Event::OverrideRejected { policy, error } => format!("{policy}: runtime override ignored: {error}"),
            Event::Rejected { .. } | Event::Retry { .. } => return,
        };
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back(RecentEvent {
            at_ms: self.clock.now_ms(),
            text,
        });
    }
}
