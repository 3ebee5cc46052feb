//! Sessions this instance saw lately: what lets signed-in users keep working while the store is
//! out. Consulted only when the store does not answer, so a logout or revocation is seen at once
//! whenever it does. Bounded in size and age. Keyed by the session id's digest; generic over
//! what is kept, so it knows nothing of sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::clock::SharedClock;

/// At most this many sessions are remembered (the oldest goes first).
const CAPACITY: usize = 10_000;
/// A remembered session counts for this long after the store last confirmed it.
const MAX_AGE_MS: i64 = 5 * 60 * 1000;

/// A kept value: when the store confirmed it, and when it ends.
#[derive(Debug)]
struct Entry<V> {
    value: V,
    confirmed_ms: i64,
    expires_ms: i64,
}

#[derive(Debug)]
struct Entries<V> {
    by_digest: HashMap<String, Entry<V>>,
    order: VecDeque<String>,
}

/// The bounded memory of recently confirmed sessions.
#[derive(Debug)]
pub(crate) struct RecentSessions<V> {
    clock: SharedClock,
    entries: Mutex<Entries<V>>,
}

impl<V: Clone> RecentSessions<V> {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            entries: Mutex::new(Entries {
                by_digest: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `value` (ending at `expires_ms`) under `digest`, as confirmed now.
    pub fn remember(&self, digest: String, value: &V, expires_ms: i64) {
        let entry = Entry {
            value: value.clone(),
            confirmed_ms: self.clock.now_ms(),
            expires_ms,
        };
        let mut entries = self.entries();
        if entries.by_digest.insert(digest.clone(), entry).is_none() {
            entries.order.push_back(digest);
        }
        while entries.by_digest.len() > CAPACITY {
            let Some(oldest) = entries.order.pop_front() else { break };
            entries.by_digest.remove(&oldest);
        }
    }

    /// Forgets `digest` (logged out, expired, gone from the store).
    pub fn forget(&self, digest: &str) {
        let mut entries = self.entries();
        if entries.by_digest.remove(digest).is_some() {
            entries.order.retain(|d| d != digest);
        }
    }

    /// The value, when confirmed within the last minutes and not expired.
    pub fn recall(&self, digest: &str) -> Option<V> {
        let now = self.clock.now_ms();
        let entries = self.entries();
        let entry = entries.by_digest.get(digest)?;
        (now - entry.confirmed_ms <= MAX_AGE_MS && entry.expires_ms > now).then(|| entry.value.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().by_digest.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_remembered_session_counts_for_minutes_and_never_past_its_expiry() {
        let clock = Arc::new(ManualClock::new(0));
        let recent = RecentSessions::new(clock.clone());
        recent.remember("d1".into(), &"session", 10 * 60 * 1000);
        clock.advance(MAX_AGE_MS);
        assert_eq!(recent.recall("d1"), Some("session"));
        clock.advance(1);
        assert!(recent.recall("d1").is_none(), "too old");
        recent.remember("d1".into(), &"session", MAX_AGE_MS + 2);
        clock.advance(1);
        assert!(recent.recall("d1").is_none(), "expired");
        recent.remember("d2".into(), &"other", i64::MAX);
        recent.forget("d2");
        assert!(recent.recall("d2").is_none(), "forgotten");
    }

    #[test]
    fn the_memory_is_bounded() {
        let clock = Arc::new(ManualClock::new(0));
        let recent = RecentSessions::new(clock);
        recent.remember("first".into(), &0, i64::MAX);
        for i in 0..CAPACITY {
            recent.remember(format!("d{i}"), &i, i64::MAX);
        }
        assert_eq!(recent.len(), CAPACITY);
        assert!(recent.recall("first").is_none(), "the oldest went first");
    }
}
