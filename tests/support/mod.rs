//! Test support shared by the cross-function tests: demo settings, sample events, stores.

use std::sync::Arc;

use lambda_http::Body;
use shared::bot::{MessageHandler, RuleHandler};
use shared::clock::{ManualClock, SharedClock};
use shared::config::{CallbackConfig, Env};
use shared::deps::{CallbackDeps, LOCAL_MAX_RECEIVES};
use shared::queue::SharedQueue;
use shared::queue::memory::MemoryQueue;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;

pub mod dynamo;
pub mod wechat;

/// The total of counter `name` the library recorded in this test process so far (a debugging
/// recorder, installed once; its snapshots drain, so the totals are kept here).
pub fn counter(name: &str) -> u64 {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    static TOTALS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    let snapshotter = SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _ = recorder.install();
        snapshotter
    });
    let mut totals = TOTALS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let totals = totals.get_or_insert_with(HashMap::new);
    for (key, .., value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            *totals.entry(key.key().name().to_owned()).or_default() += n;
        }
    }
    totals.get(name).copied().unwrap_or(0)
}

/// The demo credentials the sample events in `events/` are signed with (see scripts/make_events.py).
pub const TOKEN: &str = "wechat-ha-demo-token";
/// Demo AppID.
pub const APPID: &str = "wx0123456789abcdef";
/// Demo EncodingAESKey.
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// Epoch ms of the test clock: shortly after the sample events' timestamps.
pub const NOW_MS: i64 = 1_700_000_000_050;

/// The demo account's environment in `mode` (the callback's and the API's variables), plus
/// `extra` variables.
pub fn env(mode: &str, extra: &[(&str, &str)]) -> Env {
    let mut env = Env::from_pairs([
        ("WECHAT_TOKEN", TOKEN),
        ("WECHAT_APPID", APPID),
        ("WECHAT_ENCODING_AES_KEY", AES_KEY),
        ("WECHAT_ENCRYPT_MODE", mode),
        ("WECHAT_APPSECRET", wechat::SECRET),
    ]);
    for (name, value) in extra {
        env.set(name, *value);
    }
    env
}

/// The callback's configuration for the demo account in `mode`, plus `extra` variables.
pub fn settings(mode: &str, extra: &[(&str, &str)]) -> CallbackConfig {
    CallbackConfig::from_env(&env(mode, extra)).expect("valid test settings")
}

/// A test callback instance: deps on `store` with the demo rules, an in-memory queue, and its clock.
pub fn deps_on(config: CallbackConfig, store: SharedStore, clock: ManualClock) -> CallbackDeps {
    deps_with_handler(config, store, clock, Arc::new(RuleHandler::demo()))
}

/// A test callback instance with a custom business handler.
pub fn deps_with_handler(
    config: CallbackConfig,
    store: SharedStore,
    clock: ManualClock,
    handler: Arc<dyn MessageHandler>,
) -> CallbackDeps {
    deps_with_queue(
        config,
        store,
        clock,
        handler,
        Arc::new(MemoryQueue::new(LOCAL_MAX_RECEIVES)),
    )
}

/// A test callback instance handing overrunning work to `queue`.
pub fn deps_with_queue(
    config: CallbackConfig,
    store: SharedStore,
    clock: ManualClock,
    handler: Arc<dyn MessageHandler>,
    queue: SharedQueue,
) -> CallbackDeps {
    let shared_clock: SharedClock = Arc::new(clock);
    CallbackDeps::new(config, store, queue, shared_clock, handler).expect("valid deps")
}

/// A memory store and its manual clock at [`NOW_MS`].
pub fn memory_store() -> (Arc<MemoryStore>, ManualClock) {
    let clock = ManualClock::new(NOW_MS);
    (Arc::new(MemoryStore::new(Arc::new(clock.clone()))), clock)
}

/// Loads `events/<name>` as the request API Gateway would deliver.
pub fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    lambda_http::request::from_str(&json).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// `events/<name>` as if API Gateway had received it at `epoch_ms` (tests on the real clock:
/// the sample events' arrival time is fixed in the past, which spends the whole answer budget).
pub fn event_arrived_at(name: &str, epoch_ms: i64) -> lambda_http::Request {
    let mut json = event_json(name);
    json["requestContext"]["timeEpoch"] = serde_json::json!(epoch_ms);
    lambda_http::request::from_str(&json.to_string()).unwrap_or_else(|e| panic!("parse {name}: {e}"))
}

/// The raw JSON of `events/<name>`.
pub fn event_json(name: &str) -> serde_json::Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

/// A request built from an event with its body replaced.
pub fn with_body(name: &str, body: Body) -> lambda_http::Request {
    let (parts, _) = event(name).into_parts();
    http::Request::from_parts(parts, body)
}

/// The response body as text.
pub fn body_text(response: &http::Response<Body>) -> String {
    match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

/// The response body as JSON (the unified error body).
pub fn body_json(response: &http::Response<Body>) -> serde_json::Value {
    serde_json::from_str(&body_text(response)).expect("JSON body")
}
