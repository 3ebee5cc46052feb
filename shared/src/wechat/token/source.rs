//! Where fresh credentials come from: the upstream WeChat endpoints, behind a small trait so the
//! token manager's fleet logic is tested without HTTP and the client plugs its transport in.

use std::fmt;

use async_trait::async_trait;

use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::wechat::error::WechatError;

/// A credential as WeChat handed it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The token or ticket.
    pub value: Secret,
    /// Its lifetime in seconds (`expires_in`).
    pub expires_in_secs: i64,
}

/// Fetches credentials from WeChat.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A new access token; `force_refresh` asks stable_token to rotate (ignored by the classic
    /// endpoint, where every call rotates).
    async fn access_token(&self, force_refresh: bool, deadline: Deadline) -> Result<Fetched, WechatError>;

    /// A jsapi ticket, fetched with `access_token`.
    async fn jsapi_ticket(&self, access_token: &Secret, deadline: Deadline) -> Result<Fetched, WechatError>;
}

const _: Option<&dyn TokenSource> = None; // object safety, checked at compile time

/// Which access-token endpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// `POST /cgi-bin/stable_token` (the default): repeated calls return the same token, so
    /// instances that refresh independently do not invalidate each other.
    #[default]
    Stable,
    /// `GET /cgi-bin/token`: every call invalidates the previous token (after a 5-minute overlap).
    Classic,
}

impl TokenMode {
    /// The configuration spelling (`stable` / `classic`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Classic => "classic",
        }
    }
}

impl std::str::FromStr for TokenMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "stable" => Ok(Self::Stable),
            "classic" => Ok(Self::Classic),
            _ => Err(()),
        }
    }
}
