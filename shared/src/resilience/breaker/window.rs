//! The sliding window, as pure bucket math over the breaker item's attributes.
//!
//! A DynamoDB update expression cannot say "reset this bucket if it is old", so buckets are
//! named by their start time: `c_<start_ms>` (calls), `f_` (failures), `s_` (slow calls), `r_`
//! (retries) and `l0_` … `l7_` (calls by latency class: ≤ 50, 100, 250, 500, 1000, 2000, 5000 ms,
//! and above — the distribution the tuner reads). An outcome write `ADD`s to the current bucket's
//! names and `REMOVE`s names that fell out of the window in the same expression; readers ignore
//! anything outside the window, and anything older than `window_from` (set when the breaker
//! closes, so old failures cannot re-trip it).

use std::collections::BTreeMap;

use super::config::BreakerConfig;
use crate::store::{AttrValue, Attrs};

/// Counter prefixes, in the order of [`Counts`]' fields (the latency classes last).
const PREFIXES: [&str; 12] = [
    "c_", "f_", "s_", "r_", "l0_", "l1_", "l2_", "l3_", "l4_", "l5_", "l6_", "l7_",
];

/// Upper bounds (ms) of the latency classes; the last class is everything above.
pub const LATENCY_BOUNDS_MS: [i64; 7] = [50, 100, 250, 500, 1_000, 2_000, 5_000];
/// Number of latency classes.
pub const LATENCY_CLASSES: usize = LATENCY_BOUNDS_MS.len() + 1;

/// Totals over (part of) a window. Retries may go negative in a bucket (a refund for a
/// reservation made in an older bucket); totals are clamped at zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Attempts that reached the dependency (retries included).
    pub calls: i64,
    /// Of which failed.
    pub failures: i64,
    /// Of which were slow.
    pub slow: i64,
    /// Retries granted or reserved.
    pub retries: i64,
    /// Calls by latency class ([`LATENCY_BOUNDS_MS`]).
    pub latency: [i64; LATENCY_CLASSES],
}

impl Counts {
    /// One call with the given failure and slowness (latency not recorded).
    pub const fn call(failed: bool, slow: bool) -> Self {
        Self {
            calls: 1,
            failures: failed as i64,
            slow: slow as i64,
            retries: 0,
            latency: [0; LATENCY_CLASSES],
        }
    }

    /// One call that took `elapsed`.
    pub fn call_took(failed: bool, slow: bool, elapsed: std::time::Duration) -> Self {
        let mut counts = Self::call(failed, slow);
        counts.latency[latency_class(elapsed)] = 1;
        counts
    }

    /// Field-wise sum.
    pub fn add(&mut self, other: Counts) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow += other.slow;
        self.retries += other.retries;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
    }

    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// A successful, fast call wanting no retry (what may be coalesced).
    pub fn is_plain_success(&self) -> bool {
        self.calls == 1 && self.failures == 0 && self.slow == 0 && self.retries == 0
    }

    /// The latency (ms) below which `percentile` % of the calls with a recorded latency fall:
    /// the upper bound of that class (twice the last bound for the open class). `None` without
    /// recorded latencies.
    pub fn latency_percentile_ms(&self, percentile: f64) -> Option<i64> {
        let total: i64 = self.latency.iter().sum();
        if total <= 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let rank = ((percentile / 100.0) * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (class, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    LATENCY_BOUNDS_MS
                        .get(class)
                        .copied()
                        .unwrap_or(LATENCY_BOUNDS_MS[6] * 2),
                );
            }
        }
        Some(LATENCY_BOUNDS_MS[6] * 2)
    }

    pub(crate) fn by_prefix(&self) -> [(&'static str, i64); 12] {
        let mut pairs = [("", 0); 12];
        let fixed = [self.calls, self.failures, self.slow, self.retries];
        for (index, pair) in pairs.iter_mut().enumerate() {
            let value = if index < 4 {
                fixed[index]
            } else {
                self.latency[index - 4]
            };
            *pair = (PREFIXES[index], value);
        }
        pairs
    }

    fn slot(&mut self, prefix_index: usize) -> &mut i64 {
        match prefix_index {
            0 => &mut self.calls,
            1 => &mut self.failures,
            2 => &mut self.slow,
            3 => &mut self.retries,
            class => &mut self.latency[(class - 4).min(LATENCY_CLASSES - 1)],
        }
    }
}

/// The latency class of a call that took `elapsed`.
pub fn latency_class(elapsed: std::time::Duration) -> usize {
    let ms = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_CLASSES - 1)
}

