//! `MockHandle`: the Rust twin of the control API, plus listener control (domain down / up).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;

use crate::control::invalidate_tokens;
use crate::faults::Fault;
use crate::server::{Listener, spawn_listener};
use crate::state::{Counters, MockState, SentMessage};

/// Domain name → its address and, while up, its listener.
type Domains = BTreeMap<String, (SocketAddr, Option<Listener>)>;

/// Controls a running mock. Clones share the same mock; dropping the last clone does not stop it
/// (call [`MockHandle::shutdown`]), so a test can hand clones around freely.
#[derive(Debug, Clone)]
pub struct MockHandle {
    pub(crate) state: Arc<MockState>,
    pub(crate) router: Router,
    pub(crate) domains: Arc<Mutex<Domains>>,
}

impl MockHandle {
    fn domains(&self) -> MutexGuard<'_, Domains> {
        self.domains.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The address of `domain`, if the mock has it.
    pub fn addr(&self, domain: &str) -> Option<SocketAddr> {
        self.domains().get(domain).map(|(addr, _)| *addr)
    }

    /// `http://ip:port` of `domain` (empty string for an unknown domain).
    pub fn base_url(&self, domain: &str) -> String {
        self.addr(domain)
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_default()
    }

    /// Domain names in order of their names.
    pub fn domain_names(&self) -> Vec<String> {
        self.domains().keys().cloned().collect()
    }

