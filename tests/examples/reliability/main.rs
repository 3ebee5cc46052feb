//! Reliability run (issue 5): N messages through the send API and the worker while the WeChat
//! mock fails a share of the send calls and both its domains go down for a while; then counts,
//! from what the mock recorded, the messages delivered exactly once, the duplicates, the losses
//! and the dead-letter queue.
//!
//! Everything is real and in process: the send and worker deps on a MemoryStore (DynamoDB + SQS on moto when
//! `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS` are set), the wechat-mock over
//! loopback HTTP, `shared::routes::send::handle` and the worker (`poll_once` +
//! `send_worker::handle`), all with the product's defaults (send budget, retry policies,
//! breakers, worker backoff `WORKER_RETRY_BASE_SECS=10`, `maxReceiveCount` 10 as in
//! template.yaml). One difference from Lambda: the poller receives with a zero visibility
//! timeout, so a poisoned message is redelivered at once instead of every 60 s. That is safe with
//! one poller (a message is never in two batches at once) and changes nothing for real jobs: a
//! failed one is hidden by the worker's own backoff, as on SQS.
//!
//! ```text
//! cargo run --release -p wechat-ha-tests --example reliability
//! REL_MESSAGES=2000 REL_FAIL_PERCENT=30 REL_OUTAGE_SECS=5 cargo run ... # knobs: see `Knobs`
//! ```
//! Exit status 0 only when every message was delivered exactly once and the dead-letter queue
//! holds exactly the poisoned messages.

#![allow(clippy::print_stdout, reason = "the report is this program's output")]

mod backend;
mod faults;
mod phases;
mod report;
mod traffic;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shared::bot::RuleHandler;
use shared::config::{SendConfig, WorkerConfig};
use shared::deps::{SendDeps, WorkerDeps};
use wechat_ha_tests::env;
use wechat_ha_tests::wechat::{client, start_mock};

use backend::Backend;
use phases::{drain, first_answers, send_all};
use report::Report;
use traffic::{Answer, percentile};

type BoxError = Box<dyn Error + Send + Sync>;

/// The run's knobs (environment variables, defaults = issue 5's figure).
#[derive(Debug, Clone)]
struct Knobs {
    messages: usize,
    fail_percent: u32,
    outage: Duration,
    poison: usize,
    late_duplicates: usize,
    concurrent_duplicates: usize,
    concurrency: usize,
    max_receives: u32,
    retry_base_secs: u64,
    retry_max_secs: u64,
    seed: u64,
    time_limit: Duration,
}

fn knob<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}: cannot parse {value:?}").into()),
        Err(_) => Ok(default),
    }
}

