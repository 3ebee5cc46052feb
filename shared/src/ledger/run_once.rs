//! `run_once`: the one way anything here runs exactly once — claim, work, then complete with the
//! result or release on failure — used by the callback (a message), the send API (a request's
//! `Idempotency-Key`) and the delivery path (a message id).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::LedgerError;
use super::store_ops::{Begin, Claim, Ledger, WaitOutcome};
use crate::deadline::Deadline;

/// How often a duplicate polls for the holder's result while it waits.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Whether a caller that meets a record in progress waits for its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Answer [`RunOnce::Busy`] at once.
    No,
    /// Poll for the holder's result until this instant (tokio time).
    Until(Instant),
}

/// What [`Ledger::run_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOnce<R, E> {
    /// This call did the work; `R` is recorded for every later attempt.
    Ran(R),
    /// This call did the work, but `R` could not be recorded (the store kept failing within the
    /// deadline): until it is — [`Ledger::complete`] with this claim, later — the record stays
    /// pending and, once its lease runs out, the work may run again.
    Unrecorded(R, Claim),
    /// The work was done before (or by the holder this call waited for): its recorded result.
    Replayed(R),
    /// Another holder is working on it (and did not finish within the wait).
    Busy,
    /// The work failed; the claim was released so the next attempt can run it at once.
    Failed(E),
}

