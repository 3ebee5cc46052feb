//! Outcome classification: one answer to "retry?" and "does the breaker count this as a failure?".
//!
//! The retry loop and the breaker read the same [`Outcome`], so a failure that is retried is also
//! one the breaker sees, and a caller's mistake (bad parameter) neither retries nor trips. What a
//! result *means* is the caller's knowledge, not this crate's: [`execute`](super::execute()) is
//! given a classifier for each call (the WeChat client's lives in `wechat/classify.rs`, next to
//! its one errcode table), so the core knows nothing of any dependency's error codes.

/// What one attempt's result means for retrying and for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It worked.
    Success,
    /// A transient failure (network, timeout, server error, "busy"): retry with backoff; a breaker failure.
    Retryable,
    /// The dependency asked us to slow down (throttling): retry with the slow backoff; a breaker failure.
    RetryableSlow,
    /// The request itself is wrong or not allowed (parameter, permission and per-user errors):
    /// never retried; the dependency answered properly, so the breaker counts a success.
    NotRetryable,
    /// A failure that must not be repeated but says the dependency is unhealthy (a quota that will
    /// keep refusing for a long time, or an ambiguous failure of a call that may have been
    /// processed and is unsafe to repeat): never retried, counted as a breaker failure.
    Exhausted,
    /// A failure that says nothing about what this breaker guards, because another breaker
    /// accounts for it (one of several replicas failed, and that replica's own breaker counted
    /// it): never retried, and this breaker records nothing — a probe permit is handed back.
    Inconclusive,
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
            Self::Inconclusive => "inconclusive",
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

    /// Whether the breaker records this call at all.
    pub const fn is_recorded(self) -> bool {
        !matches!(self, Self::Inconclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_failures_are_retryable_or_exhausted_but_never_caller_errors() {
        assert!(Outcome::Retryable.is_breaker_failure());
        assert!(Outcome::Exhausted.is_breaker_failure());
        assert!(!Outcome::Exhausted.is_retryable());
        assert!(!Outcome::NotRetryable.is_breaker_failure());
        assert!(Outcome::RetryableSlow.is_retryable() && Outcome::RetryableSlow.is_breaker_failure());
        assert!(Outcome::Success.is_success() && !Outcome::Success.is_breaker_failure());
        let inconclusive = Outcome::Inconclusive;
        assert!(!inconclusive.is_retryable() && !inconclusive.is_breaker_failure() && !inconclusive.is_recorded());
    }
}
