//! `execute` tests on paused tokio time: order of the layers, every error variant, deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shared::clock::{ManualClock, SharedClock};
use shared::deadline::Deadline;
use shared::resilience::PolicyConfig;
use shared::resilience::backoff::Jitter;
use shared::resilience::breaker::{BreakerConfig, State};
use shared::resilience::bulkhead::BulkheadConfig;
use shared::resilience::error::Rejection;
use shared::resilience::retry::Attempt;
use shared::resilience::retry::RetryConfig;
use shared::resilience::{AttemptError, ExecuteError, Outcome, Policy, execute};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use testkit::CountingObserver;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum TestError {
    #[error("transient")]
    Transient,
    #[error("bad request")]
    BadRequest,
}

/// The tests' classifier: transient failures and timeouts retry, the rest does not.
fn classify(result: &Result<u32, AttemptError<TestError>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(AttemptError::TimedOut { .. } | AttemptError::Failed(TestError::Transient)) => Outcome::Retryable,
        Err(AttemptError::Failed(TestError::BadRequest)) => Outcome::NotRetryable,
    }
}

struct Rig {
    policy: Policy,
    observer: Arc<CountingObserver>,
    calls: Arc<AtomicU32>,
}

fn retry(max_attempts: u32) -> RetryConfig {
    RetryConfig::builder()
        .max_attempts(max_attempts)
        .jitter(Jitter::None)
        .base_delay(Duration::from_millis(100))
        .max_delay(Duration::from_secs(1))
        .min_attempt(Duration::from_millis(50))
        .budget_percent(100.0)
        .build()
        .unwrap()
}

fn rig(retry: RetryConfig, breaker: BreakerConfig, bulkhead: BulkheadConfig) -> Rig {
    let clock: SharedClock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store: SharedStore = Arc::new(MemoryStore::new(Arc::clone(&clock)));
    let observer = Arc::new(CountingObserver::new());
    let config = PolicyConfig {
        retry,
        breaker,
        bulkhead,
    };
    let policy = Policy::standalone("dep", config, store, clock, observer.clone());
    Rig {
        policy,
        observer,
        calls: Arc::new(AtomicU32::new(0)),
    }
}

fn simple(max_attempts: u32) -> Rig {
    rig(retry(max_attempts), BreakerConfig::default(), BulkheadConfig::default())
}

/// An operation that answers `script[n]` on its n-th call (the last entry repeats).
fn scripted(
    rig: &Rig,
    script: &'static [Result<u32, TestError>],
) -> impl FnMut(Attempt) -> std::future::Ready<Result<u32, TestError>> + use<> {
    let calls = Arc::clone(&rig.calls);
    move |_| {
        let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
        std::future::ready(script[n.min(script.len() - 1)])
    }
}

fn far() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

