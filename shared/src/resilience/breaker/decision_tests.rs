//! State-machine tests of the pure decisions: every transition, at its boundaries.

use std::time::Duration;

use super::*;
use crate::resilience::breaker::window::Counts;

const NOW: i64 = 1_000_000;

fn config() -> BreakerConfig {
    BreakerConfig::builder()
        .minimum_calls(10)
        .failure_rate_threshold(50.0)
        .slow_call_rate_threshold(80.0)
        .open_duration(Duration::from_secs(10))
        .max_open_duration(Duration::from_secs(40))
        .half_open_probes(3)
        .half_open_successes(2)
        .permit_ttl(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn closed_with(calls: i64, failures: i64, slow: i64) -> BreakerRecord {
    let mut record = BreakerRecord::absent();
    record.window.add(
        NOW - 500,
        Counts {
            calls,
            failures,
            slow,
            retries: 0,
            ..Counts::default()
        },
    );
    record
}

fn trip(record: &BreakerRecord) -> Transition {
    after_record(PermitKind::Normal, record, &config(), NOW).expect("trips")
}

#[test]
fn closed_allows_when_fresh_and_refreshes_when_stale() {
    let record = BreakerRecord::absent();
    assert_eq!(admit(&record, true, &config(), NOW), Admission::Allow);
    assert_eq!(admit(&record, false, &config(), NOW), Admission::Refresh);
}

#[test]
fn closed_trips_exactly_at_the_failure_threshold_with_minimum_calls() {
    assert_eq!(
        after_record(PermitKind::Normal, &closed_with(10, 4, 0), &config(), NOW),
        None
    );
    assert_eq!(
        after_record(PermitKind::Normal, &closed_with(9, 9, 0), &config(), NOW),
        None,
        "below minimum"
    );
    let t = trip(&closed_with(10, 5, 0));
    assert_eq!(
        (t.from, t.to, t.expected_version, t.trips),
        (State::Closed, State::Open, 0, 1)
    );
    assert_eq!(t.open_until, NOW + 10_000);
}

#[test]
fn closed_trips_on_slow_call_rate_at_its_boundary() {
    assert_eq!(
        after_record(PermitKind::Normal, &closed_with(10, 0, 7), &config(), NOW),
        None
    );
    assert_eq!(trip(&closed_with(10, 0, 8)).to, State::Open);
}

#[test]
fn open_rejects_without_io_until_open_until_then_starts_half_open_with_one_probe_taken() {
    let open = trip(&closed_with(10, 10, 0)).applied_to(&closed_with(10, 10, 0));
    let until = open.open_until;
    assert_eq!(
        admit(&open, false, &config(), until - 1),
        Admission::Reject(Rejection::Open { until_ms: until })
    );
    let Admission::Transition(t) = admit(&open, false, &config(), until) else {
        panic!("expected a transition")
    };
    assert_eq!((t.from, t.to, t.expected_version), (State::Open, State::HalfOpen, 1));
    assert_eq!(t.probes_left, 2, "3 probes, the writer keeps one");
    assert_eq!(t.granted_until, until + 5_000);
    assert!(t.takes_probe());
}

fn half_open() -> BreakerRecord {
    let open = trip(&closed_with(10, 10, 0)).applied_to(&closed_with(10, 10, 0));
    let Admission::Transition(t) = admit(&open, true, &config(), open.open_until) else {
        panic!()
    };
    t.applied_to(&open)
}

#[test]
fn half_open_grants_probes_then_rejects_when_none_are_left() {
    let mut record = half_open();
    let now = record.granted_until - 100;
    assert_eq!(
        admit(&record, true, &config(), now),
        Admission::TakeProbe { version: 2 }
    );
    record.probes_left = 0;
    assert_eq!(
        admit(&record, true, &config(), now),
        Admission::Reject(Rejection::HalfOpen)
    );
    assert_eq!(
        admit(&record, false, &config(), now),
        Admission::Refresh,
        "stale: the round may be over"
    );
    assert!(is_rejecting(&record, now));
}

#[test]
fn half_open_round_with_expired_permits_is_renewed_so_a_lost_probe_cannot_wedge_it() {
    let mut record = half_open();
    record.probes_left = 0;
    let Admission::Transition(t) = admit(&record, true, &config(), record.granted_until) else {
        panic!()
    };
    assert_eq!(
        (t.from, t.to, t.expected_version),
        (State::HalfOpen, State::HalfOpen, 2)
    );
    assert_eq!(t.probes_left, 2);
    assert!(
        !is_rejecting(&record, record.granted_until),
        "expired round: a call would renew it"
    );
}

#[test]
fn half_open_closes_after_m_successes_of_its_own_round_only() {
    let mut record = half_open();
    let now = record.granted_until - 100;
    record.probe_ok = 1;
    assert_eq!(
        after_record(PermitKind::Probe { version: 2 }, &record, &config(), now),
        None
    );
    record.probe_ok = 2;
    assert_eq!(
        after_record(PermitKind::Probe { version: 1 }, &record, &config(), now),
        None,
        "stale round"
    );
    let close = after_record(PermitKind::Probe { version: 2 }, &record, &config(), now).unwrap();
    assert_eq!((close.from, close.to, close.trips), (State::HalfOpen, State::Closed, 0));
    assert!(close.reset_window);
    let closed = close.applied_to(&record);
    assert_eq!(closed.window_from, now);
    assert_eq!(
        closed.window.totals(now, closed.window_from, &config()),
        Counts::default(),
        "old failures forgotten"
    );
}

#[test]
fn failed_probe_reopens_with_a_longer_open_period_capped_at_max() {
    let record = half_open();
    let now = record.granted_until - 100;
    let reopen = after_failed_probe(2, &record, &config(), now).unwrap();
    assert_eq!(
        (reopen.from, reopen.to, reopen.trips),
        (State::HalfOpen, State::Open, 2)
    );
    assert_eq!(reopen.open_until, now + 20_000, "second consecutive trip: doubled");
    let mut flapping = record.clone();
    flapping.trips = 5;
    assert_eq!(
        after_failed_probe(2, &flapping, &config(), now).unwrap().open_until,
        now + 40_000
    );
    assert_eq!(
        after_failed_probe(1, &record, &config(), now),
        None,
        "another round: already decided"
    );
}

#[test]
fn forced_open_rejects_and_disabled_allows_but_never_trips() {
    let closed = closed_with(100, 100, 0);
    let forced = Transition::operator(&closed, State::ForcedOpen, NOW)
        .unwrap()
        .applied_to(&closed);
    assert_eq!(
        admit(&forced, true, &config(), NOW),
        Admission::Reject(Rejection::ForcedOpen)
    );
    assert!(is_rejecting(&forced, NOW));
    let disabled = Transition::operator(&closed, State::Disabled, NOW)
        .unwrap()
        .applied_to(&closed);
    assert_eq!(admit(&disabled, true, &config(), NOW), Admission::Allow);
    assert_eq!(
        after_record(PermitKind::Normal, &disabled, &config(), NOW),
        None,
        "metrics only"
    );
}

#[test]
fn operator_transitions_go_through_the_table() {
    let closed = BreakerRecord::absent();
    assert!(Transition::operator(&closed, State::HalfOpen, NOW).is_err());
    assert!(
        Transition::operator(&closed, State::Closed, NOW).is_err(),
        "closed -> closed is not listed"
    );
    let forced = Transition::operator(&closed, State::ForcedOpen, NOW)
        .unwrap()
        .applied_to(&closed);
    let back = Transition::operator(&forced, State::Closed, NOW).unwrap();
    assert_eq!((back.expected_version, back.new_version()), (1, 2));
}
