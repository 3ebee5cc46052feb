//! The OAuth `state`: a random value per login attempt, stored with the browser it belongs to,
//! so `/oauth/callback` accepts only what this site started in that same browser (no login
//! CSRF: an attacker's code cannot be planted in a victim's browser).
//!
//! `/oauth/authorize` stores `auth#state#{state}` (sk `state`) with the SHA-256 of the browser's
//! binding cookie, the checked `return_to`, the scope and a 10-minute TTL. The callback binds the
//! state to the first code it carries (conditional update): the same code again — a reload, a
//! retry — passes, another code does not. A code WeChat refuses unbinds it again, so a failed
//! exchange leaves nothing behind.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::store::{Attrs, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Unanswered, Update, bounded};

/// How long a login attempt may take, consent screen included (WeChat's code itself lives 5 min).
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// What the callback learns from a valid state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedLogin {
    /// Where to send the browser afterwards (checked when the login started).
    pub return_to: String,
    /// The scope asked for.
    pub scope: String,
}

/// Why a state was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// Never issued, or expired.
    #[error("unknown or expired state")]
    Unknown,
    /// Issued to another browser (or this one lost its binding cookie).
    #[error("state issued to another browser")]
    OtherBrowser,
    /// Already used with another code.
    #[error("state already used with another code")]
    OtherCode,
    /// The store did not answer.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A fresh `state`: 256 random bits as hex (WeChat allows `[a-zA-Z0-9]`, up to 128 bytes).
