//! Thresholds that tune themselves, safely: a pure controller run once per tuning interval per
//! breaker, on that interval's window (calls, failures, the latency distribution).
//!
//! - **Failure-rate threshold** — the rule of the design this project comes from: when the
//!   failure rate is at or above the threshold for [`OVER_RUNS`] runs in a row, the threshold is
//!   lowered by 10 % (the breaker trips earlier on a dependency that keeps failing), never below
//!   the floor; after [`CALM_RUNS`] calm runs in a row (failure rate below half the threshold) it
//!   goes back up by 10 %, never above the deploy-time value nor the ceiling — the way back up.
//! - **Slow-call duration** — three times the median p99 latency of the last healthy runs (a run
//!   whose failure rate is below half the threshold), kept within its bounds, in steps of 100 ms.
//!
//! Never flapping: a change needs its streak, waits [`COOLDOWN_RUNS`] runs after the previous
//! change of the same setting, and the slow-call duration moves only when the target is more than
//! [`DEADBAND`] away. Runs with fewer calls than the breaker's `minimum_calls` decide nothing.
//! Pinned breakers are not given to the controller at all (the caller skips them).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::breaker::Counts;

/// Runs over the threshold in a row before it is lowered.
pub const OVER_RUNS: u32 = 3;
/// Calm runs in a row before a lowered threshold goes back up.
pub const CALM_RUNS: u32 = 10;
/// Runs between two changes of one setting.
pub const COOLDOWN_RUNS: u64 = 5;
/// The slow-call duration moves only when its target differs by more than this fraction.
pub const DEADBAND: f64 = 0.25;
/// Healthy runs' p99 latencies kept.
const P99_HISTORY: usize = 10;
/// Healthy runs needed before the slow-call duration is tuned.
const P99_MIN_SAMPLES: usize = 5;

/// Where the tuned values must stay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Failure-rate threshold floor and ceiling (percent).
    pub failure_rate: (f64, f64),
    /// Slow-call duration floor and ceiling (ms).
    pub slow_call_ms: (i64, i64),
}

/// A breaker's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Failure-rate threshold (percent).
    pub failure_rate: f64,
    /// Slow-call duration (ms).
    pub slow_call_ms: i64,
}

/// What the controller remembers between runs (stored per breaker).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TunerState {
    /// Runs so far.
    pub runs: u64,
    /// Runs at or over the failure-rate threshold, in a row.
    pub over_streak: u32,
    /// Calm runs, in a row.
    pub calm_streak: u32,
    /// The run of the last failure-rate change.
    pub rate_changed_at: Option<u64>,
    /// The run of the last slow-call change.
    pub slow_changed_at: Option<u64>,
    /// p99 latencies (ms) of recent healthy runs, oldest first.
    pub healthy_p99_ms: VecDeque<i64>,
}

/// One change the controller made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The failure-rate threshold moved from `from` to `to` (percent).
    FailureRate {
        /// Before.
        from: f64,
        /// After.
        to: f64,
    },
    /// The slow-call duration moved from `from` to `to` (ms).
    SlowCall {
        /// Before.
        from: i64,
        /// After.
        to: i64,
    },
}

fn cooled(changed_at: Option<u64>, run: u64) -> bool {
    changed_at.is_none_or(|at| run >= at + COOLDOWN_RUNS)
}

