//! Sessions the fleet shares: an opaque random id handed to the client, the session in the
//! store under the id's SHA-256 (a copy of the table never yields a usable id), with a TTL.
//!
//! A session holds who the user is (openid, unionid, scope, profile) and what must never leave
//! the server: a mini-program's `session_key`, a web user's WeChat access and refresh tokens.
//! [`Session`]'s `Debug` and every answer built from it leave those out ([`SessionSecrets`]).
//!
//! Item: pk `auth#session#{sha256(id)}`, sk `session`; attributes `kind`, `appid`, `openid`,
//! `unionid`, `scope`, `created_ms`, `expires_at` (TTL, epoch s), `profile` (JSON),
//! `profile_ms`, `session_key`, `access_token`, `access_expires_ms`, `refresh_token`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::recent::RecentSessions;
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::store::{Attrs, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Update, bounded};

/// What every session id starts with (so a leaked one is recognisable by secret scanners).
const ID_PREFIX: &str = "wxs_";
/// Random bytes in an id: 256 bits.
const ID_BYTES: usize = 32;

/// Which login made the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// Official Account web authorization (cookie).
    Web,
    /// Mini-program login (bearer).
    MiniProgram,
}

impl SessionKind {
    /// The stable name (stored, answered, metric label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::MiniProgram => "miniprogram",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "web" => Some(Self::Web),
            "miniprogram" => Some(Self::MiniProgram),
            _ => None,
        }
    }
}

/// What a session keeps that no client ever sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    /// A mini-program's session_key (decrypts the user's data).
    pub session_key: Option<Secret>,
    /// A web user's WeChat access token (for `/sns/userinfo`).
    pub access_token: Option<Secret>,
    /// When `access_token` expires (epoch ms).
    pub access_expires_ms: i64,
    /// A web user's WeChat refresh token (renews `access_token` for 30 days).
    pub refresh_token: Option<Secret>,
}

/// One signed-in user.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Which login.
    pub kind: SessionKind,
    /// The account or mini-program the user signed in to.
    pub appid: String,
    /// The user, for that account.
    pub openid: String,
    /// The user across the developer's accounts, when WeChat gave it.
    pub unionid: Option<String>,
    /// The granted scope (`snsapi_base`, `snsapi_userinfo`; empty for mini-programs).
    pub scope: String,
    /// The profile WeChat returned (web, `snsapi_userinfo`).
    pub profile: Option<Value>,
    /// When `profile` was fetched (epoch ms).
    pub profile_ms: Option<i64>,
    /// When the session began (epoch ms).
    pub created_ms: i64,
    /// When it ends (epoch ms).
    pub expires_ms: i64,
    /// Never answered.
    pub secrets: SessionSecrets,
}

impl Session {
    /// Whether the scope allows reading the user's profile.
    pub fn has_userinfo_scope(&self) -> bool {
        self.scope.split(',').any(|s| s.trim() == "snsapi_userinfo")
    }

    fn to_attrs(&self) -> Attrs {
        let mut attrs = Attrs::new();
        attrs.insert("kind".into(), self.kind.as_str().into());
        attrs.insert("appid".into(), self.appid.clone().into());
        attrs.insert("openid".into(), self.openid.clone().into());
        attrs.insert("scope".into(), self.scope.clone().into());
        attrs.insert("created_ms".into(), self.created_ms.into());
        attrs.insert(EXPIRES_AT.into(), self.expires_ms.div_euclid(1000).into());
        if let Some(unionid) = &self.unionid {
            attrs.insert("unionid".into(), unionid.clone().into());
        }
        if let (Some(profile), Some(at)) = (&self.profile, self.profile_ms) {
            attrs.insert("profile".into(), profile.to_string().into());
            attrs.insert("profile_ms".into(), at.into());
        }
        let secrets = &self.secrets;
        let secret_attrs = [
            ("session_key", &secrets.session_key),
            ("access_token", &secrets.access_token),
            ("refresh_token", &secrets.refresh_token),
        ];
        for (name, value) in secret_attrs {
            if let Some(value) = value {
                attrs.insert(name.into(), value.expose().into());
            }
        }
        if secrets.access_token.is_some() {
            attrs.insert("access_expires_ms".into(), secrets.access_expires_ms.into());
        }
        attrs
    }

