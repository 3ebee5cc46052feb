//! Metric handles kept by a hot path: registered with the recorder on first use, then an event
//! costs an atomic add instead of a registry lookup (building the key, hashing it, probing the
//! recorder's map). The callback counts and times every request this way (docs/benchmarks.md §19).
//!
//! First use, not construction, picks the recorder: a binary installs its recorder at start, and
//! an owner built before that (a test's deps, say) still records into it.

use std::sync::OnceLock;
use std::time::Duration;

use super::metrics::{CALLBACK_LATENCY_MS, CALLBACK_REQUESTS, CallbackOutcome};

/// What the callback records for every request it answers.
#[derive(Debug)]
pub struct CallbackMetrics {
    requests: LabelledCounter<{ CallbackOutcome::WORDS.len() }>,
    latency: LatencyHistogram,
}

impl Default for CallbackMetrics {
    fn default() -> Self {
        Self {
            requests: LabelledCounter::new(CALLBACK_REQUESTS, "outcome", CallbackOutcome::WORDS),
            latency: LatencyHistogram::new(CALLBACK_LATENCY_MS),
        }
    }
}

impl CallbackMetrics {
    /// One request answered with `outcome`, `elapsed` after its arrival.
    pub fn answered(&self, outcome: CallbackOutcome, elapsed: Duration) {
        self.requests.count(outcome as usize);
        self.latency.record(elapsed);
    }
}

/// A counter with one label whose values are the fixed words of `values`, by index.
#[derive(Debug)]
pub struct LabelledCounter<const N: usize> {
    name: &'static str,
    label: &'static str,
    values: [&'static str; N],
    handles: [OnceLock<::metrics::Counter>; N],
}

impl<const N: usize> LabelledCounter<N> {
    /// Counter `name`, label `label`, one handle per word of `values`.
    pub fn new(name: &'static str, label: &'static str, values: [&'static str; N]) -> Self {
        Self {
            name,
            label,
            values,
            handles: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Counts one event labelled `values[index]`.
    ///
    /// # Panics
    /// When `index` is not below `N` (a caller's bug: the words are fixed at compile time).
    pub fn count(&self, index: usize) {
        let (name, label, value) = (self.name, self.label, self.values[index]);
        self.handles[index]
            .get_or_init(|| ::metrics::counter!(name, label => value))
            .increment(1);
    }
}

/// A latency histogram in milliseconds.
#[derive(Debug)]
pub struct LatencyHistogram {
    name: &'static str,
    handle: OnceLock<::metrics::Histogram>,
}

impl LatencyHistogram {
    /// Histogram `name` (a catalog latency, in ms).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            handle: OnceLock::new(),
        }
    }

    /// Records `elapsed` in milliseconds.
    pub fn record(&self, elapsed: Duration) {
        let name = self.name;
        self.handle
            .get_or_init(|| ::metrics::histogram!(name))
            .record(elapsed.as_secs_f64() * 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    #[test]
    fn counts_reach_the_recorder_in_place_at_first_use_under_their_label() {
        let counter = LabelledCounter::new("test_requests_total", "outcome", ["ok", "failed"]);
        let histogram = LatencyHistogram::new("test_latency_ms");
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        ::metrics::with_local_recorder(&recorder, || {
            counter.count(1);
            counter.count(1);
            counter.count(0);
            histogram.record(Duration::from_micros(1500));
        });
        let mut seen = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            seen.push(match value {
                DebugValue::Counter(n) => format!("{} {labels:?} {n}", key.key().name()),
                DebugValue::Histogram(values) => format!("{} {values:?}", key.key().name()),
                DebugValue::Gauge(g) => format!("{} gauge {g}", key.key().name()),
            });
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "test_latency_ms [1.5]",
                r#"test_requests_total ["outcome=failed"] 2"#,
                r#"test_requests_total ["outcome=ok"] 1"#,
            ]
        );
    }

    #[test]
    fn every_callback_outcome_is_counted_under_its_own_word() {
        let all = CallbackOutcome::ALL;
        let words: Vec<&str> = all.iter().map(|outcome| outcome.word()).collect();
        assert_eq!(words, CallbackOutcome::WORDS, "one word per variant, in order");
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let callback = CallbackMetrics::default();
        ::metrics::with_local_recorder(&recorder, || {
            for outcome in all {
                callback.answered(outcome, Duration::from_millis(3));
            }
        });
        let mut counted = Vec::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            if let DebugValue::Counter(1) = value {
                assert_eq!(key.key().name(), CALLBACK_REQUESTS);
                counted.extend(key.key().labels().map(|label| label.value().to_owned()));
            }
        }
        counted.sort();
        let mut expected: Vec<String> = CallbackOutcome::WORDS.iter().map(|w| (*w).to_owned()).collect();
        expected.sort();
        assert_eq!(counted, expected);
    }
}
