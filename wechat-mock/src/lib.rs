//! A real HTTP mock of WeChat's API with fault injection, for tests and local runs.
//!
//! It implements the endpoints wechat-ha calls — `GET /cgi-bin/token` (classic: every call issues a
//! new token, the previous one stays valid for [`MockConfig::classic_grace_ms`]), `POST
//! /cgi-bin/stable_token` (same token while valid; `force_refresh` rotates, ≤ 20/day, ≥ 30 s apart),
//! `GET /cgi-bin/ticket/getticket`, and the custom / template / subscribe message sends — with
//! WeChat's JSON answers and error codes (40001, 42001, 40013, 40125, 41001, 45009, 45011, 47001) —
//! and the user logins: the web authorization page, `/sns/oauth2/*`, `/sns/userinfo`,
//! `/sns/jscode2session` and the phone-number API (`login.rs`), with control routes that play
//! the user's side (`control_login.rs`) — and the follower endpoints over a generated population
//! ([`MockConfig::with_followers`]): `GET /cgi-bin/user/get` (pages of [`PAGE_SIZE`] openids),
//! `POST /cgi-bin/user/info/batchget` (≤ [`BATCHGET_LIMIT`] records; 40003, 40032) and
//! `GET /cgi-bin/tags/get` (`followers.rs`), with control routes that subscribe and unsubscribe
//! followers (`control_followers.rs`).
//!
//! Several "domains" (e.g. `api` and `api2`) are separate listeners sharing one state, so a test
//! can make one refuse connections ([`MockHandle::set_domain_down`]) while the other answers, and
//! counters tell which domain got each call. A [`BlackHole`] is a port whose connections never
//! complete (a domain whose packets are dropped). Faults ([`Fault`]) fail the next N calls per path and
//! domain with an errcode, an HTTP status, a delay or a dropped connection. Everything is also
//! reachable over HTTP under `/__mock/...` (see [`control`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let mock = wechat_mock::MockServer::new().domain("api").domain("api2").start().await?;
//! mock.inject(wechat_mock::Fault::status(503).on_domain("api").times(3));
//! let primary = mock.base_url("api");
//! # Ok(()) }
//! ```

mod api;
mod blackhole;
mod config;
pub mod control;
mod control_followers;
mod control_login;
mod faults;
mod followers;
mod handle;
mod login;
mod server;
mod state;
mod tokens;
mod users;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};

pub use api::CALLBACK_IPS;
pub use blackhole::BlackHole;
pub use config::{
    DEFAULT_APPID, DEFAULT_MINIPROGRAM_APPID, DEFAULT_MINIPROGRAM_SECRET, DEFAULT_SECRET, MockConfig, TimeSource,
};
pub use faults::{Fault, FaultKind};
pub use followers::{BATCHGET_LIMIT, MAX_FOLLOWERS, PAGE_SIZE, follower_openid, follower_unionid};
pub use handle::MockHandle;
pub use state::{Counters, SentMessage};
pub use tokens::WxError;
pub use users::{DEFAULT_USER, openid, unionid};

use crate::state::MockState;

/// Builds the router: WeChat routes behind the fault middleware, control routes beside them.
fn router(state: Arc<MockState>) -> Router {
    let wechat = Router::new()
        .route("/cgi-bin/token", get(api::classic_token))
        .route("/cgi-bin/stable_token", post(api::stable_token))
        .route("/cgi-bin/ticket/getticket", get(api::get_ticket))
        .route("/cgi-bin/message/custom/send", post(api::custom_send))
        .route("/cgi-bin/message/template/send", post(api::template_send))
        .route("/cgi-bin/message/subscribe/send", post(api::subscribe_send))
        .route("/connect/oauth2/authorize", get(login::authorize))
        .route("/sns/oauth2/access_token", get(login::oauth_access_token))
        .route("/sns/oauth2/refresh_token", get(login::oauth_refresh))
        .route("/sns/userinfo", get(login::userinfo))
        .route("/sns/jscode2session", get(login::jscode2session))
        .route("/wxa/business/getuserphonenumber", post(login::phone_number))
        .route("/cgi-bin/user/get", get(followers::user_get))
        .route("/cgi-bin/user/info/batchget", post(followers::batchget))
        .route("/cgi-bin/tags/get", get(followers::tags_get))
        .route("/cgi-bin/get_callback_ip", get(api::callback_ip))
        .layer(axum::middleware::from_fn_with_state(state.clone(), faults::inject));
    let control = Router::new()
        .route("/__mock/faults", post(control::add_fault).delete(control::clear_faults))
        .route("/__mock/tokens/invalidate", post(control::invalidate))
        .route("/__mock/time", post(control::time))
        .route("/__mock/counters", get(control::counters))
        .route("/__mock/messages", get(control::messages))
        .route("/__mock/reset", post(control::reset))
        .route("/__mock/oauth/code", post(control_login::oauth_code))
        .route("/__mock/miniprogram/code", post(control_login::miniprogram_code))
        .route("/__mock/miniprogram/phone_code", post(control_login::phone_code))
        .route("/__mock/miniprogram/encrypt", post(control_login::encrypt))
        .route("/__mock/followers", get(control_followers::summary))
        .route("/__mock/followers/subscribe", post(control_followers::subscribe))
        .route("/__mock/followers/unsubscribe", post(control_followers::unsubscribe));
    wechat.merge(control).with_state(state)
}

/// A mock builder: configuration plus named domains (listeners).
#[derive(Debug, Default)]
pub struct MockServer {
    config: MockConfig,
    domains: Vec<(String, SocketAddr)>,
}

impl MockServer {
    /// A mock with the default configuration and no domain yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: MockConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds a domain listening on an ephemeral localhost port.
    pub fn domain(self, name: &str) -> Self {
        self.domain_at(name, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Adds a domain listening on `addr`.
    pub fn domain_at(mut self, name: &str, addr: SocketAddr) -> Self {
        self.domains.push((name.to_owned(), addr));
        self
    }

    /// Binds every domain (one `api` domain if none was added) and starts serving.
    ///
    /// # Errors
    /// The first bind error.
    pub async fn start(self) -> std::io::Result<MockHandle> {
        let state = Arc::new(MockState::new(self.config));
        let router = router(state.clone());
        let mut domains = self.domains;
        if domains.is_empty() {
            domains.push(("api".to_owned(), SocketAddr::from(([127, 0, 0, 1], 0))));
        }
        let mut bound = BTreeMap::new();
        for (name, addr) in domains {
            let listener = server::spawn_listener(addr, &name, router.clone()).await?;
            bound.insert(name, (listener.addr, Some(listener)));
        }
        Ok(MockHandle {
            state,
            router,
            domains: Arc::new(Mutex::new(bound)),
        })
    }
}

/// Starts a one-domain (`api`) mock with the default configuration on `addr` (port 0 = any).
///
/// # Errors
/// The bind error.
pub async fn serve(addr: SocketAddr) -> std::io::Result<(SocketAddr, MockHandle)> {
    let handle = MockServer::new().domain_at("api", addr).start().await?;
    let bound = handle.addr("api").unwrap_or(addr);
    Ok((bound, handle))
}
