//! The stored shape of one idempotency record and its decoding.
//!
//! | attribute | meaning |
//! |---|---|
//! | `status` | `pending` (a holder is processing) or `done` (the reply is stored) |
//! | `owner` | random id of the holder that claimed the record |
//! | `lease_until` | epoch ms after which a `pending` record counts as abandoned |
//! | `reply` | the reply to give every retry, once `done` |
//! | `expires_at` | TTL (epoch seconds) |

use crate::store::{Attrs, AttrsExt, StoreError};

/// Attribute: `pending` or `done`.
pub(crate) const STATUS: &str = "status";
/// Attribute: the claim holder's random id.
pub(crate) const OWNER: &str = "owner";
/// Attribute: end of the holder's lease, epoch ms.
pub(crate) const LEASE_UNTIL: &str = "lease_until";
/// Attribute: the stored reply.
pub(crate) const REPLY: &str = "reply";
/// `status` while the holder processes.
pub(crate) const PENDING: &str = "pending";
/// `status` once the reply is stored.
pub(crate) const DONE: &str = "done";

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// Claimed by a holder until `lease_until_ms`.
    Pending { lease_until_ms: i64 },
    /// Completed with `reply`.
    Done { reply: String },
}

impl Record {
    /// Decodes a stored record.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a required attribute is missing or has the wrong type.
    pub(crate) fn decode(attrs: &Attrs) -> Result<Self, StoreError> {
        match attrs.str_attr(STATUS) {
            Some(PENDING) => {
                let lease_until_ms = attrs.num_attr(LEASE_UNTIL).ok_or_else(|| corrupt(LEASE_UNTIL))?;
                Ok(Self::Pending { lease_until_ms })
            }
            Some(DONE) => {
                let reply = attrs.str_attr(REPLY).ok_or_else(|| corrupt(REPLY))?.to_owned();
                Ok(Self::Done { reply })
            }
            _ => Err(corrupt(STATUS)),
        }
    }
}

fn corrupt(attr: &str) -> StoreError {
    StoreError::Corrupt(format!("idempotency record: missing or mistyped {attr}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttrValue;

    fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn pending_and_done_records_decode() {
        let pending = attrs(&[(STATUS, PENDING.into()), (OWNER, "o".into()), (LEASE_UNTIL, 5.into())]);
        assert_eq!(
            Record::decode(&pending).ok(),
            Some(Record::Pending { lease_until_ms: 5 })
        );
        let done = attrs(&[(STATUS, DONE.into()), (OWNER, "o".into()), (REPLY, "<xml/>".into())]);
        assert_eq!(
            Record::decode(&done).ok(),
            Some(Record::Done { reply: "<xml/>".into() })
        );
    }

    #[test]
    fn incomplete_records_are_corrupt() {
        let no_reply = attrs(&[(STATUS, DONE.into()), (OWNER, "o".into())]);
        assert!(matches!(Record::decode(&no_reply), Err(StoreError::Corrupt(_))));
        let unknown = attrs(&[(STATUS, "weird".into()), (OWNER, "o".into())]);
        assert!(matches!(Record::decode(&unknown), Err(StoreError::Corrupt(_))));
        let mistyped = attrs(&[
            (STATUS, PENDING.into()),
            (OWNER, "o".into()),
            (LEASE_UNTIL, "soon".into()),
        ]);
        assert!(matches!(Record::decode(&mistyped), Err(StoreError::Corrupt(_))));
    }
}
