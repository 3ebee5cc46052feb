//! What one attempt of a WeChat call means for retrying and for the API's breaker: the
//! classifier the client hands to [`execute`](crate::resilience::execute()).
//!
//! It needs two facts about the call besides its result — which API (a send has its own daily
//! quota) and whether repeating a request that may have been processed is harmless (the API's
//! `idempotent` flag) — and gets them as arguments, so nothing is guessed:
//!
//! An attempt is a failover chain over the API domains (`failover.rs`), so what is classified
//! here is what the whole chain came to; each domain's own failures were counted by its breaker.
//!
//! | failure | processed? | idempotent API (token, ticket) | non-idempotent (sends) |
//! |---|---|---|---|
//! | connection not made (refused, connect timeout) on every domain | no | retry | retry |
//! | HTTP 502 / 503 (access layer: no backend took it), HTTP 429 | no (unavailable / throttled) | retry (429: slower) | retry (429: slower) |
//! | timeout (HTTP or attempt limit), broken connection, HTTP 500/504/408, bad JSON | maybe | retry | in doubt on one domain with others untried: not retried, not this breaker's (inconclusive); on the last domain: never retried, a breaker failure |
//! | errcode -1 / 45011 | no (busy / throttled) | retry (45011: slower) | retry (45011: slower) |
//! | 40001 / 40014 / 42001 | no | not here: the client refreshes the token and calls once more | same |
//! | 45009 | no | a breaker failure, never retried | this API's own quota (blocked until the reset), not the shared breaker's failure |
//! | other errcodes, other 4xx | no | never | never |
//! | every domain's breaker open | no | never, and nothing recorded on this API's breaker (inconclusive) | same |

use serde_json::Value;

use super::api::Api;
use super::errcode::ErrcodeClass;
use super::error::WechatError;
use crate::resilience::{AttemptError, Outcome};

