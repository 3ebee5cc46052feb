//! The per-API policy table: every WeChat API we call, its path, and how it is guarded.
//!
//! Defaults follow WeChat semantics (`wechat-protocol.md` §1.6). What a failure means for a retry
//! and for the move to the next domain within one attempt (`failover.rs`):
//!
//! | failure | processed? | idempotent API (token, ticket) | send |
//! |---|---|---|---|
//! | connection not made (refused, connect timeout), HTTP 502 / 503 | no | next domain at once | next domain at once |
//! | HTTP 429 | no (throttled) | retry, slower | retry, slower |
//! | timeout, broken connection, HTTP 500/504, bad JSON | maybe | next domain at once | never (in doubt: may be delivered) |
//! | errcode -1, 45011 | no (busy) | retry | retry |
//! | 40001/40014/42001 | no | — (the caller refreshes) | one more call with a fresh token |
//! | 45009 | no | token endpoints blocked until the daily reset | this API blocked until the reset |
//! | other errcodes (40029, 40163 for a used login code, …) | no | never | never |
//!
//! The login APIs that consume a one-time code (`oauth_code`, `jscode2session`, `phone_number`)
//! are not idempotent: they follow the "send" column. Refreshing a user's token and reading a
//! profile are.
//!
//! Each API's policy can be overridden without a rebuild (`WECHAT_POLICY_<API>`, read by the
//! configuration module); `idempotent=true` on a send makes the "maybe processed" row retry too.

use std::time::Duration;

/// A WeChat API this client calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// `POST /cgi-bin/stable_token`.
    StableToken,
    /// `GET /cgi-bin/token` (classic).
    Token,
    /// `GET /cgi-bin/ticket/getticket`.
    Ticket,
    /// `POST /cgi-bin/message/custom/send`.
    CustomSend,
    /// `POST /cgi-bin/message/template/send`.
    TemplateSend,
    /// `POST /cgi-bin/message/subscribe/send`.
    SubscribeSend,
    /// `GET /sns/oauth2/access_token`: a web-authorization code for the user's token (single use).
    OauthCode,
    /// `GET /sns/oauth2/refresh_token`: renews a user's web-authorization token.
    OauthRefresh,
    /// `GET /sns/userinfo`: a user's profile (scope `snsapi_userinfo`).
    OauthUserinfo,
    /// `GET /sns/jscode2session`: a mini-program `wx.login` code for openid and session_key (single use).
    JsCodeSession,
    /// `POST /wxa/business/getuserphonenumber`: a mini-program phone code for the number (single use).
    PhoneNumber,
    /// `GET /cgi-bin/user/get`: a page of up to 10,000 follower openids.
    UserList,
    /// `POST /cgi-bin/user/info/batchget`: up to 100 followers' profiles.
    UserInfoBatch,
    /// `GET /cgi-bin/tags/get`: the account's tags.
    TagsGet,
    /// `GET /cgi-bin/get_callback_ip`: the addresses WeChat's callback servers send from.
    CallbackIp,
}

impl Api {
    /// Every API, in table order.
    pub const ALL: [Api; 15] = [
        Self::StableToken,
        Self::Token,
        Self::Ticket,
        Self::CustomSend,
        Self::TemplateSend,
        Self::SubscribeSend,
        Self::OauthCode,
        Self::OauthRefresh,
        Self::OauthUserinfo,
        Self::JsCodeSession,
        Self::PhoneNumber,
        Self::UserList,
        Self::UserInfoBatch,
        Self::TagsGet,
        Self::CallbackIp,
    ];

