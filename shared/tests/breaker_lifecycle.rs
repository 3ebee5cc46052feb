//! Breaker façade tests on the memory store with a manual clock: each step of the lifecycle,
//! its store costs, and the outage fallback.

use std::sync::Arc;
use std::time::Duration;

use shared::clock::{Clock, ManualClock};
use shared::resilience::breaker::record::BreakerRecord;
use shared::resilience::breaker::*;
use shared::resilience::error::Rejection;
use shared::resilience::{Outcome, RetryBudget, Scope, SharedObserver};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use testkit::CountingObserver;
use testkit::{CountingStore, FlakyStore, Health, SlowStore, YieldingStore, counting};

const T0: i64 = 1_700_000_000_000;

struct Rig {
    clock: ManualClock,
    shared: SharedStore,
    counts: Arc<CountingStore>,
    observer: Arc<CountingObserver>,
}

impl Rig {
    fn new() -> Self {
        let clock = ManualClock::new(T0);
        let memory: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
        let (shared, counts) = counting(memory);
        Self {
            clock,
            shared,
            counts,
            observer: Arc::new(CountingObserver::new()),
        }
    }

    fn breaker(&self, config: BreakerConfig) -> Breaker {
        self.breaker_on(Arc::clone(&self.shared), config)
    }

    fn breaker_on(&self, store: SharedStore, config: BreakerConfig) -> Breaker {
        let observer: SharedObserver = self.observer.clone();
        Breaker::new("dep", config, store, Arc::new(self.clock.clone()), observer)
    }
}

fn config() -> BreakerConfig {
    BreakerConfig::builder()
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .open_duration(Duration::from_secs(10))
        .half_open_probes(2)
        .half_open_successes(2)
        .permit_ttl(Duration::from_secs(5))
        .flush_interval(Duration::ZERO)
        .build()
        .unwrap()
}

fn observed(outcome: Outcome) -> Observation {
    Observation {
        outcome,
        elapsed: Duration::from_millis(5),
        retry: None,
    }
}

async fn call(breaker: &Breaker, outcome: Outcome) -> Result<RetryGrant, Rejection> {
    let permit = breaker.acquire().await?;
    Ok(breaker.record(permit, observed(outcome)).await)
}

async fn trip(breaker: &Breaker) {
    for _ in 0..4 {
        call(breaker, Outcome::Retryable).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn closed_breaker_trips_at_minimum_calls_and_then_rejects_without_store_operations() {
    let rig = Rig::new();
    let breaker = rig.breaker(config());
    for outcome in [Outcome::Retryable, Outcome::Success, Outcome::Success] {
        call(&breaker, outcome).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Closed, "3 calls < minimum 4");
    call(&breaker, Outcome::NotRetryable).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 of 4: a caller error is an answer from a healthy dependency"
    );
    call(&breaker, Outcome::Retryable).await.unwrap();
    assert_eq!(breaker.state(), State::Closed, "2 of 5 failed: 40 %");
    call(&breaker, Outcome::Exhausted).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "3 of 6: exactly 50 % trips; an exhausted quota is a failure"
    );
    assert_eq!(
        rig.observer.count_transitions(State::Closed, State::Open, Scope::Fleet),
        1
    );
    rig.counts.reset();
    for _ in 0..10 {
        assert!(matches!(breaker.acquire().await, Err(Rejection::Open { .. })));
    }
    assert_eq!(
        rig.counts.ops().total(),
        0,
        "an open breaker rejects without touching the store"
    );
    assert!(breaker.is_rejecting());
    assert_eq!(rig.observer.rejected(), 10);
}

#[tokio::test]
async fn half_open_grants_n_probes_fleet_wide_and_closes_after_m_successes() {
    let rig = Rig::new();
    let a = rig.breaker(config());
    let b = rig.breaker(config());
    trip(&a).await;
    rig.clock.advance(10_000);
    let p1 = a
        .acquire()
        .await
        .expect("first instance moves to half-open with a probe");
    assert!(p1.is_probe());
    let p2 = b.acquire().await.expect("second probe from another instance");
    assert!(
        b.acquire().await.is_err() && a.acquire().await.is_err(),
        "only 2 probes fleet-wide"
    );
    assert_eq!(a.record(p1, observed(Outcome::Success)).await, RetryGrant::NotRequested);
    assert_eq!(a.state(), State::HalfOpen, "one success of two");
    b.record(p2, observed(Outcome::Success)).await;
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        rig.observer
            .count_transitions(State::HalfOpen, State::Closed, Scope::Fleet),
        1
    );
    rig.clock.advance(1_000);
    assert!(
        a.acquire().await.is_ok(),
        "the other instance follows within one cache TTL"
    );
    assert_eq!(a.state(), State::Closed);
}

