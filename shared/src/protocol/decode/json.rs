//! The JSON reading of a flat callback body (mini programs configured for JSON pushes).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{FlatFields, MessageError};

/// Decodes a JSON object into `T`: scalars become text (`"CreateTime":1714037059` is `"1714037059"`),
/// so one all-text shape serves XML and JSON bodies alike; `null` is an absent field, an object or
/// array in a known field is refused, in an unknown one ignored. A known field named twice — the
/// same key again, or both spellings of an alias — is refused, as in XML: read through a map,
/// `serde_json` would keep the last of two equal keys without a word.
pub(super) fn decode_json<T: FlatFields>(text: &str) -> Result<T, MessageError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fields = deserializer
        .deserialize_map(FieldsVisitor(PhantomData))
        .and_then(|fields| deserializer.end().map(|()| fields))
        .map_err(|err| MessageError::Malformed(err.to_string()))?;
    Ok(fields)
}

/// Fills a `T` from one JSON object, entry by entry.
struct FieldsVisitor<T>(PhantomData<T>);

impl<'de, T: FlatFields> Visitor<'de> for FieldsVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object of message fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut fields = T::default();
        // The slots named so far, by address: a `null` leaves its slot empty, so the slot alone
        // cannot tell that `{"Content":null,"Content":"x"}` names the field twice, and an alias
        // names the same slot under another key. A push has a dozen fields.
        let mut named: Vec<*const Option<String>> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let Some(slot) = fields.slot(&name) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let id: *const Option<String> = &raw const *slot;
            if named.contains(&id) {
                return Err(A::Error::custom(format_args!("duplicate field `{name}`")));
            }
            named.push(id);
            *slot = match map.next_value::<Value>()? {
                Value::Null => None,
                Value::String(text) => Some(text),
                Value::Number(number) => Some(number.to_string()),
                Value::Bool(flag) => Some(flag.to_string()),
                Value::Array(_) | Value::Object(_) => {
                    return Err(A::Error::custom(format_args!("field `{name}` is not a scalar")));
                }
            };
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A shape of two fields, `Content` also spelt `content`.
    #[derive(Debug, Default, PartialEq)]
    struct Two {
        content: Option<String>,
        msg_id: Option<String>,
    }

    impl FlatFields for Two {
        fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
            match name {
                "Content" | "content" => Some(&mut self.content),
                "MsgId" => Some(&mut self.msg_id),
                _ => None,
            }
        }
    }

    fn decode(text: &str) -> Result<Two, MessageError> {
        decode_json(text)
    }

    fn refused_with(text: &str, why: &str) {
        match decode(text) {
            Err(MessageError::Malformed(message)) => assert!(message.contains(why), "{text}: {message}"),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn scalars_become_text_and_unknown_fields_are_ignored() {
        assert_eq!(
            decode(r#"{"Content":"hi","MsgId":23456789012345678,"Other":{"deep":[1,2]},"Other":1}"#),
            Ok(Two {
                content: Some("hi".into()),
                msg_id: Some("23456789012345678".into())
            })
        );
        assert_eq!(
            decode(r#"{"Content":true,"MsgId":null}"#),
            Ok(Two {
                content: Some("true".into()),
                msg_id: None
            })
        );
    }

    #[test]
    fn a_known_field_named_twice_is_refused_whatever_its_values() {
        refused_with(r#"{"Content":"a","Content":"b"}"#, "duplicate field `Content`");
        refused_with(r#"{"Content":"a","Content":"a"}"#, "duplicate field `Content`");
        refused_with(r#"{"Content":null,"Content":"forged"}"#, "duplicate field `Content`");
        refused_with(r#"{"MsgId":1,"MsgId":null}"#, "duplicate field `MsgId`");
        refused_with(r#"{"Content":"a","content":"b"}"#, "duplicate field `content`");
        refused_with(r#"{"Content":null,"content":"b"}"#, "duplicate field `content`");
        refused_with(r#"{"Content":false,"content":null}"#, "duplicate field `content`");
        // A key spelt with an escape is the same key.
        refused_with(r#"{"Content":"a","\u0043ontent":"b"}"#, "duplicate field `Content`");
    }

    #[test]
    fn non_objects_nested_values_and_trailing_content_are_refused() {
        refused_with(r#"{"Content":["a"]}"#, "not a scalar");
        refused_with(r#"{"Content":{"a":1}}"#, "not a scalar");
        refused_with(r#"["Content"]"#, "a JSON object");
        refused_with(r#"{"Content":"a"} {"Content":"b"}"#, "trailing characters");
        refused_with(r#"{"Content":"a""#, "EOF");
        assert_eq!(
            decode(" {\"Content\":\"a\"} \n").map(|two| two.content),
            Ok(Some("a".into()))
        );
    }

    /// The decoder it replaced: the object read into a map (equal keys: the last one wins).
    fn map_decode(text: &str) -> Result<Two, MessageError> {
        let object: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|err| MessageError::Malformed(err.to_string()))?;
        let mut fields = Two::default();
        for (name, value) in object {
            let Some(slot) = fields.slot(&name) else { continue };
            let text = match value {
                Value::Null => continue,
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                Value::Array(_) | Value::Object(_) => return Err(MessageError::Malformed("nested".into())),
            };
            if slot.is_some() {
                return Err(MessageError::Malformed("duplicate".into()));
            }
            *slot = Some(text);
        }
        Ok(fields)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~\\u{4e00}-\\u{4e10}\"\\\\]{0,12}".prop_map(Value::String),
            Just(serde_json::json!([1, "a"])),
            Just(serde_json::json!({"k": null})),
        ]
    }

    proptest! {
        /// Where no field is named twice (an unknown key may repeat), the entry-by-entry decoder
        /// reads what the map decoder read and refuses what it refused; where one is — the same
        /// key or an alias, whatever the values — it refuses, where the map kept the last.
        #[test]
        fn agrees_with_the_map_decoder_where_no_field_repeats(
            entries in proptest::collection::vec(
                (prop_oneof![Just("Content"), Just("content"), Just("MsgId"), Just("Other")], json_value()),
                0..6,
            )
        ) {
            let object: Vec<String> = entries
                .iter()
                .map(|(name, value)| format!("{}:{value}", Value::from(*name)))
                .collect();
            let text = format!("{{{}}}", object.join(","));
            // A field, whichever spelling names it; `Other` is no field.
            fn field(name: &str) -> &str {
                if name == "content" { "Content" } else { name }
            }
            let mut fields: Vec<&str> = entries
                .iter()
                .map(|(name, _)| field(name))
                .filter(|name| *name != "Other")
                .collect();
            fields.sort_unstable();
            let repeats_known = fields.windows(2).any(|pair| pair[0] == pair[1]);
            let ours = decode(&text);
            let nested_known = entries
                .iter()
                .any(|(name, value)| *name != "Other" && (value.is_array() || value.is_object()));
            if repeats_known {
                // Refused; as a repeat unless a nested value came first.
                let refused = matches!(&ours, Err(MessageError::Malformed(why)) if nested_known || why.contains("duplicate"));
                prop_assert!(refused, "{text}: {ours:?}");
            } else {
                match (&ours, map_decode(&text)) {
                    (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, &theirs, "{}", text),
                    (Err(_), Err(_)) => {}
                    (ours, theirs) => prop_assert!(false, "{text}: {ours:?} against {theirs:?}"),
                }
            }
        }
    }
}
