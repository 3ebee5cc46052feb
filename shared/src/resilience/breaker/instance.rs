//! The per-instance view of a breaker: the last fleet record seen, outcomes not yet written, and
//! whether the store is currently being bypassed.
//!
//! Scope: per instance (one Lambda execution environment), behind the breaker's mutex, which is
//! never held across an `.await`. Every store answer (an outcome write's `ALL_NEW`, a read, or the
//! `current` item of a lost race) refreshes the record, so a busy instance almost never reads.

use std::mem;
use std::sync::Arc;

use super::config::BreakerConfig;
use super::decision::Transition;
use super::record::BreakerRecord;
use super::updates::{Pending, add_pending, merge_pending};
use super::window::Counts;
use crate::clock::millis;

/// The store is being bypassed since `since`; it is tried again from `retry_at` (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Degraded {
    /// When the first failure happened.
    pub since: i64,
    /// When the store is tried again.
    pub retry_at: i64,
}

/// A transition this instance wrote on the fleet store whose answer never came (store failure or
/// deadline): it may have committed. The first fleet answer to a later request settles it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unconfirmed {
    /// The transition.
    pub transition: Transition,
    /// The writer tag its update set (`owner`).
    pub tag: String,
    /// Requests up to this one may have been answered before the write landed.
    after_request: u64,
}

/// A breaker's per-instance state.
#[derive(Debug, Default)]
pub struct Instance {
    /// The fleet record as last seen (or, while degraded, the local fallback record).
    pub record: Arc<BreakerRecord>,
    /// When the store last confirmed `record` (epoch ms); `None` before the first answer.
    pub fetched_at: Option<i64>,
    /// When this instance last wrote outcomes to the store (epoch ms).
    pub last_write_at: Option<i64>,
    /// Outcome counts not yet in the fleet window (coalesced successes, outage-time outcomes,
    /// refunds of refused retry reservations), by bucket start.
    pub pending: Pending,
    /// The part of `pending` already applied to the local fallback copy (outage-time outcomes):
    /// a failed fleet write applies only the rest locally, so no outcome counts twice there.
    pub applied_locally: Pending,
    /// Set while the store is unreachable.
    pub degraded: Option<Degraded>,
    /// A transition whose fleet write went unanswered, until an answer settles it.
    pub unconfirmed: Option<Unconfirmed>,
    /// Transition tags issued so far.
    tags: u64,
    /// Fleet-store requests issued so far.
    issued: u64,
    /// The request whose answer `record` is.
    adopted: u64,
}

impl Instance {
    /// Whether decisions may rely on `record` at `now` without a read. While degraded the local
    /// record is authoritative until the store is due to be tried again.
    pub fn is_fresh(&self, now: i64, config: &BreakerConfig) -> bool {
        match (self.degraded, self.fetched_at) {
            (Some(degraded), _) => now < degraded.retry_at,
            (None, Some(at)) => now.saturating_sub(at) < millis(config.cache_ttl),
            (None, None) => false,
        }
    }

    /// Whether the next operation should go to the fleet store (not degraded, or due for a retry).
    pub fn store_due(&self, now: i64) -> bool {
        self.degraded.is_none_or(|d| now >= d.retry_at)
    }

    /// Whether a fast success can wait in `pending` instead of being written now: breaker not
    /// degraded and a write happened less than `flush_interval` ago.
    pub fn can_coalesce(&self, now: i64, config: &BreakerConfig) -> bool {
        let interval = millis(config.flush_interval);
        self.degraded.is_none()
            && interval > 0
            && self.last_write_at.is_some_and(|at| now.saturating_sub(at) < interval)
            && self.is_fresh(now, config)
    }

