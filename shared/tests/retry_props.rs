//! Properties of the retry loop, on paused tokio time with random policies, deadlines, attempt
//! durations and outcomes: no attempt starts without `min_attempt` left before the deadline, no
//! call outlives its deadline, no backoff exceeds `max_delay`, attempts stay within
//! `max_attempts`. The same holds when every store write takes 80 ms
//! (no backoff sleep ends past `deadline − min_attempt`, and the call returns by its deadline).
//! Backoff bounds alone are also checked inline in `resilience/backoff.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use shared::clock::{ManualClock, SharedClock};
use shared::deadline::Deadline;
use shared::resilience::events::{Event, Observer};
use shared::resilience::{
    Attempt, AttemptError, BackoffKind, BreakerConfig, Jitter, Outcome, Policy, PolicyConfig, RetryConfig, execute,
};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use testkit::SlowStore;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}")]
struct Failure(Outcome);

/// The scripted outcome; a timed-out attempt is retryable.
fn classify(result: &Result<(), AttemptError<Failure>>) -> Outcome {
    match result {
        Ok(()) => Outcome::Success,
        Err(AttemptError::Failed(Failure(outcome))) => *outcome,
        Err(AttemptError::TimedOut { .. }) => Outcome::Retryable,
    }
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Retryable),
        2 => Just(Outcome::RetryableSlow),
        1 => Just(Outcome::Success),
        1 => Just(Outcome::NotRetryable),
        1 => Just(Outcome::Exhausted),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    max_attempts: u32,
    kind: BackoffKind,
    jitter: Jitter,
    base_ms: u64,
    max_ms: u64,
    min_attempt_ms: u64,
    attempt_timeout_ms: Option<u64>,
    deadline_ms: u64,
    script: Vec<(Outcome, u64)>,
}

fn any_case() -> impl Strategy<Value = Case> {
    (
        1u32..=10,
        prop_oneof![
            Just(BackoffKind::Constant),
            Just(BackoffKind::Linear),
            Just(BackoffKind::Exponential)
        ],
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ],
        0u64..500,
        0u64..2_000,
        0u64..200,
        proptest::option::of(1u64..1_000),
        0u64..4_000,
        proptest::collection::vec((any_outcome(), 0u64..800), 1..12),
    )
        .prop_map(
            |(
                max_attempts,
                kind,
                jitter,
                base_ms,
                extra_ms,
                min_attempt_ms,
                attempt_timeout_ms,
                deadline_ms,
                script,
            )| Case {
                max_attempts,
                kind,
                jitter,
                base_ms,
                max_ms: base_ms + extra_ms,
                min_attempt_ms,
                attempt_timeout_ms,
                deadline_ms,
                script,
            },
        )
}

/// Attempt start and end times (relative to the call's start), when each backoff sleep ends, and
/// the call's total duration.
struct Run {
    attempts: Vec<(Duration, Duration, Attempt)>,
    sleeps_end: Vec<Duration>,
    total: Duration,
}

/// Logs when each announced backoff sleep will end (event time + delay).
#[derive(Debug)]
struct SleepLog {
    start: Instant,
    ends: Mutex<Vec<Duration>>,
}

impl Observer for SleepLog {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Retry { delay, .. } = event {
            self.ends.lock().unwrap().push(self.start.elapsed() + *delay);
        }
    }
}

/// How late the store answers (the breaker's store timeout stays at its 100 ms default).
#[derive(Debug, Clone, Copy, Default)]
struct StoreDelays {
    read_ms: u64,
    write_ms: u64,
}

/// Logged by the operation: starts always, ends only for attempts that were not timed out.
#[derive(Default)]
struct Log {
    starts: Vec<(Duration, Attempt)>,
    ends: Vec<(u32, Duration)>,
}

fn run(case: &Case) -> Run {
    run_on(case, StoreDelays::default())
}

