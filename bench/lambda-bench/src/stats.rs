//! Percentiles of measured durations.

use std::time::Duration;

/// The median and the 99th percentile of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    /// p50.
    pub p50: Duration,
    /// p99.
    pub p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples`; zero for no samples.
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Self {
            p50: nearest_rank(&sorted, 50),
            p99: nearest_rank(&sorted, 99),
        }
    }
}

/// The smallest sample with at least `percent` % of the samples at or below it.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_micros).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let hundred = micros((1..=100).rev());
        assert_eq!(
            Percentiles::of(&hundred),
            Percentiles {
                p50: Duration::from_micros(50),
                p99: Duration::from_micros(99)
            }
        );
        let three = micros([30, 10, 20]);
        assert_eq!(Percentiles::of(&three).p50, Duration::from_micros(20));
        assert_eq!(Percentiles::of(&three).p99, Duration::from_micros(30));
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
    }
}
