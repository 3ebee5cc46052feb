//! Resilience events as metrics (the catalog in `telemetry::metrics`): every registry reports to
//! this observer besides its counters, so transitions, rejections, retries and budget refusals
//! reach CloudWatch / Prometheus whatever observer the registry was built with. Breaker state
//! gauges and probe counts are recorded by the breaker itself (`Breaker::note_state`).

use super::breaker::state::State;
use super::events::{Event, Observer};
use crate::telemetry::metrics::{self, count_with, count_with2};

/// Publishes resilience events through the `metrics` facade.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsObserver;

impl Observer for MetricsObserver {
    fn on_event(&self, event: &Event<'_>) {
        match *event {
            Event::Transition { breaker, to, .. } => {
                count_with2(
                    metrics::BREAKER_TRANSITIONS,
                    ("breaker", breaker.to_owned()),
                    ("to", to.as_str().to_owned()),
                );
                state_gauges(breaker, to);
            }
            Event::Rejected { breaker, .. } => count_with(metrics::BREAKER_REJECTIONS, "breaker", breaker.to_owned()),
            Event::Retry { policy, .. } => count_with(metrics::RETRIES, "policy", policy.to_owned()),
            Event::BudgetExhausted { policy, .. } => {
                count_with(metrics::RETRY_BUDGET_EXHAUSTED, "policy", policy.to_owned())
            }
            // Counted where they happen (label-less, for the alarms): `breaker::apply`.
            Event::StoreFallback { .. } | Event::StoreResynced { .. } | Event::OverrideRejected { .. } => {}
        }
    }
}

/// The numeric code of a state on the `wechat_breaker_state` gauge.
pub const fn state_code(state: State) -> f64 {
    match state {
        State::Closed => 0.0,
        State::Open => 1.0,
        State::HalfOpen => 2.0,
        State::ForcedOpen => 3.0,
        State::Disabled => 4.0,
    }
}

/// Sets `breaker`'s state gauges to `state`.
pub fn state_gauges(breaker: &str, state: State) {
    metrics::gauge_with(metrics::BREAKER_STATE, "breaker", breaker, state_code(state));
    let open = matches!(state, State::Open | State::ForcedOpen);
    metrics::gauge_with(metrics::BREAKER_OPEN, "breaker", breaker, if open { 1.0 } else { 0.0 });
}
