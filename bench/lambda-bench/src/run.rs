//! One benchmark run: start the Runtime API, spawn the function, feed it fresh events one at a
//! time and measure what each costs.
//!
//! | figure | from | to |
//! |---|---|---|
//! | init | just before the spawn | the first `GET /next` arriving |
//! | init CPU | the process's start | the first `GET /next` |
//! | wall (per invocation) | the event handed to hyper for writing | `POST /response` fully received |
//! | CPU (per invocation) | one `GET /next` arriving | the next one arriving (the whole cycle) |
//! | peak RSS | | `VmHWM` once the last invocation is answered |

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::process::{CpuMeter, FunctionProcess, Launch};
use crate::runtime_api::{self, Invocation, RuntimeApi, RuntimeCall};
use crate::scenario::{self, Infra, Scenario};
use crate::stats::Percentiles;
use crate::workload::{Generator, MAX_INVOCATIONS};

/// How often a wait checks that the function is still alive.
const LIVENESS_POLL: Duration = Duration::from_millis(50);
/// Failures whose details are kept for the report.
const FAILURES_SHOWN: usize = 3;

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Invocations measured and checked.
    pub invocations: u64,
    /// The first this many are left out of the percentiles (the first is reported by itself).
    pub warmup: u64,
    /// How many times the function is started: init and the first invocation are the medians
    /// over these (the first start of a freshly built binary pays extra page faults).
    pub cold_starts: u32,
    /// The core the function runs on (`None`: not pinned).
    pub pin_cpu: Option<u32>,
    /// Where the function's binary is.
    pub bin_dir: PathBuf,
    /// Where its logs go (`<scenario>.log`).
    pub log_dir: PathBuf,
    /// How long the function may take to ask for its first event.
    pub init_timeout: Duration,
    /// How long one invocation may take (the Runtime API's deadline).
    pub invocation_timeout: Duration,
    /// Variables added to (or replacing some of) the scenario's environment, for experiments
    /// (`RUST_LOG=warn`, say).
    pub extra_env: Vec<(String, String)>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// `callback-plain:memory`.
    pub scenario: String,
    /// The binary's size in bytes.
    pub binary_bytes: u64,
    /// How many times the function was started.
    pub cold_starts: usize,
    /// Spawn to the first `GET /next` (median of the cold starts).
    pub init: Duration,
    /// The slowest init.
    pub init_worst: Duration,
    /// CPU time until the first `GET /next` (median).
    pub init_cpu: Duration,
    /// The first invocation's wall time, what a cold start's first request pays after init (median).
    pub first_wall: Duration,
    /// The first invocation's CPU time (median).
    pub first_cpu: Duration,
    /// Wall time after the warm-up.
    pub wall: Percentiles,
    /// CPU time after the warm-up.
    pub cpu: Percentiles,
    /// `VmHWM` in KiB.
    pub peak_rss_kib: u64,
    /// Invocations of the long run.
    pub invocations: u64,
    /// Of which the first this many are not in the percentiles.
    pub warmup: u64,
    /// Invocations whose result was wrong or an error (the cold starts' included).
    pub failures: u64,
    /// The first few failures, described.
    pub failure_samples: Vec<String>,
    /// The function's log file.
    pub log: PathBuf,
}

