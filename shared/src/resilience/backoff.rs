//! How long to wait before a retry: a pure function of the retry number, the previous delay and an RNG.
//!
//! Why jitter: retries of many callers that failed together would otherwise arrive together
//! again. `Full` spreads them over `[0, ceiling]`, `Equal` over `[ceiling/2, ceiling]`, and
//! `Decorrelated` (AWS Architecture Blog, "Exponential Backoff And Jitter") over
//! `[base, 3 × previous]`. Every delay is within `[0, max]`, whatever the inputs.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

/// How the delay ceiling grows with the retry number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackoffKind {
    /// Always `base`.
    Constant,
    /// `base × n` for the n-th retry.
    Linear,
    /// `base × 2^(n-1)` for the n-th retry.
    Exponential,
}

/// How the delay is randomized below its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Exactly the ceiling.
    None,
    /// Uniform in `[0, ceiling]`.
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped at `max` (ignores the kind's ceiling).
    Decorrelated,
}

macro_rules! stable_names {
    ($ty:ident, $what:literal, $($variant:ident => $name:literal),+) => {
        impl $ty {
            /// The stable configuration name.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!(concat!("unknown ", $what, " `{}` (expected one of: {})"), other,
                        [$($name),+].join(", "))),
                }
            }
        }
    };
}

stable_names!(BackoffKind, "backoff", Constant => "constant", Linear => "linear", Exponential => "exponential");
stable_names!(Jitter, "jitter", None => "none", Full => "full", Equal => "equal", Decorrelated => "decorrelated");

/// A backoff schedule. Plain data; the retry loop owns the RNG and the previous delay (per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// Growth of the ceiling.
    pub kind: BackoffKind,
    /// Randomization.
    pub jitter: Jitter,
    /// First delay (and the decorrelated lower bound).
    pub base: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
}

impl Backoff {
    /// A schedule; `max` below `base` simply caps every delay at `max`.
    pub const fn new(kind: BackoffKind, jitter: Jitter, base: Duration, max: Duration) -> Self {
        Self {
            kind,
            jitter,
            base,
            max,
        }
    }

    /// The ceiling for the `retry`-th retry (1-based), before jitter, at most `max`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let n = retry.max(1);
        let raw = match self.kind {
            BackoffKind::Constant => self.base,
            BackoffKind::Linear => self.base.saturating_mul(n),
            BackoffKind::Exponential => self.base.saturating_mul(2u32.saturating_pow(n - 1)),
        };
        raw.min(self.max)
    }

    /// The delay before the `retry`-th retry (1-based); `previous` is the delay used before the
    /// previous retry (zero for the first), read only by decorrelated jitter.
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, previous: Duration, rng: &mut R) -> Duration {
        let delay = match self.jitter {
            Jitter::None => self.ceiling(retry),
            Jitter::Full => uniform(rng, Duration::ZERO, self.ceiling(retry)),
            Jitter::Equal => {
                let ceiling = self.ceiling(retry);
                let half = ceiling / 2;
                uniform(rng, half, ceiling)
            }
            Jitter::Decorrelated => {
                let low = self.base.min(self.max);
                let high = previous.max(self.base).saturating_mul(3).min(self.max);
                uniform(rng, low, high.max(low))
            }
        };
        delay.min(self.max)
    }

    /// The same schedule with every delay multiplied by `factor` (the slow backoff for 429 / 45011),
    /// still capped at `max`.
    pub fn slowed(&self, factor: u32) -> Self {
        Self {
            base: self.base.saturating_mul(factor.max(1)),
            ..*self
        }
    }
}

/// Uniform in `[low, high]` at nanosecond resolution (saturating for absurd durations).
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    let low = u64::try_from(low.as_nanos()).unwrap_or(u64::MAX);
    let high = u64::try_from(high.as_nanos()).unwrap_or(u64::MAX).max(low);
    Duration::from_nanos(rng.random_range(low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceilings_grow_by_kind_and_stop_at_max() {
        let exp = Backoff::new(BackoffKind::Exponential, Jitter::None, 100 * MS, 1_000 * MS);
        let got: Vec<_> = (1..=6).map(|n| exp.ceiling(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1_000, 1_000]);
        let lin = Backoff {
            kind: BackoffKind::Linear,
            ..exp
        };
        assert_eq!(lin.ceiling(3), 300 * MS);
        let constant = Backoff {
            kind: BackoffKind::Constant,
            ..exp
        };
        assert_eq!(constant.ceiling(9), 100 * MS);
        assert_eq!(exp.ceiling(200), 1_000 * MS, "no overflow on huge retry numbers");
    }

    #[test]
    fn equal_jitter_keeps_at_least_half_the_ceiling() {
        let b = Backoff::new(BackoffKind::Constant, Jitter::Equal, 100 * MS, 1_000 * MS);
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let d = b.delay(1, Duration::ZERO, &mut rng);
            assert!((50 * MS..=100 * MS).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn decorrelated_jitter_stays_between_base_and_three_times_previous() {
        let b = Backoff::new(BackoffKind::Exponential, Jitter::Decorrelated, 100 * MS, 10_000 * MS);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut previous = Duration::ZERO;
        for retry in 1..20 {
            let d = b.delay(retry, previous, &mut rng);
            assert!(
                d >= 100 * MS && d <= previous.max(100 * MS) * 3,
                "{d:?} after {previous:?}"
            );
            previous = d;
        }
    }

    #[test]
    fn slowed_schedule_multiplies_base_but_respects_max() {
        let b = Backoff::new(BackoffKind::Exponential, Jitter::None, 100 * MS, 1_000 * MS).slowed(4);
        assert_eq!(b.ceiling(1), 400 * MS);
        assert_eq!(b.ceiling(3), 1_000 * MS);
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for kind in [BackoffKind::Constant, BackoffKind::Linear, BackoffKind::Exponential] {
            assert_eq!(kind.as_str().parse::<BackoffKind>(), Ok(kind));
        }
        for jitter in [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            assert_eq!(jitter.to_string().parse::<Jitter>(), Ok(jitter));
        }
        let err = "fibonacci".parse::<BackoffKind>().unwrap_err();
        assert!(err.contains("constant, linear, exponential"), "{err}");
    }

    fn any_kind() -> impl Strategy<Value = BackoffKind> {
        prop_oneof![
            Just(BackoffKind::Constant),
            Just(BackoffKind::Linear),
            Just(BackoffKind::Exponential)
        ]
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ]
    }

    proptest! {
        #[test]
        fn backoff_delays_always_within_zero_and_max(
            kind in any_kind(), jitter in any_jitter(),
            base_ms in 0u64..100_000, max_ms in 0u64..100_000,
            retry in 0u32..1_000, previous_ms in 0u64..u64::MAX / 2_000_000,
            seed in any::<u64>(), factor in 1u32..1_000,
        ) {
            let b = Backoff::new(kind, jitter, Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let mut rng = SmallRng::seed_from_u64(seed);
            let previous = Duration::from_millis(previous_ms);
            let d = b.delay(retry, previous, &mut rng);
            prop_assert!(d <= b.max, "{:?} > max {:?}", d, b.max);
            let slow = b.slowed(factor).delay(retry, previous, &mut rng);
            prop_assert!(slow <= b.max);
        }
    }
}
