//! The logins: a web-authorization code or a mini-program code exchanged exactly once for a
//! session, the phone number behind a phone code, and a web profile kept fresh with the user's
//! refresh token.
//!
//! **Exactly once.** A code is exchanged through [`Ledger::run_once`] keyed on its SHA-256
//! (namespace `authonce`), so two requests carrying one code — a double tap, a client retry, two
//! instances — make one WeChat call and one session: the second waits for the first and gets
//! the same session. What the ledger answers a request that arrives *after* the first one
//! finished is a replay: refused (400), nothing stored — a code is good for one login, and a
//! copy of it is not a second key to the account. A web duplicate must also carry the same
//! `state` (the same browser, see `state.rs`).
//!
//! **WeChat down.** Every call goes through the resilient client (per-API policy, breaker,
//! failover); what it cannot do within the login budget is [`LoginError::Unavailable`] (503).
//! Existing sessions never call WeChat to be valid: they keep working.

use std::future::Future;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::{Session, SessionId, SessionKind, SessionSecrets, Sessions};
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::ledger::{Ledger, LedgerError, RunOnce, Wait};
use crate::secret::Secret;
use crate::wechat::{ErrcodeClass, OauthGrant, PhoneNumber, WechatClient, WechatError};

/// WeChat's "invalid code" (also: a code of another app, or expired).
const INVALID_CODE: i64 = 40029;
/// WeChat's "code been used".
const CODE_USED: i64 = 40163;
/// WeChat's "code expired".
const CODE_EXPIRED: i64 = 42003;
/// jscode2session: login blocked for a high-risk user.
const CODE_BLOCKED: i64 = 40226;
/// The refresh token is invalid or expired: the user must authorize again.
const REFRESH_INVALID: [i64; 2] = [40030, 42002];
/// A profile read gets this long at most inside a login (the session is made without it).
const PROFILE_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// Why a login did not end in a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// WeChat refused the code: invalid, expired or used elsewhere.
    #[error("WeChat refused the code (errcode {0})")]
    CodeRefused(i64),
    /// This code was exchanged already, by a request that finished before this one arrived
    /// (or by another login attempt).
    #[error("the code was used already")]
    Replayed,
    /// WeChat blocks this user's login (40226).
    #[error("WeChat blocked this login (errcode 40226)")]
    Blocked,
    /// A "snapshot page" virtual user: no real identity to sign in.
    #[error("a WeChat snapshot-page user cannot sign in")]
    SnapshotUser,
    /// The same code is being exchanged and did not finish within this request's budget.
    #[error("this code is being exchanged by another request")]
    InProgress,
    /// WeChat's per-user minute quota (45011).
    #[error("too many logins for this user this minute")]
    Throttled,
    /// WeChat could not be reached or answered within the budget (breaker open, timeouts,
    /// busy): the user may try again.
    #[error("WeChat unavailable: {0}")]
    Unavailable(String),
    /// The deployment is wrong (AppSecret, IP whitelist, API not granted).
    #[error("login misconfigured: {0}")]
    Misconfigured(String),
    /// The state store did not answer.
    #[error("state store unavailable: {0}")]
    Store(String),
    /// A record the ledger could not read.
    #[error("{0}")]
    Internal(String),
}

impl LoginError {
    /// The `outcome` label of `wechat_auth_logins_total`.
    pub const fn outcome(&self) -> &'static str {
        match self {
            Self::CodeRefused(_) | Self::Replayed => "rejected_code",
            Self::Blocked | Self::SnapshotUser => "blocked",
            Self::Throttled => "throttled",
            Self::Unavailable(_) | Self::Store(_) | Self::InProgress => "unavailable",
            Self::Misconfigured(_) | Self::Internal(_) => "error",
        }
    }

    /// What a WeChat error means for a code exchange.
    pub fn from_wechat(error: WechatError) -> Self {
        match &error {
            WechatError::Api(answer) => match answer.errcode {
                INVALID_CODE | CODE_USED | CODE_EXPIRED => Self::CodeRefused(answer.errcode),
                CODE_BLOCKED => Self::Blocked,
                _ => match answer.class() {
                    ErrcodeClass::Throttled => Self::Throttled,
                    ErrcodeClass::Config | ErrcodeClass::TokenInvalid => Self::Misconfigured(error.to_string()),
                    ErrcodeClass::Busy | ErrcodeClass::QuotaExhausted => Self::Unavailable(error.to_string()),
                    ErrcodeClass::Rejected => Self::CodeRefused(answer.errcode),
                },
            },
            _ => Self::Unavailable(error.to_string()),
        }
    }
}

