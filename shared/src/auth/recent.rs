//! Sessions this instance saw lately: what lets signed-in users keep working while the store is
//! out. Consulted only when the store does not answer, so a logout or revocation is seen at once
//! whenever it does. Bounded in size and age.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::session::{Session, SessionId};
use crate::clock::SharedClock;

/// At most this many sessions are remembered (the oldest goes first).
const CAPACITY: usize = 10_000;
/// A remembered session counts for this long after the store last confirmed it.
const MAX_AGE_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Default)]
struct Entries {
    by_digest: HashMap<String, (Session, i64)>,
    order: VecDeque<String>,
}

/// The bounded memory of recently confirmed sessions.
#[derive(Debug)]
pub(crate) struct RecentSessions {
    clock: SharedClock,
    entries: Mutex<Entries>,
}

impl RecentSessions {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `session` as confirmed now.
    pub fn remember(&self, id: &SessionId, session: &Session) {
        let digest = id.digest();
        let now = self.clock.now_ms();
        let mut entries = self.entries();
        if entries
            .by_digest
            .insert(digest.clone(), (session.clone(), now))
            .is_none()
        {
            entries.order.push_back(digest);
        }
        while entries.by_digest.len() > CAPACITY {
            let Some(oldest) = entries.order.pop_front() else { break };
            entries.by_digest.remove(&oldest);
        }
    }

    /// Forgets `id` (logged out, expired, gone from the store).
    pub fn forget(&self, id: &SessionId) {
        let digest = id.digest();
        let mut entries = self.entries();
        if entries.by_digest.remove(&digest).is_some() {
            entries.order.retain(|d| *d != digest);
        }
    }

    /// The session, when confirmed within the last minutes and not expired.
    pub fn recall(&self, id: &SessionId) -> Option<Session> {
        let now = self.clock.now_ms();
        let entries = self.entries();
        let (session, confirmed_ms) = entries.by_digest.get(&id.digest())?;
        (now - confirmed_ms <= MAX_AGE_MS && session.expires_ms > now).then(|| session.clone())
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
    use crate::auth::session::{SessionKind, SessionSecrets};
    use crate::clock::ManualClock;

    fn session(expires_ms: i64) -> Session {
        Session {
            kind: SessionKind::MiniProgram,
            appid: "wxmp".into(),
            openid: "o".into(),
            unionid: None,
            scope: String::new(),
            profile: None,
            profile_ms: None,
            created_ms: 0,
            expires_ms,
            secrets: SessionSecrets::default(),
        }
    }

    #[test]
    fn a_remembered_session_counts_for_minutes_and_never_past_its_expiry() {
        let clock = Arc::new(ManualClock::new(0));
        let recent = RecentSessions::new(clock.clone());
        let id = SessionId::parse(&format!("wxs_{}", "A".repeat(43))).unwrap();
        recent.remember(&id, &session(10 * 60 * 1000));
        clock.advance(MAX_AGE_MS);
        assert!(recent.recall(&id).is_some());
        clock.advance(1);
        assert!(recent.recall(&id).is_none(), "too old");
        recent.remember(&id, &session(MAX_AGE_MS + 2));
        clock.advance(1);
        assert!(recent.recall(&id).is_none(), "expired");
    }

    #[test]
    fn the_memory_is_bounded() {
        let clock = Arc::new(ManualClock::new(0));
        let recent = RecentSessions::new(clock);
        let first = SessionId::generate();
        recent.remember(&first, &session(i64::MAX));
        for _ in 0..CAPACITY {
            recent.remember(&SessionId::generate(), &session(i64::MAX));
        }
        assert_eq!(recent.len(), CAPACITY);
        assert!(recent.recall(&first).is_none(), "the oldest went first");
    }
}
