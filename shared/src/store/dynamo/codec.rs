//! Conversion between the store's [`AttrValue`] items and DynamoDB `AttributeValue` maps.
//!
//! The item layout lives here and only here: string keys [`PK`] / [`SK`], the TTL attribute
//! [`EXPIRES_AT`] (epoch seconds, `N`), every other attribute `S` or `N`. Anything else found in the
//! table (a `BOOL`, a fractional number, a missing key) is reported as [`StoreError::Corrupt`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::{AttrValue, Attrs, Key, StoreError};

pub use crate::store::EXPIRES_AT;

/// The partition-key attribute (type `S`).
pub const PK: &str = "pk";
/// The sort-key attribute (type `S`).
pub const SK: &str = "sk";

/// A raw DynamoDB item.
pub(crate) type RawItem = HashMap<String, AttributeValue>;

/// Encodes one attribute value.
pub(crate) fn encode_value(value: &AttrValue) -> AttributeValue {
    match value {
        AttrValue::S(s) => AttributeValue::S(s.to_string()),
        AttrValue::N(n) => AttributeValue::N(n.to_string()),
    }
}

/// Decodes one attribute value; `name` only labels the error.
pub(crate) fn decode_value(name: &str, value: &AttributeValue) -> Result<AttrValue, StoreError> {
    match value {
        AttributeValue::S(s) => Ok(AttrValue::from(s.as_str())),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(AttrValue::N)
            .map_err(|_| StoreError::Corrupt(format!("attribute {name}: number {n:?} is not a 64-bit integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name}: unsupported type (only S and N are used)"
        ))),
    }
}

/// The key as a DynamoDB key map (`pk`, `sk`).
pub(crate) fn encode_key(key: &Key) -> RawItem {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// A whole item: the key plus the attributes (which never contain `pk` / `sk`, see
/// the validation in `store/update.rs`).
pub(crate) fn encode_item(key: &Key, attrs: &Attrs) -> RawItem {
    let mut item = encode_key(key);
    item.extend(
        attrs
            .iter()
            .map(|(name, value)| (name.to_string(), encode_value(value))),
    );
    item
}

/// The attributes of a raw item, without `pk` / `sk`.
pub(crate) fn decode_attrs(item: &RawItem) -> Result<Attrs, StoreError> {
    item.iter()
        .filter(|(name, _)| name.as_str() != PK && name.as_str() != SK)
        .map(|(name, value)| Ok((name.clone().into(), decode_value(name, value)?)))
        .collect()
}

/// The attributes of a raw item, or `None` when it has expired at `now_secs`.
pub(crate) fn decode_live(item: &RawItem, now_secs: i64) -> Result<Option<Attrs>, StoreError> {
    let attrs = decode_attrs(item)?;
    Ok((!attrs.is_expired_at(now_secs)).then_some(attrs))
}

/// The sort key of a raw item returned by a query.
pub(crate) fn decode_sk(item: &RawItem) -> Result<String, StoreError> {
    match item.get(SK) {
        Some(AttributeValue::S(sk)) => Ok(sk.clone()),
        _ => Err(StoreError::Corrupt(format!("item without a string {SK} attribute"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
        pairs.iter().map(|(k, v)| ((*k).to_owned().into(), v.clone())).collect()
    }

    #[test]
    fn item_round_trips_without_key_attributes() {
        let key = Key::new("breaker#x", "state");
        let original = attrs(&[("state", "open".into()), ("version", 7.into()), ("neg", (-3).into())]);
        let raw = encode_item(&key, &original);
        assert_eq!(raw.get(PK), Some(&AttributeValue::S("breaker#x".into())));
        assert_eq!(raw.get("version"), Some(&AttributeValue::N("7".into())));
        assert_eq!(decode_attrs(&raw).ok(), Some(original));
        assert_eq!(decode_sk(&raw).ok().as_deref(), Some("state"));
    }

    #[test]
    fn unsupported_types_and_fractions_are_corrupt() {
        let bad_type = HashMap::from([("flag".to_owned(), AttributeValue::Bool(true))]);
        assert!(matches!(decode_attrs(&bad_type), Err(StoreError::Corrupt(_))));
        let fraction = HashMap::from([("n".to_owned(), AttributeValue::N("1.5".into()))]);
        assert!(matches!(decode_attrs(&fraction), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_sk(&HashMap::new()), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn expired_items_decode_as_none() {
        let raw = encode_item(&Key::new("p", "s"), &attrs(&[(EXPIRES_AT, 100.into())]));
        assert_eq!(decode_live(&raw, 99).ok().flatten().map(|a| a.len()), Some(1));
        assert_eq!(decode_live(&raw, 100).ok(), Some(None));
    }
}