fn new_state() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether `state` has the shape of one we issue (else it is unknown without a store call).
fn well_formed(state: &str) -> bool {
    state.len() == 64 && state.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The login attempts of the fleet, in the state store.
#[derive(Debug)]
pub struct LoginStates {
    store: SharedStore,
    clock: SharedClock,
    store_timeout: Duration,
}

impl LoginStates {
    /// States in `store`, every call limited to `store_timeout`.
    pub fn new(store: SharedStore, clock: SharedClock, store_timeout: Duration) -> Self {
        Self {
            store,
            clock,
            store_timeout,
        }
    }

    fn key(state: &str) -> Key {
        Key::new(format!("auth#state#{state}"), "state")
    }

    /// Stores a new login attempt of the browser holding `binding` and returns its state.
    ///
    /// # Errors
    /// [`StateError::Unavailable`] when the store does not take it in time.
    pub async fn start(
        &self,
        binding: &str,
        return_to: &str,
        scope: &str,
        deadline: &Deadline,
    ) -> Result<String, StateError> {
        let state = new_state();
        let now = self.clock.now_ms();
        let mut attrs = Attrs::new();
        attrs.insert("browser".into(), digest(binding).into());
        attrs.insert("return_to".into(), return_to.into());
        attrs.insert("scope".into(), scope.into());
        attrs.insert("created_ms".into(), now.into());
        let expires_ms = now.saturating_add(crate::clock::millis(STATE_TTL));
        attrs.insert(EXPIRES_AT.into(), expires_ms.div_euclid(1000).into());
        let key = Self::key(&state);
        let put = self.store.put(&key, attrs, Condition::ItemAbsent);
        bounded(self.store_timeout, Some(deadline), put)
            .await
            .map_err(|e| StateError::Unavailable(e.to_string()))?;
        Ok(state)
    }

    /// Checks `state` against the browser's `binding` and binds it to `code` (or finds it bound
    /// to that same code already).
    ///
    /// # Errors
    /// [`StateError`] saying which check failed.
    pub async fn bind(
        &self,
        state: &str,
        binding: Option<&str>,
        code: &str,
        deadline: &Deadline,
    ) -> Result<StartedLogin, StateError> {
        if !well_formed(state) {
            return Err(StateError::Unknown);
        }
        let browser = binding.map(digest).ok_or(StateError::OtherBrowser)?;
        let code_digest = digest(code);
        let update = Update::new().set("code", code_digest.clone()).when(
            Condition::ItemPresent
                .and(Condition::equals("browser", browser.clone()))
                .and(Condition::AttrAbsent("code".into()).or(Condition::equals("code", code_digest.clone()))),
        );
        match bounded(
            self.store_timeout,
            Some(deadline),
            self.store.update(&Self::key(state), update),
        )
        .await
        {
            // DynamoDB deletes expired items late: an expired state is unknown however it reads.
            Ok(attrs) if attrs.is_expired_at(self.clock.now_secs()) => Err(StateError::Unknown),
            Ok(attrs) => Ok(started(&attrs)),
            Err(Unanswered::Store(StoreError::ConditionFailed { current })) => Err(match current {
                None => StateError::Unknown,
                Some(attrs) if attrs.is_expired_at(self.clock.now_secs()) => StateError::Unknown,
                Some(attrs) if attrs.str_attr("browser") != Some(browser.as_str()) => StateError::OtherBrowser,
                Some(_) => StateError::OtherCode,
            }),
            Err(error) => Err(StateError::Unavailable(error.to_string())),
        }
    }

    /// Ends a login the user declined (WeChat came back with `state` and no code): the state,
    /// if this browser's, is deleted and its return target answered.
    ///
    /// # Errors
    /// As [`Self::bind`], without [`StateError::OtherCode`].
    pub async fn abandon(
        &self,
        state: &str,
        binding: Option<&str>,
        deadline: &Deadline,
    ) -> Result<StartedLogin, StateError> {
        if !well_formed(state) {
            return Err(StateError::Unknown);
        }
        let browser = binding.map(digest).ok_or(StateError::OtherBrowser)?;
        let key = Self::key(state);
        let unavailable = |e: Unanswered| StateError::Unavailable(e.to_string());
        let attrs = bounded(self.store_timeout, Some(deadline), self.store.get(&key))
            .await
            .map_err(unavailable)?
            .filter(|attrs| !attrs.is_expired_at(self.clock.now_secs()))
            .ok_or(StateError::Unknown)?;
        if attrs.str_attr("browser") != Some(browser.as_str()) {
            return Err(StateError::OtherBrowser);
        }
        let delete = self.store.delete(&key, Condition::Always);
        bounded(self.store_timeout, Some(deadline), delete)
            .await
            .map_err(unavailable)?;
        Ok(started(&attrs))
    }

    /// Unbinds `state` from `code` after WeChat refused the code (best effort: the state expires anyway).
    pub async fn unbind(&self, state: &str, code: &str, deadline: &Deadline) {
        let update = Update::new()
            .remove("code")
            .when(Condition::ItemPresent.and(Condition::equals("code", digest(code))));
        if let Err(error) = bounded(
            self.store_timeout,
            Some(deadline),
            self.store.update(&Self::key(state), update),
        )
        .await
        {
            tracing::debug!(target: "wechat_ha::auth", reason = %error, "could not unbind the login state; it expires by itself");
        }
    }
}

fn started(attrs: &Attrs) -> StartedLogin {
    StartedLogin {
        return_to: attrs.str_attr("return_to").unwrap_or("/").to_owned(),
        scope: attrs.str_attr("scope").unwrap_or("snsapi_base").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    fn states() -> (LoginStates, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        (LoginStates::new(store, clock.clone(), Duration::from_secs(1)), clock)
    }

    #[tokio::test]
    async fn a_state_binds_to_its_browser_and_its_first_code() {
        let (states, _) = states();
        let deadline = Deadline::after(Duration::from_secs(1));
        let state = states
            .start("browser-a", "/me", "snsapi_base", &deadline)
            .await
            .unwrap();
        assert_eq!(state.len(), 64);
        assert_eq!(
            states.bind(&state, Some("browser-b"), "c1", &deadline).await,
            Err(StateError::OtherBrowser)
        );
        assert_eq!(
            states.bind(&state, None, "c1", &deadline).await,
            Err(StateError::OtherBrowser)
        );
        let started = states.bind(&state, Some("browser-a"), "c1", &deadline).await.unwrap();
        assert_eq!(started.return_to, "/me");
        assert!(
            states.bind(&state, Some("browser-a"), "c1", &deadline).await.is_ok(),
            "same code again"
        );
        assert_eq!(
            states.bind(&state, Some("browser-a"), "c2", &deadline).await,
            Err(StateError::OtherCode)
        );
        states.unbind(&state, "c1", &deadline).await;
        assert!(
            states.bind(&state, Some("browser-a"), "c2", &deadline).await.is_ok(),
            "after a refused code"
        );
    }

    #[tokio::test]
    async fn forged_and_expired_states_are_unknown() {
        let (states, clock) = states();
        let deadline = Deadline::after(Duration::from_secs(1));
        for forged in ["", "abc", &"f".repeat(64), &"z".repeat(64)] {
            assert_eq!(
                states.bind(forged, Some("b"), "c", &deadline).await,
                Err(StateError::Unknown),
                "{forged}"
            );
        }
        let state = states.start("b", "/", "snsapi_base", &deadline).await.unwrap();
        clock.advance(crate::clock::millis(STATE_TTL));
        assert_eq!(
            states.bind(&state, Some("b"), "c", &deadline).await,
            Err(StateError::Unknown)
        );
    }
}