/// Runs `scenario` against the function binary in `options.bin_dir`: `cold_starts - 1` short
/// lives of one invocation each, then the measured run (the last cold start).
///
/// # Errors
/// The function could not be started, reported an init error, exited, or did not ask for its
/// next event in time; the message includes the end of its log.
pub async fn run(scenario: Scenario, infra: &Infra, options: &RunOptions) -> Result<Report, String> {
    if options.invocations == 0 || options.invocations > MAX_INVOCATIONS {
        return Err(format!("invocations must be 1 to {MAX_INVOCATIONS}"));
    }
    let program = options.bin_dir.join(scenario.workload.binary());
    let binary_bytes = std::fs::metadata(&program)
        .map_err(|e| format!("{}: {e} (build it first)", program.display()))?
        .len();
    let name = scenario.to_string().replace(':', "-");
    let mut cold = ColdStarts::default();
    let mut failures = Vec::new();
    for start in 1..options.cold_starts.max(1) {
        let log = options.log_dir.join(format!("{name}.cold-{start}.log"));
        let life = live(scenario, infra, options, 1, log).await?;
        cold.add(&life.measured);
        failures.extend(life.measured.failures);
    }
    let log = options.log_dir.join(format!("{name}.log"));
    let life = live(scenario, infra, options, options.invocations, log.clone()).await?;
    cold.add(&life.measured);
    failures.extend(life.measured.failures);
    let settled = |samples: &[Duration]| {
        let skip = usize::try_from(options.warmup)
            .unwrap_or(usize::MAX)
            .min(samples.len() - 1);
        Percentiles::of(&samples[skip..])
    };
    Ok(Report {
        scenario: scenario.to_string(),
        binary_bytes,
        cold_starts: cold.inits.len(),
        init: Percentiles::of(&cold.inits).p50,
        init_worst: cold.inits.iter().copied().max().unwrap_or_default(),
        init_cpu: Percentiles::of(&cold.init_cpus).p50,
        first_wall: Percentiles::of(&cold.first_walls).p50,
        first_cpu: Percentiles::of(&cold.first_cpus).p50,
        wall: settled(&life.measured.walls),
        cpu: settled(&life.measured.cpus),
        peak_rss_kib: life.peak_rss_kib,
        invocations: options.invocations,
        warmup: options.warmup.min(options.invocations - 1),
        failures: failures.len() as u64,
        failure_samples: failures.into_iter().take(FAILURES_SHOWN).collect(),
        log,
    })
}

/// What each cold start measured: init and the first invocation.
#[derive(Debug, Default)]
struct ColdStarts {
    inits: Vec<Duration>,
    init_cpus: Vec<Duration>,
    first_walls: Vec<Duration>,
    first_cpus: Vec<Duration>,
}

impl ColdStarts {
    fn add(&mut self, measured: &Measured) {
        self.inits.push(measured.init);
        self.init_cpus.push(measured.init_cpu);
        self.first_walls.push(measured.walls[0]);
        self.first_cpus.push(measured.cpus[0]);
    }
}

/// One life of the function: spawned, `invocations` events, its peak memory, stopped.
struct Life {
    measured: Measured,
    peak_rss_kib: u64,
}

async fn live(
    scenario: Scenario,
    infra: &Infra,
    options: &RunOptions,
    invocations: u64,
    log: PathBuf,
) -> Result<Life, String> {
    let function = scenario.workload.binary();
    let api = runtime_api::serve(&scenario::function_arn(function))
        .await
        .map_err(|e| format!("cannot start the Runtime API: {e}"))?;
    let mut env = scenario::function_env(scenario, infra, &api.address.to_string())?;
    env.retain(|(name, _)| !options.extra_env.iter().any(|(extra, _)| extra == name));
    env.extend(options.extra_env.iter().cloned());
    let launch = Launch {
        program: options.bin_dir.join(function),
        pin_cpu: options.pin_cpu,
        env,
        log,
    };
    let process = FunctionProcess::spawn(&launch).map_err(|e| format!("cannot start {function}: {e}"))?;
    let mut session = Session::new(api, process, options);
    let measured = session.measure(&Generator::new(scenario.workload), invocations).await;
    let peak_rss_kib = session.process.peak_rss_kib().unwrap_or_default();
    session.process.stop();
    Ok(Life {
        measured: measured?,
        peak_rss_kib,
    })
}

/// The raw measurements of a run.
#[derive(Debug, Default)]
struct Measured {
    init: Duration,
    init_cpu: Duration,
    walls: Vec<Duration>,
    cpus: Vec<Duration>,
    failures: Vec<String>,
}

/// The Runtime API and the function it serves, driven in lockstep.
struct Session<'a> {
    api: RuntimeApi,
    process: FunctionProcess,
    cpu: CpuMeter,
    options: &'a RunOptions,
}

impl<'a> Session<'a> {
    fn new(api: RuntimeApi, process: FunctionProcess, options: &'a RunOptions) -> Self {
        let cpu = CpuMeter::new(process.pid());
        Self {
            api,
            process,
            cpu,
            options,
        }
    }