/// Why the breaker trips or not, judged on one window's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fewer calls than `minimum_calls`: rates are not judged yet.
    BelowMinimumCalls,
    /// Both rates are below their thresholds.
    BelowThresholds,
    /// The failure rate reached its threshold.
    FailureRateAbove,
    /// The slow-call rate reached its threshold.
    SlowCallRateAbove,
}

impl Verdict {
    /// Whether this verdict trips a closed breaker.
    pub const fn trips(self) -> bool {
        matches!(self, Self::FailureRateAbove | Self::SlowCallRateAbove)
    }
}

/// Judges `counts`: trip when calls ≥ minimum and a rate ≥ its threshold (boundaries trip).
pub fn verdict(counts: Counts, config: &BreakerConfig) -> Verdict {
    if counts.calls < i64::from(config.minimum_calls) || counts.calls <= 0 {
        return Verdict::BelowMinimumCalls;
    }
    let calls = counts.calls as f64;
    if counts.failures as f64 * 100.0 >= config.failure_rate_threshold * calls {
        Verdict::FailureRateAbove
    } else if counts.slow as f64 * 100.0 >= config.slow_call_rate_threshold * calls {
        Verdict::SlowCallRateAbove
    } else {
        Verdict::BelowThresholds
    }
}

/// Start (epoch ms) of the bucket containing `now_ms`.
pub fn bucket_start(now_ms: i64, config: &BreakerConfig) -> i64 {
    let size = config.bucket_ms();
    now_ms.div_euclid(size) * size
}

/// Start of the oldest bucket still inside the window at `now_ms`.
pub fn window_start(now_ms: i64, config: &BreakerConfig) -> i64 {
    bucket_start(now_ms, config) - (i64::from(config.buckets) - 1) * config.bucket_ms()
}

/// The attribute holding counter `prefix` of the bucket starting at `start`.
pub(crate) fn attr_name(prefix: &str, start: i64) -> String {
    format!("{prefix}{start}")
}

/// `(prefix index, bucket start)` of a bucket attribute name, or `None` for other attributes.
fn parse_attr(name: &str) -> Option<(usize, i64)> {
    let index = PREFIXES.iter().position(|p| name.starts_with(p))?;
    name[PREFIXES[index].len()..].parse().ok().map(|start| (index, start))
}

/// Per-bucket counts parsed from an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    buckets: BTreeMap<i64, Counts>,
}

impl Window {
    /// Every bucket attribute of `attrs`.
    pub fn from_attrs(attrs: &Attrs) -> Self {
        let mut buckets: BTreeMap<i64, Counts> = BTreeMap::new();
        for (name, value) in attrs {
            if let (Some((index, start)), AttrValue::N(n)) = (parse_attr(name), value) {
                *buckets.entry(start).or_default().slot(index) += *n;
            }
        }
        Self { buckets }
    }

    /// Adds `counts` to the bucket starting at `start`.
    pub fn add(&mut self, start: i64, counts: Counts) {
        self.buckets.entry(start).or_default().add(counts);
    }

    /// Totals over buckets inside the window at `now_ms` and not older than `window_from`'s bucket.
    pub fn totals(&self, now_ms: i64, window_from: i64, config: &BreakerConfig) -> Counts {
        let from = window_start(now_ms, config).max(bucket_start(window_from, config));
        let mut total = Counts::default();
        for counts in self.buckets.range(from..).map(|(_, c)| *c) {
            total.add(counts);
        }
        total.retries = total.retries.max(0);
        total
    }

    /// Names of bucket attributes that fell out of the window at `now_ms` (to `REMOVE`).
    pub fn stale_names(&self, now_ms: i64, config: &BreakerConfig) -> Vec<String> {
        let start = window_start(now_ms, config);
        self.buckets
            .range(..start)
            .flat_map(|(bucket, counts)| {
                counts
                    .by_prefix()
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(move |(p, _)| attr_name(p, *bucket))
            })
            .collect()
    }

    /// Names of every non-zero bucket attribute (to `REMOVE` when the window restarts).
    pub fn names(&self) -> Vec<String> {
        self.buckets
            .iter()
            .flat_map(|(start, counts)| {
                counts
                    .by_prefix()
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(move |(p, _)| attr_name(p, *start))
            })
            .collect()
    }

    /// The buckets, by start time.
    pub fn buckets(&self) -> &BTreeMap<i64, Counts> {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(minimum: u32, failure: f64, slow: f64) -> BreakerConfig {
        BreakerConfig::builder()
            .minimum_calls(minimum)
            .failure_rate_threshold(failure)
            .slow_call_rate_threshold(slow)
            .build()
            .unwrap()
    }

    fn counts(calls: i64, failures: i64, slow: i64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
            retries: 0,
            ..Counts::default()
        }
    }

