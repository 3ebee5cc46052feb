//! The admin API and the tuner over one store: refusals with the unified error body, every
//! action audited, thresholds validated, pinned breakers left alone by the tuner; and on DynamoDB
//! (moto) an operator's force reaching eight instances within one cache TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::Body;
use serde_json::Value;
use shared::clock::{SharedClock, SystemClock};
use shared::config::{AdminConfig, Env, TunerConfig};
use shared::deps::{AdminDeps, TunerDeps};
use shared::resilience::breaker::Observation;
use shared::resilience::{Outcome, Registry, State};
use shared::routes::{admin, tuner};
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use wechat_ha_tests::*;

const KEY: &str = "admin-test-key";

fn env() -> Env {
    Env::from_pairs([("WECHAT_APPID", APPID), ("INTERNAL_API_KEY", KEY)])
}

fn admin_deps(store: SharedStore) -> AdminDeps {
    let clock: SharedClock = Arc::new(SystemClock);
    AdminDeps::new(AdminConfig::from_env(&env()).expect("config"), store, clock).expect("deps")
}

fn request(method: &str, path: &str, body: &str, key: Option<&str>) -> lambda_http::Request {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example{path}"));
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let request = builder.body(Body::Text(body.to_owned())).expect("request");
    // As API Gateway delivers it: the query string parsed into the request's parameters.
    let query: std::collections::HashMap<String, String> =
        path.split_once('?').map(|(_, q)| form_pairs(q)).unwrap_or_default();
    lambda_http::RequestExt::with_query_string_parameters(request, query)
}

fn form_pairs(query: &str) -> std::collections::HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn call(deps: &AdminDeps, method: &str, path: &str, body: &str) -> (u16, Value) {
    let response = admin::handle(deps, request(method, path, body, Some(KEY))).await;
    (response.status().as_u16(), body_json(&response))
}

fn memory() -> SharedStore {
    Arc::new(MemoryStore::new(Arc::new(SystemClock)))
}

#[tokio::test]
async fn unauthenticated_and_malformed_admin_requests_get_the_unified_error_body_and_change_nothing() {
    let store = memory();
    let deps = admin_deps(store.clone());
    for key in [None, Some("wrong-key")] {
        let response = admin::handle(&deps, request("GET", "/admin/breakers", "", key)).await;
        assert_eq!(response.status(), 401);
        let body = body_json(&response);
        assert_eq!(body["code"], "UNAUTHORIZED");
        assert!(body["request_id"].is_string() && body["message"].is_string(), "{body}");
    }
    let cases = [
        ("POST", "/admin/breakers/wechat.message/force", "not json", 400),
        (
            "POST",
            "/admin/breakers/wechat.message/force",
            r#"{"state":"half_open"}"#,
            400,
        ),
        (
            "PUT",
            "/admin/breakers/wechat.message/thresholds",
            r#"{"failure_rate_threshold": 150}"#,
            400,
        ),
        (
            "PUT",
            "/admin/breakers/wechat.message/thresholds",
            r#"{"no_such_setting": 1}"#,
            400,
        ),
        (
            "PUT",
            "/admin/breakers/wechat.message/thresholds",
            r#"{"window_ms": 20000}"#,
            400,
        ),
        ("PUT", "/admin/breakers/wechat.message/thresholds", "[]", 400),
        ("GET", "/admin/breakers/no.such.breaker", "", 404),
        ("GET", "/admin/nothing-here", "", 404),
        ("DELETE", "/admin/breakers", "", 405),
        ("GET", "/admin/audit?limit=0", "", 400),
    ];
    for (method, path, body, status) in cases {
        let (got, answer) = call(&deps, method, path, body).await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        assert!(
            answer["code"].is_string() && answer["request_id"].is_string(),
            "{answer}"
        );
    }
    let (_, audit) = call(&deps, "GET", "/admin/audit", "").await;
    assert_eq!(audit["data"]["entries"], Value::Array(Vec::new()), "nothing was done");
    let (_, breakers) = call(&deps, "GET", "/admin/breakers", "").await;
    assert!(
        breakers["data"]["breakers"]
            .as_array()
            .expect("breakers")
            .iter()
            .all(|b| b["state"] == "closed"),
        "nothing changed"
    );
}

