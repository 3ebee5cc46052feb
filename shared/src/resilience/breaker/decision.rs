//! Pure breaker decisions: (stored record, config, now) → what to do. No I/O, no clock, no locks.
//!
//! `shared.rs` executes the resulting [`Transition`]s as conditional writes on `version`, against
//! the fleet store or, during a store outage, the instance's local fallback store.

use super::config::BreakerConfig;
use super::record::BreakerRecord;
use super::state::{IllegalTransition, State, check_transition};
use super::window::verdict;
use crate::clock::millis;
use crate::resilience::error::Rejection;

/// What a granted permit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitKind {
    /// An ordinary call (breaker closed or disabled); its outcome goes to the window.
    Normal,
    /// A half-open probe of the round with this `version`; its outcome decides the round.
    Probe {
        /// The half-open round (record version) the permit belongs to.
        version: i64,
    },
}

/// What an instance does when a call asks for permission.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Let the call through (no store operation).
    Allow,
    /// Refuse the call (no store operation).
    Reject(Rejection),
    /// The cached record is too old to decide on: read it first.
    Refresh,
    /// Perform a transition; one to half-open also takes the round's first probe permit.
    Transition(Transition),
    /// Take a probe permit: a conditional decrement of `probes_left` in round `version`.
    TakeProbe {
        /// The half-open round.
        version: i64,
    },
}

/// A state change, committed only if the record still has `expected_version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// The version the record must still have.
    pub expected_version: i64,
    /// `open_until` after (epoch ms; 0 unless open).
    pub open_until: i64,
    /// Consecutive trips after.
    pub trips: u32,
    /// Probe permits left after (the transition to half-open keeps one for its writer).
    pub probes_left: i64,
    /// Expiry of the new round's permits (epoch ms; 0 unless half-open).
    pub granted_until: i64,
    /// Whether the window restarts at `at_ms` (on closing).
    pub reset_window: bool,
    /// When the decision was made (epoch ms).
    pub at_ms: i64,
}

impl Transition {
    /// The version the record has after the transition.
    pub const fn new_version(&self) -> i64 {
        self.expected_version + 1
    }

    /// Whether committing it grants its writer a probe permit.
    pub fn takes_probe(&self) -> bool {
        self.to == State::HalfOpen
    }

    fn base(record: &BreakerRecord, to: State, now: i64) -> Result<Self, IllegalTransition> {
        check_transition(record.state, to)?;
        Ok(Self {
            from: record.state,
            to,
            expected_version: record.version,
            open_until: 0,
            trips: record.trips,
            probes_left: 0,
            granted_until: 0,
            reset_window: false,
            at_ms: now,
        })
    }

    fn open(record: &BreakerRecord, config: &BreakerConfig, now: i64) -> Result<Self, IllegalTransition> {
        let trips = record.trips.saturating_add(1);
        let open_ms = millis(config.open_duration_for(trips));
        Ok(Self {
            trips,
            open_until: now.saturating_add(open_ms),
            ..Self::base(record, State::Open, now)?
        })
    }

    fn half_open(record: &BreakerRecord, config: &BreakerConfig, now: i64) -> Result<Self, IllegalTransition> {
        Ok(Self {
            probes_left: i64::from(config.half_open_probes) - 1,
            granted_until: now.saturating_add(millis(config.permit_ttl)),
            ..Self::base(record, State::HalfOpen, now)?
        })
    }

    fn closed(record: &BreakerRecord, now: i64) -> Result<Self, IllegalTransition> {
        Ok(Self {
            trips: 0,
            reset_window: true,
            ..Self::base(record, State::Closed, now)?
        })
    }

    /// An operator's transition to `to` (closed, forced open or disabled).
    ///
    /// # Errors
    /// [`IllegalTransition`] when the table does not list `record.state → to`.
    pub fn operator(record: &BreakerRecord, to: State, now: i64) -> Result<Self, IllegalTransition> {
        match to {
            State::Closed => Self::closed(record, now),
            State::ForcedOpen | State::Disabled => Ok(Self {
                trips: 0,
                ..Self::base(record, to, now)?
            }),
            State::Open | State::HalfOpen => Err(IllegalTransition { from: record.state, to }),
        }
    }

