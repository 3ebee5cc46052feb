//! Conditions for conditional writes: a small expression tree both stores can evaluate.

use super::attrs::Attrs;
use super::item::{AttrName, AttrValue};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A condition on the item as it is before a write.
///
/// An expired item (see [`super::EXPIRES_AT`]) counts as absent for `ItemAbsent` / `ItemPresent`;
/// attribute comparisons look at the stored attributes as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No condition.
    Always,
    /// The item does not exist or has expired.
    ItemAbsent,
    /// The item exists and has not expired.
    ItemPresent,
    /// The attribute does not exist.
    AttrAbsent(AttrName),
    /// The attribute exists and compares to the value as given (type mismatch = false).
    Compare(AttrName, CmpOp, AttrValue),
    /// All of the conditions hold.
    And(Vec<Condition>),
    /// Any of the conditions holds.
    Or(Vec<Condition>),
}

impl Condition {
    /// `attr = value`.
    pub fn equals(attr: impl Into<AttrName>, value: impl Into<AttrValue>) -> Self {
        Self::Compare(attr.into(), CmpOp::Eq, value.into())
    }

    /// `attr <op> value`.
    pub fn compare(attr: impl Into<AttrName>, op: CmpOp, value: impl Into<AttrValue>) -> Self {
        Self::Compare(attr.into(), op, value.into())
    }

    /// `self AND other`.
    pub fn and(self, other: Condition) -> Self {
        match self {
            Self::Always => other,
            Self::And(mut all) => {
                all.push(other);
                Self::And(all)
            }
            first => Self::And(vec![first, other]),
        }
    }

    /// `self OR other`.
    pub fn or(self, other: Condition) -> Self {
        match self {
            Self::Or(mut any) => {
                any.push(other);
                Self::Or(any)
            }
            first => Self::Or(vec![first, other]),
        }
    }

    /// Evaluates the condition against the stored item (`None` = no item at all).
    pub fn holds(&self, item: Option<&Attrs>, now_secs: i64) -> bool {
        let live = item.is_some_and(|attrs| !attrs.is_expired_at(now_secs));
        match self {
            Self::Always => true,
            Self::ItemAbsent => !live,
            Self::ItemPresent => live,
            Self::AttrAbsent(name) => item.is_none_or(|attrs| !attrs.contains_key(name.as_ref())),
            Self::Compare(name, op, expected) => {
                let Some(actual) = item.and_then(|attrs| attrs.get(name.as_ref())) else {
                    return false;
                };
                let same_type = matches!(
                    (actual, expected),
                    (AttrValue::S(_), AttrValue::S(_)) | (AttrValue::N(_), AttrValue::N(_))
                );
                same_type
                    && match op {
                        CmpOp::Eq => actual == expected,
                        CmpOp::Ne => actual != expected,
                        CmpOp::Lt => actual < expected,
                        CmpOp::Le => actual <= expected,
                        CmpOp::Gt => actual > expected,
                        CmpOp::Ge => actual >= expected,
                    }
            }
            Self::And(all) => all.iter().all(|c| c.holds(item, now_secs)),
            Self::Or(any) => any.iter().any(|c| c.holds(item, now_secs)),
        }
    }
}
