//! The harness against a real `lambda_runtime` function (`lambda-bench-echo`, built with these
//! tests): every invocation handed out, answered and checked, every figure measured.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lambda_bench::run::{self, RunOptions};
use lambda_bench::runtime_api::{self, RuntimeCall};
use lambda_bench::scenario::{Infra, Scenario};

fn options(invocations: u64) -> RunOptions {
    let echo = Path::new(env!("CARGO_BIN_EXE_lambda-bench-echo"));
    RunOptions {
        invocations,
        warmup: 2,
        cold_starts: 2,
        pin_cpu: None,
        bin_dir: echo.parent().map(PathBuf::from).unwrap_or_default(),
        log_dir: std::env::temp_dir().join(format!("lambda-bench-test-{}", std::process::id())),
        init_timeout: Duration::from_secs(10),
        invocation_timeout: Duration::from_secs(10),
        extra_env: Vec::new(),
    }
}

#[tokio::test]
async fn a_real_runtime_client_is_driven_measured_and_checked() {
    let options = options(25);
    std::fs::create_dir_all(&options.log_dir).unwrap();
    let echo: Scenario = "echo".parse().unwrap();
    let report = run::run(echo, &Infra::default(), &options).await.expect("the echo run");
    assert_eq!(report.failures, 0, "{:?}", report.failure_samples);
    assert_eq!(report.invocations, 25);
    assert_eq!(report.cold_starts, 2);
    assert!(report.init_worst >= report.init);
    assert!(report.init > Duration::ZERO && report.init < Duration::from_secs(10));
    assert!(report.init_cpu > Duration::ZERO, "the process start costs CPU");
    assert!(report.first_wall > Duration::ZERO && report.wall.p50 > Duration::ZERO);
    assert!(report.wall.p99 >= report.wall.p50 && report.cpu.p99 >= report.cpu.p50);
    assert!(
        report.cpu.p50 > Duration::ZERO,
        "each cycle costs the function some CPU"
    );
    assert!(report.peak_rss_kib > 100, "VmHWM read: {} KiB", report.peak_rss_kib);
    assert!(report.binary_bytes > 0);
    let _ = std::fs::remove_dir_all(&options.log_dir);
}

#[tokio::test]
async fn a_missing_binary_is_an_error_not_a_result() {
    let mut options = options(1);
    options.bin_dir = std::env::temp_dir().join("lambda-bench-no-such-dir");
    let error = run::run("echo".parse().unwrap(), &Infra::default(), &options)
        .await
        .unwrap_err();
    assert!(error.contains("build it first"), "{error}");
}

#[tokio::test]
async fn an_init_error_reaches_the_driver_with_its_body() {
    let mut api = runtime_api::serve("arn:aws:lambda:us-east-1:123456789012:function:f")
        .await
        .unwrap();
    let address = api.address;
    let poster = std::thread::spawn(move || {
        let body = r#"{"errorType":"Config","errorMessage":"WECHAT_APPID is required"}"#;
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            stream,
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    let call = tokio::time::timeout(Duration::from_secs(5), api.calls.recv())
        .await
        .unwrap();
    match call {
        Some(RuntimeCall::InitError { body }) => {
            assert!(String::from_utf8_lossy(&body).contains("WECHAT_APPID is required"));
        }
        other => panic!("expected the init error, got {other:?}"),
    }
    let answer = tokio::task::spawn_blocking(move || poster.join().unwrap())
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
}