#[tokio::test(start_paused = true)]
async fn success_returns_the_value_after_one_attempt() {
    let rig = simple(3);
    assert_eq!(
        execute(&rig.policy, far(), classify, scripted(&rig, &[Ok(7)]))
            .await
            .unwrap(),
        7
    );
    assert_eq!(rig.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_backoff_until_success() {
    let rig = simple(3);
    let start = tokio::time::Instant::now();
    let script = &[Err(TestError::Transient), Err(TestError::Transient), Ok(9)];
    assert_eq!(
        execute(&rig.policy, far(), classify, scripted(&rig, script))
            .await
            .unwrap(),
        9
    );
    assert_eq!(rig.calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(300), "100 ms then 200 ms");
    assert_eq!(rig.observer.retries(), 2);
}

#[tokio::test(start_paused = true)]
async fn not_retryable_errors_and_exhausted_attempts_return_the_operation_error() {
    let rig = simple(3);
    let err = execute(
        &rig.policy,
        far(),
        classify,
        scripted(&rig, &[Err(TestError::BadRequest)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::Operation {
                attempts: 1,
                error: AttemptError::Failed(TestError::BadRequest)
            }
        ),
        "{err:?}"
    );
    let rig = simple(3);
    let err = execute(
        &rig.policy,
        far(),
        classify,
        scripted(&rig, &[Err(TestError::Transient)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::Operation {
                attempts: 3,
                error: AttemptError::Failed(TestError::Transient)
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_once_the_deadline_leaves_too_little_time() {
    let rig = simple(3);
    let err = execute(
        &rig.policy,
        Deadline::after(Duration::from_millis(49)),
        classify,
        scripted(&rig, &[Ok(1)]),
    )
    .await;
    assert!(matches!(
        err,
        Err(ExecuteError::DeadlineExceeded {
            attempts: 0,
            last: None
        })
    ));
    assert_eq!(
        rig.calls.load(Ordering::SeqCst),
        0,
        "an attempt needs min_attempt (50 ms)"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_stops_instead_of_sleeping_past_the_deadline() {
    let rig = simple(5);
    let start = tokio::time::Instant::now();
    let deadline = Deadline::after(Duration::from_millis(400));
    let err = execute(
        &rig.policy,
        deadline,
        classify,
        scripted(&rig, &[Err(TestError::Transient)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::DeadlineExceeded {
                attempts: 3,
                last: Some(AttemptError::Failed(TestError::Transient))
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(300),
        "attempts at 0, 100, 300 ms; 400 + 50 ms do not fit in 100 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn hung_attempts_time_out_and_are_retried() {
    let config = retry(2)
        .to_builder()
        .attempt_timeout(Some(Duration::from_millis(500)))
        .build()
        .unwrap();
    let rig = rig(config, BreakerConfig::default(), BulkheadConfig::default());
    let calls = Arc::clone(&rig.calls);
    let op = move |attempt: Attempt| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if attempt.number == 1 {
                std::future::pending::<()>().await;
            }
            Ok::<_, TestError>(attempt.number)
        }
    };
    let start = tokio::time::Instant::now();
    assert_eq!(execute(&rig.policy, far(), classify, op).await.unwrap(), 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(600),
        "500 ms timeout + 100 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_never_exceeds_the_time_left() {
    let rig = simple(1);
    let op = |_| async { std::future::pending::<Result<u32, TestError>>().await };
    let start = tokio::time::Instant::now();
    let err = execute(&rig.policy, Deadline::after(Duration::from_millis(300)), classify, op)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::Operation {
                error: AttemptError::TimedOut { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn spent_budget_returns_budget_exhausted_with_the_last_error() {
    let config = retry(3)
        .to_builder()
        .budget_percent(0.0)
        .budget_floor(0)
        .build()
        .unwrap();
    let rig = rig(config, BreakerConfig::default(), BulkheadConfig::default());
    let err = execute(
        &rig.policy,
        far(),
        classify,
        scripted(&rig, &[Err(TestError::Transient)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::BudgetExhausted {
                attempts: 1,
                last: AttemptError::Failed(TestError::Transient)
            }
        ),
        "{err:?}"
    );
    assert_eq!(rig.observer.budget_exhausted(), 1);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_rejects_before_the_operation_runs() {
    let breaker = BreakerConfig::builder()
        .minimum_calls(2)
        .flush_interval(Duration::ZERO)
        .build()
        .unwrap();
    let rig = rig(retry(1), breaker, BulkheadConfig::default());
    for _ in 0..2 {
        let _ = execute(
            &rig.policy,
            far(),
            classify,
            scripted(&rig, &[Err(TestError::Transient)]),
        )
        .await;
    }
    assert!(rig.policy.is_rejecting());
    let err = execute(&rig.policy, far(), classify, scripted(&rig, &[Ok(1)]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ExecuteError::Rejected {
            reason: Rejection::Open { .. },
            attempts: 0,
            last: None
        }
    ));
    assert_eq!(rig.calls.load(Ordering::SeqCst), 2, "the rejected call never ran");
}

#[tokio::test(start_paused = true)]
async fn breaker_tripping_mid_call_stops_retrying_at_once_with_the_last_error() {
    let breaker = BreakerConfig::builder()
        .minimum_calls(1)
        .flush_interval(Duration::ZERO)
        .build()
        .unwrap();
    let rig = rig(retry(3), breaker, BulkheadConfig::default());
    let start = tokio::time::Instant::now();
    let err = execute(
        &rig.policy,
        far(),
        classify,
        scripted(&rig, &[Err(TestError::Transient)]),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::Rejected {
                attempts: 1,
                last: Some(AttemptError::Failed(TestError::Transient)),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "no backoff sleep before failing over");
    assert_eq!(rig.policy.breaker().state(), State::Open);
    assert_eq!(
        rig.observer.retries(),
        0,
        "no retry started; its reservation goes back with the next write"
    );
}

#[tokio::test(start_paused = true)]
async fn full_bulkhead_rejects_without_calling() {
    let bulkhead = BulkheadConfig::try_new(1, Duration::ZERO).unwrap();
    let rig = Arc::new(rig(retry(1), BreakerConfig::default(), bulkhead));
    let gate = Arc::new(tokio::sync::Notify::new());
    let holder = {
        let (rig, gate) = (Arc::clone(&rig), Arc::clone(&gate));
        tokio::spawn(async move {
            execute(&rig.policy, far(), classify, |_| {
                let gate = Arc::clone(&gate);
                async move {
                    gate.notified().await;
                    Ok::<_, TestError>(1)
                }
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    let err = execute(&rig.policy, far(), classify, scripted(&rig, &[Ok(2)]))
        .await
        .unwrap_err();
    assert_eq!(err.rejection(), Some(Rejection::BulkheadFull));
    gate.notify_one();
    assert_eq!(holder.await.unwrap().unwrap(), 1);
}

/// A policy over a store whose conditional writes (transitions, probe permits) answer in 80 ms.
fn slow_transitions(retry: RetryConfig) -> (Rig, ManualClock, SharedStore) {
    let clock = ManualClock::new(1_700_000_000_000);
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let memory: SharedStore = Arc::new(MemoryStore::new(Arc::clone(&shared_clock)));
    let slow = testkit::SlowStore::new(Arc::clone(&memory));
    slow.set_writes(Duration::from_millis(80));
    slow.conditional_writes_only(true);
    let observer = Arc::new(CountingObserver::new());
    let config = PolicyConfig {
        retry,
        breaker: BreakerConfig::builder()
            .minimum_calls(1)
            .half_open_probes(2)
            .flush_interval(Duration::ZERO)
            .build()
            .unwrap(),
        bulkhead: BulkheadConfig::default(),
    };
    let policy = Policy::standalone("dep", config, Arc::new(slow), shared_clock, observer.clone());
    let rig = Rig {
        policy,
        observer,
        calls: Arc::new(AtomicU32::new(0)),
    };
    (rig, clock, memory)
}

#[tokio::test(start_paused = true)]
async fn a_probe_left_without_time_by_a_slow_transition_is_handed_back_not_failed() {
    let (rig, clock, store) = slow_transitions(retry(1));
    let _ = execute(
        &rig.policy,
        far(),
        classify,
        scripted(&rig, &[Err(TestError::Transient)]),
    )
    .await;
    assert_eq!(rig.policy.breaker().snapshot().trips, 1, "tripped");
    clock.advance(10_000);
    let hangs = |_| async { std::future::pending::<Result<u32, TestError>>().await };
    let start = tokio::time::Instant::now();
    // 100 ms: the half-open transition answers after 80 ms, leaving 20 ms < min_attempt (50 ms).
    let err = execute(
        &rig.policy,
        Deadline::after(Duration::from_millis(100)),
        classify,
        hangs,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ExecuteError::DeadlineExceeded {
                attempts: 0,
                last: None
            }
        ),
        "{err:?}"
    );
    assert!(start.elapsed() <= Duration::from_millis(100), "{:?}", start.elapsed());
    let snapshot = rig.policy.breaker().snapshot();
    assert_eq!(
        snapshot.state,
        State::HalfOpen,
        "not reopened by a failure that never happened"
    );
    assert_eq!(snapshot.trips, 1, "no doubled open period");
    let item = store
        .get(&shared::resilience::breaker::record::key("dep"))
        .await
        .unwrap();
    let fleet = shared::resilience::breaker::record::BreakerRecord::from_item(item.as_ref()).unwrap();
    assert_eq!(
        (fleet.state, fleet.trips, fleet.probes_left),
        (State::HalfOpen, 1, 2),
        "the probe went back to its round"
    );
}

#[tokio::test(start_paused = true)]
async fn store_waits_never_push_a_call_or_a_backoff_past_the_deadline() {
    let config = retry(3)
        .to_builder()
        .min_attempt(Duration::from_millis(50))
        .build()
        .unwrap();
    let clock: SharedClock = Arc::new(ManualClock::new(1_700_000_000_000));
    let slow = testkit::SlowStore::new(Arc::new(MemoryStore::new(Arc::clone(&clock))));
    slow.set_writes(Duration::from_millis(80));
    let observer = Arc::new(CountingObserver::new());
    let policy_config = PolicyConfig {
        retry: config,
        ..PolicyConfig::default()
    };
    let policy = Policy::standalone("dep", policy_config, Arc::new(slow), clock, observer.clone());
    let calls = Arc::new(AtomicU32::new(0));
    let op = {
        let calls = Arc::clone(&calls);
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<u32, _>(TestError::Transient))
        }
    };
    let start = tokio::time::Instant::now();
    // Attempt 1 fails at 0 ms; the plan (100 ms + 50 ms ≤ 160 ms) fits, but the outcome write
    // answers at 80 ms: the backoff still ends at 100 ms, attempt 2 at 100 ms, its write ends at
    // 180 ms — past the 160 ms deadline, cut at 160 ms.
    let err = execute(&policy, Deadline::after(Duration::from_millis(160)), classify, op)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecuteError::DeadlineExceeded { .. }), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(start.elapsed() <= Duration::from_millis(160), "{:?}", start.elapsed());
}
