//! `lambda-bench`: runs the functions' release binaries against a local Lambda Runtime API and
//! prints a markdown table of their init, wall and CPU times and peak memory.
//!
//! ```text
//! lambda-bench [--scenarios echo,callback-plain:memory,send:dynamodb,…] [--invocations 2000] [--warmup 20]
//!              [--cold-starts 5] [--function-env NAME=VALUE]…
//!              [--bin-dir target/release] [--log-dir DIR] [--function-cpu 0|none]
//!              --aws-endpoint URL --table NAME --queue-url URL --callback-secret ID
//!              --appsecret-secret ID --wechat-api URL[,URL]
//! ```
//!
//! Exit status: 0 when every invocation of every scenario was answered as expected, 1 when some
//! were not (the table is printed anyway), 2 when a run could not complete (a function did not
//! start, exited or stalled) or the arguments are wrong. `scripts/lambda_bench.sh` sets up the
//! emulators and passes all of this.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lambda_bench::run::{self, Report, RunOptions};
use lambda_bench::scenario::{Infra, Scenario};
use lambda_bench::table;

struct Args {
    scenarios: Vec<Scenario>,
    infra: Infra,
    options: RunOptions,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("lambda-bench: {problem}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lambda-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run_all(&args))
}

async fn run_all(args: &Args) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(&args.options.log_dir) {
        eprintln!("lambda-bench: cannot create {}: {e}", args.options.log_dir.display());
        return ExitCode::from(2);
    }
    // The functions reach moto through connections kept open, as they would reach AWS.
    let mut infra = args.infra.clone();
    if let Some(moto) = &args.infra.aws_endpoint {
        match lambda_bench::keepalive::start(moto).await {
            Ok(front) => infra.aws_endpoint = Some(front),
            Err(problem) => {
                eprintln!("lambda-bench: {problem}");
                return ExitCode::from(2);
            }
        }
    }
    let mut reports = Vec::new();
    for scenario in &args.scenarios {
        eprintln!("lambda-bench: {scenario}: {} invocations", args.options.invocations);
        match run::run(*scenario, &infra, &args.options).await {
            Ok(report) => {
                describe(&report);
                reports.push(report);
            }
            Err(problem) => {
                eprintln!("lambda-bench: {scenario} FAILED TO RUN: {problem}");
                return ExitCode::from(2);
            }
        }
    }
    let markdown = table::markdown(&reports);
    // The table is the program's output; progress and failures went to stderr.
    let _ = std::io::stdout().write_all(markdown.as_bytes());
    if reports.iter().any(|report| report.failures > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn describe(report: &Report) {
    eprintln!(
        "  init {:?} (CPU {:?}, slowest of {} starts {:?}), first invocation {:?} (CPU {:?}), wall p50 {:?}, CPU p50 {:?}, {} failures; log {}",
        report.init,
        report.init_cpu,
        report.cold_starts,
        report.init_worst,
        report.first_wall,
        report.first_cpu,
        report.wall.p50,
        report.cpu.p50,
        report.failures,
        report.log.display()
    );
    for failure in &report.failure_samples {
        eprintln!("  FAILED {failure}");
    }
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        scenarios: Scenario::all(),
        infra: Infra::default(),
        options: RunOptions {
            invocations: 2000,
            warmup: 20,
            cold_starts: 5,
            pin_cpu: Some(0),
            bin_dir: default_bin_dir(),
            log_dir: std::env::temp_dir().join("lambda-bench"),
            init_timeout: Duration::from_secs(30),
            invocation_timeout: lambda_bench::runtime_api::INVOCATION_DEADLINE,
            extra_env: Vec::new(),
        },
    };
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenarios" => {
                args.scenarios = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--invocations" => args.options.invocations = number(&flag, &value()?)?,
            "--warmup" => args.options.warmup = number(&flag, &value()?)?,
            "--cold-starts" => args.options.cold_starts = number(&flag, &value()?)?,
            "--bin-dir" => args.options.bin_dir = PathBuf::from(value()?),
            "--log-dir" => args.options.log_dir = PathBuf::from(value()?),
            "--function-cpu" => {
                let cpu = value()?;
                args.options.pin_cpu = match cpu.as_str() {
                    "none" => None,
                    _ => Some(number(&flag, &cpu)?),
                };
            }
            "--function-env" => {
                let pair = value()?;
                let (name, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--function-env {pair:?} is not NAME=VALUE"))?;
                args.options.extra_env.push((name.to_owned(), value.to_owned()));
            }
            "--aws-endpoint" => args.infra.aws_endpoint = Some(value()?),
            "--wechat-api" => args.infra.wechat_api_base = Some(value()?),
            "--table" => args.infra.table = Some(value()?),
            "--queue-url" => args.infra.queue_url = Some(value()?),
            "--callback-secret" => args.infra.callback_secret_id = Some(value()?),
            "--appsecret-secret" => args.infra.appsecret_secret_id = Some(value()?),
            other => return Err(format!("unknown argument {other:?} (see the usage in src/main.rs)")),
        }
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: {text:?} is not a number"))
}

/// The functions are built next to this binary (`target/release`).
fn default_bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}
