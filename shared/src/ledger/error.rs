//! Errors of the ledger.

use crate::store::StoreError;

/// Why a ledger operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Another holder took the record over after this claim's lease ran out; this holder must not
    /// store its result (the new holder's wins).
    #[error("claim lost: the record was taken over by another holder")]
    ClaimLost,
    /// The caller's deadline passed before the store answered (nothing was claimed).
    #[error("the caller's deadline passed before the ledger could claim")]
    DeadlineExceeded,
    /// The store failed, or a record could not be read ([`StoreError::Corrupt`]) — never a reason
    /// to run the work again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LedgerError {
    /// Whether the store is out (throttled or unavailable), as opposed to a lost claim or a bad record.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_outage())
    }
}