    fn from_attrs(attrs: &Attrs) -> Result<Self, StoreError> {
        let text = |name: &str| attrs.str_attr(name).map(str::to_owned);
        let corrupt = |what: &str| StoreError::Corrupt(format!("session item: {what}"));
        let kind = attrs
            .str_attr("kind")
            .and_then(SessionKind::parse)
            .ok_or_else(|| corrupt("kind"))?;
        let profile = match attrs.str_attr("profile") {
            Some(json) => Some(serde_json::from_str(json).map_err(|_| corrupt("profile"))?),
            None => None,
        };
        Ok(Self {
            kind,
            appid: text("appid").ok_or_else(|| corrupt("appid"))?,
            openid: text("openid").ok_or_else(|| corrupt("openid"))?,
            unionid: text("unionid"),
            scope: text("scope").unwrap_or_default(),
            profile,
            profile_ms: attrs.num_attr("profile_ms"),
            created_ms: attrs.num_attr("created_ms").unwrap_or_default(),
            expires_ms: attrs.num_attr(EXPIRES_AT).unwrap_or_default().saturating_mul(1000),
            secrets: SessionSecrets {
                session_key: text("session_key").map(Secret::new),
                access_token: text("access_token").map(Secret::new),
                access_expires_ms: attrs.num_attr("access_expires_ms").unwrap_or_default(),
                refresh_token: text("refresh_token").map(Secret::new),
            },
        })
    }
}

/// A session id as the client holds it. Never logged (`Debug` prints its fingerprint).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(Secret);