impl Ledger {
    /// Runs `work` at most once fleet-wide for `key` in `scope`, recording its result.
    ///
    /// 1. Claim the record (one conditional put). Done before → [`RunOnce::Replayed`]. Another
    ///    holder working → wait as `wait` says: its result → `Replayed`, abandoned (its lease ran
    ///    out) → claim it once more, still working → [`RunOnce::Busy`]. A failed read while
    ///    waiting is `Busy` too: the other holder is running the work, so this caller must not.
    /// 2. Work. `Ok(r)` → complete the record with `r` (retried a few times: a result that ran but
    ///    is not recorded would run again) → [`RunOnce::Ran`]. `Err(e)` → release the claim →
    ///    [`RunOnce::Failed`].
    ///
    /// Every store call is cut short by `deadline` (the work itself is the caller's to bound): a
    /// claim that cannot be made in time is [`LedgerError::DeadlineExceeded`] (nothing ran), a
    /// result that cannot be recorded in time is logged (it ran; its lease protects it).
    ///
    /// With a fallback ([`Ledger::with_fallback`]), an outage of the fleet store at the claim —
    /// and only an outage: unreachable, timing out, throttling — runs the same protocol on the
    /// instance-local ledger (logged and counted, [`Ledger::fallbacks`]).
    ///
    /// # Errors
    /// [`LedgerError`] when the store fails before any work ran (without a fallback, or also on
    /// the fallback), or a record cannot be decoded (`Corrupt`: never a reason to run again).
    pub async fn run_once<R, E, F, Fut>(
        &self,
        scope: &str,
        key: &str,
        deadline: Deadline,
        wait: Wait,
        work: F,
    ) -> Result<RunOnce<R, E>, LedgerError>
    where
        R: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let (ledger, claim) = match self.claim_within::<R>(scope, key, wait, deadline).await {
            Ok(Claimed::Claim(claim)) => (self, claim),
            Ok(Claimed::Settled(settled)) => return Ok(settled.into()),
            Err(error) if error.is_outage() && self.fallback.is_some() => {
                let local = self.fallback.as_deref().unwrap_or(self);
                self.fallbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::telemetry::metrics::count(crate::telemetry::metrics::LEDGER_FALLBACKS);
                tracing::warn!(target: "wechat_ha::ledger", namespace = self.config().namespace(), error = %error, "state store unreachable; running once on instance memory");
                match local.claim_within::<R>(scope, key, wait, deadline).await? {
                    Claimed::Claim(claim) => (local, claim),
                    Claimed::Settled(settled) => return Ok(settled.into()),
                }
            }
            Err(error) => return Err(error),
        };
        match work().await {
            Ok(result) => {
                if ledger.record(&claim, &result, deadline).await {
                    Ok(RunOnce::Ran(result))
                } else {
                    Ok(RunOnce::Unrecorded(result, claim))
                }
            }
            Err(error) => {
                let released = tokio::time::timeout_at(deadline.instant(), ledger.release(&claim)).await;
                if !matches!(released, Ok(Ok(()))) {
                    tracing::warn!(target: "wechat_ha::ledger", key = %claim.key(), "could not release the claim; its lease will expire");
                }
                Ok(RunOnce::Failed(error))
            }
        }
    }

    async fn claim_within<R: DeserializeOwned>(
        &self,
        scope: &str,
        key: &str,
        wait: Wait,
        deadline: Deadline,
    ) -> Result<Claimed<R>, LedgerError> {
        tokio::time::timeout_at(deadline.instant(), self.claim(scope, key, wait))
            .await
            .unwrap_or(Err(LedgerError::DeadlineExceeded))
    }

    /// Claims the record, or learns that it is settled; waits for a holder as `wait` says.
    async fn claim<R: DeserializeOwned>(&self, scope: &str, key: &str, wait: Wait) -> Result<Claimed<R>, LedgerError> {
        // One takeover at most: a record abandoned while we waited is claimed again once.
        for _ in 0..2 {
            match self.begin::<R>(scope, key).await? {
                Begin::Claimed(claim) => return Ok(Claimed::Claim(claim)),
                Begin::Completed { result } => return Ok(Claimed::Settled(Settled::Done(result))),
                Begin::InProgress { .. } => {}
            }
            let Wait::Until(until) = wait else {
                return Ok(Claimed::Settled(Settled::Busy));
            };
            let left_ms = i64::try_from(until.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(0);
            let until_ms = self.now_ms().saturating_add(left_ms);
            match self.wait_for_result::<R>(scope, key, until_ms, WAIT_POLL).await {
                Ok(WaitOutcome::Completed { result }) => return Ok(Claimed::Settled(Settled::Done(result))),
                Ok(WaitOutcome::TimedOut) => return Ok(Claimed::Settled(Settled::Busy)),
                Ok(WaitOutcome::Abandoned) => {}
                Err(error) => {
                    // The holder is (or was) working; running it here too is the one thing not to do.
                    tracing::warn!(target: "wechat_ha::ledger", reason = %error, "could not read the holder's result; answering busy");
                    return Ok(Claimed::Settled(Settled::Busy));
                }
            }
        }
        Ok(Claimed::Settled(Settled::Busy))
    }

    /// Completes `claim` with `result`, retrying briefly within `deadline`: a store hiccup here
    /// would otherwise leave work that ran unrecorded, to be run again after the lease. `false`
    /// when the result is still unrecorded (the caller decides what to do with the claim).
    async fn record<R: Serialize>(&self, claim: &Claim, result: &R, deadline: Deadline) -> bool {
        let mut delay = Duration::from_millis(20);
        for attempt in 1..=3 {
            let completed = tokio::time::timeout_at(deadline.instant(), self.complete(claim, result))
                .await
                .unwrap_or(Err(LedgerError::DeadlineExceeded));
            match completed {
                Ok(()) => return true,
                Err(LedgerError::ClaimLost) => {
                    tracing::warn!(target: "wechat_ha::ledger", key = %claim.key(), "claim lost before the result was recorded; the new holder's result wins");
                    return true;
                }
                Err(error) if attempt == 3 || !deadline.can_start(delay) => {
                    tracing::warn!(target: "wechat_ha::ledger", key = %claim.key(), reason = %error, "work done but its result not recorded yet");
                    return false;
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
            }
        }
        false
    }
}

enum Claimed<R> {
    Claim(Claim),
    Settled(Settled<R>),
}

enum Settled<R> {
    Done(R),
    Busy,
}

impl<R, E> From<Settled<R>> for RunOnce<R, E> {
    fn from(settled: Settled<R>) -> Self {
        match settled {
            Settled::Done(result) => Self::Replayed(result),
            Settled::Busy => Self::Busy,
        }
    }
}
