//! The JSON reading of a flat callback body (mini programs configured for JSON pushes).

use serde_json::Value;

use super::{FlatFields, MessageError, duplicate};

/// Decodes a JSON object into `T`: scalars become text (`"CreateTime":1714037059` is `"1714037059"`),
/// so one all-text shape serves XML and JSON bodies alike; `null` is an absent field, an object or
/// array in a known field is refused, in an unknown one ignored.
pub(super) fn decode_json<T: FlatFields>(text: &str) -> Result<T, MessageError> {
    let object: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|err| MessageError::Malformed(err.to_string()))?;
    let mut fields = T::default();
    for (name, value) in object {
        let Some(slot) = fields.slot(&name) else {
            continue;
        };
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(MessageError::Malformed(format!("field `{name}` is not a scalar")));
            }
        };
        if slot.is_some() {
            return Err(duplicate(&name));
        }
        *slot = Some(text);
    }
    Ok(fields)
}
