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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::hex_text::lower_hex;
use crate::store::memory::MemoryStore;
use crate::store::{Attrs, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Unanswered, bounded};

const DIGEST: &str = "digest";

/// A SHA-256 digest of what a signed query carried.
type Digest32 = [u8; 32];

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

/// How many confirmed repeats an instance remembers (a GET verify probe or WeChat's retries
/// repeat a handful of queries; the cap bounds what a flood of distinct repeats can take).
const CONFIRMED_CAPACITY: usize = 1024;

/// The replay guard of one account's callback. Scope: per fleet (records), per instance (the
/// fallback copy, the confirmed repeats and the counter).
#[derive(Debug)]
pub struct ReplayGuard {
    store: SharedStore,
    local: SharedStore,
    clock: SharedClock,
    window: Duration,
    store_timeout: Duration,
    fallbacks: AtomicU64,
    confirmed: ConfirmedRepeats,
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
            confirmed: ConfirmedRepeats::default(),
        }
    }

    /// How many times the fleet store was out and the instance copy decided.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Admits `query` carrying `tag` + `content` (`tag` keeps a GET's echostr and a POST's body
    /// apart): the first use, or a repeat with the same content.
    ///
    /// A repeat the fleet store confirmed (its record holds this content's digest) is
    /// remembered on the instance until the record expires: records never change, so the next
    /// repeat is admitted without a store write — a verify probe or WeChat's retries cost one
    /// conditional put per instance, not one per request. Other content under the same query
    /// misses that memory and meets the store's record.
    ///
    /// # Errors
    /// [`Replayed`] when the query was used with other content.
    pub async fn admit(
        &self,
        scope: &str,
        query: &SignedQuery<'_>,
        tag: &[u8],
        content: &[u8],
    ) -> Result<(), Replayed> {
        let key = Key::new(
            ["sig#", scope].concat(),
            [query.timestamp, ":", query.nonce, ":", query.signature].concat(),
        );
        // Raw bytes for the instance's comparisons; hex only for a store record.
        let digest: Digest32 = Sha256::new().chain_update(tag).chain_update(content).finalize().into();
        let now = self.clock.now_secs();
        if self.confirmed.holds(&key, &digest, now) {
            return Ok(());
        }
        let lifetime = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(lifetime.saturating_mul(2));
        let outcome = match self.put(&self.store, &key, &digest, expires_at).await {
            Ok(outcome) => outcome,
            Err(error) => {
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "wechat_ha::replay", reason = %error, "state store unreachable; replay check on instance memory");
                self.put(&self.local, &key, &digest, expires_at)
                    .await
                    .unwrap_or(Outcome::First)
            }
        };
        match outcome {
            Outcome::First => Ok(()),
            Outcome::Repeat { expires_at } => {
                self.confirmed.remember(key, digest, expires_at, now);
                Ok(())
            }
            Outcome::Replayed => {
                tracing::warn!(target: "wechat_ha::replay", timestamp = query.timestamp, nonce = query.nonce, "signed query replayed with another body: refused");
                Err(Replayed)
            }
        }
    }

    /// The conditional put; `Err` only when the store did not answer.
    async fn put(
        &self,
        store: &SharedStore,
        key: &Key,
        digest: &Digest32,
        expires_at: i64,
    ) -> Result<Outcome, Unanswered> {
        let mut record = Attrs::with_capacity(2);
        record.insert(DIGEST.into(), lower_hex(digest).into());
        record.insert(EXPIRES_AT.into(), expires_at.into());
        match bounded(self.store_timeout, None, store.put(key, record, Condition::ItemAbsent)).await {
            Ok(()) => Ok(Outcome::First),
            Err(Unanswered::Store(StoreError::ConditionFailed { current })) => {
                let current = current.unwrap_or_default();
                // A repeat (rare): the digest's text again, rather than a copy on every put.
                Ok(if current.str_attr(DIGEST) == Some(lower_hex(digest).as_str()) {
                    Outcome::Repeat {
                        expires_at: current.num_attr(EXPIRES_AT).unwrap_or(expires_at),
                    }
                } else {
                    Outcome::Replayed
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// What the store said of a signed query.
enum Outcome {
    /// First use: recorded.
    First,
    /// Used before with the same content; the record lives until `expires_at`.
    Repeat { expires_at: i64 },
    /// Used before with other content.
    Replayed,
}

/// Repeats the fleet store confirmed, until their records expire; at most
/// [`CONFIRMED_CAPACITY`] (expired ones go first, then all: a forgotten repeat only costs one
/// more store write).
#[derive(Debug, Default)]
struct ConfirmedRepeats {
    // foldhash, not SipHash: this map is read on every GET verify; its cap bounds what a
    // flood of colliding keys could cost.
    entries: Mutex<foldhash::HashMap<Key, (Digest32, i64)>>,
}

impl ConfirmedRepeats {
    fn holds(&self, key: &Key, digest: &Digest32, now: i64) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .is_some_and(|(known, expires_at)| known == digest && *expires_at > now)
    }

    fn remember(&self, key: Key, digest: Digest32, expires_at: i64, now: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CONFIRMED_CAPACITY {
            entries.retain(|_, (_, at)| *at > now);
            if entries.len() >= CONFIRMED_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (digest, expires_at));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|entries| entries.len()).unwrap_or_default()
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
        assert_eq!(guard.admit("wx", &QUERY, b"body:", b"<xml>1</xml>").await, Ok(()));
        assert_eq!(
            guard.admit("wx", &QUERY, b"body:", b"<xml>1</xml>").await,
            Ok(()),
            "WeChat's retry"
        );
        assert_eq!(
            guard.admit("wx", &QUERY, b"body:", b"<xml>forged</xml>").await,
            Err(Replayed)
        );
        let other = SignedQuery { nonce: "43", ..QUERY };
        assert_eq!(
            guard.admit("wx", &other, b"body:", b"<xml>forged</xml>").await,
            Ok(()),
            "another query"
        );
        assert_eq!(
            guard.admit("wx2", &QUERY, b"body:", b"<xml>forged</xml>").await,
            Ok(()),
            "another account"
        );
    }

    #[tokio::test]
    async fn a_confirmed_repeat_is_admitted_from_instance_memory_until_its_record_expires() {
        let clock = ManualClock::new(1_700_000_000_000);
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let store: SharedStore = Arc::new(MemoryStore::new(shared_clock.clone()));
        let guard = ReplayGuard::new(
            store.clone(),
            shared_clock,
            Duration::from_secs(300),
            Duration::from_secs(1),
        );
        let key = Key::new("sig#wx", "1700000000:42:abc");
        assert_eq!(guard.admit("wx", &QUERY, b"echostr:", b"e1").await, Ok(()));
        assert_eq!(guard.confirmed.len(), 0, "a first use is not a confirmed repeat");
        assert_eq!(guard.admit("wx", &QUERY, b"echostr:", b"e1").await, Ok(()));
        assert_eq!(guard.confirmed.len(), 1, "the store confirmed the repeat");
        // Other content under the same query is not in memory: it meets the store's record.
        assert_eq!(guard.admit("wx", &QUERY, b"echostr:", b"e2").await, Err(Replayed));
        // Without the fleet record, only instance memory can admit the next repeat: it does,
        // and writes nothing.
        store.delete(&key, Condition::Always).await.unwrap();
        assert_eq!(guard.admit("wx", &QUERY, b"echostr:", b"e1").await, Ok(()));
        assert!(
            store.get(&key).await.unwrap().is_none(),
            "no store write for a known repeat"
        );
        // Past the record's life the memory admits nothing more by itself.
        let digest: Digest32 = Sha256::digest(b"echostr:e1").into();
        assert!(guard.confirmed.holds(&key, &digest, 1_700_000_000));
        assert!(!guard.confirmed.holds(&key, &digest, 1_700_000_601));
    }

    #[test]
    fn confirmed_repeats_stay_within_their_capacity() {
        let repeats = ConfirmedRepeats::default();
        for n in 0..(CONFIRMED_CAPACITY * 3) {
            repeats.remember(Key::new("sig#wx", format!("q{n}")), [7; 32], 2_000, 1_000);
            assert!(repeats.len() <= CONFIRMED_CAPACITY);
        }
        assert!(repeats.holds(
            &Key::new("sig#wx", format!("q{}", CONFIRMED_CAPACITY * 3 - 1)),
            &[7; 32],
            1_000
        ));
    }
}
