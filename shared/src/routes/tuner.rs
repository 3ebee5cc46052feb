//! The breaker tuner (a schedule, every minute): reads every breaker's fleet record, publishes the
//! fleet's view of it (state, failure rate, open for too long) as metrics for the dashboard and
//! the alarms, and — unless an operator pinned the breaker — runs the threshold controller
//! (`resilience::tuning`) on its window, writing each change as the runtime override item (every
//! instance adopts it within one cache TTL) with an audit entry and a metric.

use std::sync::Arc;

use serde_json::json;

use crate::admin::{apply_thresholds, threshold_item};
use crate::deps::TunerDeps;
use crate::resilience::metrics::state_code;
use crate::resilience::tuning::{Bounds, Change, Thresholds, TunerState, tune};
use crate::resilience::{Breaker, Overrides, State};
use crate::store::{AttrValue, Attrs, Condition, Key, StoreError};
use crate::telemetry::metrics;

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TunerReport {
    /// Breakers read.
    pub breakers: usize,
    /// Breakers skipped because an operator pinned them.
    pub pinned: usize,
    /// Changes made: (breaker, change).
    pub changes: Vec<(String, Change)>,
}

/// One run over every breaker.
///
/// # Errors
/// [`StoreError`] for the first breaker whose records could not be read or written (the rest
/// wait for the next run).
pub async fn handle(deps: &TunerDeps) -> Result<TunerReport, StoreError> {
    let pinned = deps.pins.list().await?;
    let mut report = TunerReport::default();
    for breaker in &deps.breakers {
        report.breakers += 1;
        let snapshot = breaker
            .fleet_snapshot()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        publish(deps, breaker, &snapshot);
        if pinned.iter().any(|name| name == breaker.name()) {
            report.pinned += 1;
            continue;
        }
        for change in tune_one(deps, breaker, &snapshot.window).await? {
            report.changes.push((breaker.name().to_owned(), change));
        }
    }
    tracing::info!(
        breakers = report.breakers,
        pinned = report.pinned,
        changes = report.changes.len(),
        "tuner run"
    );
    Ok(report)
}

/// The fleet's view of `breaker` as gauges.
fn publish(deps: &TunerDeps, breaker: &Arc<Breaker>, snapshot: &crate::resilience::BreakerSnapshot) {
    let name = breaker.name();
    metrics::gauge_with(
        metrics::BREAKER_FLEET_STATE,
        "breaker",
        name,
        state_code(snapshot.state),
    );
    if snapshot.window.calls > 0 {
        #[allow(clippy::cast_precision_loss)]
        let rate = snapshot.window.failures as f64 * 100.0 / snapshot.window.calls as f64;
        metrics::gauge_with(metrics::BREAKER_FAILURE_RATE, "breaker", name, rate);
    }
    let period = crate::clock::millis(breaker.config().open_duration_for(snapshot.trips.max(1)));
    let overdue = matches!(snapshot.state, State::Open | State::HalfOpen)
        && deps.clock.now_ms() > snapshot.open_until_ms.saturating_add(period);
    metrics::gauge_with(
        metrics::BREAKER_OPEN_OVERDUE,
        "breaker",
        name,
        if overdue { 1.0 } else { 0.0 },
    );
}

fn state_key(name: &str) -> Key {
    Key::new(format!("tuning#{name}"), "state")
}

async fn tune_one(
    deps: &TunerDeps,
    breaker: &Arc<Breaker>,
    window: &crate::resilience::breaker::Counts,
) -> Result<Vec<Change>, StoreError> {
    let name = breaker.name();
    let base_policy = deps.registry.config_for(name);
    let base = &base_policy.breaker;
    // The thresholds in force: deploy-time, with the runtime item applied (as instances read it).
    let item = deps.store.get(&threshold_item(name)).await?.unwrap_or_default();
    let current = Overrides::from_attrs(&item)
        .ok()
        .and_then(|overrides| overrides.apply(&base_policy, true).ok())
        .map_or_else(|| base.clone(), |config| config.breaker);
    let as_thresholds = |config: &crate::resilience::BreakerConfig| Thresholds {
        failure_rate: config.failure_rate_threshold(),
        slow_call_ms: i64::try_from(config.slow_call_duration().as_millis()).unwrap_or(i64::MAX),
    };
    let key = state_key(name);
    let stored = deps.store.get(&key).await?;
    let mut state: TunerState = stored
        .as_ref()
        .and_then(|attrs| attrs.str_attr("state"))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let (rate_low, rate_high) = deps.config.failure_rate_bounds;
    let (slow_low, slow_high) = deps.config.slow_call_bounds;
    let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let bounds = Bounds {
        failure_rate: (rate_low, rate_high),
        slow_call_ms: (millis(slow_low), millis(slow_high)),
    };
    let changes = tune(
        &mut state,
        window,
        as_thresholds(&current),
        as_thresholds(base),
        i64::from(current.minimum_calls()),
        bounds,
    );
    for change in &changes {
        let (setting, settings) = match *change {
            Change::FailureRate { to, .. } => ("failure_rate_threshold", json!({"failure_rate_threshold": to})),
            Change::SlowCall { to, .. } => ("slow_call_ms", json!({"slow_call_ms": to})),
        };
        apply_thresholds(&deps.store, name, &base_policy, &settings)
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        deps.audit.record("tuner", "tune", name, &settings.to_string()).await?;
        metrics::count_with2(
            metrics::TUNER_CHANGES,
            ("breaker", name.to_owned()),
            ("setting", setting.to_owned()),
        );
        tracing::info!(breaker = name, ?change, "tuner changed a threshold");
    }
    let mut attrs = Attrs::new();
    attrs.insert(
        "state".into(),
        AttrValue::from(serde_json::to_string(&state).unwrap_or_default()),
    );
    deps.store.put(&key, attrs, Condition::Always).await?;
    Ok(changes)
}