    /// The stable name (logs, metrics, breaker names).
    pub const fn name(self) -> &'static str {
        match self {
            Self::StableToken => "stable_token",
            Self::Token => "token",
            Self::Ticket => "ticket",
            Self::CustomSend => "custom_send",
            Self::TemplateSend => "template_send",
            Self::SubscribeSend => "subscribe_send",
            Self::OauthCode => "oauth_code",
            Self::OauthRefresh => "oauth_refresh",
            Self::OauthUserinfo => "oauth_userinfo",
            Self::JsCodeSession => "jscode2session",
            Self::PhoneNumber => "phone_number",
            Self::UserList => "user_list",
            Self::UserInfoBatch => "user_info_batch",
            Self::TagsGet => "tags_get",
            Self::CallbackIp => "callback_ip",
        }
    }

    /// The URL path under an API base.
    pub const fn path(self) -> &'static str {
        match self {
            Self::StableToken => "/cgi-bin/stable_token",
            Self::Token => "/cgi-bin/token",
            Self::Ticket => "/cgi-bin/ticket/getticket",
            Self::CustomSend => "/cgi-bin/message/custom/send",
            Self::TemplateSend => "/cgi-bin/message/template/send",
            Self::SubscribeSend => "/cgi-bin/message/subscribe/send",
            Self::OauthCode => "/sns/oauth2/access_token",
            Self::OauthRefresh => "/sns/oauth2/refresh_token",
            Self::OauthUserinfo => "/sns/userinfo",
            Self::JsCodeSession => "/sns/jscode2session",
            Self::PhoneNumber => "/wxa/business/getuserphonenumber",
            Self::UserList => "/cgi-bin/user/get",
            Self::UserInfoBatch => "/cgi-bin/user/info/batchget",
            Self::TagsGet => "/cgi-bin/tags/get",
            Self::CallbackIp => "/cgi-bin/get_callback_ip",
        }
    }

    /// Whether the request has a JSON body (POST) or not (GET).
    pub const fn is_post(self) -> bool {
        !matches!(
            self,
            Self::Token
                | Self::Ticket
                | Self::OauthCode
                | Self::OauthRefresh
                | Self::OauthUserinfo
                | Self::JsCodeSession
                | Self::UserList
                | Self::TagsGet
                | Self::CallbackIp
        )
    }

    /// Whether this is a message send (own daily quota per API, see `quota.rs`).
    pub const fn is_send(self) -> bool {
        matches!(self, Self::CustomSend | Self::TemplateSend | Self::SubscribeSend)
    }

    /// The default policy.
    pub fn default_policy(self) -> ApiPolicy {
        let (breaker, idempotent, timeout_ms) = match self {
            Self::StableToken | Self::Token => ("wechat.token", true, 2_000),
            Self::Ticket => ("wechat.ticket", true, 2_000),
            Self::CustomSend | Self::TemplateSend | Self::SubscribeSend => ("wechat.message", false, 3_000),
            // A code is consumed by the call that reaches WeChat: an answer lost on the way (a
            // timeout) must not be resent, the resend would only meet 40163.
            Self::OauthCode => ("wechat.oauth", false, 2_000),
            Self::OauthRefresh | Self::OauthUserinfo => ("wechat.oauth", true, 2_000),
            Self::JsCodeSession | Self::PhoneNumber => ("wechat.miniprogram", false, 2_000),
            // Reads: safe to repeat. A page of 10,000 openids takes longer than a message.
            Self::UserList => ("wechat.user", true, 5_000),
            Self::UserInfoBatch | Self::TagsGet => ("wechat.user", true, 3_000),
            // An hourly read: its own breaker, so it never counts against the token's.
            Self::CallbackIp => ("wechat.ops", true, 3_000),
        };
        ApiPolicy {
            timeout: Duration::from_millis(timeout_ms),
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            idempotent,
            breaker: breaker.to_owned(),
        }
    }
}

/// How one API is called: per-attempt timeout, retries, breaker and idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPolicy {
    /// Per-attempt timeout (1 ms – 30 s); the caller's deadline cuts it shorter.
    pub timeout: Duration,
    /// Attempts in total, including the first (1–10).
    pub max_attempts: u32,
    /// First backoff delay.
    pub base_delay: Duration,
    /// Backoff cap.
    pub max_delay: Duration,
    /// Whether repeating a request that may have been processed is harmless.
    pub idempotent: bool,
    /// The name of the API's circuit breaker (shared by the fleet).
    pub breaker: String,
}

/// The policy of every API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPolicies(Vec<(Api, ApiPolicy)>);

impl Default for ApiPolicies {
    fn default() -> Self {
        Self(Api::ALL.iter().map(|api| (*api, api.default_policy())).collect())
    }
}

impl ApiPolicies {
    /// The policy of `api`.
    pub fn get(&self, api: Api) -> ApiPolicy {
        self.0
            .iter()
            .find(|(a, _)| *a == api)
            .map_or_else(|| api.default_policy(), |(_, p)| p.clone())
    }

    /// Replaces the policy of `api` (tests, the local server).
    pub fn set(&mut self, api: Api, policy: ApiPolicy) {
        match self.0.iter_mut().find(|(a, _)| *a == api) {
            Some(slot) => slot.1 = policy,
            None => self.0.push((api, policy)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_not_idempotent_and_token_fetches_are() {
        let policies = ApiPolicies::default();
        assert!(!policies.get(Api::CustomSend).idempotent);
        assert!(policies.get(Api::StableToken).idempotent);
        assert_eq!(policies.get(Api::Ticket).breaker, "wechat.ticket");
    }
}
