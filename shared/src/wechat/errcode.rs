//! WeChat's `errcode` answers as a typed error, and what each code means for retrying.
//!
//! The table is `wechat-protocol.md` §1.6: token errors are fixed by refreshing the token once,
//! "system busy" and the minute quota by backing off, configuration and quota errors by nothing
//! a retry could do.

use std::fmt;

use serde::Deserialize;

/// Invalid credential: wrong secret, or the token is invalid / "not latest".
pub const INVALID_CREDENTIAL: i64 = 40001;
/// Invalid access_token.
pub const INVALID_ACCESS_TOKEN: i64 = 40014;
/// access_token expired.
pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
/// System busy.
pub const SYSTEM_BUSY: i64 = -1;
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

/// What a WeChat error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrcodeClass {
    /// The access token is bad: invalidate it (compare-and-set), refresh and retry once.
    TokenInvalid,
    /// Transient on WeChat's side (-1, 45011): retry with backoff.
    Retryable,
    /// The daily quota is spent (45009): nothing helps until the daily reset.
    QuotaExhausted,
    /// Configuration or infrastructure (bad AppID/secret, IP whitelist): fix the deployment.
    Config,
    /// Anything else (parameter errors, 48h window, not followed, …): the request itself is wrong.
    Rejected,
}

impl ErrcodeClass {
    /// The class of `errcode` (non-zero).
    pub fn of(errcode: i64) -> Self {
        match errcode {
            INVALID_CREDENTIAL | INVALID_ACCESS_TOKEN | ACCESS_TOKEN_EXPIRED => Self::TokenInvalid,
            SYSTEM_BUSY | MINUTE_QUOTA => Self::Retryable,
            DAILY_QUOTA => Self::QuotaExhausted,
            IP_NOT_WHITELISTED | INVALID_APPID | INVALID_APPSECRET | 40002 | 61024 | 48001 => Self::Config,
            _ => Self::Rejected,
        }
    }
}

/// A WeChat error answer: `{"errcode": n, "errmsg": "..."}` with `n != 0`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    /// WeChat's code.
    pub errcode: i64,
    /// WeChat's message (contains a request id, never a secret).
    pub errmsg: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wechat errcode {}: {}", self.errcode, self.errmsg)
    }
}

impl ApiError {
    /// What the code means for retrying.
    pub fn class(&self) -> ErrcodeClass {
        ErrcodeClass::of(self.errcode)
    }

    /// Whether a later retry (after backoff) may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrcodeClass::Retryable
    }

    /// Whether the access token must be refreshed before retrying.
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
    pub(crate) fn check(self) -> Result<(), ApiError> {
        if self.errcode == 0 {
            Ok(())
        } else {
            Err(ApiError {
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
    fn token_errors_refresh_and_busy_retries() {
        for code in [40001, 40014, 42001] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::TokenInvalid);
        }
        assert_eq!(ErrcodeClass::of(-1), ErrcodeClass::Retryable);
        assert_eq!(ErrcodeClass::of(45011), ErrcodeClass::Retryable);
    }

    #[test]
    fn quota_config_and_parameter_errors_are_never_retried() {
        assert_eq!(ErrcodeClass::of(45009), ErrcodeClass::QuotaExhausted);
        for code in [40164, 40013, 40125] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::Config);
        }
        for code in [40003, 43004, 47001, 45015, 45047] {
            assert_eq!(ErrcodeClass::of(code), ErrcodeClass::Rejected);
            assert!(
                !ApiError {
                    errcode: code,
                    errmsg: String::new()
                }
                .is_retryable()
            );
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
