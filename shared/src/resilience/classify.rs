//! Outcome classification: one answer to "retry?" and "does the breaker count this as a failure?".
//!
//! The retry loop and the breaker read the same [`Outcome`], so a failure that is retried is also
//! one the breaker sees, and a caller's mistake (bad parameter) neither retries nor trips. The
//! WeChat defaults follow `wechat-protocol.md` §1.6: transport errors, timeouts, HTTP 5xx and
//! errcode -1 retry; 45011 / HTTP 429 retry with a slower backoff; 40001 / 40014 / 42001 refresh
//! the token and retry once; quota and parameter errors never retry, and the daily quota (45009)
//! also counts as a breaker failure so the breaker opens instead of hammering a closed door.

use std::sync::Arc;

/// What one attempt's result means for retrying and for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It worked.
    Success,
    /// A transient failure (network, timeout, HTTP 5xx, errcode -1): retry with backoff; a breaker failure.
    Retryable,
    /// The dependency asked us to slow down (HTTP 429, errcode 45011): retry with the slow backoff;
    /// a breaker failure.
    RetryableSlow,
    /// The request itself is wrong or not allowed (parameter, permission and per-user errors):
    /// never retried; the dependency answered properly, so the breaker counts a success.
    NotRetryable,
    /// A quota that will keep refusing every call for a long time (errcode 45009): never retried
    /// and counted as a breaker failure, so the breaker opens.
    Exhausted,
    /// The credential is invalid or expired (40001 / 40014 / 42001): refresh it, then retry once;
    /// the breaker counts a success (the dependency is healthy).
    RefreshThenRetry,
}

impl Outcome {
    /// Stable name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retryable => "retryable",
            Self::RetryableSlow => "retryable_slow",
            Self::NotRetryable => "not_retryable",
            Self::Exhausted => "exhausted",
            Self::RefreshThenRetry => "refresh_then_retry",
        }
    }

    /// Whether the call succeeded.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }

    /// Whether a backoff retry may follow (budget, attempts and deadline permitting).
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::Retryable | Self::RetryableSlow)
    }

    /// Whether the breaker records this as a failed call.
    pub const fn is_breaker_failure(self) -> bool {
        matches!(self, Self::Retryable | Self::RetryableSlow | Self::Exhausted)
    }
}

/// Errors that know what they mean for retrying and for the breaker.
pub trait Classify {
    /// The outcome this error represents.
    fn classify(&self) -> Outcome;
}

impl<T: Classify + ?Sized> Classify for &T {
    fn classify(&self) -> Outcome {
        (**self).classify()
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn classify(&self) -> Outcome {
        (**self).classify()
    }
}

impl<T: Classify + ?Sized> Classify for Arc<T> {
    fn classify(&self) -> Outcome {
        (**self).classify()
    }
}

/// Default classification of a WeChat `errcode` (0 is success; unknown codes are not retried).
pub const fn wechat_errcode(errcode: i64) -> Outcome {
    match errcode {
        0 => Outcome::Success,
        -1 => Outcome::Retryable,
        45011 => Outcome::RetryableSlow,
        40001 | 40014 | 42001 => Outcome::RefreshThenRetry,
        45009 => Outcome::Exhausted,
        // 40003 openid, 43004 not a follower, 47001 parse error, 40013 AppID, 40125 AppSecret,
        // 40164 IP whitelist, 48001 API not authorized, 45015 reply window, 45047 CS quota,
        // 61024 component account — and anything we do not know: never blindly retried.
        _ => Outcome::NotRetryable,
    }
}

/// Default classification of an HTTP status: 2xx success, 408 and 5xx retryable, 429 slow retry,
/// other statuses not retryable.
pub const fn http_status(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Success,
        429 => Outcome::RetryableSlow,
        408 | 500..=599 => Outcome::Retryable,
        _ => Outcome::NotRetryable,
    }
}

/// Network-level failures (connect, reset, timeout) are retryable: the request may not have
/// been processed at all. Callers map their transport errors here.
pub const fn transport_error() -> Outcome {
    Outcome::Retryable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_errcodes_follow_the_protocol_table() {
        assert_eq!(wechat_errcode(0), Outcome::Success);
        assert_eq!(wechat_errcode(-1), Outcome::Retryable);
        assert_eq!(wechat_errcode(45011), Outcome::RetryableSlow);
        for code in [40001, 40014, 42001] {
            assert_eq!(wechat_errcode(code), Outcome::RefreshThenRetry, "{code}");
        }
        assert_eq!(wechat_errcode(45009), Outcome::Exhausted);
        for code in [
            40003, 43004, 47001, 40013, 40125, 40164, 48001, 45015, 45047, 61024, 99999,
        ] {
            assert_eq!(wechat_errcode(code), Outcome::NotRetryable, "{code}");
        }
    }

    #[test]
    fn http_statuses_retry_on_5xx_408_and_slowly_on_429() {
        assert_eq!(http_status(204), Outcome::Success);
        assert_eq!(http_status(503), Outcome::Retryable);
        assert_eq!(http_status(408), Outcome::Retryable);
        assert_eq!(http_status(429), Outcome::RetryableSlow);
        assert_eq!(http_status(404), Outcome::NotRetryable);
    }

    #[test]
    fn breaker_failures_are_retryable_or_exhausted_but_never_caller_errors() {
        assert!(Outcome::Retryable.is_breaker_failure());
        assert!(Outcome::Exhausted.is_breaker_failure());
        assert!(!Outcome::Exhausted.is_retryable());
        assert!(!Outcome::NotRetryable.is_breaker_failure());
        assert!(!Outcome::RefreshThenRetry.is_breaker_failure());
        assert!(transport_error().is_retryable());
    }
}
