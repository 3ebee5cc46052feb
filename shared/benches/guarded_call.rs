//! Overhead of a guarded call (`execute` with bulkhead, shared breaker, retry and budget) on the
//! in-memory store, against the bare operation. Target: < 1 µs median for the closed fast path.
//!
//! Cases:
//! - `bare_operation`: the operation alone (the baseline to subtract);
//! - `closed_coalesced`: the default configuration — fast successes are written to the fleet
//!   window at most every `flush_interval` (100 ms), so most calls do no store I/O;
//! - `closed_write_per_call`: `flush_interval = 0`, one store write per call (on DynamoDB that
//!   write is a network round trip, which this in-memory figure does not include);
//! - `open_rejected`: a call refused by an open breaker (no store operation);
//! - `admit_decision`: the pure admission decision alone.
//!
//! After the timings, store operations per call at steady state are printed (counting wrapper).
//! Run: `cargo bench -p shared --bench guarded_call -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use shared::clock::{Clock, SharedClock, SystemClock};
use shared::deadline::Deadline;
use shared::resilience::breaker::decision::admit;
use shared::resilience::breaker::record::BreakerRecord;
use shared::resilience::{
    Attempt, AttemptError, BreakerConfig, Outcome, Policy, PolicyConfig, Registry, RetryConfig, execute,
};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use testkit::counting;
use tokio::runtime::Runtime;

/// A failed call: what the classifier below counts as retryable.
#[derive(Debug)]
struct Failed;

async fn operation(attempt: Attempt) -> Result<u32, Failed> {
    Ok(black_box(attempt.number))
}

async fn failing(_: Attempt) -> Result<u32, Failed> {
    Err(Failed)
}

fn classify(result: &Result<u32, AttemptError<Failed>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Retryable,
    }
}

fn policy(store: SharedStore, flush_interval: Duration) -> Arc<Policy> {
    let clock: SharedClock = Arc::new(SystemClock);
    let config = PolicyConfig {
        retry: RetryConfig::no_retry(),
        breaker: BreakerConfig::builder()
            .flush_interval(flush_interval)
            .open_duration(Duration::from_secs(3_600))
            .max_open_duration(Duration::from_secs(3_600))
            .build()
            .expect("breaker config"),
        bulkhead: Default::default(),
    };
    Registry::builder(store, clock)
        .config("dep", config)
        .build()
        .expect("registry")
        .policy("dep")
}

fn memory() -> SharedStore {
    Arc::new(MemoryStore::new(Arc::new(SystemClock)))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Times `iters` guarded calls inside one `block_on` (so the runtime's entry cost is not counted).
fn time_calls(rt: &Runtime, policy: &Arc<Policy>, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let _ = black_box(execute(policy, Deadline::after(Duration::from_secs(5)), classify, operation).await);
        }
        start.elapsed()
    })
}

fn guarded_call(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("guarded_call");
    group.bench_function("bare_operation", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    let attempt = Attempt { number: n as u32 };
                    let _ = black_box(operation(attempt).await);
                }
                start.elapsed()
            })
        })
    });
    let coalesced = policy(memory(), Duration::from_millis(100));
    group.bench_function("closed_coalesced", |b| {
        b.iter_custom(|iters| time_calls(&rt, &coalesced, iters))
    });
    let strict = policy(memory(), Duration::ZERO);
    group.bench_function("closed_write_per_call", |b| {
        b.iter_custom(|iters| time_calls(&rt, &strict, iters))
    });
    let open = policy(memory(), Duration::ZERO);
    rt.block_on(async {
        for _ in 0..100 {
            let _ = execute(&open, Deadline::after(Duration::from_secs(5)), classify, failing).await;
        }
    });
    assert!(open.is_rejecting(), "the breaker must be open for this case");
    group.bench_function("open_rejected", |b| {
        b.iter_custom(|iters| time_calls(&rt, &open, iters))
    });
    let record = BreakerRecord::absent();
    let config = BreakerConfig::default();
    let now = SystemClock.now_ms();
    group.bench_function("admit_decision", |b| {
        b.iter(|| admit(black_box(&record), true, &config, black_box(now)))
    });
    group.finish();
    report_store_operations(&rt);
}

/// Store operations per call at steady state (one instance, real clock, 20 000 calls).
#[allow(clippy::print_stderr)]
fn report_store_operations(rt: &Runtime) {
    for (name, flush) in [
        ("closed_coalesced", Duration::from_millis(100)),
        ("closed_write_per_call", Duration::ZERO),
    ] {
        let (store, counts) = counting(memory());
        let policy = policy(store, flush);
        let calls = 20_000u64;
        let elapsed = time_calls(rt, &policy, calls);
        let ops = counts.ops();
        eprintln!(
            "store ops per call ({name}): {:.4} writes, {:.4} reads ({} reads in {:?}, cache TTL 1 s)",
            ops.writes() as f64 / calls as f64,
            ops.reads() as f64 / calls as f64,
            ops.reads(),
            elapsed
        );
    }
}

criterion_group!(benches, guarded_call);
criterion_main!(benches);
