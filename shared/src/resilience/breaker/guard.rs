//! The call-facing protocol: `acquire` a permit, `record` the outcome, and operators' `force`.

use std::sync::Arc;

use super::config::BreakerConfig;
use super::decision::{self, Admission, PermitKind, Transition};
use super::exec::Applied;
use super::record::BreakerRecord;
use super::shared::{Pending, add_pending, probe_success_update, record_update, take_probe_update, within};
use super::state::{IllegalTransition, State};
use super::window::{Counts, bucket_start};
use super::{Breaker, BreakerSnapshot, Observation, Permit, RetryGrant, RetryTicket};
use crate::resilience::error::Rejection;
use crate::resilience::events::Event;
use crate::store::StoreError;

/// Rounds of decide → write → adopt the winner's record before giving up on a contended breaker.
const MAX_ROUNDS: usize = 4;

/// Why an operator's transition failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForceError {
    /// The transition table does not allow it from the current state.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// The fleet store failed (operator transitions never fall back to local state).
    #[error("state store failed: {0}")]
    Store(#[from] StoreError),
    /// Other instances kept changing the breaker.
    #[error("breaker kept changing; try again")]
    Contended,
}

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
        let config = self.config();
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let (admission, shared_first) = {
                let instance = self.lock();
                let fresh = instance.is_fresh(now, &config);
                (
                    decision::admit(&instance.record, fresh, &config, now),
                    instance.store_due(now),
                )
            };
            match admission {
                Admission::Allow => {
                    return Ok(Permit {
                        kind: PermitKind::Normal,
                    });
                }
                Admission::Reject(reason) => return Err(self.reject(reason)),
                Admission::Refresh => self.refresh(&config).await,
                Admission::Transition(transition) => {
                    let probe = transition.takes_probe();
                    if let Applied::Done(record, _) = self.run_transition(transition, &config).await
                        && probe
                    {
                        return Ok(Permit {
                            kind: PermitKind::Probe {
                                version: record.version,
                            },
                        });
                    }
                }
                Admission::TakeProbe { version } => {
                    let applied = self
                        .apply("probe", shared_first, || take_probe_update(version, now), &config)
                        .await;
                    if let Applied::Done(..) = applied {
                        return Ok(Permit {
                            kind: PermitKind::Probe { version },
                        });
                    }
                }
            }
        }
        Err(self.reject(Rejection::HalfOpen))
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
        let now = self.now();
        let failed = observation.outcome.is_breaker_failure();
        let slow = config.is_slow(observation.elapsed);
        if let PermitKind::Probe { version } = permit.kind {
            self.record_probe(version, failed || slow, &config, now).await;
            // A failed probe reopened the breaker: the retry will meet the open breaker.
            return match observation.retry {
                Some(_) => RetryGrant::Granted(RetryTicket { bucket: None }),
                None => RetryGrant::NotRequested,
            };
        }
        let bucket = bucket_start(now, &config);
        let this = Counts {
            retries: i64::from(observation.retry.is_some()),
            ..Counts::call(failed, slow)
        };
        let (shared_first, counts, stale) = {
            let mut instance = self.lock();
            if this == Counts::call(false, false) && instance.can_coalesce(now, &config) {
                instance.add_pending(bucket, this);
                return RetryGrant::NotRequested;
            }
            let stale = instance.record.window.stale_names(now, &config);
            if instance.store_due(now) {
                let mut counts = instance.take_pending();
                add_pending(&mut counts, bucket, this);
                (true, counts, stale)
            } else {
                instance.add_pending(bucket, this);
                (false, Pending::from([(bucket, this)]), stale)
            }
        };
        let applied = self
            .apply(
                "record",
                shared_first,
                || record_update(&counts, &stale, &config, now),
                &config,
            )
            .await;
        let record = Arc::clone(applied.record());
        let scope = applied.scope();
        if shared_first {
            let mut instance = self.lock();
            match scope {
                super::Scope::Fleet => instance.last_write_at = Some(now),
                super::Scope::Local => instance.restore_pending(counts),
            }
        }
        let grant = match observation.retry {
            None => RetryGrant::NotRequested,
            Some(budget) => {
                let totals = record.window.totals(now, record.window_from, &config);
                if budget.allows(totals.calls, totals.retries - 1) {
                    RetryGrant::Granted(RetryTicket { bucket: Some(bucket) })
                } else {
                    self.refund(bucket).await;
                    RetryGrant::Denied(scope)
                }
            }
        };
        if let Some(transition) = decision::after_record(PermitKind::Normal, &record, &config, now) {
            self.run_transition(transition, &config).await;
        }
        grant
    }

    async fn record_probe(&self, version: i64, failed: bool, config: &BreakerConfig, now: i64) {
        let (shared_first, cached, stale) = {
            let instance = self.lock();
            let stale = instance.record.window.stale_names(now, config);
            (instance.store_due(now), Arc::clone(&instance.record), stale)
        };
        if failed {
            if let Some(reopen) = decision::after_failed_probe(version, &cached, config, now) {
                self.run_transition(reopen, config).await;
            }
            return;
        }
        let applied = self
            .apply(
                "probe",
                shared_first,
                || probe_success_update(version, &stale, config, now),
                config,
            )
            .await;
        if let Applied::Done(record, _) = applied
            && let Some(close) = decision::after_record(PermitKind::Probe { version }, &record, config, now)
        {
            self.run_transition(close, config).await;
        }
    }

    /// Hands back a granted retry that will not be made (deadline, breaker now open), so the
    /// budget is not charged for it.
    pub async fn release_retry(&self, ticket: RetryTicket) {
        if let Some(bucket) = ticket.bucket {
            self.refund(bucket).await;
        }
    }

    /// An operator's transition to `to` (`Closed`, `ForcedOpen` or `Disabled`), committed in the
    /// fleet store (never only locally). Already in `to`: nothing to do.
    ///
    /// # Errors
    /// [`ForceError::Illegal`] for transitions the table refuses, [`ForceError::Store`] when the
    /// store fails, [`ForceError::Contended`] when other instances keep winning.
    pub async fn force(&self, to: State) -> Result<BreakerSnapshot, ForceError> {
        let config = self.config();
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let request = self.lock().next_request();
            let item = within(config.store_timeout, self.store.get(&self.key)).await?;
            let record = Arc::new(BreakerRecord::from_item(item.as_ref())?);
            self.adopt_shared(Arc::clone(&record), now, request);
            if record.state == to {
                return Ok(self.snapshot());
            }
            let transition = Transition::operator(&record, to, now)?;
            let known = record.window.names();
            let update = super::shared::transition_update(&transition, &known, &config);
            if let Applied::Done(after, scope) = self.try_shared(update, &config).await? {
                self.emit(Event::Transition {
                    breaker: &self.name,
                    from: transition.from,
                    to,
                    version: after.version,
                    trips: after.trips,
                    scope,
                });
                return Ok(self.snapshot());
            }
        }
        Err(ForceError::Contended)
    }
}
