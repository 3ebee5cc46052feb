//! `execute`: one guarded call — bulkhead → breaker → retry (with budget) → per-attempt timeout.
//!
//! The order, and why:
//! 1. **Bulkhead** (once per call): a slot for the whole call, retries included, so one slow
//!    dependency cannot take every task of the instance. Full → `Rejected(BulkheadFull)`.
//! 2. **Per attempt:** if less than `min_attempt` is left before the deadline, stop
//!    (`DeadlineExceeded`); then the **breaker** permit (open / no probe left → `Rejected`, with
//!    the previous attempt's error if any) and, before the first attempt, the runtime overrides.
//!    Both may wait on the store, so `min_attempt` is checked again: no room left → the permit
//!    is handed back unused (nothing recorded, a probe returns to its round), `DeadlineExceeded`.
//!    Then the operation under the **per-attempt timeout** (`min(attempt_timeout, time left)`).
//! 3. **Classify and plan** the outcome ([`RetryState::plan`]); **record** it on the breaker
//!    (an [`Outcome::Inconclusive`] one is not recorded: the permit is handed back) —
//!    one store write that, when a budgeted retry is planned, also reserves it in the fleet's
//!    **retry budget**. Refused → `BudgetExhausted`. If the breaker now rejects, stop at once
//!    (`Rejected`) instead of sleeping: the caller can fail over to another domain right away.
//! 4. **Sleep** the rest of the backoff, counted from the attempt's end (the plan guarantees
//!    that ends with `min_attempt` still left). If the store writes outlasted the backoff and
//!    `min_attempt` no longer fits, stop (`DeadlineExceeded`). Loop.
//!
//! Every store call (breaker, runtime overrides) is cut short at the deadline, so `execute`
//! returns by the deadline. Only this module loops and sleeps; every decision comes from the pure
//! parts.

use std::future::Future;

use tokio::time::Instant;

use super::breaker::{AcquireError, Observation, RetryGrant, RetryTicket};
use super::classify::Outcome;
use super::error::{AttemptError, ExecuteError};
use super::events::Event;
use super::policy::Policy;
use super::retry::{Attempt, Plan, RetryState, Stop};
use crate::deadline::Deadline;

/// Runs `operation` under `policy` until it succeeds, fails for good, or `deadline` comes.
///
/// `operation` receives the [`Attempt`] (its number) and returns a future of `Result<T, E>`.
/// `classify` says what each attempt's result means ([`Outcome`]: retry? a breaker failure?),
/// seeing the operation's error or the per-attempt timeout ([`AttemptError::TimedOut`]) — the
/// caller knows its dependency (which codes are transient, whether a call that may have been
/// processed is safe to repeat); this function does not.
///
/// # Errors
/// [`ExecuteError`]: `Rejected` (breaker or bulkhead), `DeadlineExceeded`, `BudgetExhausted`
/// (with the last failure), or `Operation` (the last failure, not retried further).
pub async fn execute<T, E, C, F, Fut>(
    policy: &Policy,
    deadline: Deadline,
    classify: C,
    mut operation: F,
) -> Result<T, ExecuteError<E>>
where
    C: Fn(&Result<T, AttemptError<E>>) -> Outcome,
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let config = policy.retry_config();
    let breaker = policy.breaker();
    let _slot = match policy.bulkhead().acquire(&deadline).await {
        Ok(slot) => slot,
        Err(reason) => {
            policy.observer().on_event(&Event::Rejected {
                breaker: breaker.name(),
                reason,
            });
            return Err(ExecuteError::Rejected {
                reason,
                attempts: 0,
                last: None,
            });
        }
    };
    let mut state = RetryState::new(policy.next_seed());
    let mut last: Option<AttemptError<E>> = None;
    let mut ticket: Option<RetryTicket> = None;
    loop {
        if !deadline.can_start(config.min_attempt()) {
            release(policy, ticket.take()).await;
            return Err(ExecuteError::DeadlineExceeded {
                attempts: state.attempts(),
                last,
            });
        }
        let permit = match breaker.acquire_within(&deadline).await {
            Ok(permit) => permit,
            Err(refused) => {
                release(policy, ticket.take()).await;
                let attempts = state.attempts();
                return Err(match refused {
                    AcquireError::Rejected(reason) => ExecuteError::Rejected { reason, attempts, last },
                    AcquireError::DeadlineExceeded => ExecuteError::DeadlineExceeded { attempts, last },
                });
            }
        };
        if state.attempts() == 0 {
            policy.sync_runtime(&deadline).await;
        }
        if !deadline.can_start(config.min_attempt()) {
            // The store took the time: hand the permit back unused rather than fail it at once.
            breaker.release(permit, &deadline).await;
            release(policy, ticket.take()).await;
            return Err(ExecuteError::DeadlineExceeded {
                attempts: state.attempts(),
                last,
            });
        }
        ticket = None; // the reserved retry is being made
        let attempt = state.begin_attempt();
        let limit = config
            .attempt_timeout()
            .map_or(deadline.remaining(), |t| t.min(deadline.remaining()));
        let started = Instant::now();
        let result = match tokio::time::timeout(limit, operation(attempt)).await {
            Ok(result) => result.map_err(AttemptError::Failed),
            Err(_) => Err(AttemptError::TimedOut { after: limit }),
        };
        let ended = Instant::now();
        let elapsed = ended.duration_since(started);
        let outcome = classify(&result);
        let plan = state.plan(&config, outcome, &deadline);
        let retry = matches!(plan, Plan::Retry { .. }).then(|| config.budget());
        let observation = Observation {
            outcome,
            elapsed,
            retry,
        };
        let grant = if outcome.is_recorded() {
            breaker.record_within(permit, observation, &deadline).await
        } else {
            // Another breaker accounts for this failure: hand the permit back unrecorded.
            breaker.release(permit, &deadline).await;
            RetryGrant::NotRequested
        };
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let attempts = state.attempts();
        let delay = match plan {
            Plan::Stop(Stop::NoTimeLeft) => {
                return Err(ExecuteError::DeadlineExceeded {
                    attempts,
                    last: Some(error),
                });
            }
            Plan::Stop(_) => return Err(ExecuteError::Operation { attempts, error }),
            Plan::Retry { delay, .. } => delay,
        };
        match grant {
            RetryGrant::Denied(scope) => {
                policy.observer().on_event(&Event::BudgetExhausted {
                    policy: policy.name(),
                    scope,
                });
                return Err(ExecuteError::BudgetExhausted { attempts, last: error });
            }
            RetryGrant::Granted(granted) => ticket = Some(granted),
            RetryGrant::NotRequested => {}
        }
        if let Some(reason) = breaker.rejection() {
            release(policy, ticket.take()).await;
            return Err(ExecuteError::Rejected {
                reason,
                attempts,
                last: Some(error),
            });
        }
        // The plan left `min_attempt` after `ended + delay`; the record write used part of the delay.
        let wake = ended + delay;
        let now = Instant::now();
        if !deadline.can_start(wake.saturating_duration_since(now) + config.min_attempt()) {
            release(policy, ticket.take()).await;
            return Err(ExecuteError::DeadlineExceeded {
                attempts,
                last: Some(error),
            });
        }
        policy.observer().on_event(&Event::Retry {
            policy: policy.name(),
            attempt: attempts + 1,
            delay: wake.saturating_duration_since(now),
            outcome,
        });
        last = Some(error);
        tokio::time::sleep_until(wake).await;
    }
}

async fn release(policy: &Policy, ticket: Option<RetryTicket>) {
    if let Some(ticket) = ticket {
        policy.breaker().release_retry(ticket).await;
    }
}
