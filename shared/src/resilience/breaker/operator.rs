//! Operators' transitions (`force`): committed in the fleet store only, never decided locally.

use std::sync::Arc;

use super::apply::Applied;
use super::decision::Transition;
use super::permit::MAX_ROUNDS;
use super::record::BreakerRecord;
use super::state::{IllegalTransition, State};
use super::updates::transition_update;
use super::{Breaker, BreakerSnapshot};
use crate::store::StoreError;
use crate::store::Unanswered;

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

impl From<Unanswered> for ForceError {
    fn from(unanswered: Unanswered) -> Self {
        match unanswered {
            Unanswered::Store(error) => Self::Store(error),
            // `force` runs without a deadline; kept total rather than panicking.
            Unanswered::Deadline => Self::Store(StoreError::Unavailable("deadline passed".into())),
        }
    }
}

impl Breaker {
    /// The breaker as the fleet store holds it now (one read, nothing adopted or cached): what
    /// an operator's view shows. Window totals are judged with this instance's configuration.
    ///
    /// # Errors
    /// [`ForceError::Store`] when the store fails or the item does not decode.
    pub async fn fleet_snapshot(&self) -> Result<BreakerSnapshot, ForceError> {
        let config = self.config();
        let op = self.op(&config, None);
        let item = op.call(self.store.get(&self.key)).await?;
        let record = BreakerRecord::from_item(item.as_ref())?;
        let now = self.now();
        Ok(BreakerSnapshot {
            name: self.name.to_string(),
            state: record.state,
            version: record.version,
            trips: record.trips,
            open_until_ms: record.open_until,
            probes_left: record.probes_left,
            window: record.window.totals(now, record.window_from, &config),
            degraded: false,
        })
    }

    /// An operator's transition to `to` (`Closed`, `ForcedOpen` or `Disabled`), committed in the
    /// fleet store (never only locally). Already in `to`: nothing to do.
    ///
    /// # Errors
    /// [`ForceError::Illegal`] for transitions the table refuses, [`ForceError::Store`] when the
    /// store fails, [`ForceError::Contended`] when other instances keep winning.
    pub async fn force(&self, to: State) -> Result<BreakerSnapshot, ForceError> {
        let config = self.config();
        let op = self.op(&config, None);
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let request = self.lock().next_request();
            let item = op.call(self.store.get(&self.key)).await?;
            let record = Arc::new(BreakerRecord::from_item(item.as_ref())?);
            self.adopt_shared(Arc::clone(&record), now, request);
            if record.state == to {
                return Ok(self.snapshot());
            }
            let transition = Transition::operator(&record, to, now)?;
            let known = record.window.names();
            let tag = self.lock().next_tag(&self.owner);
            let update = transition_update(&transition, &known, &config, &tag);
            let applied = match self.try_shared(update, &op).await {
                Ok(applied) => applied,
                Err(error) => {
                    // It may have committed: the next answer (the operator's retry) tells.
                    self.lock().note_unconfirmed(transition, tag);
                    return Err(error.into());
                }
            };
            if let Applied::Done(after, scope) = applied {
                self.emit_transition(&transition, &after, scope);
                return Ok(self.snapshot());
            }
        }
        Err(ForceError::Contended)
    }
}
