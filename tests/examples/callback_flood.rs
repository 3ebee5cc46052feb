//! Sends N unique, freshly signed text messages to a running callback (as WeChat would: a new
//! timestamp, nonce and MsgId each) and checks every answer echoes its message. The load side of
//! the memory benchmark (`scripts/memory.sh`); prints one summary line and exits 1 on any wrong
//! answer.
//!
//! ```text
//! callback_flood --url http://127.0.0.1:3000/wechat [--count 1000000] [--concurrency 32] [--token T]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use shared::protocol::url_signature;

/// The demo account's token (`local/src/demo.rs`), what `wechat-local` serves on embedded defaults.
const DEMO_TOKEN: &str = "wechat-ha-demo-token";

struct Options {
    url: String,
    count: u64,
    concurrency: usize,
    token: String,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        url: "http://127.0.0.1:3000/wechat".to_owned(),
        count: 1_000_000,
        concurrency: 32,
        token: DEMO_TOKEN.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => options.url = value()?,
            "--count" => options.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--concurrency" => options.concurrency = value()?.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--token" => options.token = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    non_200: AtomicU64,
    wrong_body: AtomicU64,
    unreachable: AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Message `i`: its own nonce and MsgId, signed with the current timestamp.
async fn send_one(client: &reqwest::Client, options: &Options, i: u64, tally: &Tally) {
    let timestamp = now_secs().to_string();
    let nonce = format!("f{i}");
    let content = format!("flood-{i}");
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_flood]]></ToUserName><FromUserName><![CDATA[oFlood{}]]></FromUserName>\
         <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[{content}]]></Content><MsgId>{}</MsgId></xml>",
        i % 1000,
        7_000_000_000_000 + i
    );
    let url = format!(
        "{}?signature={}&timestamp={timestamp}&nonce={nonce}",
        options.url,
        url_signature(&options.token, &timestamp, &nonce)
    );
    let sent = client
        .post(&url)
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await;
    let counter = match sent {
        Err(_) => &tally.unreachable,
        Ok(response) if response.status() != reqwest::StatusCode::OK => &tally.non_200,
        Ok(response) => match response.text().await {
            Ok(text) if text.contains(&content) => &tally.ok,
            _ => &tally.wrong_body,
        },
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match options() {
        Ok(options) => Arc::new(options),
        Err(message) => {
            eprintln!("callback_flood: {message}");
            std::process::exit(2);
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .unwrap_or_default();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let progress_every = (options.count / 10).max(1);
    futures_util::stream::iter(0..options.count)
        .for_each_concurrent(options.concurrency, |i| {
            let (client, options, tally) = (client.clone(), Arc::clone(&options), Arc::clone(&tally));
            async move {
                send_one(&client, &options, i, &tally).await;
                if (i + 1) % progress_every == 0 {
                    eprintln!(
                        "callback_flood: {} sent, {:.0} s",
                        i + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let failures = load(&tally.non_200) + load(&tally.wrong_body) + load(&tally.unreachable);
    #[allow(clippy::print_stdout)]
    {
        println!(
            "messages {} ok {} non-200 {} wrong-body {} unreachable {} seconds {elapsed:.1} rate {:.0}/s",
            options.count,
            load(&tally.ok),
            load(&tally.non_200),
            load(&tally.wrong_body),
            load(&tally.unreachable),
            f64::from(u32::try_from(options.count).unwrap_or(u32::MAX)) / elapsed
        );
    }
    if failures > 0 {
        std::process::exit(1);
    }
}