impl SessionId {
    /// A fresh id: `wxs_` and 256 random bits, base64url.
    pub(crate) fn generate() -> Self {
        let bytes: [u8; ID_BYTES] = rand::random();
        Self(Secret::new(format!("{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// `text` when it has the shape of an id (anything else is unknown without a store call).
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(ID_PREFIX)?;
        let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
        (decoded.len() == ID_BYTES).then(|| Self(Secret::new(text)))
    }

    /// The value to hand the client (cookie or bearer).
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// SHA-256 of the id, hex: the store key, and the fingerprint logs may show.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.expose().as_bytes()))
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({}…)", &self.digest()[..8])
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A live session.
    Found(Session),
    /// A live session, from this instance's memory: the store did not answer.
    Remembered(Session),
    /// No such session, or it expired or was revoked.
    Missing,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store is out (or too slow) and nothing on this instance could stand in.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A session item that cannot be read (our bug, or a foreign item).
    #[error("{0}")]
    Corrupt(String),
}

impl From<crate::store::Unanswered> for SessionError {
    fn from(error: crate::store::Unanswered) -> Self {
        match error {
            crate::store::Unanswered::Store(StoreError::Corrupt(what)) => Self::Corrupt(what),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The sessions of the fleet, in the state store.
#[derive(Debug)]
pub struct Sessions {
    store: SharedStore,
    clock: SharedClock,
    ttl: Duration,
    store_timeout: Duration,
    recent: RecentSessions<Session>,
}

impl Sessions {
    /// Sessions in `store`, each living `ttl`; every store call limited to `store_timeout`.
    pub fn new(store: SharedStore, clock: SharedClock, ttl: Duration, store_timeout: Duration) -> Self {
        let recent = RecentSessions::new(clock.clone());
        Self {
            store,
            clock,
            ttl,
            store_timeout,
            recent,
        }
    }

    /// How long a new session lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn key(id: &SessionId) -> Key {
        Key::new(format!("auth#session#{}", id.digest()), "session")
    }

    /// A new session for `session` (its `created_ms` / `expires_ms` set here) and its id.
    ///
    /// # Errors
    /// [`SessionError::Unavailable`] when the store does not take it in time.
    pub async fn create(
        &self,
        mut session: Session,
        deadline: &Deadline,
    ) -> Result<(SessionId, Session), SessionError> {
        let now = self.clock.now_ms();
        session.created_ms = now;
        session.expires_ms = now.saturating_add(crate::clock::millis(self.ttl));
        let id = SessionId::generate();
        let key = Self::key(&id);
        let put = self.store.put(&key, session.to_attrs(), Condition::ItemAbsent);
        bounded(self.store_timeout, Some(deadline), put).await?;
        self.recent.remember(id.digest(), &session, session.expires_ms);
        Ok((id, session))
    }

    /// The live session `id` names.
    ///
    /// When the store does not answer, a session this instance saw within the last minutes
    /// still counts ([`Lookup::Remembered`]): signed-in users keep working through a store
    /// outage. A revocation reaches such an instance when the store answers again.
    ///
    /// # Errors
    /// [`SessionError::Unavailable`] when the store is out and the session is not remembered.
    pub async fn lookup(&self, id: &SessionId, deadline: &Deadline) -> Result<Lookup, SessionError> {
        let key = Self::key(id);
        let read = self.store.get(&key);
        match bounded(self.store_timeout, Some(deadline), read).await {
            Ok(Some(attrs)) => {
                let session = Session::from_attrs(&attrs).map_err(|e| SessionError::Corrupt(e.to_string()))?;
                if session.expires_ms <= self.clock.now_ms() {
                    self.recent.forget(&id.digest());
                    return Ok(Lookup::Missing);
                }
                self.recent.remember(id.digest(), &session, session.expires_ms);
                Ok(Lookup::Found(session))
            }
            Ok(None) => {
                self.recent.forget(&id.digest());
                Ok(Lookup::Missing)
            }
            Err(error) => match self.recent.recall(&id.digest()) {
                Some(session) => {
                    tracing::warn!(target: "wechat_ha::auth", reason = %error, "session store unavailable; using this instance's copy");
                    Ok(Lookup::Remembered(session))
                }
                None => Err(error.into()),
            },
        }
    }

    /// Revokes `id` (logout). Deleting a session that is gone already is fine.
    ///
    /// # Errors
    /// [`SessionError::Unavailable`] when the store does not answer in time.
    pub async fn delete(&self, id: &SessionId, deadline: &Deadline) -> Result<(), SessionError> {
        self.recent.forget(&id.digest());
        let key = Self::key(id);
        let delete = self.store.delete(&key, Condition::Always);
        bounded(self.store_timeout, Some(deadline), delete).await?;
        Ok(())
    }

    /// Stores a renewed WeChat grant and a fresh profile in the session (only while it exists:
    /// a logout racing with the refresh wins).
    ///
    /// # Errors
    /// [`SessionError::Unavailable`] when the store does not answer in time.
    pub async fn refresh(&self, id: &SessionId, session: &Session, deadline: &Deadline) -> Result<(), SessionError> {
        let mut update = Update::new().when(Condition::ItemPresent);
        if let (Some(profile), Some(at)) = (&session.profile, session.profile_ms) {
            update = update.set("profile", profile.to_string()).set("profile_ms", at);
        }
        let secrets = &session.secrets;
        if let Some(token) = &secrets.access_token {
            update = update
                .set("access_token", token.expose())
                .set("access_expires_ms", secrets.access_expires_ms);
        }
        if let Some(token) = &secrets.refresh_token {
            update = update.set("refresh_token", token.expose());
        }
        if let Some(unionid) = &session.unionid {
            update = update.set("unionid", unionid.clone());
        }
        match bounded(
            self.store_timeout,
            Some(deadline),
            self.store.update(&Self::key(id), update),
        )
        .await
        {
            Ok(_) => {
                self.recent.remember(id.digest(), session, session.expires_ms);
                Ok(())
            }
            // Logged out meanwhile: the logout stands, and this instance forgets the session too.
            Err(crate::store::Unanswered::Store(StoreError::ConditionFailed { .. })) => {
                self.recent.forget(&id.digest());
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    fn web_session() -> Session {
        Session {
            kind: SessionKind::Web,
            appid: "wx1".into(),
            openid: "o1".into(),
            unionid: Some("u1".into()),
            scope: "snsapi_userinfo".into(),
            profile: Some(serde_json::json!({"nickname": "Band"})),
            profile_ms: Some(1),
            created_ms: 0,
            expires_ms: 0,
            secrets: SessionSecrets {
                session_key: None,
                access_token: Some(Secret::new("USER_ACCESS")),
                access_expires_ms: 5,
                refresh_token: Some(Secret::new("USER_REFRESH")),
            },
        }
    }

    fn sessions(clock: &Arc<ManualClock>) -> (Sessions, SharedStore) {
        let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        let sessions = Sessions::new(
            store.clone(),
            clock.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(1),
        );
        (sessions, store)
    }

    #[tokio::test]
    async fn a_session_round_trips_and_is_stored_under_the_ids_digest_only() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (sessions, store) = sessions(&clock);
        let deadline = Deadline::after(Duration::from_secs(1));
        let (id, created) = sessions.create(web_session(), &deadline).await.unwrap();
        assert_eq!(created.expires_ms, 1_000_000 + 3_600_000);
        assert_eq!(sessions.lookup(&id, &deadline).await.unwrap(), Lookup::Found(created));
        let stored = store
            .get(&Key::new(format!("auth#session#{}", id.digest()), "session"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            !format!("{stored:?}").contains(id.expose()),
            "the id itself is never stored"
        );
        assert!(!format!("{id:?}").contains(id.expose()), "nor printed");
    }

    #[tokio::test]
    async fn an_expired_or_deleted_session_is_missing() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (sessions, _) = sessions(&clock);
        let deadline = Deadline::after(Duration::from_secs(1));
        let (id, _) = sessions.create(web_session(), &deadline).await.unwrap();
        let (other, _) = sessions.create(web_session(), &deadline).await.unwrap();
        sessions.delete(&id, &deadline).await.unwrap();
        assert_eq!(sessions.lookup(&id, &deadline).await.unwrap(), Lookup::Missing);
        clock.advance(3_600_000);
        assert_eq!(sessions.lookup(&other, &deadline).await.unwrap(), Lookup::Missing);
        assert!(clock.now_ms() > 0);
    }

    #[test]
    fn ids_are_random_and_only_well_formed_ones_parse() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.expose()), Some(a.clone()));
        for bad in [
            "",
            "wxs_",
            "wxs_short",
            "abc",
            &a.expose()[1..],
            &format!("{}x", a.expose()),
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_debug_form_of_a_session_hides_its_secrets() {
        let printed = format!("{:?}", web_session());
        assert!(
            !printed.contains("USER_ACCESS") && !printed.contains("USER_REFRESH"),
            "{printed}"
        );
    }
}