impl From<LedgerError> for LoginError {
    fn from(error: LedgerError) -> Self {
        if error.is_outage() || matches!(error, LedgerError::DeadlineExceeded) {
            Self::Store(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl From<super::session::SessionError> for LoginError {
    fn from(error: super::session::SessionError) -> Self {
        Self::Store(error.to_string())
    }
}

/// What an exchange recorded: enough for a concurrent duplicate to answer the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchanged<T> {
    /// What the exchange produced (a new session, a phone number).
    pub result: T,
    /// Who may share it: the state's digest (web), the session's digest (phone), or none.
    pub bound_to: Option<String>,
    /// When the exchange finished (epoch ms): a duplicate arriving later is a replay.
    pub completed_ms: i64,
}

/// A session a login made, as recorded for its duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// The session id (kept in the ledger only as long as duplicates are answered).
    pub id: String,
    /// The user.
    pub openid: String,
    /// Across accounts.
    pub unionid: Option<String>,
    /// When it ends (epoch ms).
    pub expires_ms: i64,
}

impl NewSession {
    /// What a login made, as answered and recorded for its duplicates.
    fn of(id: &SessionId, session: Session) -> Self {
        Self {
            id: id.expose().to_owned(),
            openid: session.openid,
            unionid: session.unionid,
            expires_ms: session.expires_ms,
        }
    }
}

/// Whether the request got its own answer or shared a concurrent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// This request made the WeChat call.
    Made,
    /// A concurrent request with the same code made it; this one shares its result.
    Shared,
}

impl Exchange {
    /// The metric word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Made => "ok",
            Self::Shared => "duplicate",
        }
    }
}

/// The SHA-256 of `text`, hex (codes and states are never stored as given).
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Runs `work` once for `code` in `scope`: shared with a concurrent duplicate bound to the same
/// `bound_to`, refused as a replay otherwise.
pub async fn exchange_once<T, F, Fut>(
    ledger: &Ledger,
    clock: &SharedClock,
    (scope, code): (&str, &str),
    bound_to: Option<String>,
    arrived_ms: i64,
    deadline: Deadline,
    work: F,
) -> Result<(T, Exchange), LoginError>
where
    T: Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, LoginError>>,
{
    let key = digest(code);
    let bound = bound_to.clone();
    let outcome = ledger
        .run_once(
            scope,
            &key,
            deadline,
            Wait::Until(deadline.instant()),
            move || async move {
                let result = work().await?;
                Ok::<_, LoginError>(Exchanged {
                    result,
                    bound_to: bound,
                    completed_ms: clock.now_ms(),
                })
            },
        )
        .await?;
    match outcome {
        RunOnce::Ran(done) | RunOnce::Unrecorded(done, _) => Ok((done.result, Exchange::Made)),
        RunOnce::Replayed(done) if done.bound_to == bound_to && arrived_ms <= done.completed_ms => {
            Ok((done.result, Exchange::Shared))
        }
        RunOnce::Replayed(_) => Err(LoginError::Replayed),
        RunOnce::Busy => Err(LoginError::InProgress),
        RunOnce::Failed(error) => Err(error),
    }
}

