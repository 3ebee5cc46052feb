//! Fleet behaviour of the shared breaker: independent instances (each its own registry and cache,
//! as separate Lambda execution environments) share one store and call one dependency.
//!
//! Every scenario runs on the in-memory store and — when `AWS_ENDPOINT_URL_DYNAMODB` points at a
//! DynamoDB emulator (moto) — on `DynamoStore` with its own table. One extra test starts its own
//! moto process (`scripts/moto_server.py`, with `.venv-test`'s Python or `python3`), kills it
//! mid-run and starts it again.
//! Epoch time is a `ManualClock` the tests move; sleeps are real but tiny (1–5 ms backoffs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use shared::clock::{Clock, ManualClock, SharedClock, SystemClock};
use shared::deadline::Deadline;
use shared::resilience::breaker::record::{BreakerRecord, key};
use shared::resilience::events::Scope;
use shared::resilience::{
    Attempt, AttemptError, BreakerConfig, ExecuteError, Outcome, Policy, PolicyConfig, Registry, Rejection,
    RetryConfig, State, execute,
};
use shared::store::SharedStore;
use shared::store::dynamo::{DynamoClientConfig, DynamoStore, create_table_if_missing};
use shared::store::memory::MemoryStore;
use testkit::CountingObserver;
use testkit::{FlakyStore, Health, YieldingStore, counting};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const INSTANCES: usize = 8;
const MINIMUM_CALLS: u32 = 20;
const PROBES: u32 = 3;
const CACHE_TTL_MS: i64 = 1_000;
const OPEN_MS: i64 = 5_000;

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    store: SharedStore,
    clock: ManualClock,
    /// Store timeout for this backend (the emulator shares two cores with the compiler).
    store_timeout: Duration,
}

fn memory() -> Fixture {
    let clock = ManualClock::new(SystemClock.now_ms());
    let inner: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    // Yield before every store operation, like a network store, so instances interleave.
    let store: SharedStore = Arc::new(YieldingStore::new(inner));
    Fixture {
        store,
        clock,
        store_timeout: Duration::from_millis(200),
    }
}

async fn dynamo_at(endpoint: Option<&str>, clock: &ManualClock) -> DynamoStore {
    // One SDK attempt: a timed-out but applied ADD is never applied twice (counts are exact).
    let config = DynamoClientConfig::new(Duration::from_secs(5), Duration::from_secs(10), 1).expect("valid");
    let shared_clock: SharedClock = Arc::new(clock.clone());
    static TABLES: AtomicU32 = AtomicU32::new(0);
    let table = format!(
        "fleet-{}-{}-{}",
        std::process::id(),
        SystemClock.now_ms(),
        TABLES.fetch_add(1, Ordering::SeqCst)
    );
    let store = match endpoint {
        None => DynamoStore::new(config.client(&testkit::sdk_config().await), table.clone(), shared_clock),
        Some(url) => {
            use aws_sdk_dynamodb::config::{BehaviorVersion, Builder, Credentials, Region};
            let builder = Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "static"))
                .endpoint_url(url);
            let client = aws_sdk_dynamodb::Client::from_conf(config.apply(builder).build());
            DynamoStore::new(client, table.clone(), shared_clock)
        }
    };
    create_table_if_missing(store.client(), &table)
        .await
        .expect("create the test table");
    store
}

/// `None` (after saying so) when no emulator is configured, except under `CI=true`.
async fn dynamo() -> Option<Fixture> {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AWS_ENDPOINT_URL_DYNAMODB is unset"
        );
        eprintln!("skipped: set AWS_ENDPOINT_URL_DYNAMODB (scripts/test.sh starts moto and sets it)");
        return None;
    }
    let clock = ManualClock::new(SystemClock.now_ms());
    let store = dynamo_at(None, &clock).await;
    Some(Fixture {
        store: Arc::new(store),
        clock,
        store_timeout: Duration::from_secs(2),
    })
}

