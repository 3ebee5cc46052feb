//! Per-instance token counters (for logs, metrics and tests).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub cache_hits: AtomicU64,
    pub upstream_fetches: AtomicU64,
    pub forced_refreshes: AtomicU64,
    pub invalidations: AtomicU64,
    pub store_fallbacks: AtomicU64,
    pub stale_served: AtomicU64,
    pub polls: AtomicU64,
}

impl Stats {
    pub fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TokenStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TokenStats {
            cache_hits: get(&self.cache_hits),
            upstream_fetches: get(&self.upstream_fetches),
            forced_refreshes: get(&self.forced_refreshes),
            invalidations: get(&self.invalidations),
            store_fallbacks: get(&self.store_fallbacks),
            stale_served: get(&self.stale_served),
            polls: get(&self.polls),
        }
    }
}

/// A snapshot of one instance's token counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Answers from the instance-local cache.
    pub cache_hits: u64,
    /// Successful fetches from WeChat (normal and forced).
    pub upstream_fetches: u64,
    /// Forced refreshes (`force_refresh=true`) among them.
    pub forced_refreshes: u64,
    /// Tokens reported as rejected by WeChat.
    pub invalidations: u64,
    /// Store failures that sent this instance to its local cache.
    pub store_fallbacks: u64,
    /// Times a still-valid token was served because a refresh failed or was backing off.
    pub stale_served: u64,
    /// Waits for another instance's refresh.
    pub polls: u64,
}
