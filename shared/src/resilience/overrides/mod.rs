//! Configuration overrides: one table of settings, read from a JSON file, the environment, or a
//! `config#breaker` / `{name}` store item, applied on top of the defaults through the validating
//! builders (so a bad value fails with the setting's name).
//!
//! Precedence: code defaults < named configs in code < JSON file < environment < runtime item.
//! JSON: `{"default": {"max_attempts": 2}, "wechat-api": {"failure_rate_threshold": 40}}`.
//! Environment: `RESILIENCE__{NAME}__{SETTING}`, e.g. `RESILIENCE__WECHAT_API__MAX_ATTEMPTS=2`
//! (names compare case-insensitively with `-` and `.` read as `_`; `DEFAULT` applies to all).
//! The window shape and the bulkhead (`window_ms`, `buckets`, `max_concurrent`, `max_wait_ms`) are
//! deploy-time only: instances with different bucket sizes would misread each other's buckets.

use std::collections::BTreeMap;
use std::time::Duration;

use super::breaker::BreakerConfigBuilder;
use super::bulkhead::BulkheadConfig;
use super::error::ConfigError;
use super::policy::PolicyConfig;
use super::retry::RetryConfigBuilder;
use crate::store::{AttrValue, Attrs, EXPIRES_AT};

/// The name whose overrides apply to every policy and breaker.
pub const DEFAULT_NAME: &str = "default";
/// The environment prefix.
pub const ENV_PREFIX: &str = "RESILIENCE__";

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

/// Settings for one name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    values: BTreeMap<String, RawValue>,
}

impl Overrides {
    /// Sets `setting` (later sets win).
    ///
    /// # Errors
    /// [`ConfigError`] for a setting name that does not exist.
    pub fn set(&mut self, setting: &str, value: RawValue) -> Result<(), ConfigError> {
        if field(setting).is_none() {
            return Err(ConfigError::new(setting, "unknown setting"));
        }
        self.values.insert(setting.to_owned(), value);
        Ok(())
    }

    /// The settings of a `config#breaker` / `{name}` item (numbers and strings; keys, TTL ignored).
    ///
    /// # Errors
    /// [`ConfigError`] for an unknown attribute.
    pub fn from_attrs(attrs: &Attrs) -> Result<Self, ConfigError> {
        let mut overrides = Self::default();
        for (name, value) in attrs
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "pk" | "sk" | EXPIRES_AT))
        {
            let raw = match value {
                AttrValue::N(n) => RawValue::Int(*n),
                AttrValue::S(s) => RawValue::Text(s.clone()),
            };
            overrides.set(name, raw)?;
        }
        Ok(overrides)
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `later`'s settings on top of these.
    pub fn merged(mut self, later: &Overrides) -> Self {
        self.values
            .extend(later.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// `base` with these settings applied and validated. `runtime` refuses deploy-time-only settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn apply(&self, base: &PolicyConfig, runtime: bool) -> Result<PolicyConfig, ConfigError> {
        let mut b = Builders {
            retry: base.retry.to_builder(),
            breaker: base.breaker.to_builder(),
            max_concurrent: base.bulkhead.max_concurrent(),
            max_wait: base.bulkhead.max_wait(),
        };
        for (name, value) in &self.values {
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
}

/// Overrides by name, from one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverrideSet {
    by_name: BTreeMap<String, Overrides>,
}

/// The form names are compared in: lower case, anything but letters and digits as `_`.
pub fn normalize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl OverrideSet {
    /// Parses the JSON form: an object of names, each an object of settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad name or setting.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let root: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::new("resilience.json", e.to_string()))?;
        let names = root
            .as_object()
            .ok_or_else(|| ConfigError::new("resilience.json", "expected an object of names"))?;
        let mut set = Self::default();
        for (name, settings) in names {
            let settings = settings
                .as_object()
                .ok_or_else(|| ConfigError::new(name.as_str(), "expected an object of settings"))?;
            for (setting, value) in settings {
                let raw = match value {
                    serde_json::Value::Number(n) if n.is_i64() => RawValue::Int(n.as_i64().unwrap_or_default()),
                    serde_json::Value::Number(n) => RawValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                    serde_json::Value::String(s) => RawValue::Text(s.clone()),
                    other => {
                        return Err(ConfigError::new(
                            format!("{name}.{setting}"),
                            format!("unsupported value {other}"),
                        ));
                    }
                };
                set.insert(name, setting, raw)?;
            }
        }
        Ok(set)
    }

    /// Reads and parses a JSON file (see [`from_json`](Self::from_json)).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file when it cannot be read, or the bad name or setting.
    pub fn from_json_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
        Self::from_json(&text)
    }

    /// Reads `RESILIENCE__{NAME}__{SETTING}` variables from `vars` (pass `std::env::vars()`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable whose setting is unknown.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut set = Self::default();
        for (key, value) in vars {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((name, setting)) = rest.rsplit_once("__") else {
                return Err(ConfigError::new(key.as_str(), "expected RESILIENCE__{NAME}__{SETTING}"));
            };
            set.insert(name, &setting.to_ascii_lowercase(), RawValue::Text(value))
                .map_err(|e| ConfigError::new(key.as_str(), e.message))?;
        }
        Ok(set)
    }

    fn insert(&mut self, name: &str, setting: &str, value: RawValue) -> Result<(), ConfigError> {
        self.by_name
            .entry(normalize(name))
            .or_default()
            .set(setting, value)
            .map_err(|e| e.in_scope(name))
    }

    /// `later` on top of this set.
    pub fn merged(mut self, later: OverrideSet) -> Self {
        for (name, overrides) in later.by_name {
            let current = self.by_name.remove(&name).unwrap_or_default();
            self.by_name.insert(name, current.merged(&overrides));
        }
        self
    }

    /// The settings for `name`: the `default` ones, then its own.
    pub fn for_name(&self, name: &str) -> Overrides {
        let default = self.by_name.get(DEFAULT_NAME).cloned().unwrap_or_default();
        match self.by_name.get(&normalize(name)) {
            Some(own) if normalize(name) != DEFAULT_NAME => default.merged(own),
            _ => default,
        }
    }

    /// Names with their own settings (normalized, `default` excluded).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .keys()
            .map(String::as_str)
            .filter(|name| *name != DEFAULT_NAME)
    }
}

#[cfg(test)]
#[path = "overrides_tests.rs"]
mod tests;