    /// Adds a fault rule (first matching rule wins; rules fire in insertion order).
    pub fn inject(&self, fault: Fault) {
        self.state.lock().faults.push(fault);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Invalidates the current access tokens and tickets of `appid` at once (as a leak-driven
    /// `force_refresh` elsewhere would): calls with them get 40001 from now on.
    pub fn invalidate_tokens(&self, appid: &str) {
        invalidate_tokens(&self.state, Some(appid));
    }

    /// The newest current access token of `appid` (stable before classic).
    pub fn current_token(&self, appid: &str) -> Option<String> {
        self.state
            .lock()
            .apps
            .get(appid)
            .and_then(|app| app.current().map(|t| t.value.clone()))
    }

    /// Moves mock time forward by `ms` (on top of the configured time source).
    pub fn advance_time(&self, ms: i64) {
        self.state.lock().offset_ms += ms;
    }

    /// Mock time, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }

    /// A snapshot of the call counters.
    pub fn counters(&self) -> Counters {
        self.state.lock().counters.clone()
    }

    /// Calls to `path` across all domains.
    pub fn calls(&self, path: &str) -> u64 {
        self.counters().path(path)
    }

    /// Calls to `path` on `domain`.
    pub fn calls_on(&self, domain: &str, path: &str) -> u64 {
        self.counters().on(domain, path)
    }

    /// `stable_token` calls with `force_refresh=true` (granted or refused).
    pub fn forced_refreshes(&self) -> u64 {
        self.counters().forced_refreshes
    }

    /// All calls that reached `domain`.
    pub fn domain_calls(&self, domain: &str) -> u64 {
        self.counters().domain(domain)
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.state.lock().messages.clone()
    }

    /// Forgets tokens, faults, counters, messages and the time offset, and regenerates the follower
    /// population (listeners stay as they are).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Takes `domain` down (its port refuses connections, open connections are dropped) or
    /// brings it back up on the same port.
    ///
    /// # Errors
    /// The bind error when the port cannot be taken again; `NotFound` for an unknown domain.
    pub async fn set_domain_down(&self, domain: &str, down: bool) -> io::Result<()> {
        let addr = {
            let mut domains = self.domains();
            let entry = domains
                .get_mut(domain)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown domain"))?;
            if down {
                if let Some(listener) = entry.1.take() {
                    let _ = listener.stop.send(true);
                }
                return Ok(());
            }
            if entry.1.is_some() {
                return Ok(());
            }
            entry.0
        };
        let listener = spawn_listener(addr, domain, self.router.clone()).await?;
        if let Some(entry) = self.domains().get_mut(domain) {
            entry.1 = Some(listener);
        }
        Ok(())
    }

    /// A web-authorization code for `user` of `appid` (as the authorize page would hand the
    /// browser), with `scope`.
    pub fn mint_oauth_code(&self, appid: &str, user: &str, scope: &str) -> String {
        crate::login::mint_oauth_code(&self.state, appid, user, scope)
    }

    /// Issues the given `code` as a web-authorization code (a sample event's fixed code).
    pub fn issue_oauth_code(&self, code: &str, appid: &str, user: &str, scope: &str) {
        crate::login::issue_oauth_code(&self.state, code.to_owned(), appid, user, scope);
    }

    /// Issues the given `code` as a mini-program login code (a sample event's fixed code).
    pub fn issue_miniprogram_code(&self, code: &str, appid: &str, user: &str) {
        crate::login::issue_wxa_code(&self.state, code.to_owned(), appid, user);
    }

    /// A mini-program login code for `user` of `appid` (what `wx.login()` gives).
    pub fn mint_miniprogram_code(&self, appid: &str, user: &str) -> String {
        crate::login::mint_wxa_code(&self.state, appid, user)
    }

    /// A phone code for `phone` in mini-program `appid`.
    pub fn mint_phone_code(&self, appid: &str, phone: &str) -> String {
        crate::login::mint_phone_code(&self.state, appid, phone)
    }

    /// `user`'s data sealed with their newest session_key of `appid`: `(encryptedData, iv)`;
    /// `extra` fields replace the profile's (a `watermark` among them replaces the real one).
    ///
    /// # Errors
    /// The user has not logged in to `appid` yet.
    pub fn encrypt_user_data(
        &self,
        appid: &str,
        user: &str,
        extra: Option<&serde_json::Value>,
    ) -> Result<(String, String), &'static str> {
        crate::control_login::sealed_user_data(&self.state, appid, user, extra)
    }

    /// The newest session_key WeChat gave `user` of `appid` (tests that check it never leaks).
    pub fn session_key(&self, appid: &str, user: &str) -> Option<String> {
        let key = format!("{appid}/{}", crate::users::openid(appid, user));
        self.state.lock().users.session_keys.get(&key).cloned()
    }

    /// Every user access and refresh token issued so far (tests that check none leaks).
    pub fn user_tokens(&self) -> Vec<String> {
        let inner = self.state.lock();
        inner.users.issued_tokens()
    }

    /// Subscribes `openid` to the account at mock time and returns its subscribe_time (epoch s): a
    /// known follower re-subscribes in place, a new one is appended to the list (unionid
    /// `u_<openid>`, no tags). An empty openid (or one over 128 bytes, or a new follower past
    /// [`crate::MAX_FOLLOWERS`]) changes nothing and returns 0.
    pub fn subscribe_follower(&self, openid: &str) -> i64 {
        crate::control_followers::subscribe_now(&self.state, openid).unwrap_or(0)
    }

    /// Unsubscribes `openid` (it keeps its place; `user/get` skips it, batchget answers
    /// `subscribe: 0`); false for an unknown openid.
    pub fn unsubscribe_follower(&self, openid: &str) -> bool {
        self.state.lock().followers.unsubscribe(openid)
    }

    /// Openids of the currently subscribed followers, in list order (as `user/get` pages them).
    pub fn subscribed_followers(&self) -> Vec<String> {
        self.state.lock().followers.subscribed_openids()
    }

    /// The tag ids of follower `openid` (subscribed or not); `None` for an unknown openid.
    pub fn follower_tags(&self, openid: &str) -> Option<Vec<i64>> {
        self.state.lock().followers.tags_of_openid(openid)
    }

    /// Stops every listener.
    pub fn shutdown(&self) {
        for (_, listener) in self.domains().values_mut() {
            if let Some(listener) = listener.take() {
                let _ = listener.stop.send(true);
            }
        }
    }
}
