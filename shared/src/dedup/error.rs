//! Errors of the idempotency ledger.

use crate::store::StoreError;

/// Why finishing a claim failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError {
    /// Another holder took the record over after this claim's lease ran out; this holder must not
    /// store its reply (the new holder's reply wins).
    #[error("claim lost: the idempotency record was taken over by another holder")]
    ClaimLost,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DedupError {
    /// Whether the store is out (throttled or unavailable), as opposed to a lost claim or a bug.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_outage())
    }
}