macro_rules! fleet_suite {
    ($($case:ident),+ $(,)?) => {
        mod memory_store {
            $(#[tokio::test] async fn $case() { super::$case(super::memory()).await; })+
        }
        mod dynamo_store {
            $(#[tokio::test] async fn $case() { if let Some(f) = super::dynamo().await { super::$case(f).await; } })+
        }
    };
}

fleet_suite!(
    fleet_trips_once_after_at_most_minimum_calls_plus_one_per_instance,
    half_open_lets_exactly_n_probes_through_fleet_wide_then_every_instance_recovers_within_one_ttl,
    full_outage_keeps_fleet_retries_within_the_budget,
    store_outage_never_fails_a_call_and_the_fleet_resyncs_every_outcome,
    store_costs_at_most_one_write_per_call_and_nothing_while_open,
);

// ---------------------------------------------------------------------------------------------
// The dependency and the fleet

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum DepError {
    #[error("dependency failed")]
    Failed,
}

/// Every failure (and every timeout) of the dependency is retryable.
fn classify<T>(result: &Result<T, AttemptError<DepError>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Retryable,
    }
}

/// The shared downstream dependency: counts what reaches it; can fail, or hold calls at a gate.
#[derive(Debug)]
struct Dependency {
    calls: AtomicU32,
    retries: AtomicU32,
    failing: AtomicBool,
    gated: AtomicBool,
    waiting: AtomicU32,
    gate: Semaphore,
}

impl Default for Dependency {
    fn default() -> Self {
        Self {
            calls: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            failing: AtomicBool::new(false),
            gated: AtomicBool::new(false),
            waiting: AtomicU32::new(0),
            gate: Semaphore::new(0),
        }
    }
}

impl Dependency {
    fn failing() -> Arc<Self> {
        let dep = Self::default();
        dep.failing.store(true, Ordering::SeqCst);
        Arc::new(dep)
    }

    async fn call(&self, attempt: Attempt) -> Result<u32, DepError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if attempt.number > 1 {
            self.retries.fetch_add(1, Ordering::SeqCst);
        }
        if self.gated.load(Ordering::SeqCst) {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            if let Ok(permit) = self.gate.acquire().await {
                permit.forget();
            }
        }
        tokio::task::yield_now().await;
        if self.failing.load(Ordering::SeqCst) {
            Err(DepError::Failed)
        } else {
            Ok(attempt.number)
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn config(store_timeout: Duration) -> PolicyConfig {
    PolicyConfig {
        retry: RetryConfig::builder()
            .max_attempts(1)
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(5))
            .min_attempt(Duration::from_millis(1))
            .build()
            .expect("retry config"),
        breaker: BreakerConfig::builder()
            .minimum_calls(MINIMUM_CALLS)
            .failure_rate_threshold(50.0)
            .open_duration(Duration::from_millis(OPEN_MS as u64))
            .half_open_probes(PROBES)
            .half_open_successes(2)
            .permit_ttl(Duration::from_secs(5))
            .cache_ttl(Duration::from_millis(CACHE_TTL_MS as u64))
            .store_timeout(store_timeout)
            .build()
            .expect("breaker config"),
        bulkhead: Default::default(),
    }
}

/// `INSTANCES` policies named `dep`, each from its own registry (its own cache, bulkhead, RNG).
fn fleet(
    store: &SharedStore,
    clock: &ManualClock,
    observer: &Arc<CountingObserver>,
    config: &PolicyConfig,
) -> Vec<Arc<Policy>> {
    (0..INSTANCES)
        .map(|_| {
            Registry::builder(Arc::clone(store), Arc::new(clock.clone()))
                .observer(observer.clone())
                .config("dep", config.clone())
                .build()
                .expect("registry")
                .policy("dep")
        })
        .collect()
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

async fn fleet_record(store: &SharedStore) -> BreakerRecord {
    let item = store.get(&key("dep")).await.expect("read the breaker item");
    BreakerRecord::from_item(item.as_ref()).expect("decode the breaker item")
}

/// Every instance calls the failing dependency until its breaker rejects; returns the calls made.
async fn trip(fleet: &[Arc<Policy>], dep: &Arc<Dependency>) -> u32 {
    let mut tasks = JoinSet::new();
    for policy in fleet {
        let policy = Arc::clone(policy);
        let dep = Arc::clone(dep);
        tasks.spawn(async move {
            for _ in 0..200 {
                if let Err(ExecuteError::Rejected { .. }) =
                    execute(&policy, deadline(), classify, |a| dep.call(a)).await
                {
                    return true;
                }
            }
            false
        });
    }
    assert!(
        tasks.join_all().await.into_iter().all(|rejecting| rejecting),
        "every instance ends up rejecting"
    );
    dep.calls()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn fleet_trips_once_after_at_most_minimum_calls_plus_one_per_instance(f: Fixture) {
    let observer = Arc::new(CountingObserver::new());
    let fleet = fleet(&f.store, &f.clock, &observer, &config(f.store_timeout));
    let dep = Dependency::failing();
    let calls = trip(&fleet, &dep).await;
    assert!(
        (MINIMUM_CALLS..=2 * MINIMUM_CALLS).contains(&calls),
        "{calls} calls reached the failing dependency (in-memory breakers: {})",
        MINIMUM_CALLS * INSTANCES as u32
    );
    let log = observer.transitions();
    assert_eq!(
        log.len(),
        1,
        "concurrent trip attempts commit exactly one transition: {log:?}"
    );
    assert_eq!(
        (log[0].from, log[0].to, log[0].version, log[0].scope),
        (State::Closed, State::Open, 1, Scope::Fleet)
    );
    let record = fleet_record(&f.store).await;
    assert_eq!((record.state, record.version, record.trips), (State::Open, 1, 1));
    for policy in &fleet {
        assert!(policy.is_rejecting(), "every instance knows without asking the store");
    }
}

async fn half_open_lets_exactly_n_probes_through_fleet_wide_then_every_instance_recovers_within_one_ttl(f: Fixture) {
    let observer = Arc::new(CountingObserver::new());
    let fleet = fleet(&f.store, &f.clock, &observer, &config(f.store_timeout));
    let dep = Dependency::failing();
    trip(&fleet, &dep).await;
    let before = dep.calls();
    dep.failing.store(false, Ordering::SeqCst);
    dep.gated.store(true, Ordering::SeqCst);
    f.clock.advance(OPEN_MS);

    let rejected = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for policy in &fleet {
        let policy = Arc::clone(policy);
        let (dep, rejected) = (Arc::clone(&dep), Arc::clone(&rejected));
        tasks.spawn(async move {
            let result = execute(&policy, deadline(), classify, |a| dep.call(a)).await;
            if matches!(
                result,
                Err(ExecuteError::Rejected {
                    reason: Rejection::HalfOpen,
                    ..
                })
            ) {
                rejected.fetch_add(1, Ordering::SeqCst);
            }
            result.is_ok()
        });
    }
    for _ in 0..2_000 {
        if rejected.load(Ordering::SeqCst) + dep.waiting.load(Ordering::SeqCst) == INSTANCES as u32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        dep.waiting.load(Ordering::SeqCst),
        PROBES,
        "exactly N probes reached the dependency"
    );
    assert_eq!(dep.calls() - before, PROBES);
    assert_eq!(rejected.load(Ordering::SeqCst), INSTANCES as u32 - PROBES);
    dep.gate.add_permits(INSTANCES);
    let succeeded = tasks.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(succeeded, PROBES as usize);
    dep.gated.store(false, Ordering::SeqCst);
    assert_eq!(
        fleet_record(&f.store).await.state,
        State::Closed,
        "M = 2 successes closed it"
    );
    let path: Vec<_> = observer
        .transitions()
        .iter()
        .map(|t| (t.from, t.to, t.version))
        .collect();
    assert_eq!(
        path,
        [
            (State::Closed, State::Open, 1),
            (State::Open, State::HalfOpen, 2),
            (State::HalfOpen, State::Closed, 3)
        ]
    );

    f.clock.advance(CACHE_TTL_MS);
    for policy in &fleet {
        assert!(
            execute(policy, deadline(), classify, |a| dep.call(a)).await.is_ok(),
            "closed within one cache TTL"
        );
        assert_eq!(policy.breaker().state(), State::Closed);
    }
}

async fn full_outage_keeps_fleet_retries_within_the_budget(f: Fixture) {
    const PERCENT: f64 = 10.0;
    const FLOOR: u32 = 5;
    let mut config = config(f.store_timeout);
    config.retry = config
        .retry
        .to_builder()
        .max_attempts(3)
        .budget_percent(PERCENT)
        .budget_floor(FLOOR)
        .build()
        .unwrap();
    config.breaker = config.breaker.to_builder().minimum_calls(1_000_000).build().unwrap(); // never trips
    let observer = Arc::new(CountingObserver::new());
    let fleet = fleet(&f.store, &f.clock, &observer, &config);
    let dep = Dependency::failing();
    let mut tasks = JoinSet::new();
    for policy in &fleet {
        let policy = Arc::clone(policy);
        let dep = Arc::clone(&dep);
        tasks.spawn(async move {
            for _ in 0..25 {
                let result = execute(&policy, deadline(), classify, |a| dep.call(a)).await;
                assert!(
                    matches!(
                        result,
                        Err(ExecuteError::BudgetExhausted { .. } | ExecuteError::Operation { .. })
                    ),
                    "{result:?}"
                );
            }
        });
    }
    tasks.join_all().await;
    let calls = dep.calls();
    let retries = dep.retries.load(Ordering::SeqCst);
    let limit = PERCENT / 100.0 * f64::from(calls) + f64::from(FLOOR);
    assert!(
        f64::from(retries) <= limit,
        "{retries} retries for {calls} calls exceed the budget {limit}"
    );
    assert!(retries >= FLOOR, "the budget was used, not refused outright: {retries}");
    assert!(observer.budget_exhausted() > 0);
    assert!(
        calls < 2 * (INSTANCES as u32 * 25),
        "without a budget: {} calls",
        3 * INSTANCES * 25
    );
}

async fn store_outage_never_fails_a_call_and_the_fleet_resyncs_every_outcome(f: Fixture) {
    let flaky = Arc::new(FlakyStore::new(
        Arc::clone(&f.store),
        f.store_timeout + Duration::from_secs(1),
    ));
    let store: SharedStore = flaky.clone();
    let mut config = config(f.store_timeout);
    config.breaker = config
        .breaker
        .to_builder()
        .flush_interval(Duration::ZERO)
        .build()
        .unwrap();
    let observer = Arc::new(CountingObserver::new());
    let fleet = fleet(&store, &f.clock, &observer, &config);
    let dep = Arc::new(Dependency::default());
    let run = |calls: usize| {
        let (fleet, dep) = (fleet.clone(), Arc::clone(&dep));
        async move {
            let mut tasks = JoinSet::new();
            for policy in fleet {
                let dep = Arc::clone(&dep);
                tasks.spawn(async move {
                    for _ in 0..calls {
                        let result = execute(&policy, deadline(), classify, |a| dep.call(a)).await;
                        assert!(result.is_ok(), "a store outage must never fail a call: {result:?}");
                    }
                });
            }
            tasks.join_all().await;
        }
    };
    run(5).await;
    flaky.set(Health::Down);
    run(10).await;
    assert!(
        observer.store_fallbacks() >= INSTANCES as u64,
        "each instance noticed and counted the outage"
    );
    assert!(
        flaky.refused() <= 2 * INSTANCES as u64,
        "not hammered: {} refused operations",
        flaky.refused()
    );
    f.clock.advance(CACHE_TTL_MS);
    flaky.set(Health::Stalled);
    run(2).await;
    flaky.set(Health::Up);
    f.clock.advance(CACHE_TTL_MS);
    run(3).await;
    assert_eq!(
        observer.resyncs(),
        INSTANCES as u64,
        "every instance re-synced once the store was back"
    );
    let record = fleet_record(&f.store).await;
    let totals = record
        .window
        .totals(f.clock.now_ms(), record.window_from, &config.breaker);
    assert_eq!(
        totals.calls,
        (INSTANCES * 20) as i64,
        "outage-time outcomes reached the fleet window, once each"
    );
    assert_eq!(dep.calls(), (INSTANCES * 20) as u32);
}

async fn store_costs_at_most_one_write_per_call_and_nothing_while_open(f: Fixture) {
    let (store, counts) = counting(Arc::clone(&f.store));
    let observer = Arc::new(CountingObserver::new());
    let dep = Arc::new(Dependency::default());
    let strict = {
        let mut c = config(f.store_timeout);
        c.breaker = c.breaker.to_builder().flush_interval(Duration::ZERO).build().unwrap();
        c
    };
    let policy = Arc::clone(&fleet(&store, &f.clock, &observer, &strict)[0]);
    for _ in 0..100 {
        f.clock.advance(10);
        execute(&policy, deadline(), classify, |a| dep.call(a))
            .await
            .expect("healthy");
    }
    let ops = counts.ops();
    assert_eq!(
        ops.writes(),
        100,
        "closed, flush_interval 0: exactly one write per call"
    );
    assert!(ops.gets <= 1, "state reads: only the cold start's ({ops:?})");
    assert_eq!(
        ops.queries, 1,
        "runtime-config reads: one for the policy and its breaker per 1 s interval ({ops:?})"
    );

    counts.reset();
    let coalescing = Arc::clone(&fleet(&store, &f.clock, &observer, &config(f.store_timeout))[0]);
    for _ in 0..100 {
        f.clock.advance(10);
        execute(&coalescing, deadline(), classify, |a| dep.call(a))
            .await
            .expect("healthy");
    }
    let ops = counts.ops();
    assert!(
        ops.updates <= 11,
        "fast successes coalesce for 100 ms: {} writes for 100 calls",
        ops.updates
    );
    assert!(ops.gets <= 2, "{ops:?}");
    assert_eq!(ops.queries, 1, "{ops:?}");

    dep.failing.store(true, Ordering::SeqCst);
    f.clock.advance(10_000); // the successes above leave the window
    trip(&[Arc::clone(&coalescing)], &dep).await;
    counts.reset();
    for _ in 0..50 {
        let result = execute(&coalescing, deadline(), classify, |a| dep.call(a)).await;
        assert!(matches!(
            result,
            Err(ExecuteError::Rejected {
                reason: Rejection::Open { .. },
                ..
            })
        ));
    }
    assert_eq!(
        counts.ops().total(),
        0,
        "a call rejected while open costs no store operation"
    );
}

// ---------------------------------------------------------------------------------------------
// A real emulator outage: kill the moto process mid-run, start it again.

struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    /// Runs the project's `scripts/moto_server.py` (moto with DynamoDB requests serialized, as
    /// DynamoDB applies writes to one item; plain `moto_server` can let two conditional writes win).
    async fn start(python: &str, port: u16) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto_server.py");
        let child = std::process::Command::new(python)
            .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Self { child, port }; // dropped (killed and reaped) if it never answers
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Python that can run moto's server: the test venv `scripts/test.sh` and CI create, else `python3`.
fn moto_python() -> Option<String> {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-test/bin/python").to_owned();
    [venv, "python3".to_owned()].into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import moto.server, flask"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn killing_the_dynamodb_emulator_mid_run_fails_no_call_and_the_fleet_resyncs() {
    let Some(python) = moto_python() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Python with moto[server] was found"
        );
        eprintln!("skipped: no Python with moto[server] (.venv-test or python3)");
        return;
    };
    let port = free_port();
    let mut moto = Moto::start(&python, port).await;
    let clock = ManualClock::new(SystemClock.now_ms());
    let dynamo = dynamo_at(Some(&moto.url()), &clock).await;
    let table = dynamo.table().to_owned();
    let client = dynamo.client().clone();
    let store: SharedStore = Arc::new(dynamo);
    let observer = Arc::new(CountingObserver::new());
    let fleet = fleet(&store, &clock, &observer, &config(Duration::from_secs(2)));
    let dep = Arc::new(Dependency::default());
    let run = |calls: usize| {
        let (fleet, dep, clock) = (fleet.clone(), Arc::clone(&dep), clock.clone());
        async move {
            for _ in 0..calls {
                clock.advance(150); // past the flush interval: every round writes
                for policy in &fleet {
                    let result = execute(policy, deadline(), classify, |a| dep.call(a)).await;
                    assert!(result.is_ok(), "the emulator's death must not fail a call: {result:?}");
                }
            }
        }
    };
    run(2).await;
    moto.kill();
    run(3).await;
    assert!(observer.store_fallbacks() >= INSTANCES as u64);
    let mut moto = Moto::start(&python, port).await;
    create_table_if_missing(&client, &table)
        .await
        .expect("recreate the table in the fresh emulator");
    clock.advance(CACHE_TTL_MS);
    run(2).await;
    assert_eq!(
        observer.resyncs(),
        INSTANCES as u64,
        "every instance went back to the fleet store"
    );
    let record = fleet_record(&store).await;
    assert_eq!(record.state, State::Closed);
    assert!(
        record
            .window
            .totals(clock.now_ms(), 0, &config(Duration::from_secs(2)).breaker)
            .calls
            > 0
    );
    moto.kill();
}

// ---------------------------------------------------------------------------------------------
// A slow store: a delaying proxy in front of moto.

/// DynamoDB answering every request 300 ms late (throttling, a brown-out): the store timeout
/// adapts, probe permits are handed out on the fleet store, and the fleet's half-open round lets
/// about N probes through — not N per instance. Bound: N, plus one local probe for each instance
/// whose probe-permit write the store did not answer within `max_store_timeout` (none at 300 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_answering_in_300_ms_keeps_the_half_open_round_near_n_probes() {
    let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AWS_ENDPOINT_URL_DYNAMODB is unset"
        );
        eprintln!("skipped: set AWS_ENDPOINT_URL_DYNAMODB (scripts/test.sh starts moto and sets it)");
        return;
    };
    let proxy = testkit::DelayProxy::for_url(&endpoint).await.expect("proxy");
    let clock = ManualClock::new(SystemClock.now_ms());
    let store: SharedStore = Arc::new(dynamo_at(Some(&proxy.url()), &clock).await);
    proxy.set_delay(Duration::from_millis(300));
    let observer = Arc::new(CountingObserver::new());
    // The production store timeout: 100 ms, far below the store's 300 ms.
    let fleet = fleet(&store, &clock, &observer, &config(Duration::from_millis(100)));
    let dep = Dependency::failing();
    let trip_calls = trip(&fleet, &dep).await;
    let before = dep.calls();
    dep.failing.store(false, Ordering::SeqCst);
    dep.gated.store(true, Ordering::SeqCst);
    clock.advance(OPEN_MS);

    let rejected = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for policy in &fleet {
        let policy = Arc::clone(policy);
        let (dep, rejected) = (Arc::clone(&dep), Arc::clone(&rejected));
        tasks.spawn(async move {
            let result = execute(&policy, deadline(), classify, |a| dep.call(a)).await;
            if matches!(result, Err(ExecuteError::Rejected { .. })) {
                rejected.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    for _ in 0..4_000 {
        if rejected.load(Ordering::SeqCst) + dep.waiting.load(Ordering::SeqCst) == INSTANCES as u32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let probes = dep.calls() - before;
    eprintln!(
        "store at 300 ms: trip after {trip_calls} calls; half-open round: {probes} probes (N = {PROBES}), {} rejected; store fallbacks {}",
        rejected.load(Ordering::SeqCst),
        observer.store_fallbacks()
    );
    dep.gate.add_permits(INSTANCES);
    tasks.join_all().await;
    assert!(
        (1..=PROBES + 1).contains(&probes),
        "{probes} probes in the half-open round"
    );
    assert!(
        trip_calls <= 2 * MINIMUM_CALLS,
        "{trip_calls} calls before the fleet tripped"
    );
}