#[tokio::test]
async fn every_admin_action_works_and_is_audited_with_its_caller() {
    let store = memory();
    let deps = admin_deps(store.clone());
    let (status, list) = call(&deps, "GET", "/admin/breakers", "").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"]["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(
        names.contains(&"wechat.message") && names.contains(&"wechat.domain.api.weixin.qq.com"),
        "{names:?}"
    );
    let name = "wechat.message";
    let (status, forced) = call(
        &deps,
        "POST",
        &format!("/admin/breakers/{name}/force"),
        r#"{"state":"forced_open"}"#,
    )
    .await;
    assert_eq!((status, forced["data"]["state"].as_str()), (200, Some("forced_open")));
    let (_, one) = call(&deps, "GET", &format!("/admin/breakers/{name}"), "").await;
    assert_eq!(one["data"]["state"], "forced_open");
    let (status, reset) = call(&deps, "POST", &format!("/admin/breakers/{name}/reset"), "").await;
    assert_eq!((status, reset["data"]["state"].as_str()), (200, Some("closed")));
    let (status, tuned) = call(
        &deps,
        "PUT",
        &format!("/admin/breakers/{name}/thresholds"),
        r#"{"failure_rate_threshold": 37.5, "slow_call_ms": 1500}"#,
    )
    .await;
    assert_eq!(status, 200, "{tuned}");
    let item = store
        .get(&shared::admin::threshold_item(name))
        .await
        .expect("read")
        .expect("the override item");
    assert_eq!(
        item.get("failure_rate_threshold"),
        Some(&shared::store::AttrValue::from("37.5"))
    );
    assert_eq!(item.get("slow_call_ms"), Some(&shared::store::AttrValue::N(1500)));
    assert_eq!(
        call(&deps, "PUT", &format!("/admin/breakers/{name}/pin"), "").await.0,
        200
    );
    let (_, pinned) = call(&deps, "GET", &format!("/admin/breakers/{name}"), "").await;
    assert_eq!(pinned["data"]["pinned"], true);
    assert_eq!(
        call(&deps, "DELETE", &format!("/admin/breakers/{name}/pin"), "")
            .await
            .0,
        200
    );
    let (_, audit) = call(&deps, "GET", "/admin/audit", "").await;
    let entries = audit["data"]["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        ["unpin", "pin", "thresholds", "reset", "force"],
        "newest first"
    );
    let fingerprint = shared::http::caller(&request("GET", "/", "", None), Some(&Secret::new(KEY)));
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == fingerprint.as_str() && e["target"] == name)
    );
    assert!(
        entries
            .iter()
            .all(|e| e["at_ms"].as_i64().is_some_and(|t| t > 1_700_000_000_000))
    );
}

/// Records `n` failed calls on `name` as another instance would.
async fn fail(store: &SharedStore, name: &str, n: usize) {
    let registry = Registry::builder(store.clone(), Arc::new(SystemClock))
        .build()
        .expect("registry");
    let breaker = registry.breaker(name);
    for _ in 0..n {
        let Ok(permit) = breaker.acquire().await else { break };
        let observation = Observation {
            outcome: Outcome::Retryable,
            elapsed: Duration::from_millis(30),
            retry: None,
        };
        let _ = breaker.record(permit, observation).await;
    }
}

#[tokio::test]
async fn the_tuner_lowers_a_failing_breakers_threshold_and_leaves_a_pinned_one_alone() {
    let store = memory();
    let clock: SharedClock = Arc::new(SystemClock);
    let tuner_deps =
        TunerDeps::new(TunerConfig::from_env(&env()).expect("config"), store.clone(), clock).expect("deps");
    let admin = admin_deps(store.clone());
    assert_eq!(call(&admin, "PUT", "/admin/breakers/wechat.token/pin", "").await.0, 200);
    for name in ["wechat.message", "wechat.token"] {
        fail(&store, name, 30).await;
    }
    let mut changed = Vec::new();
    for _ in 0..3 {
        let report = tuner::handle(&tuner_deps).await.expect("run");
        assert_eq!(report.pinned, 1);
        changed.extend(report.changes.into_iter().map(|(name, _)| name));
    }
    assert_eq!(changed, ["wechat.message"], "the pinned breaker was not tuned");
    let item = store
        .get(&shared::admin::threshold_item("wechat.message"))
        .await
        .expect("read")
        .expect("written");
    assert_eq!(
        item.get("failure_rate_threshold"),
        Some(&shared::store::AttrValue::from("45.0"))
    );
    assert!(
        store
            .get(&shared::admin::threshold_item("wechat.token"))
            .await
            .expect("read")
            .is_none()
    );
    let (_, audit) = call(&admin, "GET", "/admin/audit", "").await;
    let tuned: Vec<_> = audit["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["actor"] == "tuner")
        .collect();
    assert_eq!(tuned.len(), 1, "one audit entry per change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_force_reaches_eight_instances_on_dynamodb_within_one_cache_ttl() {
    let clock: SharedClock = Arc::new(SystemClock);
    let Some(store) = wechat_ha_tests::dynamo::fresh_store(clock.clone()).await else {
        return;
    };
    let store: SharedStore = store;
    let deps = admin_deps(store.clone());
    let name = "wechat.message";
    let fleet: Vec<_> = (0..8)
        .map(|_| {
            Registry::builder(store.clone(), clock.clone())
                .build()
                .expect("registry")
                .breaker(name)
        })
        .collect();
    for breaker in &fleet {
        assert!(breaker.acquire().await.is_ok(), "closed at first");
    }
    let mut report = Vec::new();
    for (state, body) in [
        (State::ForcedOpen, r#"{"state":"forced_open"}"#),
        (State::Closed, r#"{"state":"closed"}"#),
    ] {
        let (status, answer) = call(&deps, "POST", &format!("/admin/breakers/{name}/force"), body).await;
        assert_eq!(status, 200, "{answer}");
        let forced = Instant::now();
        // Each instance keeps taking calls, as a busy function does, and notes when it follows.
        let mut seen = vec![None; fleet.len()];
        while seen.iter().any(Option::is_none) && forced.elapsed() < Duration::from_secs(5) {
            for (i, breaker) in fleet.iter().enumerate() {
                if seen[i].is_none() {
                    let _ = breaker.acquire().await;
                    if breaker.state() == state {
                        seen[i] = Some(forced.elapsed());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let slowest = seen.iter().flatten().max().copied();
        eprintln!(
            "force {}: every instance followed within {slowest:?} ({seen:?})",
            state.as_str()
        );
        assert!(seen.iter().all(Option::is_some), "every instance follows: {seen:?}");
        report.push(slowest.expect("times"));
    }
    for slowest in report {
        // The state cache TTL (500 ms) plus one poll interval and a store round trip: within 1 s.
        assert!(slowest <= Duration::from_millis(1_000), "{slowest:?}");
    }
}
