//! An item's attributes: a small map from name to value, kept as one vector sorted by name.
//!
//! An item has a handful of attributes (a ledger record five, a replay record two), so a sorted
//! vector holds them in one allocation of a few slots, where a `BTreeMap` took a node of eleven
//! each: more than twice the heap per item, and more cold memory to touch when the
//! memory store evicts (docs/benchmarks.md §20). Lookups scan a few entries; iteration is in name
//! order, as a `BTreeMap`'s was (DynamoDB requests and test output do not depend on insertion).

use std::fmt;

use super::item::{AttrName, AttrValue, EXPIRES_AT};

/// An item's attributes (without `pk` / `sk`), in name order, each name once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    entries: Vec<(AttrName, AttrValue)>,
}

impl Attrs {
    /// No attributes.
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// No attributes, room for `capacity` without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `name` is, or where it would go.
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(held, _)| held.as_ref().cmp(name))
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.position(name).ok().map(|at| &self.entries[at].1)
    }

    /// Whether `name` is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets `name` to `value`; the value it replaced, if any.
    pub fn insert(&mut self, name: AttrName, value: AttrValue) -> Option<AttrValue> {
        match self.position(&name) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (name, value));
                None
            }
        }
    }

    /// Sets `name` to `value` unless it is set already.
    pub fn insert_if_absent(&mut self, name: AttrName, value: AttrValue) {
        if let Err(at) = self.position(&name) {
            self.entries.insert(at, (name, value));
        }
    }

    /// Removes `name`; its value, if it was set.
    pub fn remove(&mut self, name: &str) -> Option<AttrValue> {
        self.position(name).ok().map(|at| self.entries.remove(at).1)
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&AttrName, &AttrValue)> + Clone {
        self.entries.iter().map(|(name, value)| (name, value))
    }

    /// The names in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &AttrName> + Clone {
        self.entries.iter().map(|(name, _)| name)
    }

    /// The string attribute `name`, if present and a string.
    pub fn str_attr(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(AttrValue::S(s)) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// The integer attribute `name`, if present and a number.
    pub fn num_attr(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(AttrValue::N(n)) => Some(*n),
            _ => None,
        }
    }

    /// Whether the item's TTL has passed at `now_secs`.
    pub fn is_expired_at(&self, now_secs: i64) -> bool {
        self.num_attr(EXPIRES_AT).is_some_and(|exp| exp <= now_secs)
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(AttrName, AttrValue)> for Attrs {
    /// Sorted once (an item read from DynamoDB arrives in hash order), not inserted one by one;
    /// of two equal names the later value is kept, as a map's inserts would.
    fn from_iter<I: IntoIterator<Item = (AttrName, AttrValue)>>(pairs: I) -> Self {
        let mut entries: Vec<(AttrName, AttrValue)> = pairs.into_iter().collect();
        // Stable: equal names stay in arrival order, so the run's last is the later value.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Self { entries }
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a AttrName, &'a AttrValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (AttrName, AttrValue)>,
        fn(&'a (AttrName, AttrValue)) -> (&'a AttrName, &'a AttrValue),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(name, value)| (name, value))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn insert_replaces_and_answers_the_old_value() {
        let mut attrs = Attrs::new();
        assert_eq!(attrs.insert("b".into(), 1.into()), None);
        assert_eq!(attrs.insert("a".into(), "x".into()), None);
        assert_eq!(attrs.insert("b".into(), 2.into()), Some(AttrValue::N(1)));
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs.get("b"), Some(&AttrValue::N(2)));
        let names: Vec<&str> = attrs.keys().map(|name| name.as_ref()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(format!("{attrs:?}"), r#"{"a": S("x"), "b": N(2)}"#);
    }

    #[test]
    fn a_constant_value_is_the_same_value_as_an_owned_one() {
        assert_eq!(AttrValue::constant("pending"), AttrValue::from("pending"));
        let mut attrs = Attrs::new();
        attrs.insert("status".into(), AttrValue::constant("pending"));
        assert_eq!(attrs.str_attr("status"), Some("pending"));
        assert_eq!(format!("{attrs:?}"), r#"{"status": S("pending")}"#);
    }

    /// One step of a random edit sequence.
    #[derive(Debug, Clone)]
    enum Edit {
        Insert(String, i64),
        Remove(String),
        InsertIfAbsent(String, i64),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let name = "[a-e]{1,2}";
        prop_oneof![
            (name, any::<i64>()).prop_map(|(name, value)| Edit::Insert(name, value)),
            name.prop_map(Edit::Remove),
            (name, any::<i64>()).prop_map(|(name, value)| Edit::InsertIfAbsent(name, value)),
        ]
    }

    proptest! {
        /// Collecting pairs, repeated names among them, gives what a `BTreeMap` collects.
        #[test]
        fn collects_as_a_btree_map(pairs in prop::collection::vec(("[a-d]{1,2}", any::<i64>()), 0..20)) {
            let pairs: Vec<(AttrName, AttrValue)> =
                pairs.into_iter().map(|(name, value)| (name.into(), value.into())).collect();
            let attrs: Attrs = pairs.iter().cloned().collect();
            let model: BTreeMap<AttrName, AttrValue> = pairs.into_iter().collect();
            let held: Vec<_> = attrs.iter().collect();
            let expected: Vec<_> = model.iter().collect();
            prop_assert_eq!(held, expected);
        }

        /// Any sequence of inserts and removes leaves the same map, in the same order, as a `BTreeMap` given
        /// the same edits (what `Attrs` was before).
        #[test]
        fn behaves_as_a_btree_map(edits in prop::collection::vec(edit(), 0..40)) {
            let mut attrs = Attrs::new();
            let mut model: BTreeMap<AttrName, AttrValue> = BTreeMap::new();
            for edit in edits {
                match edit {
                    Edit::Insert(name, value) => prop_assert_eq!(
                        attrs.insert(name.clone().into(), value.into()),
                        model.insert(name.into(), value.into())
                    ),
                    Edit::InsertIfAbsent(name, value) => {
                        attrs.insert_if_absent(name.clone().into(), value.into());
                        model.entry(name.into()).or_insert(value.into());
                    }
                    Edit::Remove(name) => prop_assert_eq!(attrs.remove(&name), model.remove(name.as_str())),
                }
                let held: Vec<_> = attrs.iter().collect();
                let expected: Vec<_> = model.iter().collect();
                prop_assert_eq!(held, expected);
                for name in ["a", "b", "ab", "zz"] {
                    prop_assert_eq!(attrs.get(name), model.get(name));
                    prop_assert_eq!(attrs.contains_key(name), model.contains_key(name));
                }
            }
        }
    }
}
