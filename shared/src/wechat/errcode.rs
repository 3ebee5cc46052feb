//! WeChat's `errcode` answers as a typed error, and the one table of what each code means.
//!
//! The table is `wechat-protocol.md` §1.6: token errors are fixed by refreshing the token once,
//! "system busy" by backing off, the minute quota by backing off slowly, configuration and quota
//! errors by nothing a retry could do. [`classify`](super::classify) turns a class into a retry
//! outcome; the token manager and the delivery path read the same class — nothing else in the
//! crate interprets an errcode.

use std::fmt;

use serde::Deserialize;

/// System busy.
pub const SYSTEM_BUSY: i64 = -1;
/// Invalid credential: wrong secret, or the token is invalid / "not latest".
pub const INVALID_CREDENTIAL: i64 = 40001;
/// Invalid access_token.
pub const INVALID_ACCESS_TOKEN: i64 = 40014;
/// access_token expired.
pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
/// Daily API quota reached.
pub const DAILY_QUOTA: i64 = 45009;
/// API called too frequently (minute quota).
pub const MINUTE_QUOTA: i64 = 45011;
/// Caller IP not in the whitelist.
pub const IP_NOT_WHITELISTED: i64 = 40164;
/// Invalid AppID.
pub const INVALID_APPID: i64 = 40013;
/// Invalid AppSecret.
pub const INVALID_APPSECRET: i64 = 40125;
/// Invalid grant_type.
pub const INVALID_GRANT_TYPE: i64 = 40002;
/// API not authorized for this account.
pub const API_UNAUTHORIZED: i64 = 48001;
/// A component (third-party platform) account must use the component token.
pub const COMPONENT_ACCOUNT: i64 = 61024;

/// What a WeChat error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrcodeClass {
    /// The access token is bad: invalidate it (compare-and-set), refresh and call once more.
    TokenInvalid,
    /// Transient on WeChat's side (-1, system busy): retry with backoff.
    Busy,
    /// Too many calls this minute (45011): retry with the slow backoff.
    Throttled,
    /// The daily quota is spent (45009): nothing helps until the daily reset.
    QuotaExhausted,
    /// Configuration or infrastructure (bad AppID/secret, IP whitelist, API not authorized): fix
    /// the deployment.
    Config,
    /// Anything else (parameter errors, 48 h window, not followed, …): the request itself is wrong.
    Rejected,
}

impl ErrcodeClass {
    /// The class of `errcode` (non-zero). Unknown codes are `Rejected`: never blindly retried.
    pub const fn of(errcode: i64) -> Self {
        match errcode {
            INVALID_CREDENTIAL | INVALID_ACCESS_TOKEN | ACCESS_TOKEN_EXPIRED => Self::TokenInvalid,
            SYSTEM_BUSY => Self::Busy,
            MINUTE_QUOTA => Self::Throttled,
            DAILY_QUOTA => Self::QuotaExhausted,
            IP_NOT_WHITELISTED | INVALID_APPID | INVALID_APPSECRET | INVALID_GRANT_TYPE | COMPONENT_ACCOUNT
            | API_UNAUTHORIZED => Self::Config,
            _ => Self::Rejected,
        }
    }
}

/// A WeChat error answer: `{"errcode": n, "errmsg": "..."}` with `n != 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Errcode {
    /// WeChat's code.
    pub errcode: i64,
    /// WeChat's message (contains a request id, never a secret).
    pub errmsg: String,
}

impl fmt::Display for Errcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wechat errcode {}: {}", self.errcode, self.errmsg)
    }
}

impl Errcode {
    /// What the code means.
    pub const fn class(&self) -> ErrcodeClass {
        ErrcodeClass::of(self.errcode)
    }

    /// Whether the access token must be refreshed before calling again.
    pub fn is_token_invalid(&self) -> bool {
        self.class() == ErrcodeClass::TokenInvalid
    }
}

/// The error part every WeChat JSON answer may carry.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Status {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

impl Status {
    /// `Err` when the answer carries a non-zero errcode.
    pub(crate) fn check(self) -> Result<(), Errcode> {
        if self.errcode == 0 {
            Ok(())
        } else {
            Err(Errcode {
                errcode: self.errcode,
                errmsg: self.errmsg,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_refresh_busy_retries_and_the_minute_quota_slows_down() {
        for code in [40001, 40014, 42001] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::TokenInvalid);
        }
        assert_eq!(ErrcodeClass::of(-1), ErrcodeClass::Busy);
        assert_eq!(ErrcodeClass::of(45011), ErrcodeClass::Throttled);
    }

    #[test]
    fn quota_config_and_parameter_errors_are_never_retried() {
        assert_eq!(ErrcodeClass::of(45009), ErrcodeClass::QuotaExhausted);
        for code in [40164, 40013, 40125, 40002, 61024, 48001] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::Config, "{code}");
        }
        for code in [40003, 43004, 47001, 45015, 45047, 99999] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::Rejected, "{code}");
        }
    }

    #[test]
    fn status_with_zero_errcode_is_ok() {
        let ok: Status = serde_json::from_str(r#"{"access_token":"x","expires_in":7200}"#).expect("json");
        assert!(ok.check().is_ok());
        let err: Status = serde_json::from_str(r#"{"errcode":45009,"errmsg":"quota"}"#).expect("json");
        assert_eq!(err.check().map_err(|e| e.errcode), Err(45009));
    }
}