fn run_on(case: &Case, delays: StoreDelays) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock: SharedClock = Arc::new(ManualClock::new(1_700_000_000_000));
        let memory: SharedStore = Arc::new(MemoryStore::new(Arc::clone(&clock)));
        let slow = SlowStore::new(memory);
        slow.set_reads(Duration::from_millis(delays.read_ms));
        slow.set_writes(Duration::from_millis(delays.write_ms));
        let store: SharedStore = Arc::new(slow);
        let retry = RetryConfig::builder()
            .max_attempts(case.max_attempts)
            .backoff(case.kind)
            .jitter(case.jitter)
            .base_delay(Duration::from_millis(case.base_ms))
            .max_delay(Duration::from_millis(case.max_ms))
            .min_attempt(Duration::from_millis(case.min_attempt_ms))
            .attempt_timeout(case.attempt_timeout_ms.map(Duration::from_millis))
            .budget_percent(100.0)
            .budget_floor(100_000)
            .build()
            .unwrap();
        let breaker = BreakerConfig::builder().minimum_calls(1_000_000).build().unwrap();
        let config = PolicyConfig {
            retry,
            breaker,
            bulkhead: Default::default(),
        };
        let start = Instant::now();
        let sleeps = Arc::new(SleepLog {
            start,
            ends: Mutex::default(),
        });
        let policy = Policy::standalone("prop", config, store, clock, sleeps.clone());
        let log = Arc::new(Mutex::new(Log::default()));
        let script = case.script.clone();
        let op = {
            let log = Arc::clone(&log);
            move |attempt: Attempt| {
                let (outcome, took_ms) = script[(attempt.number as usize - 1).min(script.len() - 1)];
                let log = Arc::clone(&log);
                async move {
                    log.lock().unwrap().starts.push((start.elapsed(), attempt));
                    tokio::time::sleep(Duration::from_millis(took_ms)).await;
                    log.lock().unwrap().ends.push((attempt.number, start.elapsed()));
                    if outcome.is_success() {
                        Ok(())
                    } else {
                        Err(Failure(outcome))
                    }
                }
            }
        };
        let _ = execute(
            &policy,
            Deadline::after(Duration::from_millis(case.deadline_ms)),
            classify,
            op,
        )
        .await;
        let total = start.elapsed();
        // A timed-out attempt never logs its end: it ended at its limit, min(timeout, time left).
        let log = log.lock().unwrap();
        let deadline = Duration::from_millis(case.deadline_ms);
        let attempts = log
            .starts
            .iter()
            .map(|(began, attempt)| {
                let logged = log.ends.iter().find(|(n, _)| *n == attempt.number).map(|(_, end)| *end);
                let limit = case
                    .attempt_timeout_ms
                    .map_or(Duration::MAX, Duration::from_millis)
                    .min(deadline.saturating_sub(*began));
                (*began, logged.unwrap_or(*began + limit), *attempt)
            })
            .collect();
        let sleeps_end = sleeps.ends.lock().unwrap().clone();
        Run {
            attempts,
            sleeps_end,
            total,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_attempt_starts_past_the_deadline_and_no_call_outlives_it(case in any_case()) {
        let deadline = Duration::from_millis(case.deadline_ms);
        let min_attempt = Duration::from_millis(case.min_attempt_ms);
        let run = run(&case);
        prop_assert!(run.total <= deadline, "call took {:?} with a {:?} deadline", run.total, deadline);
        for (began, _, attempt) in &run.attempts {
            prop_assert!(*began < deadline, "attempt {} started at {:?}, deadline {:?}", attempt.number, began, deadline);
            prop_assert!(deadline - *began >= min_attempt, "attempt {} started with less than min_attempt left", attempt.number);
        }
    }

    #[test]
    fn backoff_between_attempts_never_exceeds_max_delay_and_attempts_are_bounded(case in any_case()) {
        let run = run(&case);
        let max = Duration::from_millis(case.max_ms);
        for pair in run.attempts.windows(2) {
            let gap = pair[1].0 - pair[0].1;
            prop_assert!(gap <= max, "waited {:?} > max delay {:?}", gap, max);
        }
        prop_assert!(run.attempts.len() as u32 <= case.max_attempts);
    }

    #[test]
    fn with_80_ms_store_writes_no_attempt_or_sleep_ends_past_the_deadline(
        case in any_case(), read_ms in 0u64..40,
    ) {
        let deadline = Duration::from_millis(case.deadline_ms);
        let min_attempt = Duration::from_millis(case.min_attempt_ms);
        let run = run_on(&case, StoreDelays { read_ms, write_ms: 80 });
        prop_assert!(run.total <= deadline + EPSILON, "call took {:?} with a {:?} deadline", run.total, deadline);
        for (began, _, attempt) in &run.attempts {
            prop_assert!(
                *began < deadline && deadline - *began >= min_attempt,
                "attempt {} started at {:?}, deadline {:?}, min_attempt {:?}", attempt.number, began, deadline, min_attempt
            );
        }
        for end in &run.sleeps_end {
            prop_assert!(
                *end + min_attempt <= deadline,
                "a backoff sleep ends at {:?}, after deadline {:?} - min_attempt {:?}", end, deadline, min_attempt
            );
        }
    }
}

/// Scheduling slack allowed past the deadline (paused time fires timers exactly; none is needed).
const EPSILON: Duration = Duration::from_millis(1);
