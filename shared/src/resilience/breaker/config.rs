//! Breaker configuration: immutable, built by a validating builder with documented defaults.
//!
//! Field names in errors are the configuration keys (`failure_rate_threshold`, `open_ms`, ...)
//! used by the JSON file, the environment and the `config#breaker` store item.

use std::time::Duration;

use crate::resilience::error::ConfigError;

/// Default failure rate (percent) at or above which the breaker trips.
pub const DEFAULT_FAILURE_RATE_THRESHOLD: f64 = 50.0;
/// Default slow-call rate (percent) at or above which the breaker trips (100 = all calls slow).
pub const DEFAULT_SLOW_CALL_RATE_THRESHOLD: f64 = 100.0;
/// Default duration above which a call counts as slow.
pub const DEFAULT_SLOW_CALL_DURATION: Duration = Duration::from_secs(2);
/// Default minimum calls in the window before the rates are judged.
pub const DEFAULT_MINIMUM_CALLS: u32 = 20;
/// Default sliding window length.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Default number of buckets in the window.
pub const DEFAULT_BUCKETS: u32 = 10;
/// Default open period after the first trip.
pub const DEFAULT_OPEN_DURATION: Duration = Duration::from_secs(10);
/// Default cap on the open period after consecutive trips.
pub const DEFAULT_MAX_OPEN_DURATION: Duration = Duration::from_secs(120);
/// Default growth factor of the open period per consecutive trip.
pub const DEFAULT_OPEN_MULTIPLIER: u32 = 2;
/// Default probe permits per half-open round, fleet-wide.
pub const DEFAULT_HALF_OPEN_PROBES: u32 = 3;
/// Default successful probes needed to close.
pub const DEFAULT_HALF_OPEN_SUCCESSES: u32 = 2;
/// Default lifetime of a half-open round's permits.
pub const DEFAULT_PERMIT_TTL: Duration = Duration::from_secs(10);
/// Default time an instance trusts its cached copy of the fleet state: an operator's force or a
/// runtime threshold reaches every instance within it (at most one read per active instance per
/// TTL; busy instances learn the state from their own writes sooner).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_millis(500);
/// Default time limit of one store operation.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(100);
/// Default longest wait for a slow store: the store timeout adapts to the latency an instance
/// measures (three times its typical answer) between `store_timeout` and this, and the store
/// operations that hand out half-open probe permits always wait this long — a slow store must
/// not turn the fleet's N probes into N per instance.
pub const DEFAULT_MAX_STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// Probe permits an instance gives itself per round while it decides on local state.
pub const LOCAL_PROBES: i64 = 1;
/// Default longest delay before fast successes are written to the fleet window.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Validated breaker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Duration,
    pub(crate) minimum_calls: u32,
    pub(crate) window: Duration,
    pub(crate) buckets: u32,
    pub(crate) open_duration: Duration,
    pub(crate) max_open_duration: Duration,
    pub(crate) open_multiplier: u32,
    pub(crate) half_open_probes: u32,
    pub(crate) half_open_successes: u32,
    pub(crate) permit_ttl: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) max_store_timeout: Duration,
    pub(crate) flush_interval: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: DEFAULT_FAILURE_RATE_THRESHOLD,
            slow_call_rate_threshold: DEFAULT_SLOW_CALL_RATE_THRESHOLD,
            slow_call_duration: DEFAULT_SLOW_CALL_DURATION,
            minimum_calls: DEFAULT_MINIMUM_CALLS,
            window: DEFAULT_WINDOW,
            buckets: DEFAULT_BUCKETS,
            open_duration: DEFAULT_OPEN_DURATION,
            max_open_duration: DEFAULT_MAX_OPEN_DURATION,
            open_multiplier: DEFAULT_OPEN_MULTIPLIER,
            half_open_probes: DEFAULT_HALF_OPEN_PROBES,
            half_open_successes: DEFAULT_HALF_OPEN_SUCCESSES,
            permit_ttl: DEFAULT_PERMIT_TTL,
            cache_ttl: DEFAULT_CACHE_TTL,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            max_store_timeout: DEFAULT_MAX_STORE_TIMEOUT,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),+ $(,)?) => {
        impl BreakerConfigBuilder {
            $($(#[$doc])* pub fn $name(mut self, value: $ty) -> Self { self.0.$name = value; self })+
        }
        impl BreakerConfig {
            $($(#[$doc])* pub fn $name(&self) -> $ty { self.$name })+
        }
    };
}

/// Builder for [`BreakerConfig`]; starts from the defaults, validates in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct BreakerConfigBuilder(BreakerConfig);

setters! {
    /// Failure rate in percent, (0, 100].
    failure_rate_threshold: f64,
    /// Slow-call rate in percent, (0, 100].
    slow_call_rate_threshold: f64,
    /// A call slower than this is slow (1 ms – 10 min).
    slow_call_duration: Duration,
    /// Calls in the window before rates are judged (1 – 1 000 000).
    minimum_calls: u32,
    /// Sliding window length (1 s – 1 h, a whole number of milliseconds per bucket, buckets ≥ 100 ms).
    window: Duration,
    /// Buckets per window (1 – 60).
    buckets: u32,
    /// Open period after the first trip (100 ms – 1 h).
    open_duration: Duration,
    /// Cap on the open period after consecutive trips (≥ `open_duration`, ≤ 24 h).
    max_open_duration: Duration,
    /// Growth of the open period per consecutive trip (1 – 16).
    open_multiplier: u32,
    /// Probe permits per half-open round, fleet-wide (1 – 1000).
    half_open_probes: u32,
    /// Successful probes that close the breaker (1 – `half_open_probes`).
    half_open_successes: u32,
    /// Lifetime of a round's probe permits (100 ms – 1 h); longer than a probe call may take.
    permit_ttl: Duration,
    /// How long an instance trusts its cached fleet state (1 ms – 60 s).
    cache_ttl: Duration,
    /// Time limit of one store operation (1 ms – 10 s).
    store_timeout: Duration,
    /// Longest wait for a slow store (1 ms – 10 s; never less than `store_timeout`): the adaptive
    /// store timeout's ceiling, and the wait of the operations that hand out probe permits.
    max_store_timeout: Duration,
    /// Longest delay before fast successes are written (0 = write every call; ≤ `cache_ttl`).
    flush_interval: Duration,
}

fn within<T: PartialOrd + std::fmt::Display>(field: &str, value: T, low: T, high: T) -> Result<(), ConfigError> {
    if value >= low && value <= high {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be between {low} and {high}, got {value}"),
        ))
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

impl BreakerConfigBuilder {
    /// Validates every field.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first field that breaks its documented range.
    pub fn build(self) -> Result<BreakerConfig, ConfigError> {
        let c = self.0;
        let rate = |field: &str, v: f64| {
            if v > 0.0 && v <= 100.0 {
                Ok(())
            } else {
                Err(ConfigError::new(field, format!("must be in (0, 100], got {v}")))
            }
        };
        rate("failure_rate_threshold", c.failure_rate_threshold)?;
        rate("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
        within("slow_call_ms", ms(c.slow_call_duration), 1, 600_000)?;
        within("minimum_calls", c.minimum_calls, 1, 1_000_000)?;
        within("window_ms", ms(c.window), 1_000, 3_600_000)?;
        within("buckets", c.buckets, 1, 60)?;
        if !ms(c.window).is_multiple_of(u128::from(c.buckets)) || ms(c.window) / u128::from(c.buckets) < 100 {
            return Err(ConfigError::new(
                "buckets",
                format!(
                    "window_ms {} must split into whole buckets of at least 100 ms",
                    ms(c.window)
                ),
            ));
        }
        within("open_ms", ms(c.open_duration), 100, 3_600_000)?;
        within("max_open_ms", ms(c.max_open_duration), ms(c.open_duration), 86_400_000)?;
        within("open_multiplier", c.open_multiplier, 1, 16)?;
        within("half_open_probes", c.half_open_probes, 1, 1_000)?;
        within("half_open_successes", c.half_open_successes, 1, c.half_open_probes)?;
        within("permit_ttl_ms", ms(c.permit_ttl), 100, 3_600_000)?;
        within("cache_ttl_ms", ms(c.cache_ttl), 1, 60_000)?;
        within("store_timeout_ms", ms(c.store_timeout), 1, 10_000)?;
        within("max_store_timeout_ms", ms(c.max_store_timeout), 1, 10_000)?;
        within("flush_interval_ms", ms(c.flush_interval), 0, ms(c.cache_ttl))?;
        Ok(c)
    }
}

impl BreakerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder::default()
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> BreakerConfigBuilder {
        BreakerConfigBuilder(self.clone())
    }

    /// Bucket length in milliseconds.
    pub fn bucket_ms(&self) -> i64 {
        i64::try_from(ms(self.window) / u128::from(self.buckets.max(1)))
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// The open period after `trips` consecutive trips (1 = first): `open × multiplier^(trips-1)`,
    /// at most `max_open_duration`.
    pub fn open_duration_for(&self, trips: u32) -> Duration {
        let factor = self.open_multiplier.saturating_pow(trips.saturating_sub(1));
        self.open_duration.saturating_mul(factor).min(self.max_open_duration)
    }

    /// Whether a call that took `elapsed` counts as slow.
    pub fn is_slow(&self, elapsed: Duration) -> bool {
        elapsed >= self.slow_call_duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_and_bucket_the_window() {
        let config = BreakerConfig::builder().build().unwrap();
        assert_eq!(config.bucket_ms(), 1_000);
        assert_eq!(config.minimum_calls(), 20);
    }

    #[test]
    fn open_duration_grows_exponentially_and_is_capped() {
        let config = BreakerConfig::builder()
            .open_duration(Duration::from_secs(10))
            .max_open_duration(Duration::from_secs(60))
            .build()
            .unwrap();
        let got: Vec<_> = (1..=5).map(|t| config.open_duration_for(t).as_secs()).collect();
        assert_eq!(got, [10, 20, 40, 60, 60]);
        assert_eq!(config.open_duration_for(500), Duration::from_secs(60), "no overflow");
    }

    #[test]
    fn builder_errors_name_the_field() {
        let field = |b: BreakerConfigBuilder| b.build().unwrap_err().field;
        assert_eq!(
            field(BreakerConfig::builder().failure_rate_threshold(0.0)),
            "failure_rate_threshold"
        );
        assert_eq!(
            field(BreakerConfig::builder().slow_call_rate_threshold(101.0)),
            "slow_call_rate_threshold"
        );
        assert_eq!(field(BreakerConfig::builder().minimum_calls(0)), "minimum_calls");
        assert_eq!(
            field(BreakerConfig::builder().buckets(7)),
            "buckets",
            "10 s does not split into 7 buckets"
        );
        assert_eq!(
            field(BreakerConfig::builder().half_open_successes(4)),
            "half_open_successes"
        );
        assert_eq!(
            field(BreakerConfig::builder().max_open_duration(Duration::from_secs(1))),
            "max_open_ms"
        );
        assert_eq!(
            field(BreakerConfig::builder().flush_interval(Duration::from_secs(2))),
            "flush_interval_ms"
        );
        let err = BreakerConfig::builder().open_multiplier(17).build().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid resilience setting `open_multiplier`: must be between 1 and 16, got 17"
        );
    }

    #[test]
    fn slow_is_at_or_above_the_configured_duration() {
        let config = BreakerConfig::builder()
            .slow_call_duration(Duration::from_millis(500))
            .build()
            .unwrap();
        assert!(!config.is_slow(Duration::from_millis(499)));
        assert!(config.is_slow(Duration::from_millis(500)));
    }
}