impl Knobs {
    fn from_env() -> Result<Self, BoxError> {
        Ok(Self {
            messages: knob("REL_MESSAGES", 10_000)?,
            fail_percent: knob::<u32>("REL_FAIL_PERCENT", 30)?.min(100),
            outage: Duration::from_secs(knob("REL_OUTAGE_SECS", 5)?),
            poison: knob("REL_POISON", 12)?,
            late_duplicates: knob("REL_LATE_DUPLICATES", 500)?,
            concurrent_duplicates: knob("REL_CONCURRENT_DUPLICATES", 100)?,
            concurrency: knob("REL_CONCURRENCY", 32)?.max(1),
            max_receives: knob("REL_MAX_RECEIVES", 10)?,
            retry_base_secs: knob("WORKER_RETRY_BASE_SECS", 10)?,
            retry_max_secs: knob("WORKER_RETRY_MAX_SECS", 900)?,
            seed: knob("REL_SEED", 5)?,
            time_limit: Duration::from_secs(knob("REL_TIME_LIMIT_SECS", 600)?),
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("reliability run failed to run: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, BoxError> {
    // The product's JSON logs (stderr), only when asked for: they cost time at this volume.
    if std::env::var_os("RUST_LOG").is_some() {
        shared::telemetry::init_logging(&std::env::var("RUST_LOG").unwrap_or_default());
    }
    let knobs = Knobs::from_env()?;
    let clock = shared::clock::system();
    let backend = Arc::new(Backend::from_env(clock.clone(), knobs.max_receives).await?);
    let mock = start_mock().await;
    let (wechat, _registry) = client(&mock, backend.store.clone(), clock.clone());
    let (base, max) = (knobs.retry_base_secs.to_string(), knobs.retry_max_secs.to_string());
    let env = env(
        "plain",
        &[
            ("INTERNAL_API_KEY", traffic::API_KEY),
            ("WORKER_RETRY_BASE_SECS", &base),
            ("WORKER_RETRY_MAX_SECS", &max),
        ],
    );
    let queue = backend.queue.shared();
    let deps = Arc::new(phases::Functions {
        send: SendDeps::new(
            SendConfig::from_env(&env)?,
            wechat.clone(),
            backend.store.clone(),
            queue.clone(),
            clock.clone(),
        )?,
        worker: WorkerDeps::new(
            WorkerConfig::from_env(&env)?,
            wechat,
            backend.store.clone(),
            queue.clone(),
            clock,
            Arc::new(RuleHandler::demo()),
        )?,
        queue,
    });
    let mut rng = SmallRng::seed_from_u64(knobs.seed);
    let n = knobs.messages;
    let twice: Arc<HashSet<usize>> = Arc::new(
        rand::seq::index::sample(&mut rng, n, knobs.concurrent_duplicates.min(n))
            .into_iter()
            .collect(),
    );
    let late: Vec<usize> = rand::seq::index::sample(&mut rng, n, (knobs.late_duplicates + twice.len()).min(n))
        .into_iter()
        .filter(|i| !twice.contains(i))
        .take(knobs.late_duplicates)
        .collect();

    println!(
        "# reliability run: {n} messages, {}% of send calls failing, {} s outage of both domains",
        knobs.fail_percent,
        knobs.outage.as_secs()
    );
    println!(
        "backend: {}; queue maxReceiveCount {}; worker backoff base {} s, max {} s; seed {}",
        backend.name, knobs.max_receives, knobs.retry_base_secs, knobs.retry_max_secs, knobs.seed
    );
    let started = Instant::now();
    let until = started + knobs.time_limit;
    let (feeder, feeder_task) =
        faults::Feeder::new(mock.clone(), f64::from(knobs.fail_percent) / 100.0, knobs.seed).spawn();

    // Half the poison now, half when the outage starts.
    let poison: Vec<String> = (0..knobs.poison).map(traffic::poison).collect();
    let queue = backend.queue.shared();
    for body in &poison[..knobs.poison / 2] {
        queue.send(body).await?;
    }
    let done = Arc::new(AtomicBool::new(false));
    let worker = tokio::spawn(drain(deps.clone(), backend.clone(), done.clone(), until));

    // The outage: both domains refuse connections once 40 % of the messages were issued.
    let issued = Arc::new(AtomicUsize::new(0));
    let outage = {
        let (mock, issued, queue, knobs) = (mock.clone(), issued.clone(), queue.clone(), knobs.clone());
        let late_poison = poison[knobs.poison / 2..].to_vec();
        tokio::spawn(async move {
            while issued.load(Ordering::SeqCst) < n * 2 / 5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let from = started.elapsed();
            for domain in ["api", "api2"] {
                mock.set_domain_down(domain, true).await?;
            }
            for body in &late_poison {
                queue.send(body).await?;
            }
            tokio::time::sleep(knobs.outage).await;
            for domain in ["api", "api2"] {
                mock.set_domain_down(domain, false).await?;
            }
            Ok::<_, BoxError>((from, started.elapsed()))
        })
    };

    let answers = send_all(&deps, (0..n).collect(), &twice, knobs.concurrency, &issued).await;
    let sends_took = started.elapsed();
    let late_answers = send_all(
        &deps,
        late.clone(),
        &Arc::new(HashSet::new()),
        knobs.concurrency,
        &issued,
    )
    .await;
    done.store(true, Ordering::SeqCst);
    let outage_window = outage.await??;
    let stats = worker.await?;
    let drained = started.elapsed();
    feeder_task.abort();
    let (tally, starved) = feeder.lock().map_err(|_| "feeder lock poisoned")?.tally();
    let first_dead = backend.queue.dead_letters().await?;

    // ---- Counting -------------------------------------------------------------------------
    let first_answers = first_answers(&answers);
    let report = Report::count(&mock, n, &poison, &first_dead, &first_answers);
    let mut ok = true;
    println!("\n## traffic");
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for answer in &answers {
        *by_status.entry(answer.status).or_default() += 1;
    }
    println!(
        "send API answers (originals + concurrent duplicates): {by_status:?}  (200 sent now, 202 queued, 409 duplicate in progress)"
    );
    let first: HashMap<usize, &Answer> = answers
        .iter()
        .filter(|a| a.status != 409)
        .map(|a| (a.index, a))
        .collect();
    let replay_mismatches = late_answers
        .iter()
        .filter(|a| {
            first
                .get(&a.index)
                .is_none_or(|f| f.status != a.status || f.data != a.data)
        })
        .count();
    println!(
        "late duplicate requests (same Idempotency-Key, after the first answer): {} sent, {} answered differently from the first",
        late_answers.len(),
        replay_mismatches
    );
    println!(
        "concurrent duplicate requests (same key at the same time): {} pairs",
        twice.len()
    );
    let mut latencies: Vec<Duration> = answers.iter().map(|a| a.latency).collect();
    latencies.sort();
    println!(
        "send API latency: p50 {:?}, p95 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "WeChat mock send calls: {} (passed {}, errcode -1 {}, HTTP 503 {}, dropped before processing {}, unplanned {}); failure share {:.1}%{}",
        tally.calls(),
        tally.passed,
        tally.errcode,
        tally.status_503,
        tally.dropped,
        tally.unplanned,
        100.0 * tally.failed() as f64 / tally.calls().max(1) as f64,
        if starved {
            " — fault feeder fell behind at least once"
        } else {
            ""
        }
    );
    println!(
        "outage (both domains refusing connections): {:.1} s – {:.1} s after start",
        outage_window.0.as_secs_f64(),
        outage_window.1.as_secs_f64()
    );
    println!(
        "worker: {} rounds, {} receives{}",
        stats.rounds,
        stats.received,
        if stats.timed_out { " — TIME LIMIT REACHED" } else { "" }
    );
    println!(
        "wall time: all requests answered after {:.1} s; queue drained after {:.1} s",
        sends_took.as_secs_f64(),
        drained.as_secs_f64()
    );
    ok &= !stats.timed_out && replay_mismatches == 0 && by_status.keys().all(|s| [200, 202, 409].contains(s));

    println!("\n## outcome (counted from the mock's recorded messages)");
    report.print();
    ok &= report.exact(n);
    if report.legit_dead > 0 {
        // The documented operator action for a DLQ alarm: redrive, then let the worker drain.
        let moved = backend.queue.redrive().await?;
        done.store(true, Ordering::SeqCst);
        let again = drain(deps.clone(), backend.clone(), done, Instant::now() + knobs.time_limit).await;
        let dead = backend.queue.dead_letters().await?;
        let after = Report::count(&mock, n, &poison, &dead, &first_answers);
        println!(
            "\n## after redriving the {moved} dead letters ({} receives, {:.1} s)",
            again.received,
            started.elapsed().as_secs_f64()
        );
        after.print();
    }
    println!("\nRESULT: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}