#[tokio::test]
async fn failed_probe_reopens_for_twice_as_long() {
    let rig = Rig::new();
    let breaker = rig.breaker(config());
    trip(&breaker).await;
    rig.clock.advance(10_000);
    let probe = breaker.acquire().await.unwrap();
    breaker.record(probe, observed(Outcome::Retryable)).await;
    let snapshot = breaker.snapshot();
    assert_eq!((snapshot.state, snapshot.trips), (State::Open, 2));
    assert_eq!(snapshot.open_until_ms, rig.clock.now_ms() + 20_000);
}

#[tokio::test]
async fn slow_probe_counts_as_a_failed_probe() {
    let rig = Rig::new();
    let breaker = rig.breaker(
        config()
            .to_builder()
            .slow_call_duration(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    trip(&breaker).await;
    rig.clock.advance(10_000);
    let probe = breaker.acquire().await.unwrap();
    let slow = Observation {
        outcome: Outcome::Success,
        elapsed: Duration::from_millis(150),
        retry: None,
    };
    breaker.record(probe, slow).await;
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn probe_that_never_reports_back_expires_and_a_new_round_starts() {
    let rig = Rig::new();
    let breaker = rig.breaker(config());
    trip(&breaker).await;
    rig.clock.advance(10_000);
    let _lost_1 = breaker.acquire().await.unwrap();
    let _lost_2 = breaker.acquire().await.unwrap();
    assert_eq!(breaker.acquire().await, Err(Rejection::HalfOpen));
    rig.clock.advance(5_000);
    let renewed = breaker.acquire().await.expect("permits expired: a new round");
    assert!(renewed.is_probe());
    assert_eq!(
        rig.observer
            .count_transitions(State::HalfOpen, State::HalfOpen, Scope::Fleet),
        1
    );
    breaker.record(_lost_1, observed(Outcome::Retryable)).await;
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "a late report from the old round changes nothing"
    );
}

#[tokio::test]
async fn concurrent_trip_attempts_commit_exactly_one_transition() {
    let rig = Rig::new();
    let racy: SharedStore = Arc::new(YieldingStore::new(Arc::clone(&rig.shared)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let breaker = Arc::new(rig.breaker_on(Arc::clone(&racy), config()));
        tasks.spawn(async move {
            let permit = breaker.acquire().await.expect("closed");
            breaker.record(permit, observed(Outcome::Retryable)).await;
            breaker.state()
        });
    }
    let states = tasks.join_all().await;
    let log = rig.observer.transitions();
    assert_eq!(
        log.len(),
        1,
        "5 instances saw >= 4 failures and raced; one won: {log:?}"
    );
    let open = states.iter().filter(|s| **s == State::Open).count();
    assert_eq!(
        open, 5,
        "every racer (winner and losers) ends on the winner's record: {states:?}"
    );
    let item = rig.shared.get(&record::key("dep")).await.unwrap();
    assert_eq!(BreakerRecord::from_item(item.as_ref()).unwrap().version, 1);
}

#[tokio::test]
async fn fast_successes_coalesce_and_reach_the_window_with_the_next_write() {
    let rig = Rig::new();
    let breaker = rig.breaker(
        config()
            .to_builder()
            .flush_interval(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    call(&breaker, Outcome::Success).await.unwrap();
    rig.counts.reset();
    for _ in 0..50 {
        rig.clock.advance(1);
        call(&breaker, Outcome::Success).await.unwrap();
    }
    assert_eq!(rig.counts.ops().total(), 0, "within the flush interval");
    rig.clock.advance(60);
    call(&breaker, Outcome::Success).await.unwrap();
    assert_eq!(rig.counts.ops().writes(), 1);
    assert_eq!(
        breaker.snapshot().window.calls,
        52,
        "every call reached the fleet window"
    );
    call(&breaker, Outcome::Retryable).await.unwrap();
    assert_eq!(rig.counts.ops().writes(), 2, "failures are written at once");
}

#[tokio::test]
async fn retry_reservations_are_granted_within_budget_and_refunded_when_refused() {
    let rig = Rig::new();
    let breaker = rig.breaker(config().to_builder().minimum_calls(1_000).build().unwrap());
    let budget = RetryBudget::try_new(10.0, 1).unwrap();
    let wants_retry = Observation {
        retry: Some(budget),
        ..observed(Outcome::Retryable)
    };
    let first = breaker.record(breaker.acquire().await.unwrap(), wants_retry).await;
    assert!(matches!(first, RetryGrant::Granted(_)), "floor of 1");
    let second = breaker.record(breaker.acquire().await.unwrap(), wants_retry).await;
    assert_eq!(second, RetryGrant::Denied(Scope::Fleet));
    call(&breaker, Outcome::Retryable).await.unwrap(); // carries the refund
    assert_eq!(
        breaker.snapshot().window.retries,
        1,
        "the refused reservation was handed back"
    );
    let RetryGrant::Granted(ticket) = first else {
        unreachable!()
    };
    breaker.release_retry(ticket).await;
    call(&breaker, Outcome::Retryable).await.unwrap();
    assert_eq!(
        breaker.snapshot().window.retries,
        0,
        "an abandoned retry is not charged"
    );
}

#[tokio::test]
async fn operator_can_force_open_and_close_through_the_table() {
    let rig = Rig::new();
    let admin = rig.breaker(config());
    let worker = rig.breaker(config());
    call(&worker, Outcome::Success).await.unwrap();
    assert!(matches!(
        admin.force(State::HalfOpen).await,
        Err(ForceError::Illegal(_))
    ));
    admin.force(State::ForcedOpen).await.unwrap();
    rig.clock.advance(1_000);
    assert_eq!(
        worker.acquire().await,
        Err(Rejection::ForcedOpen),
        "seen within one cache TTL"
    );
    admin.force(State::Disabled).await.unwrap();
    rig.clock.advance(1_000);
    for _ in 0..10 {
        call(&worker, Outcome::Retryable).await.unwrap();
    }
    assert_eq!(worker.state(), State::Disabled, "metrics only: never trips");
    assert_eq!(worker.snapshot().window.failures, 10);
    admin.force(State::Closed).await.unwrap();
    admin.force(State::Closed).await.unwrap();
    assert_eq!(admin.snapshot().version, 3, "forcing the current state is a no-op");
}

#[tokio::test(start_paused = true)]
async fn store_outage_falls_back_to_local_state_and_resyncs_when_the_store_returns() {
    let rig = Rig::new();
    let flaky = Arc::new(FlakyStore::new(Arc::clone(&rig.shared), Duration::from_secs(30)));
    let breaker = rig.breaker_on(flaky.clone(), config());
    call(&breaker, Outcome::Success).await.unwrap();
    flaky.set(Health::Stalled);
    assert!(
        call(&breaker, Outcome::Success).await.is_ok(),
        "a stalled store times out; the call goes on"
    );
    flaky.set(Health::Down);
    for _ in 0..2 {
        assert!(
            call(&breaker, Outcome::Retryable).await.is_ok(),
            "permitted by local state"
        );
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "2 of 4 failed: tripped on the instance's own state"
    );
    assert!(matches!(
        call(&breaker, Outcome::Retryable).await,
        Err(Rejection::Open { .. })
    ));
    assert_eq!(
        rig.observer.count_transitions(State::Closed, State::Open, Scope::Local),
        1
    );
    assert!(rig.observer.store_fallbacks() >= 1);
    assert!(
        flaky.refused() <= 2,
        "the store is not hammered while down: {}",
        flaky.refused()
    );
    flaky.set(Health::Up);
    rig.clock.advance(10_000);
    let probe = breaker
        .acquire()
        .await
        .expect("open period over: the fleet store is tried again");
    assert_eq!(rig.observer.resyncs(), 1);
    assert!(!probe.is_probe(), "the fleet never tripped: closed");
    breaker.record(probe, observed(Outcome::Success)).await;
    assert_eq!(
        breaker.snapshot().window.calls,
        1,
        "outcomes of 10 s ago fell out of the window"
    );
}

#[tokio::test]
async fn outage_time_outcomes_reach_the_fleet_window_after_resync() {
    let rig = Rig::new();
    let flaky = Arc::new(FlakyStore::new(Arc::clone(&rig.shared), Duration::ZERO));
    let breaker = rig.breaker_on(flaky.clone(), config().to_builder().minimum_calls(100).build().unwrap());
    call(&breaker, Outcome::Success).await.unwrap();
    flaky.set(Health::Down);
    for _ in 0..3 {
        call(&breaker, Outcome::Retryable).await.unwrap();
    }
    flaky.set(Health::Up);
    rig.clock.advance(1_000);
    call(&breaker, Outcome::Success).await.unwrap();
    let item = rig.shared.get(&record::key("dep")).await.unwrap();
    let fleet = BreakerRecord::from_item(item.as_ref()).unwrap();
    let totals = fleet.window.totals(rig.clock.now_ms(), 0, &breaker.config());
    assert_eq!((totals.calls, totals.failures), (5, 3));
}

#[tokio::test]
async fn a_vanished_breaker_item_is_adopted_as_closed_instead_of_wedging_the_instance() {
    let rig = Rig::new();
    let breaker = rig.breaker(config());
    trip(&breaker).await;
    rig.shared
        .delete(&record::key("dep"), shared::store::Condition::Always)
        .await
        .unwrap();
    rig.clock.advance(10_000);
    assert!(
        breaker.acquire().await.is_ok(),
        "the lost race reads an absent item: closed"
    );
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn slow_calls_during_an_outage_count_once_each_in_the_local_window() {
    let rig = Rig::new();
    let flaky = Arc::new(FlakyStore::new(Arc::clone(&rig.shared), Duration::ZERO));
    let breaker = rig.breaker_on(flaky.clone(), config().to_builder().minimum_calls(20).build().unwrap());
    call(&breaker, Outcome::Success).await.unwrap();
    flaky.set(Health::Down);
    for _ in 0..6 {
        let permit = breaker.acquire().await.unwrap();
        rig.clock.advance(1_500); // longer than the cache TTL: each records after the store is due again
        breaker.record(permit, observed(Outcome::Retryable)).await;
    }
    let local = breaker.snapshot();
    assert!(local.degraded);
    assert_eq!(
        (local.window.calls, local.window.failures),
        (7, 6),
        "each outage-time call once in the local window (it was 1 + 21)"
    );
    assert_eq!(local.state, State::Closed, "7 calls < minimum 20: no local trip");
    flaky.set(Health::Up);
    rig.clock.advance(1_000); // the store is due again; the first success has left the window
    call(&breaker, Outcome::Success).await.unwrap();
    let item = rig.shared.get(&record::key("dep")).await.unwrap();
    let fleet = BreakerRecord::from_item(item.as_ref()).unwrap();
    let totals = fleet.window.totals(rig.clock.now_ms(), 0, &breaker.config());
    assert_eq!(
        (totals.calls, totals.failures),
        (7, 6),
        "and once each in the fleet window"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transition_whose_answer_was_lost_is_reported_once_by_its_writer() {
    let rig = Rig::new();
    let slow = Arc::new(SlowStore::new(Arc::clone(&rig.shared)));
    slow.set_writes(Duration::from_millis(500)); // applied at once, answered past the 100 ms timeout
    slow.conditional_writes_only(true);
    let writer = rig.breaker_on(slow, config());
    let other = rig.breaker(config());
    trip(&writer).await;
    let count = |scope| rig.observer.count_transitions(State::Closed, State::Open, scope);
    assert_eq!(
        (count(Scope::Local), count(Scope::Fleet)),
        (1, 0),
        "the writer fell back"
    );
    let item = rig.shared.get(&record::key("dep")).await.unwrap();
    let fleet = BreakerRecord::from_item(item.as_ref()).unwrap();
    assert_eq!((fleet.state, fleet.version), (State::Open, 1), "but the trip committed");
    rig.clock.advance(1_000); // the store is due again
    assert!(writer.acquire().await.is_err(), "still open");
    assert_eq!(
        count(Scope::Fleet),
        1,
        "the writer's next answer reveals its committed trip"
    );
    rig.clock.advance(1_000);
    assert!(writer.acquire().await.is_err() && other.acquire().await.is_err());
    assert_eq!(count(Scope::Fleet), 1, "once, and by no other instance");
    assert!(!writer.snapshot().degraded);
}
