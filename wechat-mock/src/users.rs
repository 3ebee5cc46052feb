//! The mock's users and what WeChat issued them: web-authorization codes and the per-user
//! OAuth tokens, mini-program login codes and session keys, phone codes.
//!
//! A mock user is a name (`alice`); its openid for an app is `o_<appid>_<name>`, its unionid
//! `u_mock_<name>` (one across apps, as WeChat's open platform would give). Codes are single-use
//! and live 5 minutes; user access tokens 2 hours; refresh tokens 30 days. Each map is capped
//! ([`MAX_ENTRIES`], the oldest dropped first) so a long local run stays bounded.

use std::collections::{BTreeMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::tokens::WxError;

/// A code's life (WeChat: 5 minutes).
pub const CODE_TTL_MS: i64 = 5 * 60 * 1000;
/// A user access token's life (WeChat: 7200 s).
pub const USER_TOKEN_TTL_MS: i64 = 7200 * 1000;
/// A refresh token's life (WeChat: 30 days).
pub const REFRESH_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Entries kept per map.
pub const MAX_ENTRIES: usize = 10_000;

/// The user an unnamed request signs in as.
pub const DEFAULT_USER: &str = "alice";

/// A map with insertion order and a cap.
#[derive(Debug)]
pub(crate) struct Capped<V> {
    map: BTreeMap<String, V>,
    order: VecDeque<String>,
}

impl<V> Default for Capped<V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> Capped<V> {
    pub(crate) fn insert(&mut self, key: String, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_ENTRIES {
            if let Some(oldest) = self.order.pop_front() {
                self.map.remove(&oldest);
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A one-time code: who it is for and whether it was used.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub appid: String,
    pub user: String,
    /// Web: the scope granted; phone: the number.
    pub detail: String,
    pub issued_ms: i64,
    pub used: bool,
}

/// A user's web-authorization token (access or refresh).
#[derive(Debug, Clone)]
pub(crate) struct UserToken {
    pub appid: String,
    pub user: String,
    pub scope: String,
    pub expires_ms: i64,
}

/// Everything user-side the mock issued.
#[derive(Debug, Default)]
pub(crate) struct Users {
    pub oauth_codes: Capped<Code>,
    pub access_tokens: Capped<UserToken>,
    pub refresh_tokens: Capped<UserToken>,
    pub wxa_codes: Capped<Code>,
    /// `appid/openid` → the newest session_key.
    pub session_keys: Capped<String>,
    pub phone_codes: Capped<Code>,
}

impl Users {
    /// Every access and refresh token issued (tests check none leaks).
    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        self.access_tokens
            .keys()
            .chain(self.refresh_tokens.keys())
            .cloned()
            .collect()
    }
}

/// The openid of `user` for `appid`.
pub fn openid(appid: &str, user: &str) -> String {
    format!("o_{appid}_{user}")
}

/// The unionid of `user`.
pub fn unionid(user: &str) -> String {
    format!("u_mock_{user}")
}

/// A random opaque value with `prefix`.
pub(crate) fn random_value(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// A random session_key: 16 bytes, base64, as WeChat's.
pub(crate) fn random_session_key() -> String {
    STANDARD.encode(rand::random::<[u8; 16]>())
}

/// Takes a one-time code: unknown 40029, used 40163, expired 42003 (the message never names the code).
pub(crate) fn take_code(codes: &mut Capped<Code>, appid: &str, code: &str, now_ms: i64) -> Result<Code, WxError> {
    let entry = codes
        .get_mut(code)
        .filter(|c| c.appid == appid)
        .ok_or_else(|| WxError::new(40029, "invalid code"))?;
    if entry.used {
        return Err(WxError::new(40163, "code been used"));
    }
    if now_ms - entry.issued_ms > CODE_TTL_MS {
        return Err(WxError::new(42003, "code expired"));
    }
    entry.used = true;
    Ok(entry.clone())
}

/// A mock user name: 1..=32 of `[A-Za-z0-9_-]` (it becomes part of an openid).
pub(crate) fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_good_once_for_five_minutes_and_for_its_app_only() {
        let mut codes = Capped::default();
        let code = |issued_ms| Code {
            appid: "wx1".into(),
            user: "alice".into(),
            detail: String::new(),
            issued_ms,
            used: false,
        };
        codes.insert("c1".into(), code(0));
        assert_eq!(take_code(&mut codes, "wx2", "c1", 0).unwrap_err().errcode, 40029);
        assert_eq!(take_code(&mut codes, "wx1", "c1", 1).unwrap().user, "alice");
        assert_eq!(take_code(&mut codes, "wx1", "c1", 2).unwrap_err().errcode, 40163);
        codes.insert("c2".into(), code(0));
        assert_eq!(
            take_code(&mut codes, "wx1", "c2", CODE_TTL_MS + 1).unwrap_err().errcode,
            42003
        );
        assert_eq!(take_code(&mut codes, "wx1", "nope", 0).unwrap_err().errcode, 40029);
    }

    #[test]
    fn the_maps_are_capped_oldest_first() {
        let mut map = Capped::default();
        for i in 0..=MAX_ENTRIES {
            map.insert(i.to_string(), i);
        }
        assert_eq!(map.len(), MAX_ENTRIES);
        assert!(map.get("0").is_none());
        assert!(map.get(&MAX_ENTRIES.to_string()).is_some());
    }
}
