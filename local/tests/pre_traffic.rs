//! The pre-traffic hook's checks run locally, as `pre-traffic-hook --against URL` runs them:
//! against a good build of `wechat-local --mock-wechat` (plain and safe mode) every check passes;
//! against a deliberately broken one — a server configured with another token — the callback
//! checks fail, so CodeDeploy would roll the release back.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use shared::canary::{HttpInvoker, run, standard_checks};
use shared::clock::{Clock, SystemClock};
use shared::config::{CallbackAccount, Env};

const KEY: &str = "wechat-ha-local-key";
const TOKEN: &str = "canary-token-0123456789";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx0123456789abcdef";

struct Server {
    child: Child,
    base: String,
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

fn start(env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wechat-local"));
    command
        .arg("--mock-wechat")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("WECHAT_MOCK_PORT", free_port().to_string())
        .env("WECHAT_APPID", APPID)
        .env("INTERNAL_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start wechat-local");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// The account the hook signs with (what the deployment's secret holds).
fn account(extra: &[(&str, &str)]) -> CallbackAccount {
    let mut env = Env::from_pairs([("WECHAT_TOKEN", TOKEN), ("WECHAT_APPID", APPID)]);
    for (name, value) in extra {
        env.set(name, *value);
    }
    CallbackAccount::from_env(&env).expect("account")
}

async fn passed(server: &Server, account: &CallbackAccount) -> Vec<(String, bool, String)> {
    let checks = standard_checks(
        account,
        "wechat-ha-canary",
        "https://example.com/",
        SystemClock.now_secs(),
    );
    let invoker = HttpInvoker::new(&server.base, Some(KEY.to_owned())).expect("invoker");
    run(&invoker, &checks, account)
        .await
        .into_iter()
        .map(|r| (r.name.to_owned(), r.passed, r.detail))
        .collect()
}

#[tokio::test]
async fn a_good_build_passes_every_check_in_plain_and_safe_mode() {
    let plain = start(&[("WECHAT_TOKEN", TOKEN)]);
    let results = passed(&plain, &account(&[])).await;
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(results.iter().all(|(_, ok, _)| *ok), "{results:?}");
    // The callbacks the checks sent are in /metrics as a Prometheus histogram (buckets add up
    // across instances; a summary's quantiles do not).
    let metrics = reqwest::get(format!("{}/metrics", plain.base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("# TYPE wechat_callback_latency_ms histogram"),
        "{metrics}"
    );
    let under_5s = metrics
        .lines()
        .find(|line| line.starts_with(r#"wechat_callback_latency_ms_bucket{le="5000"}"#))
        .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(under_5s.is_some_and(|n| n >= 1), "{metrics}");

    let safe_env = [("WECHAT_ENCODING_AES_KEY", AES_KEY), ("WECHAT_ENCRYPT_MODE", "safe")];
    let safe = start(&[("WECHAT_TOKEN", TOKEN), safe_env[0], safe_env[1]]);
    let results = passed(&safe, &account(&safe_env)).await;
    assert!(results.iter().all(|(_, ok, _)| *ok), "{results:?}");
}

#[tokio::test]
async fn a_build_with_the_wrong_token_fails_the_callback_checks() {
    let broken = start(&[("WECHAT_TOKEN", "not-the-deployed-token")]);
    let results = passed(&broken, &account(&[])).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, _)| name.as_str())
        .collect();
    assert!(failed.iter().any(|n| n.contains("URL verification")), "{results:?}");
    assert!(failed.iter().any(|n| n.contains("text message")), "{results:?}");
    assert!(
        results.iter().any(|(_, _, detail)| detail.contains("403")),
        "{results:?}"
    );
}
