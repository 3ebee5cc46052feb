//! Domain failover: one attempt walks the API domains — healthy ones first — skipping those whose
//! breaker refuses, all inside one deadline. Every domain failure counts against that domain's
//! breaker only; the API's breaker sees what the whole chain came to (`classify.rs`).
//!
//! When a domain fails, the chain moves on if that is safe:
//!
//! | the domain's failure | idempotent API (token, ticket) | non-idempotent (sends) |
//! |---|---|---|
//! | no connection (refused, connect timeout), HTTP 502 / 503 | next domain | next domain |
//! | timeout, broken connection, HTTP 500 / 504 / other 5xx, undecodable answer | next domain | stop: [`WechatError::InDoubt`] |
//!
//! HTTP 502 and 503 come from WeChat's access layer when it could not hand the request to a
//! backend (bad gateway) or would not (unavailable): the request was not processed, so even a
//! send may go to the next domain. The other failures may follow processing; a send that met one
//! is not repeated anywhere (it may have been delivered) and is *in doubt*.
//!
//! Order: for a send, the domains whose breaker is closed come first (configured order), then the
//! others — so a half-open domain's probe is a send only when no healthy domain is left, and a
//! recovering primary is probed by the idempotent calls (token, ticket), which walk the configured
//! order and fail over on anything.

use std::time::Duration;

use serde_json::Value;

use super::error::WechatError;
use super::policy::{CallPolicies, record_domain};
use super::transport::{Call, Transport};
use crate::deadline::Deadline;
use crate::resilience::breaker::AcquireError;

/// The ordered API domains of one client.
#[derive(Debug)]
pub(crate) struct Domains {
    bases: Vec<String>,
}

/// What one domain's failure means for the rest of the chain.
fn moves_on(error: &WechatError, idempotent: bool) -> bool {
    error.is_domain_failure() && (idempotent || error.is_not_processed())
}

impl Domains {
    pub fn new(bases: Vec<String>) -> Self {
        Self { bases }
    }

    /// One attempt of `call` (`idempotent`: the API's flag), failing over across domains.
    ///
    /// # Errors
    /// The answer's error (an errcode, a 4xx, throttling: the chain stops there); the last
    /// domain's failure when every domain failed or refused; [`WechatError::InDoubt`] when a
    /// non-idempotent call failed ambiguously on a domain.
    pub async fn attempt(
        &self,
        transport: &Transport,
        guards: &CallPolicies,
        call: &Call<'_>,
        idempotent: bool,
        timeout: Duration,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        let order = guards.domain_order(self.bases.len(), idempotent);
        let mut last: Option<WechatError> = None;
        for (position, &index) in order.iter().enumerate() {
            let base = &self.bases[index];
            if deadline.is_expired() {
                return Err(last.unwrap_or(WechatError::DeadlineExceeded));
            }
            let breaker = guards.domain(index);
            let permit = match breaker {
                Some(breaker) => match breaker.acquire_within(&deadline).await {
                    Ok(permit) => Some(permit),
                    Err(AcquireError::Rejected(reason)) => {
                        tracing::debug!(target: "wechat.failover", domain = %base, reason = reason.as_str(), "domain breaker refuses; trying the next domain");
                        last.get_or_insert(WechatError::CircuitOpen(format!("domain {base}: {}", reason.as_str())));
                        continue;
                    }
                    Err(AcquireError::DeadlineExceeded) => {
                        return Err(last.unwrap_or(WechatError::DeadlineExceeded));
                    }
                },
                None => None,
            };
            let started = tokio::time::Instant::now();
            let limit = timeout.min(deadline.remaining());
            let result = transport.send(base, call, limit).await;
            let failure = result.as_ref().err().is_some_and(WechatError::is_domain_failure);
            if let (Some(breaker), Some(permit)) = (breaker, permit) {
                record_domain(breaker, permit, failure, started.elapsed(), &deadline).await;
            }
            match result {
                Ok(value) => return Ok(value),
                Err(error) if moves_on(&error, idempotent) => {
                    tracing::warn!(target: "wechat.failover", domain = %base, error = %error, "domain failed; trying the next domain");
                    last = Some(error);
                }
                Err(error) if failure => {
                    let others_untried = position + 1 < order.len();
                    tracing::warn!(target: "wechat.failover", domain = %base, error = %error, others_untried, "a call that may have been processed failed; not repeated on another domain");
                    return Err(WechatError::InDoubt {
                        cause: Box::new(error),
                        others_untried,
                    });
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| WechatError::CircuitOpen("no API domain configured".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> WechatError {
        WechatError::Http {
            domain: "a".into(),
            status,
        }
    }

    #[test]
    fn sends_move_on_only_when_nothing_was_processed_and_idempotent_calls_on_any_domain_failure() {
        let connect = WechatError::Connect {
            domain: "a".into(),
            message: "refused".into(),
        };
        let timeout = WechatError::Timeout { domain: "a".into() };
        for error in [connect, http(502), http(503)] {
            assert!(moves_on(&error, false) && moves_on(&error, true), "{error}");
        }
        for error in [timeout, http(500), http(504)] {
            assert!(!moves_on(&error, false) && moves_on(&error, true), "{error}");
        }
        // An answer (4xx, throttling, an errcode) is not a domain failure: the chain stops.
        for error in [http(429), http(404)] {
            assert!(!moves_on(&error, true), "{error}");
        }
    }
}
