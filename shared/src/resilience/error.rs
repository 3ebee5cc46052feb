//! The errors of the resilience layer: why a guarded call did not return the operation's value,
//! and why a configuration value was refused.

use std::fmt;
use std::time::Duration;

/// Why a call was refused before reaching the dependency (nothing was sent for this attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The breaker is open: calls are refused until `until_ms` (epoch milliseconds).
    Open {
        /// When the open period ends and probes may start.
        until_ms: i64,
    },
    /// The breaker is half-open and every probe permit of the current round is taken.
    HalfOpen,
    /// An operator forced the breaker open.
    ForcedOpen,
    /// This instance already runs the maximum number of concurrent calls to the dependency.
    BulkheadFull,
}

impl Rejection {
    /// A stable name for logs and metrics.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::BulkheadFull => "bulkhead_full",
        }
    }

    /// Whether the breaker (not the bulkhead) refused the call: the dependency is unhealthy, so a
    /// caller with an alternative (another API domain) should use it.
    pub const fn is_breaker(&self) -> bool {
        !matches!(self, Self::BulkheadFull)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt produced instead of a value: the operation's own error, or the per-attempt
/// time limit firing first (which the operation cannot report itself). The classifier given to
/// [`execute`](super::execute()) sees both, so it decides what a timeout means for this call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError<E> {
    /// The operation failed.
    #[error(transparent)]
    Failed(E),
    /// The attempt's time limit fired before the operation answered.
    #[error("attempt timed out after {after:?}")]
    TimedOut {
        /// The limit the attempt ran under.
        after: Duration,
    },
}

impl<E> AttemptError<E> {
    /// The operation's error, `None` for a timeout.
    pub fn failure(&self) -> Option<&E> {
        match self {
            Self::Failed(error) => Some(error),
            Self::TimedOut { .. } => None,
        }
    }

    /// The error as the caller's type: a timeout becomes `timed_out(after)`.
    pub fn into_error(self, timed_out: impl FnOnce(Duration) -> E) -> E {
        match self {
            Self::Failed(error) => error,
            Self::TimedOut { after } => timed_out(after),
        }
    }
}

/// Why [`execute`](super::execute()) did not return the operation's value.
///
/// `attempts` counts the attempts that reached the dependency. `last` is the failure of the last
/// attempt, when there was one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError<E> {
    /// The bulkhead or the breaker refused the call (breaker open, no half-open permit left,
    /// forced open, bulkhead full). Callers with a fallback (the next API domain) should use it.
    #[error("call rejected: {reason}")]
    Rejected {
        /// What refused the call.
        reason: Rejection,
        /// Attempts made before the rejection.
        attempts: u32,
        /// The last attempt's error, if an earlier attempt failed.
        last: Option<AttemptError<E>>,
    },
    /// The caller's deadline left no time for (another) attempt.
    #[error("deadline exceeded after {attempts} attempt(s)")]
    DeadlineExceeded {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure, if any attempt was made.
        last: Option<AttemptError<E>>,
    },
    /// The failure was retryable but the retry budget is spent (the fleet is already retrying
    /// its share of calls).
    #[error("retry budget exhausted after {attempts} attempt(s)")]
    BudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: AttemptError<E>,
    },
    /// The operation's own error: not retryable, or the last of `max_attempts`.
    #[error("operation failed after {attempts} attempt(s)")]
    Operation {
        /// Attempts made.
        attempts: u32,
        /// The operation's error (or the last attempt's timeout).
        #[source]
        error: AttemptError<E>,
    },
}

impl<E> ExecuteError<E> {
    /// Attempts that reached the dependency.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected { attempts, .. }
            | Self::DeadlineExceeded { attempts, .. }
            | Self::BudgetExhausted { attempts, .. }
            | Self::Operation { attempts, .. } => *attempts,
        }
    }

    /// The last attempt's failure, if an attempt was made.
    pub fn last_error(&self) -> Option<&AttemptError<E>> {
        match self {
            Self::Rejected { last, .. } | Self::DeadlineExceeded { last, .. } => last.as_ref(),
            Self::BudgetExhausted { last, .. } => Some(last),
            Self::Operation { error, .. } => Some(error),
        }
    }

    /// The last attempt's failure, by value.
    pub fn into_last_error(self) -> Option<AttemptError<E>> {
        match self {
            Self::Rejected { last, .. } | Self::DeadlineExceeded { last, .. } => last,
            Self::BudgetExhausted { last, .. } => Some(last),
            Self::Operation { error, .. } => Some(error),
        }
    }

    /// The rejection, when the breaker or the bulkhead refused the call.
    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            Self::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// A configuration value was refused; `field` names it (`wechat-api.max_attempts`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resilience setting `{field}`: {message}")]
pub struct ConfigError {
    /// The offending field, prefixed by the policy name where known.
    pub field: String,
    /// What rule it broke.
    pub message: String,
}

impl ConfigError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with `prefix.` in front of the field name.
    pub fn in_scope(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    #[test]
    fn execute_error_exposes_attempts_and_last_error() {
        let err: ExecuteError<Boom> = ExecuteError::BudgetExhausted {
            attempts: 2,
            last: AttemptError::Failed(Boom),
        };
        assert_eq!(err.attempts(), 2);
        assert!(err.last_error().is_some());
        assert!(std::error::Error::source(&err).is_some());
        let rejected: ExecuteError<Boom> = ExecuteError::Rejected {
            reason: Rejection::Open { until_ms: 5 },
            attempts: 0,
            last: None,
        };
        assert_eq!(rejected.rejection(), Some(Rejection::Open { until_ms: 5 }));
        assert!(rejected.into_last_error().is_none());
    }

    #[test]
    fn a_timed_out_attempt_becomes_the_callers_error_only_when_asked() {
        let timed_out: AttemptError<String> = AttemptError::TimedOut {
            after: Duration::from_millis(5),
        };
        assert_eq!(timed_out.failure(), None);
        assert_eq!(
            timed_out.into_error(|after| format!("late by {after:?}")),
            "late by 5ms"
        );
        assert_eq!(AttemptError::Failed("x").into_error(|_| "t"), "x");
    }

    #[test]
    fn rejection_names_are_stable_and_bulkhead_is_not_a_breaker_rejection() {
        assert_eq!(Rejection::HalfOpen.to_string(), "half_open");
        assert!(Rejection::ForcedOpen.is_breaker());
        assert!(!Rejection::BulkheadFull.is_breaker());
    }

    #[test]
    fn config_error_names_the_scoped_field() {
        let err = ConfigError::new("max_attempts", "must be between 1 and 10, got 0").in_scope("wechat-api");
        assert_eq!(
            err.to_string(),
            "invalid resilience setting `wechat-api.max_attempts`: must be between 1 and 10, got 0"
        );
    }
}
