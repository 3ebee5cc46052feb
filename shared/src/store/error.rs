//! Store errors: the one place infrastructure failures get a domain meaning.

use super::attrs::Attrs;

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The write's condition did not hold; carries the current item (`None` if absent or expired)
    /// so the race loser learns the winner's state without a second read.
    #[error("condition failed")]
    ConditionFailed {
        /// The item as the store had it when the condition was evaluated.
        current: Option<Attrs>,
    },
    /// The store is shedding load (throughput or request limits, transaction conflicts).
    #[error("store throttled: {0}")]
    Throttled(String),
    /// The store could not be reached or answered with a server error or too late.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store rejected the request as invalid: a bug on our side, never retried.
    #[error("store rejected the request: {0}")]
    Invalid(String),
    /// An item could not be decoded into the expected shape.
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this is an outage (throttled or unavailable): callers fall back to local state.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }
}
