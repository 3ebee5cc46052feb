//! The call-facing protocol: `acquire` a permit, `record` the outcome, or `release` it unused —
//! each optionally bounded by the caller's deadline (every store call is cut short by it).

use std::sync::Arc;

use super::apply::{Applied, Op, Target};
use super::decision::{self, Admission, PermitKind};
use super::updates::{
    Pending, add_pending, probe_success_update, record_update, return_probe_update, take_probe_update, without,
};
use super::window::{Counts, bucket_start};
use super::{AcquireError, Breaker, Observation, Permit, RetryGrant, RetryTicket, Scope};
use crate::deadline::Deadline;
use crate::resilience::error::Rejection;
use crate::resilience::events::Event;

/// Rounds of decide → write → adopt the winner's record before giving up on a contended breaker.
pub(super) const MAX_ROUNDS: usize = 4;

impl Breaker {
    /// Asks for permission to make one call.
    ///
    /// Closed or disabled with a fresh cache: granted with no I/O. Open: refused with no I/O until
    /// the open period ends; then one instance moves it to half-open (taking the first probe).
    /// Half-open: a probe permit is a conditional decrement, N for the whole fleet per round.
    ///
    /// # Errors
    /// The [`Rejection`] when the call must not be made.
    pub async fn acquire(&self) -> Result<Permit, Rejection> {
        self.apply_runtime();
        let config = self.config();
        match self.acquire_with(&self.op(&config, None)).await {
            Ok(permit) => Ok(permit),
            Err(AcquireError::Rejected(reason)) => Err(reason),
            // Only a deadline cuts a store call short, and there is none here.
            Err(AcquireError::DeadlineExceeded) => Err(Rejection::HalfOpen),
        }
    }

    /// [`acquire`](Self::acquire), with every store call cut short by `deadline`.
    ///
    /// # Errors
    /// [`AcquireError::Rejected`] when the call must not be made; [`AcquireError::DeadlineExceeded`]
    /// when the deadline ended a store call the decision needed (no permit is held; a probe permit
    /// taken by a write whose answer was cut expires with its round).
    pub async fn acquire_within(&self, deadline: &Deadline) -> Result<Permit, AcquireError> {
        self.apply_runtime();
        let config = self.config();
        self.acquire_with(&self.op(&config, Some(deadline))).await
    }

