//! An atomic item update: `SET`, `SET if absent`, `ADD` and `REMOVE` in one step, under a condition.

use super::attrs::Attrs;
use super::condition::Condition;
use super::error::StoreError;
use super::item::{AttrName, AttrValue, Key};

/// An attribute name no item may use. An empty update is sent to DynamoDB as `REMOVE` of this
/// name: a no-op that still evaluates the condition, creates a missing item and returns it
/// (DynamoDB emulators reject an `UpdateItem` without an update expression).
pub(crate) const NOOP_ATTR: &str = "__noop";

/// Attribute names reserved by the stores: the item key in DynamoDB and [`NOOP_ATTR`].
const RESERVED_ATTRS: [&str; 3] = ["pk", "sk", NOOP_ATTR];

/// Rejects an attribute name that is empty or reserved: the key attributes (`pk`, `sk`), which a
/// put or update would otherwise turn into a write to a different item, and [`NOOP_ATTR`].
///
/// # Errors
/// [`StoreError::Invalid`] naming the attribute.
pub(crate) fn check_attr_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || RESERVED_ATTRS.contains(&name) {
        return Err(StoreError::Invalid(format!(
            "attribute name {name:?} is empty or reserved"
        )));
    }
    Ok(())
}

/// Rejects a key with an empty part (DynamoDB does not allow empty key strings).
///
/// # Errors
/// [`StoreError::Invalid`].
pub(crate) fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Invalid(format!("key {key} has an empty part")));
    }
    Ok(())
}

/// Rejects an empty partition key (as a query's only argument).
///
/// # Errors
/// [`StoreError::Invalid`].
pub(crate) fn check_pk(pk: &str) -> Result<(), StoreError> {
    if pk.is_empty() {
        return Err(StoreError::Invalid("empty partition key".to_owned()));
    }
    Ok(())
}

/// Rejects a put whose attributes use a forbidden name (see [`check_attr_name`]).
///
/// # Errors
/// [`StoreError::Invalid`].
pub(crate) fn check_attrs(attrs: &Attrs) -> Result<(), StoreError> {
    attrs.keys().try_for_each(|name| check_attr_name(name))
}

/// One atomic update of one item (DynamoDB `UpdateItem`, `ReturnValues = ALL_NEW`).
///
/// An attribute may appear in only one of the lists (DynamoDB rejects overlapping paths).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Attributes to overwrite.
    pub set: Vec<(AttrName, AttrValue)>,
    /// Attributes to set only when they do not exist yet (`if_not_exists`).
    pub set_if_absent: Vec<(AttrName, AttrValue)>,
    /// Integer attributes to increment (created at 0 first). Negative values decrement.
    pub add: Vec<(AttrName, i64)>,
    /// Attributes to delete.
    pub remove: Vec<AttrName>,
    /// The condition on the item before the update.
    pub condition: Condition,
}

impl Default for Update {
    fn default() -> Self {
        Self::new()
    }
}

impl Update {
    /// An empty, unconditional update.
    pub fn new() -> Self {
        Self {
            set: Vec::new(),
            set_if_absent: Vec::new(),
            add: Vec::new(),
            remove: Vec::new(),
            condition: Condition::Always,
        }
    }

    /// Overwrites `attr`.
    pub fn set(mut self, attr: impl Into<AttrName>, value: impl Into<AttrValue>) -> Self {
        self.set.push((attr.into(), value.into()));
        self
    }

    /// Sets `attr` only if it does not exist.
    pub fn set_if_absent(mut self, attr: impl Into<AttrName>, value: impl Into<AttrValue>) -> Self {
        self.set_if_absent.push((attr.into(), value.into()));
        self
    }

    /// Adds `delta` to the integer `attr`.
    pub fn add(mut self, attr: impl Into<AttrName>, delta: i64) -> Self {
        self.add.push((attr.into(), delta));
        self
    }

    /// Removes `attr`.
    pub fn remove(mut self, attr: impl Into<AttrName>) -> Self {
        self.remove.push(attr.into());
        self
    }

    /// Applies the update only if `condition` holds.
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_if_absent.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Checks what DynamoDB would reject, so every store rejects the same updates: an attribute
    /// named in more than one action, an empty name, or a reserved one (`pk`, `sk`, `__noop`).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the attribute.
    pub fn validate(&self) -> Result<(), StoreError> {
        let names = || {
            self.set
                .iter()
                .chain(&self.set_if_absent)
                .map(|(name, _)| name.as_ref())
                .chain(self.add.iter().map(|(name, _)| name.as_ref()))
                .chain(self.remove.iter().map(AsRef::as_ref))
        };
        // Each name against those before it: the code's updates name a handful of attributes,
        // and a set would allocate on every write of every message.
        for (index, name) in names().enumerate() {
            check_attr_name(name)?;
            if names().take(index).any(|earlier| earlier == name) {
                return Err(StoreError::Invalid(format!(
                    "attribute {name:?} appears in more than one update action"
                )));
            }
        }
        Ok(())
    }

    /// Applies the update to an attribute map in memory (the reference semantics for all
    /// stores), moving its names and values into the item: a callback's stored reply is not
    /// copied again.
    pub fn apply(self, attrs: &mut Attrs) {
        for (name, value) in self.set {
            attrs.insert(name, value);
        }
        for (name, value) in self.set_if_absent {
            attrs.insert_if_absent(name, value);
        }
        for (name, delta) in self.add {
            let current = match attrs.get(name.as_ref()) {
                Some(AttrValue::N(n)) => *n,
                _ => 0,
            };
            attrs.insert(name, AttrValue::N(current.saturating_add(delta)));
        }
        for name in &self.remove {
            attrs.remove(name.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_overlapping_and_key_attributes() {
        assert!(Update::new().set("a", 1).add("b", 1).remove("c").validate().is_ok());
        assert!(matches!(
            Update::new().set("a", 1).add("a", 1).validate(),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Update::new().set("pk", "x").validate(),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            Update::new().remove("").validate(),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn long_updates_are_checked_like_short_ones() {
        let long = (0..40).fold(Update::new(), |update, n| update.set(format!("a{n}"), n));
        assert!(long.clone().validate().is_ok());
        assert!(matches!(
            long.clone().remove("a39").validate(),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(long.set("sk", 1).validate(), Err(StoreError::Invalid(_))));
        let short = Update::new().set("a", 1).set("b", 2).remove("c");
        assert!(matches!(
            short.clone().add("b", 1).validate(),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            short.set_if_absent("a", 1).validate(),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn apply_sets_adds_and_removes() {
        let mut attrs = Attrs::new();
        attrs.insert("old".into(), AttrValue::S("x".into()));
        attrs.insert("kept".into(), AttrValue::N(1));
        Update::new()
            .set("a", "v")
            .set_if_absent("kept", 9)
            .add("n", 3)
            .remove("old")
            .apply(&mut attrs);
        assert_eq!(attrs.get("a"), Some(&AttrValue::S("v".into())));
        assert_eq!(attrs.get("kept"), Some(&AttrValue::N(1)));
        assert_eq!(attrs.get("n"), Some(&AttrValue::N(3)));
        assert!(!attrs.contains_key("old"));
    }

    #[test]
    fn keys_and_attribute_names_are_checked() {
        assert!(check_key(&Key::new("p", "s")).is_ok());
        assert!(check_key(&Key::new("p", "")).is_err());
        let mut attrs = Attrs::new();
        attrs.insert("sk".into(), AttrValue::N(1));
        assert!(check_attrs(&attrs).is_err());
    }
}
