//! Domain failover: one attempt walks the API domains in order, skipping those whose breaker is
//! open and moving on after a connection failure (refused or connect timeout: nothing was sent),
//! all inside one deadline.
//!
//! Any other domain failure (timeout, HTTP 5xx, broken connection) ends the attempt; the retry
//! policy decides whether to try again (`api.rs`: HTTP 503 for every API, the ambiguous ones only
//! for idempotent APIs), and the next attempt of the same call starts at the following domain, so
//! a primary answering 503 is not asked twice in a row and a send reaches the second domain.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Per-call failover position: where the next attempt starts.
#[derive(Debug, Default)]
pub(crate) struct Cursor(AtomicUsize);

impl Domains {
    pub fn new(bases: Vec<String>) -> Self {
        Self { bases }
    }

    /// One attempt of `call`, failing over across domains from the cursor's position.
    pub async fn attempt(
        &self,
        transport: &Transport,
        guards: &CallPolicies,
        call: &Call<'_>,
        timeout: Duration,
        deadline: Deadline,
        cursor: &Cursor,
    ) -> Result<Value, WechatError> {
        let start = cursor.0.load(Ordering::Relaxed);
        let count = self.bases.len();
        let mut last: Option<WechatError> = None;
        for offset in 0..count {
            let index = (start + offset) % count;
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
                Err(err @ WechatError::Connect { .. }) => {
                    tracing::warn!(target: "wechat.failover", domain = %base, error = %err, "cannot connect; trying the next domain");
                    last = Some(err);
                }
                Err(err) => {
                    if failure {
                        cursor.0.store((index + 1) % count, Ordering::Relaxed);
                    }
                    return Err(err);
                }
                Ok(value) => return Ok(value),
            }
        }
        Err(last.unwrap_or_else(|| WechatError::CircuitOpen("no API domain configured".into())))
    }
}