/// A web-authorization code's grant, profile (scope `snsapi_userinfo`, best effort) and new session.
///
/// # Errors
/// [`LoginError`] from WeChat or the store.
pub async fn web_session(
    client: &WechatClient,
    sessions: &Sessions,
    clock: &SharedClock,
    code: &str,
    deadline: Deadline,
) -> Result<NewSession, LoginError> {
    let grant = client
        .exchange_oauth_code(code, deadline)
        .await
        .map_err(LoginError::from_wechat)?;
    if grant.is_snapshot_user {
        return Err(LoginError::SnapshotUser);
    }
    let mut session = Session {
        kind: SessionKind::Web,
        appid: client.appid().to_owned(),
        openid: grant.openid.clone(),
        unionid: grant.unionid.clone(),
        scope: grant.scope.clone(),
        profile: None,
        profile_ms: None,
        created_ms: 0,
        expires_ms: 0,
        secrets: secrets_of(&grant, clock.now_ms()),
    };
    if session.has_userinfo_scope() {
        let budget = deadline.capped(PROFILE_BUDGET);
        match client.oauth_userinfo(&grant.access_token, &grant.openid, budget).await {
            Ok(profile) => {
                session.unionid = session.unionid.or_else(|| text_field(&profile, "unionid"));
                session.profile = Some(profile);
                session.profile_ms = Some(clock.now_ms());
            }
            // The login stands without it; `/me` fetches it later.
            Err(error) => tracing::warn!(target: "wechat_ha::auth", reason = %error, "profile not fetched at login"),
        }
    }
    let (id, session) = sessions.create(session, &deadline).await?;
    Ok(NewSession::of(&id, session))
}

/// A mini-program code's openid and session_key in a new session.
///
/// # Errors
/// [`LoginError`] from WeChat or the store.
pub async fn miniprogram_session(
    client: &WechatClient,
    sessions: &Sessions,
    code: &str,
    deadline: Deadline,
) -> Result<NewSession, LoginError> {
    let login = client
        .code_to_session(code, deadline)
        .await
        .map_err(LoginError::from_wechat)?;
    let session = Session {
        kind: SessionKind::MiniProgram,
        appid: client.appid().to_owned(),
        openid: login.openid,
        unionid: login.unionid,
        scope: String::new(),
        profile: None,
        profile_ms: None,
        created_ms: 0,
        expires_ms: 0,
        secrets: SessionSecrets {
            session_key: Some(login.session_key),
            ..SessionSecrets::default()
        },
    };
    let (id, session) = sessions.create(session, &deadline).await?;
    Ok(NewSession::of(&id, session))
}

/// The phone number behind a phone `code`, checked to be issued for this mini-program.
///
/// # Errors
/// [`LoginError`] from WeChat; [`LoginError::Misconfigured`] for another app's watermark.
pub async fn phone_number(
    client: &WechatClient,
    session: &Session,
    code: &str,
    deadline: Deadline,
) -> Result<PhoneNumber, LoginError> {
    let number = client
        .phone_number(code, &session.openid, deadline)
        .await
        .map_err(LoginError::from_wechat)?;
    if !number.watermark_appid.is_empty() && number.watermark_appid != client.appid() {
        return Err(LoginError::Misconfigured(format!(
            "phone number watermarked for {}",
            number.watermark_appid
        )));
    }
    Ok(number)
}

/// How fresh the profile `/me` answers is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileState {
    /// No profile for this session (scope `snsapi_base`, mini-programs).
    None,
    /// Within `AUTH_PROFILE_MAX_AGE_SECS`.
    Fresh,
    /// Just fetched again from WeChat.
    Refreshed,
    /// Older than the limit: WeChat could not be asked now (it is served as it was).
    Stale,
    /// The refresh token expired: only a new authorization renews the profile.
    Reauthorize,
}

impl ProfileState {
    /// The word in `/me`'s answer and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fresh => "fresh",
            Self::Refreshed => "refreshed",
            Self::Stale => "stale",
            Self::Reauthorize => "reauthorize",
        }
    }
}

/// Refreshes a web session's profile when it is older than `max_age_ms`: the user's access
/// token (renewed with the refresh token when expired, or refused once), then `/sns/userinfo`;
/// the result is stored in the session. WeChat failing leaves the session as it was.
pub async fn refresh_profile(
    client: &WechatClient,
    sessions: &Sessions,
    clock: &SharedClock,
    (id, session): (&SessionId, &mut Session),
    max_age_ms: i64,
    deadline: Deadline,
) -> ProfileState {
    if session.kind != SessionKind::Web || !session.has_userinfo_scope() {
        return ProfileState::None;
    }
    let now = clock.now_ms();
    if session.profile.is_some() && session.profile_ms.is_some_and(|at| now - at < max_age_ms) {
        return ProfileState::Fresh;
    }
    let state = match fetch_profile(client, clock, session, deadline).await {
        Ok(()) => ProfileState::Refreshed,
        Err(ProfileError::Reauthorize) => return ProfileState::Reauthorize,
        Err(ProfileError::Unavailable(reason)) => {
            tracing::warn!(target: "wechat_ha::auth", %reason, "profile not refreshed; serving the stored one");
            return ProfileState::Stale;
        }
    };
    if let Err(error) = sessions.refresh(id, session, &deadline).await {
        tracing::warn!(target: "wechat_ha::auth", reason = %error, "refreshed profile not stored");
    }
    state
}