    async fn measure(&mut self, generator: &Generator, invocations: u64) -> Result<Measured, String> {
        let mut measured = Measured::default();
        let (arrived, mut ready) = self.wait_for_next(self.options.init_timeout, "its first event").await?;
        measured.init = arrived.duration_since(self.process.spawned);
        measured.init_cpu = self.cpu_since_last()?;
        for n in 0..invocations {
            let request_id = generator.request_id(n);
            let invocation = Invocation {
                request_id: request_id.clone(),
                trace_id: runtime_api::trace_header(n + 1),
                body: Bytes::from(generator.event(n)),
            };
            ready
                .send(invocation)
                .map_err(|_| "the Runtime API dropped a waiting GET /next".to_owned())?;
            let (wall, outcome) = self.wait_for_result(&request_id).await?;
            if let Err(problem) = outcome.and_then(|result| generator.verify(n, &result)) {
                measured.failures.push(format!("invocation {n}: {problem}"));
            }
            let (_, next_ready) = self
                .wait_for_next(self.options.invocation_timeout, "its next event")
                .await?;
            ready = next_ready;
            measured.walls.push(wall);
            measured.cpus.push(self.cpu_since_last()?);
        }
        Ok(measured)
    }

    fn cpu_since_last(&mut self) -> Result<Duration, String> {
        self.cpu
            .since_last()
            .map_err(|e| format!("cannot read the function's CPU time: {e}"))
    }

    /// Waits for `GET /next`: when it arrived, and where its event goes.
    async fn wait_for_next(
        &mut self,
        timeout: Duration,
        what: &str,
    ) -> Result<(Instant, oneshot::Sender<Invocation>), String> {
        match self.wait_for_call(timeout, what).await? {
            RuntimeCall::Next { arrived, reply } => Ok((arrived, reply)),
            other => Err(format!("expected GET /next, got {other:?}")),
        }
    }

    /// Waits for the result of invocation `request_id`: its wall time and its result (or the
    /// error the function reported).
    async fn wait_for_result(&mut self, request_id: &str) -> Result<(Duration, Result<Bytes, String>), String> {
        let timeout = self.options.invocation_timeout;
        let handed_out = match self.wait_for_call(timeout, "the event to be written").await? {
            RuntimeCall::HandedOut { request_id: id, at } if id == request_id => at,
            other => return Err(format!("expected the hand-out of {request_id}, got {other:?}")),
        };
        match self.wait_for_call(timeout, "its result").await? {
            RuntimeCall::Response {
                request_id: id,
                body,
                arrived,
            } if id == request_id => Ok((arrived.duration_since(handed_out), Ok(body))),
            RuntimeCall::Error { request_id: id, body } if id == request_id => Ok((
                handed_out.elapsed(),
                Err(format!("reported an error: {}", String::from_utf8_lossy(&body))),
            )),
            other => Err(format!("expected the result of {request_id}, got {other:?}")),
        }
    }

    /// The function's next call; an init error, its exit or `timeout` end the run.
    async fn wait_for_call(&mut self, timeout: Duration, what: &str) -> Result<RuntimeCall, String> {
        let give_up = Instant::now() + timeout;
        loop {
            match tokio::time::timeout(LIVENESS_POLL, self.api.calls.recv()).await {
                Ok(Some(RuntimeCall::InitError { body })) => {
                    return Err(self.failure(&format!("init error: {}", String::from_utf8_lossy(&body))));
                }
                Ok(Some(call)) => return Ok(call),
                Ok(None) => return Err("the Runtime API stopped".to_owned()),
                Err(_) => {}
            }
            if let Some(status) = self.process.exited().map_err(|e| e.to_string())? {
                return Err(self.failure(&format!("exited ({status}) while waiting for {what}")));
            }
            if Instant::now() >= give_up {
                return Err(self.failure(&format!("no call within {timeout:?} while waiting for {what}")));
            }
        }
    }

    fn failure(&self, problem: &str) -> String {
        format!(
            "the function {problem}\n--- the end of its log:\n{}",
            self.process.log_tail(20)
        )
    }
}