    #[test]
    fn verdict_waits_for_minimum_calls_then_trips_at_the_threshold_boundary() {
        let c = config(10, 50.0, 100.0);
        assert_eq!(verdict(counts(9, 9, 0), &c), Verdict::BelowMinimumCalls);
        assert_eq!(verdict(counts(10, 4, 0), &c), Verdict::BelowThresholds);
        assert_eq!(
            verdict(counts(10, 5, 0), &c),
            Verdict::FailureRateAbove,
            "exactly 50 % trips"
        );
        assert!(verdict(counts(10, 5, 0), &c).trips());
    }

    #[test]
    fn verdict_trips_on_slow_calls_alone() {
        let c = config(4, 50.0, 75.0);
        assert_eq!(verdict(counts(4, 0, 2), &c), Verdict::BelowThresholds);
        assert_eq!(verdict(counts(4, 0, 3), &c), Verdict::SlowCallRateAbove);
        assert_eq!(
            verdict(counts(4, 2, 3), &c),
            Verdict::FailureRateAbove,
            "failure rate is judged first"
        );
    }

    #[test]
    fn totals_ignore_buckets_outside_the_window_and_before_window_from() {
        let c = config(1, 50.0, 100.0); // 10 buckets of 1 s
        let mut attrs = Attrs::new();
        for (name, n) in [
            ("c_0", 5),
            ("f_0", 5),
            ("c_9000", 2),
            ("f_9000", 1),
            ("c_10000", 3),
            ("r_10000", 1),
        ] {
            attrs.insert(name.into(), AttrValue::N(n));
        }
        attrs.insert("state".into(), AttrValue::S("closed".into()));
        let window = Window::from_attrs(&attrs);
        assert_eq!(
            window.totals(10_500, 0, &c),
            Counts {
                calls: 5,
                failures: 1,
                slow: 0,
                retries: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            window.totals(9_999, 0, &c),
            Counts {
                calls: 10,
                failures: 6,
                slow: 0,
                retries: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            window.totals(10_500, 10_200, &c),
            Counts {
                calls: 3,
                failures: 0,
                slow: 0,
                retries: 1,
                ..Counts::default()
            }
        );
        assert_eq!(window.stale_names(10_500, &c), ["c_0", "f_0"]);
    }

    #[test]
    fn bucket_math_rolls_over_on_bucket_boundaries() {
        let c = config(1, 50.0, 100.0);
        assert_eq!(bucket_start(1_999, &c), 1_000);
        assert_eq!(bucket_start(2_000, &c), 2_000);
        assert_eq!(window_start(19_999, &c), 10_000);
        assert_eq!(window_start(20_000, &c), 11_000);
    }

    #[test]
    fn negative_retry_refunds_never_make_totals_negative() {
        let c = config(1, 50.0, 100.0);
        let mut window = Window::default();
        window.add(
            1_000,
            Counts {
                retries: -1,
                ..Counts::call(false, false)
            },
        );
        assert_eq!(window.totals(1_000, 0, &c).retries, 0);
    }

    #[test]
    fn latency_classes_round_trip_through_the_item_and_give_percentiles() {
        let c = config(1, 50.0, 100.0);
        let mut window = Window::default();
        for ms in [10, 20, 30, 40, 60, 70, 80, 90, 95, 4_000] {
            window.add(
                1_000,
                Counts::call_took(false, false, std::time::Duration::from_millis(ms)),
            );
        }
        let mut attrs = Attrs::new();
        for (start, counts) in window.buckets() {
            for (prefix, n) in counts.by_prefix() {
                if n != 0 {
                    attrs.insert(attr_name(prefix, *start).into(), AttrValue::N(n));
                }
            }
        }
        assert!(attrs.contains_key("l0_1000") && attrs.contains_key("l6_1000"));
        let totals = Window::from_attrs(&attrs).totals(1_000, 0, &c);
        assert_eq!(totals.calls, 10);
        assert_eq!(totals.latency_percentile_ms(50.0), Some(100), "half are at most 100 ms");
        assert_eq!(totals.latency_percentile_ms(90.0), Some(100));
        assert_eq!(
            totals.latency_percentile_ms(99.0),
            Some(5_000),
            "the slowest is within 5 s"
        );
        assert_eq!(Counts::default().latency_percentile_ms(99.0), None);
        assert_eq!(latency_class(std::time::Duration::from_secs(60)), LATENCY_CLASSES - 1);
    }
}
