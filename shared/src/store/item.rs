//! Item addressing and attribute values, shared by every store implementation.

use std::borrow::Cow;
use std::fmt;

/// The TTL attribute: epoch **seconds** after which the item counts as absent.
pub const EXPIRES_AT: &str = "expires_at";

/// The address of one item: partition key and sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Key {
    /// Partition key, e.g. `breaker#token-endpoint` or `msg#wx123`.
    pub pk: String,
    /// Sort key, e.g. `state` or a message dedup key.
    pub sk: String,
}

impl Key {
    /// A key from its two parts.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pk, self.sk)
    }
}

/// One attribute value. Only what the domain needs: strings and 64-bit integers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrValue {
    /// A UTF-8 string (DynamoDB `S`): owned, or a constant of the code's borrowed for the
    /// program's life ([`AttrValue::constant`]).
    S(Cow<'static, str>),
    /// An integer (DynamoDB `N`).
    N(i64),
}

impl AttrValue {
    /// A string value the code writes as a constant (a ledger record's `pending` / `done`):
    /// borrowed, so storing or comparing it allocates nothing, and an evicted item has one cold
    /// block fewer to free.
    pub const fn constant(text: &'static str) -> Self {
        Self::S(Cow::Borrowed(text))
    }
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        Self::S(Cow::Owned(v.to_owned()))
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        Self::S(Cow::Owned(v))
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        Self::N(v)
    }
}

/// An attribute's name. The names code writes are constants, borrowed for the program's life:
/// an item built or updated in memory allocates nothing for its names (they were a sixth of a
/// callback message's heap allocations, and cold memory to free at each eviction —
/// docs/benchmarks.md §19). Names read from DynamoDB are owned.
pub type AttrName = Cow<'static, str>;
