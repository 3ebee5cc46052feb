//! The stored shape of one ledger record and its typed decoding.
//!
//! | attribute | meaning |
//! |---|---|
//! | `status` | `pending` (a holder is working) or `done` (the result is stored) |
//! | `owner` | random id of the holder that claimed the record |
//! | `lease_until` | epoch ms after which a `pending` record counts as abandoned |
//! | `result` | the result (JSON of the caller's type) every later attempt gets, once `done` |
//! | `expires_at` | TTL (epoch seconds) |

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Attrs, StoreError};

/// Attribute: `pending` or `done`.
pub(crate) const STATUS: &str = "status";
/// Attribute: the claim holder's random id.
pub(crate) const OWNER: &str = "owner";
/// Attribute: end of the holder's lease, epoch ms.
pub(crate) const LEASE_UNTIL: &str = "lease_until";
/// Attribute: the stored result, JSON.
pub(crate) const RESULT: &str = "result";
/// `status` while the holder works.
pub(crate) const PENDING: &str = "pending";
/// `status` once the result is stored.
pub(crate) const DONE: &str = "done";

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record<R> {
    /// Claimed by a holder until `lease_until_ms`.
    Pending { lease_until_ms: i64 },
    /// Completed with `result`.
    Done { result: R },
}

impl<R: DeserializeOwned> Record<R> {
    /// Decodes a stored record.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when a required attribute is missing, has the wrong type, or the
    /// result is not a valid `R` — an error for the caller, never a reason to run the work again.
    pub(crate) fn decode(attrs: &Attrs) -> Result<Self, StoreError> {
        match attrs.str_attr(STATUS) {
            Some(PENDING) => {
                let lease_until_ms = attrs.num_attr(LEASE_UNTIL).ok_or_else(|| corrupt(LEASE_UNTIL))?;
                Ok(Self::Pending { lease_until_ms })
            }
            Some(DONE) => {
                let raw = attrs.str_attr(RESULT).ok_or_else(|| corrupt(RESULT))?;
                let result = serde_json::from_str(raw)
                    .map_err(|e| StoreError::Corrupt(format!("ledger record: result is not the expected type: {e}")))?;
                Ok(Self::Done { result })
            }
            _ => Err(corrupt(STATUS)),
        }
    }
}

/// The stored form of `result`.
pub(crate) fn encode<R: Serialize + ?Sized>(result: &R) -> Result<String, StoreError> {
    serde_json::to_string(result).map_err(|e| StoreError::Invalid(format!("ledger result cannot be stored: {e}")))
}

fn corrupt(attr: &str) -> StoreError {
    StoreError::Corrupt(format!("ledger record: missing or mistyped {attr}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AttrValue;

    fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
        pairs.iter().map(|(k, v)| ((*k).to_owned().into(), v.clone())).collect()
    }

    #[test]
    fn pending_and_done_records_decode() {
        let pending = attrs(&[(STATUS, PENDING.into()), (OWNER, "o".into()), (LEASE_UNTIL, 5.into())]);
        assert_eq!(
            Record::<String>::decode(&pending).ok(),
            Some(Record::Pending { lease_until_ms: 5 })
        );
        let done = attrs(&[
            (STATUS, DONE.into()),
            (OWNER, "o".into()),
            (RESULT, encode("<xml/>").unwrap().into()),
        ]);
        assert_eq!(
            Record::<String>::decode(&done).ok(),
            Some(Record::Done {
                result: "<xml/>".into()
            })
        );
    }

    #[test]
    fn incomplete_records_are_corrupt() {
        let no_result = attrs(&[(STATUS, DONE.into()), (OWNER, "o".into())]);
        assert!(matches!(
            Record::<String>::decode(&no_result),
            Err(StoreError::Corrupt(_))
        ));
        let unknown = attrs(&[(STATUS, "weird".into()), (OWNER, "o".into())]);
        assert!(matches!(
            Record::<String>::decode(&unknown),
            Err(StoreError::Corrupt(_))
        ));
        let mistyped = attrs(&[
            (STATUS, PENDING.into()),
            (OWNER, "o".into()),
            (LEASE_UNTIL, "soon".into()),
        ]);
        assert!(matches!(
            Record::<String>::decode(&mistyped),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_result_of_another_type_is_corrupt_not_a_second_run() {
        let done = attrs(&[(STATUS, DONE.into()), (OWNER, "o".into()), (RESULT, "{\"x\":1}".into())]);
        assert!(matches!(Record::<String>::decode(&done), Err(StoreError::Corrupt(_))));
    }
}
