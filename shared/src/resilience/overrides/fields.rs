//! The settings table: each setting's name, whether a runtime item may change it, and how its raw
//! value is parsed into the validating builders.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::resilience::breaker::config::BreakerConfigBuilder;
use crate::resilience::bulkhead::BulkheadConfig;
use crate::resilience::error::ConfigError;
use crate::resilience::policy_config::PolicyConfig;
use crate::resilience::retry::RetryConfigBuilder;

/// A setting's raw value, before the field's own parsing and range checks.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// An integer.
    Int(i64),
    /// A fractional number.
    Float(f64),
    /// Text (from the environment, or names like `exponential`).
    Text(String),
}

impl RawValue {
    fn as_f64(&self) -> Result<f64, String> {
        match self {
            Self::Int(n) => Ok(*n as f64),
            Self::Float(x) => Ok(*x),
            Self::Text(t) => t.trim().parse().map_err(|_| format!("expected a number, got `{t}`")),
        }
    }

    fn as_u64(&self) -> Result<u64, String> {
        match self {
            Self::Int(n) => u64::try_from(*n).map_err(|_| format!("expected a non-negative integer, got {n}")),
            Self::Float(x) => Err(format!("expected an integer, got {x}")),
            Self::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| format!("expected a non-negative integer, got `{t}`")),
        }
    }

    fn as_u32(&self) -> Result<u32, String> {
        let n = self.as_u64()?;
        u32::try_from(n).map_err(|_| format!("too large: {n}"))
    }

    fn as_ms(&self) -> Result<Duration, String> {
        self.as_u64().map(Duration::from_millis)
    }

    fn as_text(&self) -> Result<&str, String> {
        match self {
            Self::Text(t) => Ok(t.trim()),
            other => Err(format!("expected a name, got {other:?}")),
        }
    }
}

struct Builders {
    retry: RetryConfigBuilder,
    breaker: BreakerConfigBuilder,
    max_concurrent: u32,
    max_wait: Duration,
}

type Apply = fn(&mut Builders, &RawValue) -> Result<(), String>;

macro_rules! fields {
    ($($name:literal, $runtime:literal, |$b:ident, $v:ident| $body:expr;)+) => {
        const FIELDS: &[(&str, bool, Apply)] = &[
            $(($name, $runtime, |$b: &mut Builders, $v: &RawValue| -> Result<(), String> { $body; Ok(()) }),)+
        ];
    };
}

fields! {
    "max_attempts", true, |b, v| b.retry = b.retry.clone().max_attempts(v.as_u32()?);
    "base_delay_ms", true, |b, v| b.retry = b.retry.clone().base_delay(v.as_ms()?);
    "max_delay_ms", true, |b, v| b.retry = b.retry.clone().max_delay(v.as_ms()?);
    "backoff", true, |b, v| b.retry = b.retry.clone().backoff(v.as_text()?.parse()?);
    "jitter", true, |b, v| b.retry = b.retry.clone().jitter(v.as_text()?.parse()?);
    "slow_multiplier", true, |b, v| b.retry = b.retry.clone().slow_multiplier(v.as_u32()?);
    "attempt_timeout_ms", true, |b, v| {
        let limit = v.as_ms()?;
        b.retry = b.retry.clone().attempt_timeout((!limit.is_zero()).then_some(limit))
    };
    "min_attempt_ms", true, |b, v| b.retry = b.retry.clone().min_attempt(v.as_ms()?);
    "budget_percent", true, |b, v| b.retry = b.retry.clone().budget_percent(v.as_f64()?);
    "budget_floor", true, |b, v| b.retry = b.retry.clone().budget_floor(v.as_u32()?);
    "failure_rate_threshold", true, |b, v| b.breaker = b.breaker.clone().failure_rate_threshold(v.as_f64()?);
    "slow_call_rate_threshold", true, |b, v| b.breaker = b.breaker.clone().slow_call_rate_threshold(v.as_f64()?);
    "slow_call_ms", true, |b, v| b.breaker = b.breaker.clone().slow_call_duration(v.as_ms()?);
    "minimum_calls", true, |b, v| b.breaker = b.breaker.clone().minimum_calls(v.as_u32()?);
    "window_ms", false, |b, v| b.breaker = b.breaker.clone().window(v.as_ms()?);
    "buckets", false, |b, v| b.breaker = b.breaker.clone().buckets(v.as_u32()?);
    "open_ms", true, |b, v| b.breaker = b.breaker.clone().open_duration(v.as_ms()?);
    "max_open_ms", true, |b, v| b.breaker = b.breaker.clone().max_open_duration(v.as_ms()?);
    "open_multiplier", true, |b, v| b.breaker = b.breaker.clone().open_multiplier(v.as_u32()?);
    "half_open_probes", true, |b, v| b.breaker = b.breaker.clone().half_open_probes(v.as_u32()?);
    "half_open_successes", true, |b, v| b.breaker = b.breaker.clone().half_open_successes(v.as_u32()?);
    "permit_ttl_ms", true, |b, v| b.breaker = b.breaker.clone().permit_ttl(v.as_ms()?);
    "cache_ttl_ms", true, |b, v| b.breaker = b.breaker.clone().cache_ttl(v.as_ms()?);
    "store_timeout_ms", true, |b, v| b.breaker = b.breaker.clone().store_timeout(v.as_ms()?);
    "max_store_timeout_ms", true, |b, v| b.breaker = b.breaker.clone().max_store_timeout(v.as_ms()?);
    "flush_interval_ms", true, |b, v| b.breaker = b.breaker.clone().flush_interval(v.as_ms()?);
    "max_concurrent", false, |b, v| b.max_concurrent = v.as_u32()?;
    "max_wait_ms", false, |b, v| b.max_wait = v.as_ms()?;
}

fn field(name: &str) -> Option<&'static (&'static str, bool, Apply)> {
    FIELDS.iter().find(|(field, _, _)| *field == name)
}

/// Every setting name.
pub fn setting_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|(name, _, _)| *name)
}

/// Whether `name` is a setting.
pub(super) fn is_setting(name: &str) -> bool {
    field(name).is_some()
}

/// `base` with `values` applied and validated; `runtime` refuses deploy-time-only settings.
pub(super) fn apply(
    values: &BTreeMap<String, RawValue>,
    base: &PolicyConfig,
    runtime: bool,
) -> Result<PolicyConfig, ConfigError> {
    let mut b = Builders {
        retry: base.retry.to_builder(),
        breaker: base.breaker.to_builder(),
        max_concurrent: base.bulkhead.max_concurrent(),
        max_wait: base.bulkhead.max_wait(),
    };
    for (name, value) in values {
        let Some((_, runtime_ok, apply)) = field(name) else {
            return Err(ConfigError::new(name.as_str(), "unknown setting"));
        };
        if runtime && !runtime_ok {
            return Err(ConfigError::new(
                name.as_str(),
                "can only be set at deploy time (file or environment)",
            ));
        }
        apply(&mut b, value).map_err(|message| ConfigError::new(name.as_str(), message))?;
    }
    Ok(PolicyConfig {
        retry: b.retry.build()?,
        breaker: b.breaker.build()?,
        bulkhead: BulkheadConfig::try_new(b.max_concurrent, b.max_wait)?,
    })
}