/// One run: `window` is the interval's counts, `current` the thresholds in force, `base` the
/// deploy-time ones, `minimum_calls` the breaker's. Updates `state`; returns the changes.
pub fn tune(
    state: &mut TunerState,
    window: &Counts,
    current: Thresholds,
    base: Thresholds,
    minimum_calls: i64,
    bounds: Bounds,
) -> Vec<Change> {
    state.runs += 1;
    let run = state.runs;
    let mut changes = Vec::new();
    if window.calls < minimum_calls.max(1) {
        return changes;
    }
    #[allow(clippy::cast_precision_loss)] // window counts are far below 2^52
    let rate = window.failures as f64 * 100.0 / window.calls as f64;
    let calm = rate < current.failure_rate / 2.0;
    if rate >= current.failure_rate {
        state.over_streak += 1;
        state.calm_streak = 0;
    } else if calm {
        state.calm_streak += 1;
        state.over_streak = 0;
    } else {
        state.over_streak = 0;
        state.calm_streak = 0;
    }
    let (floor, ceiling) = bounds.failure_rate;
    if cooled(state.rate_changed_at, run) {
        let lowered = (current.failure_rate * 0.9).max(floor);
        let raised = (current.failure_rate * 1.1).min(base.failure_rate.min(ceiling));
        let target = if state.over_streak >= OVER_RUNS {
            Some(lowered)
        } else if state.calm_streak >= CALM_RUNS && current.failure_rate < base.failure_rate.min(ceiling) {
            Some(raised)
        } else {
            None
        };
        let target = target
            .map(|t| (t * 10.0).round() / 10.0)
            .filter(|t| (t - current.failure_rate).abs() >= 0.1);
        if let Some(to) = target {
            changes.push(Change::FailureRate {
                from: current.failure_rate,
                to,
            });
            state.rate_changed_at = Some(run);
            state.over_streak = 0;
            state.calm_streak = 0;
        }
    }
    if calm && let Some(p99) = window.latency_percentile_ms(99.0) {
        state.healthy_p99_ms.push_back(p99);
        while state.healthy_p99_ms.len() > P99_HISTORY {
            state.healthy_p99_ms.pop_front();
        }
    }
    if state.healthy_p99_ms.len() >= P99_MIN_SAMPLES && cooled(state.slow_changed_at, run) {
        let mut sorted: Vec<i64> = state.healthy_p99_ms.iter().copied().collect();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let (low, high) = bounds.slow_call_ms;
        let target = ((median * 3).clamp(low, high) + 50) / 100 * 100;
        let target = target.clamp(low, high);
        #[allow(clippy::cast_precision_loss)]
        let far = (target - current.slow_call_ms).abs() as f64 > DEADBAND * current.slow_call_ms as f64;
        if far {
            changes.push(Change::SlowCall {
                from: current.slow_call_ms,
                to: target,
            });
            state.slow_changed_at = Some(run);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::breaker::window::latency_class;

    const BOUNDS: Bounds = Bounds {
        failure_rate: (20.0, 80.0),
        slow_call_ms: (500, 10_000),
    };
    const BASE: Thresholds = Thresholds {
        failure_rate: 50.0,
        slow_call_ms: 2_000,
    };

    /// A window of `calls` calls, `failures` failed, every call taking about `latency_ms`.
    fn window(calls: i64, failures: i64, latency_ms: u64) -> Counts {
        let mut counts = Counts {
            calls,
            failures,
            ..Counts::default()
        };
        counts.latency[latency_class(std::time::Duration::from_millis(latency_ms))] = calls;
        counts
    }

    /// Runs the controller over `trace`, applying its changes; returns the thresholds after each run.
    fn simulate(trace: &[Counts]) -> (Vec<Thresholds>, Vec<Change>) {
        let mut state = TunerState::default();
        let mut current = BASE;
        let mut path = Vec::new();
        let mut all = Vec::new();
        for counts in trace {
            for change in tune(&mut state, counts, current, BASE, 20, BOUNDS) {
                match change {
                    Change::FailureRate { to, .. } => current.failure_rate = to,
                    Change::SlowCall { to, .. } => current.slow_call_ms = to,
                }
                all.push(change);
            }
            path.push(current);
        }
        (path, all)
    }

    fn within_bounds(path: &[Thresholds]) -> bool {
        path.iter().all(|t| {
            (BOUNDS.failure_rate.0..=BOUNDS.failure_rate.1).contains(&t.failure_rate)
                && (BOUNDS.slow_call_ms.0..=BOUNDS.slow_call_ms.1).contains(&t.slow_call_ms)
        })
    }

    /// Direction reversals of the failure-rate threshold within `span` runs of each other.
    fn quick_reversals(path: &[Thresholds], span: usize) -> usize {
        let moves: Vec<(usize, f64)> = path
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[1].failure_rate != w[0].failure_rate)
            .map(|(i, w)| (i, (w[1].failure_rate - w[0].failure_rate).signum()))
            .collect();
        moves
            .windows(2)
            .filter(|m| m[0].1 != m[1].1 && m[1].0 - m[0].0 < span)
            .count()
    }

    #[test]
    fn a_dependency_that_keeps_failing_lowers_the_threshold_step_by_step_to_the_floor_and_stays() {
        let trace = vec![window(100, 70, 100); 200];
        let (path, changes) = simulate(&trace);
        assert!(within_bounds(&path));
        assert_eq!(path.last().unwrap().failure_rate, 20.0, "converged to the floor");
        let steps: Vec<f64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::FailureRate { to, .. } => Some(*to),
                Change::SlowCall { .. } => None,
            })
            .collect();
        assert!(steps.windows(2).all(|w| w[1] < w[0]), "monotonic: {steps:?}");
        let last_change = path.windows(2).rposition(|w| w[1] != w[0]).unwrap();
        assert!(last_change < 100, "settled well before the end (run {last_change})");
    }

    #[test]
    fn after_the_dependency_recovers_the_threshold_goes_back_up_to_its_deploy_time_value_only() {
        let mut trace = vec![window(100, 70, 100); 60];
        trace.extend(vec![window(100, 1, 100); 400]);
        let (path, _) = simulate(&trace);
        assert!(within_bounds(&path));
        assert!(path[59].failure_rate < 50.0, "lowered while failing");
        assert_eq!(
            path.last().unwrap().failure_rate,
            50.0,
            "back up to, and not above, the base"
        );
        assert_eq!(quick_reversals(&path, usize::MAX), 1, "one turn, at the recovery");
        assert_eq!(quick_reversals(&path, CALM_RUNS as usize), 0, "and not a quick one");
    }

    #[test]
    fn a_failure_rate_hovering_around_the_threshold_does_not_make_it_oscillate() {
        // 40 % / 55 % / 48 % / 60 % / … around a 50 % threshold: never three over in a row.
        let rates = [40, 55, 48, 60, 45, 52, 49, 58];
        let trace: Vec<Counts> = (0..400).map(|i| window(100, rates[i % rates.len()], 100)).collect();
        let (path, changes) = simulate(&trace);
        assert!(within_bounds(&path));
        assert!(
            changes.iter().all(|c| !matches!(c, Change::FailureRate { .. })),
            "no streak, no change: {changes:?}"
        );
    }

    #[test]
    fn noisy_alternating_failure_bursts_change_the_threshold_rarely_and_never_flip_back_quickly() {
        // Bursts of 3 failing runs, then 10 calm ones: the controller may step, but reversals
        // are always a cooldown apart.
        let mut trace = Vec::new();
        for _ in 0..30 {
            trace.extend(vec![window(100, 90, 100); 3]);
            trace.extend(vec![window(100, 2, 100); 10]);
        }
        let (path, changes) = simulate(&trace);
        assert!(within_bounds(&path));
        assert_eq!(quick_reversals(&path, COOLDOWN_RUNS as usize), 0, "{changes:?}");
        assert!(changes.len() <= trace.len() / COOLDOWN_RUNS as usize);
    }

    #[test]
    fn the_slow_call_duration_converges_to_three_times_the_healthy_p99_and_holds_in_the_dead_band() {
        // Healthy calls between 250 and 500 ms classes: p99 class bound alternates 250 / 500.
        let trace: Vec<Counts> = (0..200)
            .map(|i| window(100, 0, if i % 3 == 0 { 400 } else { 200 }))
            .collect();
        let (path, changes) = simulate(&trace);
        assert!(within_bounds(&path));
        let slow: Vec<i64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::SlowCall { to, .. } => Some(*to),
                Change::FailureRate { .. } => None,
            })
            .collect();
        assert_eq!(slow, [800], "one step to 3 × the median p99 (250 ms), then held");
        assert_eq!(path.last().unwrap().slow_call_ms, 800);
    }

    #[test]
    fn quiet_breakers_are_left_alone() {
        let trace = vec![window(5, 5, 100); 100];
        let (path, changes) = simulate(&trace);
        assert!(changes.is_empty() && path.iter().all(|t| *t == BASE));
    }
}