/// The outcome of one attempt of `api` (`idempotent`: repeating a maybe-processed request is harmless).
pub(crate) fn outcome(api: Api, idempotent: bool, result: &Result<Value, AttemptError<WechatError>>) -> Outcome {
    let ambiguous = if idempotent {
        Outcome::Retryable
    } else {
        Outcome::Exhausted
    };
    let error = match result {
        Ok(_) => return Outcome::Success,
        Err(AttemptError::TimedOut { .. }) => return ambiguous,
        Err(AttemptError::Failed(error)) => error,
    };
    match error {
        WechatError::Api(errcode) => match errcode.class() {
            ErrcodeClass::Busy => Outcome::Retryable,
            ErrcodeClass::Throttled => Outcome::RetryableSlow,
            ErrcodeClass::QuotaExhausted if api.is_send() => Outcome::NotRetryable,
            ErrcodeClass::QuotaExhausted => Outcome::Exhausted,
            ErrcodeClass::TokenInvalid | ErrcodeClass::Config | ErrcodeClass::Rejected => Outcome::NotRetryable,
        },
        WechatError::InDoubt {
            others_untried: true, ..
        }
        | WechatError::CircuitOpen(_) => Outcome::Inconclusive,
        WechatError::InDoubt { .. } => Outcome::Exhausted,
        WechatError::Connect { .. } | WechatError::Http { status: 502 | 503, .. } => Outcome::Retryable,
        WechatError::Http { status: 429, .. } => Outcome::RetryableSlow,
        WechatError::Http { status, .. } if *status >= 500 || *status == 408 => ambiguous,
        WechatError::Network { .. } | WechatError::Timeout { .. } | WechatError::Decode { .. } => ambiguous,
        _ => Outcome::NotRetryable,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wechat::errcode::Errcode;

    fn of(error: WechatError, api: Api, idempotent: bool) -> Outcome {
        outcome(api, idempotent, &Err(AttemptError::Failed(error)))
    }

    fn http(status: u16) -> WechatError {
        WechatError::Http {
            domain: "a".into(),
            status,
        }
    }

    fn errcode(errcode: i64) -> WechatError {
        WechatError::Api(Errcode {
            errcode,
            errmsg: String::new(),
        })
    }

    #[test]
    fn wechat_errcodes_follow_the_protocol_table() {
        assert_eq!(outcome(Api::Ticket, true, &Ok(Value::Null)), Outcome::Success);
        assert_eq!(of(errcode(-1), Api::Ticket, true), Outcome::Retryable);
        assert_eq!(of(errcode(45011), Api::Ticket, true), Outcome::RetryableSlow);
        assert_eq!(of(errcode(45009), Api::StableToken, true), Outcome::Exhausted);
        for code in [
            40001, 40014, 42001, 40003, 43004, 47001, 40013, 40125, 40164, 48001, 45015, 45047, 61024, 99999,
        ] {
            assert_eq!(of(errcode(code), Api::Ticket, true), Outcome::NotRetryable, "{code}");
        }
    }

    #[test]
    fn http_statuses_retry_on_5xx_408_and_slowly_on_429() {
        assert_eq!(of(http(503), Api::Ticket, true), Outcome::Retryable);
        assert_eq!(of(http(408), Api::Ticket, true), Outcome::Retryable);
        assert_eq!(of(http(429), Api::Ticket, true), Outcome::RetryableSlow);
        assert_eq!(of(http(404), Api::Ticket, true), Outcome::NotRetryable);
    }

    #[test]
    fn unavailable_and_throttled_retry_for_every_api_but_ambiguous_5xx_only_when_idempotent() {
        assert_eq!(of(http(503), Api::CustomSend, false), Outcome::Retryable);
        assert_eq!(of(http(502), Api::CustomSend, false), Outcome::Retryable);
        assert_eq!(of(http(429), Api::CustomSend, false), Outcome::RetryableSlow);
        for status in [500, 504] {
            assert_eq!(of(http(status), Api::CustomSend, false), Outcome::Exhausted);
            assert_eq!(of(http(status), Api::Ticket, true), Outcome::Retryable);
        }
    }

    #[test]
    fn non_idempotent_calls_retry_only_when_nothing_was_processed_or_wechat_was_busy() {
        let timeout = WechatError::Timeout { domain: "a".into() };
        let refused = WechatError::Connect {
            domain: "a".into(),
            message: "refused".into(),
        };
        assert!(of(timeout.clone(), Api::Ticket, true).is_retryable());
        assert!(!of(timeout, Api::CustomSend, false).is_retryable());
        assert!(of(http(502), Api::Ticket, true).is_retryable());
        assert!(!of(http(500), Api::CustomSend, false).is_retryable());
        assert!(of(refused, Api::CustomSend, false).is_retryable());
        assert!(of(http(503), Api::CustomSend, false).is_retryable() && http(503).is_not_processed());
        assert!(of(http(502), Api::CustomSend, false).is_retryable() && http(502).is_not_processed());
        assert!(of(errcode(-1), Api::CustomSend, false).is_retryable());
        assert!(!of(errcode(45009), Api::Ticket, true).is_retryable());
        assert!(!of(errcode(40164), Api::Ticket, true).is_retryable());
    }

    #[test]
    fn a_breaker_refusal_is_neither_retried_nor_a_breaker_failure() {
        let refused = of(WechatError::CircuitOpen("domains".into()), Api::CustomSend, false);
        assert!(!refused.is_retryable() && !refused.is_breaker_failure(), "{refused:?}");
    }

    #[test]
    fn a_send_in_doubt_on_one_domain_is_that_domains_failure_and_on_the_last_one_the_apis() {
        let in_doubt = |others_untried| WechatError::InDoubt {
            cause: Box::new(WechatError::Timeout { domain: "a".into() }),
            others_untried,
        };
        assert_eq!(of(in_doubt(true), Api::CustomSend, false), Outcome::Inconclusive);
        assert_eq!(of(in_doubt(false), Api::CustomSend, false), Outcome::Exhausted);
        assert!(in_doubt(true).may_have_been_processed());
    }

    #[test]
    fn a_rejected_token_is_returned_to_the_caller_not_resent() {
        assert_eq!(of(errcode(40001), Api::Ticket, true), Outcome::NotRetryable);
        assert_eq!(of(errcode(42001), Api::CustomSend, false), Outcome::NotRetryable);
    }

    #[test]
    fn daily_quota_on_a_send_is_not_a_failure_of_the_shared_message_breaker() {
        assert_eq!(of(errcode(45009), Api::TemplateSend, false), Outcome::NotRetryable);
        assert_eq!(of(errcode(45009), Api::StableToken, true), Outcome::Exhausted);
    }

    #[test]
    fn an_attempt_timeout_retries_exactly_when_the_api_is_idempotent() {
        let timed_out = Err(AttemptError::TimedOut {
            after: Duration::from_millis(5),
        });
        assert_eq!(outcome(Api::StableToken, true, &timed_out), Outcome::Retryable);
        assert_eq!(outcome(Api::CustomSend, false, &timed_out), Outcome::Exhausted);
    }
}
