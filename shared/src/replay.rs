//! Replay protection for plaintext callbacks: one signed query, one body.
//!
//! WeChat's plain-mode `signature` covers token, timestamp and nonce but not the body, so a
//! captured query string could carry any other XML (any user, any MsgId — pre-claiming dedup
//! keys) within the freshness window. The guard records each signed query the first time it is
//! used, with a digest of what it carried (`sig#{scope}` / `{timestamp}:{nonce}:{signature}`,
//! one conditional put, living as long as the window): the same query with the same body —
//! WeChat's own retry — passes, and is answered from the message ledger; the same query with
//! another body is refused. Encrypted requests need no guard: `msg_signature` covers the body.
//!
//! A store outage falls back to an instance-memory copy (counted): replays that reach this
//! instance are still caught, and WeChat's messages keep flowing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::store::memory::MemoryStore;
use crate::store::{Attrs, AttrsExt, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Unanswered, bounded};

const DIGEST: &str = "digest";

/// The signed parameters of one request.
#[derive(Debug, Clone, Copy)]
pub struct SignedQuery<'a> {
    /// `timestamp`.
    pub timestamp: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `signature`.
    pub signature: &'a str,
}

/// The signed query was used before with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signed query replayed with a different body")]
pub struct Replayed;

/// The replay guard of one account's callback. Scope: per fleet (records), per instance (the
/// fallback copy and the counter).
#[derive(Debug)]
pub struct ReplayGuard {
    store: SharedStore,
    local: SharedStore,
    clock: SharedClock,
    window: Duration,
    store_timeout: Duration,
    fallbacks: AtomicU64,
}

impl ReplayGuard {
    /// A guard on `store`, records living `window` (the freshness window).
    pub fn new(store: SharedStore, clock: SharedClock, window: Duration, store_timeout: Duration) -> Self {
        Self {
            store,
            local: Arc::new(MemoryStore::new(clock.clone())),
            clock,
            window,
            store_timeout,
            fallbacks: AtomicU64::new(0),
        }
    }

    /// How many times the fleet store was out and the instance copy decided.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Admits `query` carrying `content` (the body, or the echostr): the first use, or a repeat
    /// with the same content.
    ///
    /// # Errors
    /// [`Replayed`] when the query was used with other content.
    pub async fn admit(&self, scope: &str, query: &SignedQuery<'_>, content: &[u8]) -> Result<(), Replayed> {
        let key = Key::new(
            format!("sig#{scope}"),
            format!("{}:{}:{}", query.timestamp, query.nonce, query.signature),
        );
        let digest = hex::encode(Sha256::digest(content));
        let mut record = Attrs::new();
        record.insert(DIGEST.to_owned(), digest.as_str().into());
        let lifetime = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
        record.insert(
            EXPIRES_AT.to_owned(),
            self.clock.now_secs().saturating_add(lifetime.saturating_mul(2)).into(),
        );
        match self.put(&self.store, &key, record.clone()).await {
            Ok(verdict) => verdict,
            Err(error) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "wechat_ha::replay", reason = %error, "state store unreachable; replay check on instance memory");
                self.put(&self.local, &key, record).await.unwrap_or(Ok(()))
            }
        }
        .inspect_err(|_| {
            tracing::warn!(target: "wechat_ha::replay", timestamp = query.timestamp, nonce = query.nonce, "signed query replayed with another body: refused");
        })
    }

    /// The conditional put; `Err` only when the store did not answer.
    async fn put(&self, store: &SharedStore, key: &Key, record: Attrs) -> Result<Result<(), Replayed>, Unanswered> {
        let digest = record.str_attr(DIGEST).unwrap_or_default().to_owned();
        match bounded(self.store_timeout, None, store.put(key, record, Condition::ItemAbsent)).await {
            Ok(()) => Ok(Ok(())),
            Err(Unanswered::Store(StoreError::ConditionFailed { current })) => {
                let same = current.as_ref().and_then(|c| c.str_attr(DIGEST)) == Some(digest.as_str());
                Ok(if same { Ok(()) } else { Err(Replayed) })
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn guard() -> ReplayGuard {
        let clock: SharedClock = Arc::new(ManualClock::new(1_700_000_000_000));
        let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        ReplayGuard::new(store, clock, Duration::from_secs(300), Duration::from_secs(1))
    }

    const QUERY: SignedQuery<'static> = SignedQuery {
        timestamp: "1700000000",
        nonce: "42",
        signature: "abc",
    };

    #[tokio::test]
    async fn a_signed_query_carries_one_body_and_its_retries_only() {
        let guard = guard();
        assert_eq!(guard.admit("wx", &QUERY, b"<xml>1</xml>").await, Ok(()));
        assert_eq!(
            guard.admit("wx", &QUERY, b"<xml>1</xml>").await,
            Ok(()),
            "WeChat's retry"
        );
        assert_eq!(guard.admit("wx", &QUERY, b"<xml>forged</xml>").await, Err(Replayed));
        let other = SignedQuery { nonce: "43", ..QUERY };
        assert_eq!(
            guard.admit("wx", &other, b"<xml>forged</xml>").await,
            Ok(()),
            "another query"
        );
        assert_eq!(
            guard.admit("wx2", &QUERY, b"<xml>forged</xml>").await,
            Ok(()),
            "another account"
        );
    }
}