    /// Numbers the next fleet-store request (answers are ordered by when they were asked).
    pub fn next_request(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// Adopts a record the fleet store returned for request `request` (see [`next_request`]).
    /// Returns `true` when this ends a degraded period. An answer to a request issued before the
    /// one whose answer is cached (a slower concurrent call) is ignored; versions are not compared,
    /// so an item that vanished or was recreated (version back to 0) is adopted, not refused.
    ///
    /// [`next_request`]: Self::next_request
    pub fn adopt_shared(&mut self, record: Arc<BreakerRecord>, now: i64, request: u64) -> bool {
        let resynced = self.degraded.take().is_some();
        if resynced {
            self.applied_locally.clear(); // the local copy is discarded; the next outage reseeds it
        }
        if resynced || request > self.adopted {
            self.record = record;
            self.fetched_at = Some(now);
            self.adopted = request;
        }
        resynced
    }

    /// A fresh writer tag for a transition: `{owner}#{n}`.
    pub fn next_tag(&mut self, owner: &str) -> String {
        self.tags += 1;
        format!("{owner}#{}", self.tags)
    }

    /// Remembers a transition whose fleet write (tagged `tag`) went unanswered.
    pub fn note_unconfirmed(&mut self, transition: Transition, tag: String) {
        self.unconfirmed = Some(Unconfirmed {
            transition,
            tag,
            after_request: self.issued,
        });
    }

    /// Whether an unconfirmed transition waits for a store answer that is due now.
    pub fn confirmation_due(&self, now: i64) -> bool {
        self.unconfirmed.is_some() && self.store_due(now)
    }

    /// Settles the unconfirmed transition with the fleet's answer `record` to `request`: returns
    /// it when the answer shows it committed (its tag at its version), drops it otherwise — it
    /// never landed, or the fleet already moved past it and it can no longer be told.
    pub fn settle(&mut self, record: &BreakerRecord, request: u64) -> Option<Transition> {
        let pending = self.unconfirmed.take_if(|u| request > u.after_request)?;
        (record.version == pending.transition.new_version() && record.owner == pending.tag)
            .then_some(pending.transition)
    }

    /// Adopts a record from the local fallback store.
    pub fn adopt_local(&mut self, record: Arc<BreakerRecord>) {
        self.record = record;
    }

    /// Marks the store unreachable until `now + retry interval` — or only for this operation
    /// when `retry_at_once` (the store timed out and the next try waits longer). Returns `true`
    /// when this starts a degraded period (the caller then seeds the local store from `record`).
    pub fn degrade(&mut self, now: i64, config: &BreakerConfig, retry_at_once: bool) -> bool {
        let retry_at = if retry_at_once {
            now
        } else {
            now.saturating_add(millis(config.cache_ttl))
        };
        match &mut self.degraded {
            Some(degraded) => {
                degraded.retry_at = retry_at;
                false
            }
            None => {
                self.degraded = Some(Degraded { since: now, retry_at });
                self.applied_locally.clear(); // the caller seeds a fresh local copy
                true
            }
        }
    }

    /// Takes every pending count (for a write that will carry them), with the part of them
    /// already applied to the local copy.
    pub fn take_pending(&mut self) -> (Pending, Pending) {
        (mem::take(&mut self.pending), mem::take(&mut self.applied_locally))
    }

    /// Puts counts back after their fleet write failed: `counts` wait again, of which `local`
    /// are (now) in the local copy.
    pub fn restore_pending(&mut self, counts: Pending, local: Pending) {
        merge_pending(&mut self.pending, counts);
        merge_pending(&mut self.applied_locally, local);
    }

    /// Adds one bucket's counts to `pending` (not applied locally).
    pub fn add_pending(&mut self, start: i64, counts: Counts) {
        add_pending(&mut self.pending, start, counts);
    }

    /// Adds one bucket's counts to `pending`, as also applied to the local copy.
    pub fn add_pending_local(&mut self, start: i64, counts: Counts) {
        add_pending(&mut self.pending, start, counts);
        add_pending(&mut self.applied_locally, start, counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> BreakerConfig {
        BreakerConfig::builder()
            .cache_ttl(Duration::from_millis(1_000))
            .flush_interval(Duration::from_millis(100))
            .build()
            .unwrap()
    }

    #[test]
    fn record_is_fresh_for_one_cache_ttl_after_the_store_answered() {
        let mut instance = Instance::default();
        assert!(!instance.is_fresh(0, &config()), "never fetched");
        let request = instance.next_request();
        instance.adopt_shared(Arc::default(), 5_000, request);
        assert!(instance.is_fresh(5_999, &config()));
        assert!(!instance.is_fresh(6_000, &config()));
    }

    #[test]
    fn answers_to_earlier_requests_never_replace_a_later_one_but_a_vanished_item_is_adopted() {
        let mut instance = Instance::default();
        let (first, second) = (instance.next_request(), instance.next_request());
        instance.adopt_shared(
            Arc::new(BreakerRecord {
                version: 4,
                ..BreakerRecord::absent()
            }),
            1,
            second,
        );
        instance.adopt_shared(
            Arc::new(BreakerRecord {
                version: 3,
                ..BreakerRecord::absent()
            }),
            2,
            first,
        );
        assert_eq!(
            instance.record.version, 4,
            "the slower, earlier request's answer is ignored"
        );
        let third = instance.next_request();
        instance.adopt_shared(Arc::new(BreakerRecord::absent()), 3, third);
        assert_eq!(instance.record.version, 0, "the item expired or was recreated: adopted");
    }

    #[test]
    fn degraded_instance_retries_the_store_after_the_interval_and_resyncs_unconditionally() {
        let mut instance = Instance::default();
        let first = instance.next_request();
        let nine = Arc::new(BreakerRecord {
            version: 9,
            ..BreakerRecord::absent()
        });
        instance.adopt_shared(nine, 0, first);
        assert!(instance.degrade(100, &config(), false));
        assert!(!instance.degrade(200, &config(), false), "already degraded");
        assert!(!instance.store_due(1_100));
        assert!(instance.store_due(1_200));
        let two = Arc::new(BreakerRecord {
            version: 2,
            ..BreakerRecord::absent()
        });
        assert!(
            instance.adopt_shared(two, 1_300, first),
            "ends the degraded period, whatever the order"
        );
        assert_eq!(instance.record.version, 2, "the fleet's record wins after an outage");
    }

    #[test]
    fn an_unanswered_transition_is_settled_by_the_first_later_answer_only() {
        let mut instance = Instance::default();
        let before = instance.next_request();
        let record = BreakerRecord::absent();
        let trip = Transition::operator(&record, crate::resilience::breaker::State::ForcedOpen, 0).unwrap();
        let tag = instance.next_tag("me");
        instance.note_unconfirmed(trip.clone(), tag.clone());
        let committed = BreakerRecord {
            version: 1,
            owner: tag,
            ..BreakerRecord::absent()
        };
        assert_eq!(
            instance.settle(&committed, before),
            None,
            "an earlier request proves nothing"
        );
        assert!(instance.confirmation_due(0));
        let later = instance.next_request();
        assert_eq!(instance.settle(&committed, later), Some(trip.clone()));
        assert_eq!(instance.settle(&committed, later), None, "reported once");
        let tag = instance.next_tag("me");
        instance.note_unconfirmed(trip, tag);
        let someone_else = BreakerRecord {
            version: 1,
            owner: "other#1".into(),
            ..BreakerRecord::absent()
        };
        let later = instance.next_request();
        assert_eq!(instance.settle(&someone_else, later), None, "not ours: dropped");
        assert!(instance.unconfirmed.is_none());
    }

    #[test]
    fn successes_coalesce_only_shortly_after_a_write() {
        let mut instance = Instance::default();
        let request = instance.next_request();
        instance.adopt_shared(Arc::default(), 0, request);
        assert!(!instance.can_coalesce(10, &config()), "nothing written yet");
        instance.last_write_at = Some(10);
        assert!(instance.can_coalesce(109, &config()));
        assert!(!instance.can_coalesce(110, &config()));
        instance.add_pending(0, Counts::call(false, false));
        instance.add_pending(0, Counts::call(false, false));
        instance.add_pending_local(0, Counts::call(true, false));
        let (taken, local) = instance.take_pending();
        assert_eq!((taken[&0].calls, local[&0].calls), (3, 1));
        assert!(instance.pending.is_empty() && instance.applied_locally.is_empty());
    }
}
