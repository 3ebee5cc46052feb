//! An atomic item update: `SET`, `SET if absent`, `ADD` and `REMOVE` in one step, under a condition.

use super::condition::Condition;
use super::item::{AttrValue, Attrs};

/// One atomic update of one item (DynamoDB `UpdateItem`, `ReturnValues = ALL_NEW`).
///
/// An attribute may appear in only one of the lists (DynamoDB rejects overlapping paths).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Attributes to overwrite.
    pub set: Vec<(String, AttrValue)>,
    /// Attributes to set only when they do not exist yet (`if_not_exists`).
    pub set_if_absent: Vec<(String, AttrValue)>,
    /// Integer attributes to increment (created at 0 first). Negative values decrement.
    pub add: Vec<(String, i64)>,
    /// Attributes to delete.
    pub remove: Vec<String>,
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
        Self { set: Vec::new(), set_if_absent: Vec::new(), add: Vec::new(), remove: Vec::new(), condition: Condition::Always }
    }

    /// Overwrites `attr`.
    pub fn set(mut self, attr: &str, value: impl Into<AttrValue>) -> Self {
        self.set.push((attr.to_owned(), value.into()));
        self
    }

    /// Sets `attr` only if it does not exist.
    pub fn set_if_absent(mut self, attr: &str, value: impl Into<AttrValue>) -> Self {
        self.set_if_absent.push((attr.to_owned(), value.into()));
        self
    }

    /// Adds `delta` to the integer `attr`.
    pub fn add(mut self, attr: &str, delta: i64) -> Self {
        self.add.push((attr.to_owned(), delta));
        self
    }

    /// Removes `attr`.
    pub fn remove(mut self, attr: &str) -> Self {
        self.remove.push(attr.to_owned());
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

    /// Applies the update to an attribute map in memory (the reference semantics for all stores).
    pub fn apply_to(&self, attrs: &mut Attrs) {
        for (name, value) in &self.set {
            attrs.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.set_if_absent {
            attrs.entry(name.clone()).or_insert_with(|| value.clone());
        }
        for (name, delta) in &self.add {
            let current = match attrs.get(name) {
                Some(AttrValue::N(n)) => *n,
                _ => 0,
            };
            attrs.insert(name.clone(), AttrValue::N(current.saturating_add(*delta)));
        }
        for name in &self.remove {
            attrs.remove(name);
        }
    }
}
