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
//!
//! Store items (`pk = config#breaker`, `sk =` the policy or breaker name, or `default`): one
//! attribute per setting. Runtime items reach every policy and every breaker of a registry,
//! including breakers taken with `Registry::breaker(name)`, within one refresh interval.
//! Value encoding — the state store's numbers are 64-bit integers (`AttrValue::N` is an `i64`):
//! - whole values as numbers: `minimum_calls = N 20`, `open_ms = N 5000`;
//! - **fractional values as decimal strings**: `failure_rate_threshold = S "37.5"` (also
//!   `slow_call_rate_threshold`, `budget_percent`): `.` as the decimal point, no `%`, no unit;
//!   any setting also accepts its value as a string (`S "40"`), and names (`backoff`, `jitter`)
//!   are strings;
//! - never a fractional number (`N 37.5`): the DynamoDB codec refuses the whole item as corrupt,
//!   so the `config#breaker` read fails (a `StoreFallback` event, operation `config`) and every
//!   runtime override stays as it was until the item is fixed.
//!
//! An item with an unknown setting, a bad value or a deploy-time-only setting is ignored as a
//! whole (an `OverrideRejected` event); the name keeps its deploy-time configuration.

mod fields;

use std::collections::BTreeMap;

pub use self::fields::{RawValue, setting_names};
use super::error::ConfigError;
use super::policy_config::PolicyConfig;
use crate::store::{AttrValue, Attrs, EXPIRES_AT};

/// The name whose overrides apply to every policy and breaker.
pub const DEFAULT_NAME: &str = "default";
/// The environment prefix.
pub const ENV_PREFIX: &str = "RESILIENCE__";

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
        if !fields::is_setting(setting) {
            return Err(ConfigError::new(setting, "unknown setting"));
        }
        self.values.insert(setting.to_owned(), value);
        Ok(())
    }

    /// The settings of a `config#breaker` / `{name}` item: integer numbers, and strings for
    /// fractional values and names (see the module docs); keys and TTL are ignored.
    ///
    /// # Errors
    /// [`ConfigError`] for an unknown attribute.
    pub fn from_attrs(attrs: &Attrs) -> Result<Self, ConfigError> {
        let mut overrides = Self::default();
        for (name, value) in attrs
            .iter()
            .filter(|(name, _)| !matches!(name.as_ref(), "pk" | "sk" | EXPIRES_AT))
        {
            let raw = match value {
                AttrValue::N(n) => RawValue::Int(*n),
                AttrValue::S(s) => RawValue::Text(s.to_string()),
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
        fields::apply(&self.values, base, runtime)
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

    /// The `RESILIENCE__{NAME}__{SETTING}` variables among `vars` (name, value pairs, as the
    /// configuration module reads them).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable whose setting is unknown.
    pub fn from_variables(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
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
mod tests;