    /// The record as it is after this transition commits (window untouched except for a reset).
    pub fn applied_to(&self, record: &BreakerRecord) -> BreakerRecord {
        let mut next = record.clone();
        next.state = self.to;
        next.version = self.new_version();
        next.open_until = self.open_until;
        next.trips = self.trips;
        next.probes_left = self.probes_left;
        next.probe_ok = 0;
        next.granted_until = self.granted_until;
        if self.reset_window {
            next.window_from = self.at_ms;
        }
        next
    }
}

/// Decides a request for permission on `record` (`fresh`: younger than the cache TTL).
pub fn admit(record: &BreakerRecord, fresh: bool, config: &BreakerConfig, now: i64) -> Admission {
    match record.state {
        State::Closed | State::Disabled if fresh => Admission::Allow,
        State::ForcedOpen if fresh => Admission::Reject(Rejection::ForcedOpen),
        State::Closed | State::Disabled | State::ForcedOpen => Admission::Refresh,
        // An open breaker needs no fresh copy: it rejects until its open period ends.
        State::Open if now < record.open_until => Admission::Reject(Rejection::Open {
            until_ms: record.open_until,
        }),
        State::Open => transition_or_reject(Transition::half_open(record, config, now)),
        State::HalfOpen if now >= record.granted_until => {
            transition_or_reject(Transition::half_open(record, config, now))
        }
        State::HalfOpen if record.probes_left > 0 => Admission::TakeProbe {
            version: record.version,
        },
        State::HalfOpen if fresh => Admission::Reject(Rejection::HalfOpen),
        State::HalfOpen => Admission::Refresh,
    }
}

fn transition_or_reject(transition: Result<Transition, IllegalTransition>) -> Admission {
    transition.map_or(Admission::Reject(Rejection::HalfOpen), Admission::Transition)
}

/// After an outcome was written and `record` came back: the transition it calls for, if any.
/// A normal call may trip a closed breaker; a successful probe may close a half-open one.
pub fn after_record(
    permit: PermitKind,
    record: &BreakerRecord,
    config: &BreakerConfig,
    now: i64,
) -> Option<Transition> {
    match permit {
        PermitKind::Normal if record.state == State::Closed => {
            let totals = record.window.totals(now, record.window_from, config);
            verdict(totals, config)
                .trips()
                .then(|| Transition::open(record, config, now).ok())
                .flatten()
        }
        PermitKind::Probe { version }
            if record.state == State::HalfOpen
                && record.version == version
                && record.probe_ok >= i64::from(config.half_open_successes) =>
        {
            Transition::closed(record, now).ok()
        }
        PermitKind::Normal | PermitKind::Probe { .. } => None,
    }
}

/// A failed (or slow) probe of round `version` reopens the breaker, with a longer open period.
/// `None` when `record` is no longer that round (another instance already decided it).
pub fn after_failed_probe(
    version: i64,
    record: &BreakerRecord,
    config: &BreakerConfig,
    now: i64,
) -> Option<Transition> {
    (record.state == State::HalfOpen && record.version == version)
        .then(|| Transition::open(record, config, now).ok())
        .flatten()
}

/// The rejection a call would meet right now, judged on the cached record alone (no I/O).
pub fn rejection(record: &BreakerRecord, now: i64) -> Option<Rejection> {
    match record.state {
        State::ForcedOpen => Some(Rejection::ForcedOpen),
        State::Open if now < record.open_until => Some(Rejection::Open {
            until_ms: record.open_until,
        }),
        State::HalfOpen if record.probes_left <= 0 && now < record.granted_until => Some(Rejection::HalfOpen),
        State::Open | State::HalfOpen | State::Closed | State::Disabled => None,
    }
}

/// Whether calls are being refused right now, judged on the cached record alone (no I/O).
pub fn is_rejecting(record: &BreakerRecord, now: i64) -> bool {
    rejection(record, now).is_some()
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
