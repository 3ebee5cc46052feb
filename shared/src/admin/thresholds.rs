//! Changing a breaker's thresholds at runtime: validated against the breaker's configuration,
//! written as its runtime override item (`config#breaker` / `{name}`), which every instance reads
//! within one cache TTL. Only the settings given change; the item's others stay.

use serde_json::{Map, Value};

use crate::resilience::overrides::RawValue;
use crate::resilience::{CONFIG_PK, ConfigError, Overrides, PolicyConfig};
use crate::store::{AttrValue, Key, SharedStore, StoreError, Update};

/// Why thresholds were not changed.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    /// Not a JSON object of settings, or a setting out of range or unknown: nothing written.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConfigError> for ThresholdError {
    fn from(error: ConfigError) -> Self {
        Self::Invalid(error.to_string())
    }
}

/// The override item's key for `name`.
pub fn threshold_item(name: &str) -> Key {
    Key::new(CONFIG_PK, name)
}

/// Applies `settings` (a JSON object: `{"failure_rate_threshold": 40, "slow_call_ms": 1500}`) to
/// breaker `name` whose deploy-time configuration is `base`: checks the item as it would then be,
/// writes the given settings. Returns the settings written.
///
/// # Errors
/// [`ThresholdError::Invalid`] for a bad body or setting (nothing written), `Store` otherwise.
pub async fn apply_thresholds(
    store: &SharedStore,
    name: &str,
    base: &PolicyConfig,
    settings: &Value,
) -> Result<Map<String, Value>, ThresholdError> {
    let object = settings
        .as_object()
        .filter(|object| !object.is_empty())
        .ok_or_else(|| {
            ThresholdError::Invalid("expected a JSON object of settings, e.g. {\"failure_rate_threshold\": 40}".into())
        })?;
    let key = threshold_item(name);
    let current = store.get(&key).await?.unwrap_or_default();
    let mut merged = Overrides::from_attrs(&current)?;
    let mut update = Update::new();
    for (setting, value) in object {
        let (raw, stored) = match value {
            Value::Number(n) if n.is_i64() => {
                let whole = n.as_i64().unwrap_or_default();
                (RawValue::Int(whole), AttrValue::N(whole))
            }
            // Fractions are stored as decimal text (the store's numbers are integers).
            Value::Number(n) => (
                RawValue::Float(n.as_f64().unwrap_or_default()),
                AttrValue::from(n.to_string()),
            ),
            Value::String(text) => (RawValue::Text(text.clone()), AttrValue::from(text.as_str())),
            other => {
                return Err(ThresholdError::Invalid(format!(
                    "{setting}: expected a number or a string, got {other}"
                )));
            }
        };
        merged.set(setting, raw)?;
        update = update.set(setting.to_owned(), stored);
    }
    // Validated as the instances will read it: deploy-time base, then every runtime setting.
    merged.apply(base, true)?;
    store.update(&key, update).await?;
    Ok(object.clone())
}