enum ProfileError {
    Reauthorize,
    Unavailable(String),
}

async fn fetch_profile(
    client: &WechatClient,
    clock: &SharedClock,
    session: &mut Session,
    deadline: Deadline,
) -> Result<(), ProfileError> {
    let now = clock.now_ms();
    // A token about to expire is renewed first (a minute of margin for the call itself).
    let mut renewed = false;
    if session.secrets.access_token.is_none() || session.secrets.access_expires_ms <= now + 60_000 {
        renew(client, clock, session, deadline).await?;
        renewed = true;
    }
    loop {
        let Some(token) = session.secrets.access_token.clone() else {
            return Err(ProfileError::Reauthorize);
        };
        match client.oauth_userinfo(&token, &session.openid, deadline).await {
            Ok(profile) => {
                session.unionid = session.unionid.take().or_else(|| text_field(&profile, "unionid"));
                session.profile = Some(profile);
                session.profile_ms = Some(clock.now_ms());
                return Ok(());
            }
            Err(WechatError::Api(answer)) if answer.is_token_invalid() && !renewed => {
                renew(client, clock, session, deadline).await?;
                renewed = true;
            }
            Err(error) => return Err(ProfileError::Unavailable(error.to_string())),
        }
    }
}

async fn renew(
    client: &WechatClient,
    clock: &SharedClock,
    session: &mut Session,
    deadline: Deadline,
) -> Result<(), ProfileError> {
    let refresh_token = session.secrets.refresh_token.clone().ok_or(ProfileError::Reauthorize)?;
    match client.refresh_oauth(&refresh_token, deadline).await {
        Ok(grant) => {
            session.secrets = secrets_of(&grant, clock.now_ms());
            Ok(())
        }
        Err(WechatError::Api(answer)) if REFRESH_INVALID.contains(&answer.errcode) => Err(ProfileError::Reauthorize),
        Err(error) => Err(ProfileError::Unavailable(error.to_string())),
    }
}

fn secrets_of(grant: &OauthGrant, now_ms: i64) -> SessionSecrets {
    SessionSecrets {
        session_key: None,
        access_token: Some(grant.access_token.clone()),
        access_expires_ms: now_ms.saturating_add(grant.expires_in.saturating_mul(1000)),
        refresh_token: Some(grant.refresh_token.clone()).filter(|t: &Secret| !t.expose().is_empty()),
    }
}

fn text_field(value: &serde_json::Value, name: &str) -> Option<String> {
    value
        .get(name)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::Errcode;

    fn api(errcode: i64) -> WechatError {
        WechatError::Api(Errcode {
            errcode,
            errmsg: String::new(),
        })
    }

    #[test]
    fn refused_codes_are_the_callers_fault_and_an_unreachable_wechat_is_not() {
        for code in [40029, 40163, 42003] {
            assert!(matches!(LoginError::from_wechat(api(code)), LoginError::CodeRefused(c) if c == code));
        }
        assert!(matches!(LoginError::from_wechat(api(40226)), LoginError::Blocked));
        assert!(matches!(LoginError::from_wechat(api(45011)), LoginError::Throttled));
        assert!(matches!(
            LoginError::from_wechat(api(40125)),
            LoginError::Misconfigured(_)
        ));
        assert!(matches!(LoginError::from_wechat(api(-1)), LoginError::Unavailable(_)));
        let down = WechatError::CircuitOpen("wechat.oauth: open".into());
        assert!(matches!(LoginError::from_wechat(down), LoginError::Unavailable(_)));
        let timeout = WechatError::Timeout { domain: "api".into() };
        assert!(matches!(LoginError::from_wechat(timeout), LoginError::Unavailable(_)));
    }
}
