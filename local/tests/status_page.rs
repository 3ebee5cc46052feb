//! `wechat-local --mock-wechat` as an operator meets it: the status page in a real headless
//! Chromium (`scripts/browser_check.py`), `/metrics` in Prometheus text, and the message breaker
//! turning open on both while the mock fails every send with "system busy".
//!
//! Needs Chromium (Debian: `apt-get install -y chromium`; `.ci/run` installs it): skipped locally
//! without it, a failure under `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const KEY: &str = "wechat-ha-local-key";

struct Server {
    child: Child,
    base: String,
    mock_api: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the server on a free port with the demo account and the in-process WeChat mock.
fn start() -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-local"))
        .arg("--mock-wechat")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wechat-local");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut mock_api = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("WeChat mock serving ") {
            mock_api = rest.split(" and ").next().unwrap_or_default().to_owned();
        }
        if line.contains("listening on") {
            break;
        }
    }
    // Keep reading: a server whose stderr pipe closed would fail on its next log line.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    assert!(!mock_api.is_empty(), "the banner names the mock");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        mock_api,
    }
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Runs the browser check; `expect` are `SELECTOR=TEXT` pairs.
fn browser(url: &str, texts: &[&str], expect: &[&str]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/browser_check.py");
    let mut command = Command::new("python3");
    command.arg(script).args(["--url", url, "--timeout", "20"]);
    for text in texts {
        command.args(["--expect-text", text]);
    }
    for pair in expect {
        command.args(["--expect-selector-text", pair]);
    }
    let output = command.output().expect("run browser_check.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

async fn metric_line(client: &reqwest::Client, base: &str, prefix: &str) -> Option<String> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().find(|line| line.starts_with(prefix)).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_and_metrics_show_the_message_breaker_opening_while_the_mock_fails() {
    if chromium().is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Chromium: apt-get install -y chromium"
        );
        eprintln!("skipped: no Chromium (apt-get install -y chromium)");
        return;
    }
    let server = start();
    let client = reqwest::Client::new();
    let page = format!("{}/status", server.base);
    let (ok, report) = browser(
        &page,
        &["wechat-ha status"],
        &[r#"tr[data-breaker="wechat.message"] [data-state]=CLOSED"#],
    );
    assert!(ok, "closed at first:\n{report}");

    // Every send answered "system busy" on both domains: the message breaker trips.
    let fault = serde_json::json!({
        "kind": {"errcode": {"errcode": -1, "errmsg": "system busy"}},
        "path": "/cgi-bin/message/custom/send",
        "times": 10_000
    });
    let injected = client
        .post(format!("{}/__mock/faults", server.mock_api))
        .json(&fault)
        .send()
        .await
        .expect("inject the fault");
    assert!(injected.status().is_success());
    let started = Instant::now();
    let mut opened = None;
    for n in 0..60 {
        let body = serde_json::json!({"touser": "oStatus", "msgtype": "text", "text": {"content": format!("s{n}")}});
        let _ = client
            .post(format!("{}/messages/custom", server.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await;
        if let Some(line) = metric_line(
            &client,
            &server.base,
            r#"wechat_breaker_state{breaker="wechat.message"}"#,
        )
        .await
            && line.ends_with(" 1")
        {
            opened = Some(line);
            break;
        }
    }
    let line = opened.unwrap_or_else(|| panic!("the breaker did not open within 60 sends ({:?})", started.elapsed()));
    assert_eq!(line, r#"wechat_breaker_state{breaker="wechat.message"} 1"#);
    let (ok, report) = browser(
        &page,
        &["wechat-ha status", "wechat.message: closed → open"],
        &[r#"tr[data-breaker="wechat.message"] [data-state]=OPEN"#],
    );
    assert!(ok, "open after the failures:\n{report}");
    let transitions = metric_line(&client, &server.base, "wechat_breaker_transitions_total{").await;
    assert!(
        transitions.is_some_and(|line| line.contains(r#"to="open""#)),
        "the transition is counted"
    );
}
