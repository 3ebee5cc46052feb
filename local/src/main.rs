//! `wechat-local`: the local dev server, and `wechat-local simulate` to talk to it like WeChat does.
//!
//! ```text
//! wechat-local [--mock-wechat]                         serve every route on 127.0.0.1:$PORT (3000)
//! wechat-local simulate [--url URL] [--text TEXT] [--encrypt] [--subscribe]
//! ```

mod adapter;
mod demo;
mod deps;
mod server;
mod simulate;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use shared::config::{LocalConfig, local_worker_threads, log_filter};

use crate::deps::LocalDeps;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("simulate") => runtime(1).and_then(|runtime| runtime.block_on(simulate::run(&args[1..]))),
        Some("-h" | "--help" | "help") => {
            eprintln!("{}", USAGE);
            Ok(())
        }
        _ => {
            let (env, demo) = demo::environment();
            local_worker_threads(&env)
                .map_err(|e| e.to_string())
                .and_then(runtime)
                .and_then(|runtime| runtime.block_on(serve(&args, env, demo)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wechat-local: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A runtime of `threads` threads: current-thread for one (no hand-offs between threads).
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

const USAGE: &str = "usage:
  wechat-local [--mock-wechat] [--mock-wechat-pay]
                                   serve every route on 127.0.0.1:$PORT (default 3000)
  wechat-local simulate [--url URL] [--text TEXT] [--encrypt] [--subscribe]
                                   send a signed (optionally encrypted) message to a running server
  wechat-local simulate --pay ORDER [--public-key] [--url URL]
                                   send a signed WeChat Pay notice (the mock's keys) to /pay/notify";

async fn serve(args: &[String], mut env: shared::config::Env, demo: bool) -> Result<(), String> {
    let mock_wechat = args.iter().any(|a| a == "--mock-wechat");
    let mock_pay = args.iter().any(|a| a == "--mock-wechat-pay");
    if let Some(unknown) = args.iter().find(|a| *a != "--mock-wechat" && *a != "--mock-wechat-pay") {
        return Err(format!("unknown argument {unknown:?}\n{USAGE}"));
    }
    shared::telemetry::init_logging(&log_filter(&env));
    let _mock = if mock_wechat {
        Some(start_mock(&mut env).await?)
    } else {
        None
    };
    let _pay_mock = if mock_pay {
        let handle = wechatpay_mock::start()
            .await
            .map_err(|e| format!("cannot start the WeChat Pay mock: {e}"))?;
        for (name, value) in wechatpay_mock::local_environment(&handle.base_url()) {
            env.set(name, value);
        }
        eprintln!("WeChat Pay mock serving {}", handle.base_url());
        Some(handle)
    } else {
        None
    };
    let config = LocalConfig::from_env(&env).map_err(|e| e.to_string())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
    let banner = Banner {
        mode: "",
        appid: String::new(),
        key_missing: config
            .api
            .as_ref()
            .is_some_and(|api| api.send.internal_api_key.is_none()),
        store: config.callback.store.describe(),
        queue: match &config.callback.queue {
            shared::config::Queue::Memory => "in-memory, worker in-process".to_owned(),
            shared::config::Queue::Sqs { url } => url.clone(),
        },
        demo_key: config
            .api
            .as_ref()
            .and_then(|api| api.send.internal_api_key.as_ref())
            .is_some_and(|k| k.expose() == demo::INTERNAL_API_KEY),
        api: config.api.is_some(),
        login: config.auth.is_some(),
    };
    // Every metric as Prometheus text at GET /metrics (the Lambda functions write EMF instead).
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&shared::telemetry::metrics::LATENCY_BUCKETS_MS)
        .map_err(|e| format!("cannot configure the metrics recorder: {e}"))?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    shared::telemetry::metrics::describe_all();
    let deps = Arc::new(
        LocalDeps::build(config, Some(prometheus))
            .await
            .map_err(|e| e.to_string())?,
    );
    let account = &deps.callback.account;
    let banner = Banner {
        mode: account.mode.as_str(),
        appid: account.appid.clone(),
        ..banner
    };
    print_banner(&banner, addr, demo, mock_wechat);
    server::run(deps, addr)
        .await
        .map_err(|e| format!("cannot serve on {addr}: {e}"))
}

/// What the banner shows, taken from the configuration before the deps consume it.
struct Banner {
    key_missing: bool,
    store: String,
    queue: String,
    mode: &'static str,
    appid: String,
    demo_key: bool,
    api: bool,
    login: bool,
}

/// Starts the WeChat mock with two domains (for failover) knowing this account, and points the
/// client at it. The account's secret defaults to a mock one, so no real credential is needed.
async fn start_mock(env: &mut shared::config::Env) -> Result<wechat_mock::MockHandle, String> {
    let appid = env.optional("WECHAT_APPID").unwrap_or(demo::APPID).to_owned();
    let secret = env
        .optional("WECHAT_APPSECRET")
        .unwrap_or(wechat_mock::DEFAULT_SECRET)
        .to_owned();
    // Fixed ports (WECHAT_MOCK_PORT and the next one, default 8090/8091) so a walk-through can
    // name the mock's control routes; taken ports fall back to any free ones.
    let first = u16::try_from(
        env.int_in("WECHAT_MOCK_PORT", 8090, 1, 65534)
            .map_err(|e| e.to_string())?,
    )
    .unwrap_or(8090);
    // A follower population for the sync (`POST /admin/sync`, then `GET /followers`).
    let followers = usize::try_from(
        env.int_in("WECHAT_MOCK_FOLLOWERS", 2_000, 0, 1_000_000)
            .map_err(|e| e.to_string())?,
    )
    .unwrap_or(2_000);
    let config = wechat_mock::MockConfig::default()
        .with_app(&appid, &secret)
        .with_followers(followers, 5);
    let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    let fixed = wechat_mock::MockServer::new()
        .config(config.clone())
        .domain_at("api", at(first))
        .domain_at("api2", at(first + 1))
        .start()
        .await;
    let handle = match fixed {
        Ok(handle) => handle,
        Err(_) => wechat_mock::MockServer::new()
            .config(config)
            .domain("api")
            .domain("api2")
            .start()
            .await
            .map_err(|e| format!("cannot start the WeChat mock: {e}"))?,
    };
    env.set(
        "WECHAT_API_BASE",
        format!("{},{}", handle.base_url("api"), handle.base_url("api2")),
    );
    env.set("WECHAT_APPID", appid);
    env.set("WECHAT_APPSECRET", secret);
    configure_logins(env, &handle);
    eprintln!(
        "WeChat mock serving {} and {}",
        handle.base_url("api"),
        handle.base_url("api2")
    );
    Ok(handle)
}

/// Turns both logins on against the mock: WeChat's authorize page is the mock's (it signs the
/// browser in as `alice` at once), the callback is this server's, the mini-program is the mock's
/// own. Variables already set win.
fn configure_logins(env: &mut shared::config::Env, handle: &wechat_mock::MockHandle) {
    let port = env.optional("PORT").unwrap_or("3000").to_owned();
    let defaults = [
        ("OAUTH_REDIRECT_URI", format!("http://127.0.0.1:{port}/oauth/callback")),
        (
            "OAUTH_AUTHORIZE_URL",
            format!("{}/connect/oauth2/authorize", handle.base_url("api")),
        ),
        ("AUTH_RETURN_HOSTS", format!("127.0.0.1:{port},localhost:{port}")),
        ("MINIPROGRAM_APPID", wechat_mock::DEFAULT_MINIPROGRAM_APPID.to_owned()),
        (
            "MINIPROGRAM_APPSECRET",
            wechat_mock::DEFAULT_MINIPROGRAM_SECRET.to_owned(),
        ),
    ];
    for (name, value) in defaults {
        if env.optional(name).is_none() {
            env.set(name, value);
        }
    }
}

fn print_banner(banner: &Banner, addr: SocketAddr, demo: bool, mock_wechat: bool) {
    eprintln!(
        "wechat-ha local server listening on http://{addr}\n\
         \x20 callback:  http://{addr}/wechat   (GET verify, POST messages; mode {mode})\n\
         \x20 JS-SDK:    GET http://{addr}/jssdk/config?url=<page URL>{api_hint}\n\
         \x20 send API:  POST http://{addr}/messages/{{custom,template,subscribe}}  (Authorization: Bearer $INTERNAL_API_KEY{key_hint})\n\
         \x20 login:     GET http://{addr}/oauth/authorize, POST http://{addr}/miniprogram/login, GET http://{addr}/me{login_hint}\n\
         \x20 state:     {store}{mock}; send queue: {queue}\n\
         {account}\n\
         Try it without WeChat:   cargo run -p wechat-local -- simulate --text hello [--encrypt]\n\
         Use a WeChat test account (https://mp.weixin.qq.com/debug/cgi-bin/sandbox?t=sandbox/login):\n\
         \x20 1. expose this port over HTTPS (any tunnel), e.g. https://<tunnel>/wechat\n\
         \x20 2. set URL = that address and Token = your WECHAT_TOKEN, then submit: WeChat sends GET /wechat to verify\n\
         \x20 3. follow the test account and send it a message: the demo rules echo it back",
        mode = banner.mode,
        api_hint = if banner.api {
            ""
        } else {
            "  (needs WECHAT_APPSECRET or --mock-wechat)"
        },
        key_hint = if banner.demo_key {
            format!(" = {}", demo::INTERNAL_API_KEY)
        } else if banner.key_missing {
            "; REFUSED until you set INTERNAL_API_KEY: real credentials get no demo key".to_owned()
        } else {
            String::new()
        },
        login_hint = if banner.login {
            ""
        } else {
            "  (needs OAUTH_REDIRECT_URI / MINIPROGRAM_APPID or --mock-wechat)"
        },
        store = banner.store,
        queue = banner.queue,
        mock = if mock_wechat {
            "; WeChat API: in-process mock"
        } else {
            ""
        },
        account = if demo {
            format!(
                "  account:   demo (WECHAT_TOKEN={}, appid {}); set WECHAT_TOKEN etc. for your own",
                demo::TOKEN,
                demo::APPID
            )
        } else {
            format!("  account:   appid {:?} from the environment", banner.appid)
        },
    );
}