    async fn acquire_with(&self, op: &Op<'_>) -> Result<Permit, AcquireError> {
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let (admission, shared_first, confirm) = {
                let instance = self.lock();
                let fresh = instance.is_fresh(now, op.config);
                (
                    decision::admit(&instance.record, fresh, op.config, now),
                    instance.store_due(now),
                    instance.confirmation_due(now),
                )
            };
            // A transition of ours went unanswered: read once, whatever the state, to settle it.
            let admission = if confirm { Admission::Refresh } else { admission };
            let granted = match admission {
                Admission::Allow => Some(PermitKind::Normal),
                Admission::Reject(reason) => return Err(AcquireError::Rejected(self.reject(reason))),
                Admission::Refresh => {
                    if !self.refresh(op).await {
                        return Err(AcquireError::DeadlineExceeded);
                    }
                    None
                }
                Admission::Transition(transition) => {
                    let probe = transition.takes_probe();
                    let op = if probe { op.for_probes() } else { *op };
                    match self.run_transition(transition, &op).await {
                        Applied::Done(record, _) if probe => Some(PermitKind::Probe {
                            version: record.version,
                        }),
                        Applied::Cut(_) => return Err(AcquireError::DeadlineExceeded),
                        Applied::Done(..) | Applied::Lost(..) => None,
                    }
                }
                Admission::TakeProbe { version } => {
                    let update = |_| take_probe_update(version, now);
                    match self.apply("probe", shared_first, update, &op.for_probes()).await {
                        Applied::Done(..) => Some(PermitKind::Probe { version }),
                        Applied::Cut(_) => return Err(AcquireError::DeadlineExceeded),
                        Applied::Lost(..) => None,
                    }
                }
            };
            if let Some(kind) = granted {
                if matches!(kind, PermitKind::Probe { .. }) {
                    crate::telemetry::metrics::count_with(
                        crate::telemetry::metrics::BREAKER_PROBES,
                        "breaker",
                        self.name.to_string(),
                    );
                }
                self.refresh_runtime(op.deadline).await; // for the next call; permitted calls only
                return Ok(Permit { kind });
            }
        }
        Err(AcquireError::Rejected(self.reject(Rejection::HalfOpen)))
    }

    fn reject(&self, reason: Rejection) -> Rejection {
        self.emit(Event::Rejected {
            breaker: &self.name,
            reason,
        });
        reason
    }

    /// Records a permitted call's outcome; may trip, close or reopen the breaker, and answers a
    /// retry request against the budget (the reservation rides on this very write).
    pub async fn record(&self, permit: Permit, observation: Observation) -> RetryGrant {
        let config = self.config();
        self.record_with(permit, observation, &self.op(&config, None)).await
    }

    /// [`record`](Self::record), with every store call cut short by `deadline`. When the deadline
    /// ends the outcome write, the outcome waits for the instance's next write and a requested
    /// retry is granted provisionally (the caller, out of time, hands the ticket back).
    pub async fn record_within(&self, permit: Permit, observation: Observation, deadline: &Deadline) -> RetryGrant {
        let config = self.config();
        self.record_with(permit, observation, &self.op(&config, Some(deadline)))
            .await
    }

    async fn record_with(&self, permit: Permit, observation: Observation, op: &Op<'_>) -> RetryGrant {
        let config = op.config;
        let now = self.now();
        let failed = observation.outcome.is_breaker_failure();
        let slow = config.is_slow(observation.elapsed);
        if let PermitKind::Probe { version } = permit.kind {
            self.record_probe(version, failed || slow, op, now).await;
            // A failed probe reopened the breaker: the retry will meet the open breaker.
            return match observation.retry {
                Some(_) => RetryGrant::Granted(RetryTicket { bucket: None }),
                None => RetryGrant::NotRequested,
            };
        }
        let bucket = bucket_start(now, config);
        let this = Counts {
            retries: i64::from(observation.retry.is_some()),
            ..Counts::call_took(failed, slow, observation.elapsed)
        };
        // `counts` go to the fleet; `local` is the part of them the local copy already holds.
        let (shared_first, counts, local, stale) = {
            let mut instance = self.lock();
            if this.is_plain_success() && instance.can_coalesce(now, config) {
                instance.add_pending(bucket, this);
                return RetryGrant::NotRequested;
            }
            let stale = instance.record.window.stale_names(now, config);
            if instance.store_due(now) {
                let (mut counts, local) = instance.take_pending();
                add_pending(&mut counts, bucket, this);
                (true, counts, local, stale)
            } else {
                instance.add_pending_local(bucket, this);
                (false, Pending::from([(bucket, this)]), Pending::new(), stale)
            }
        };
        let update = |target| match target {
            Target::Local { reseeded: false } => record_update(&without(&counts, &local), &stale, config, now),
            Target::Fleet | Target::Local { reseeded: true } => record_update(&counts, &stale, config, now),
        };
        let applied = self.apply("record", shared_first, update, op).await;
        let scope = match &applied {
            Applied::Done(_, scope) | Applied::Lost(_, scope) => *scope,
            Applied::Cut(_) => {
                self.lock().restore_pending(counts, local);
                return match observation.retry {
                    None => RetryGrant::NotRequested,
                    Some(_) => RetryGrant::Granted(RetryTicket { bucket: Some(bucket) }),
                };
            }
        };
        let record = Arc::clone(applied.record());
        if shared_first {
            let mut instance = self.lock();
            match scope {
                Scope::Fleet => instance.last_write_at = Some(now),
                Scope::Local => instance.restore_pending(counts.clone(), counts),
            }
        }
        let grant = match observation.retry {
            None => RetryGrant::NotRequested,
            Some(budget) => {
                let totals = record.window.totals(now, record.window_from, config);
                if budget.allows(totals.calls, totals.retries - 1) {
                    RetryGrant::Granted(RetryTicket { bucket: Some(bucket) })
                } else {
                    self.refund(bucket).await;
                    RetryGrant::Denied(scope)
                }
            }
        };
        if let Some(transition) = decision::after_record(PermitKind::Normal, &record, config, now) {
            self.run_transition(transition, op).await;
        }
        grant
    }

    async fn record_probe(&self, version: i64, failed: bool, op: &Op<'_>, now: i64) {
        let (shared_first, cached, stale) = {
            let instance = self.lock();
            let stale = instance.record.window.stale_names(now, op.config);
            (instance.store_due(now), Arc::clone(&instance.record), stale)
        };
        if failed {
            if let Some(reopen) = decision::after_failed_probe(version, &cached, op.config, now) {
                self.run_transition(reopen, op).await;
            }
            return;
        }
        let update = |_| probe_success_update(version, &stale, op.config, now);
        if let Applied::Done(record, _) = self.apply("probe", shared_first, update, op).await
            && let Some(close) = decision::after_record(PermitKind::Probe { version }, &record, op.config, now)
        {
            self.run_transition(close, op).await;
        }
    }

    /// Hands back a permit whose call will not be made (no time left for it): nothing is recorded.
    /// A probe permit goes back to its round (a conditional increment, cut short by `deadline`; if
    /// that cannot be done in time, the permit expires with the round).
    pub async fn release(&self, permit: Permit, deadline: &Deadline) {
        let PermitKind::Probe { version } = permit.kind else {
            return;
        };
        let config = self.config();
        let now = self.now();
        let shared_first = self.lock().store_due(now);
        let update = |_| return_probe_update(version, now);
        // Lost (the round ended) or cut: nothing more to hand back.
        let _ = self
            .apply("probe", shared_first, update, &self.op(&config, Some(deadline)))
            .await;
    }

    /// Hands back a granted retry that will not be made (deadline, breaker now open), so the
    /// budget is not charged for it.
    pub async fn release_retry(&self, ticket: RetryTicket) {
        if let Some(bucket) = ticket.bucket {
            self.refund(bucket).await;
        }
    }
}
