//! The sample events of the operations functions (admin, health, followers, breaker tuner,
//! follower sync, callback IP refresh, pre-traffic hook) fed to their handlers, or — for the two
//! whose handlers call AWS services moto cannot record for them — parsed as their functions read
//! them.

use std::sync::Arc;
use std::time::Duration;

use shared::clock::{SharedClock, SystemClock};
use shared::config::{AdminConfig, Env, HealthConfig, Store, TunerConfig};
use shared::deadline::Deadline;
use shared::deps::{AdminDeps, FollowersDeps, HealthDeps, SyncDeps, TunerDeps};
use shared::routes::{admin, followers, health, sync, tuner};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::sync::{Outcome, Politeness, Syncer};
use wechat_ha_tests::wechat::{client, start_mock};
use wechat_ha_tests::{APPID, body_json, body_text, event, event_json};

fn memory() -> (SharedStore, SharedClock) {
    let clock: SharedClock = Arc::new(SystemClock);
    (Arc::new(MemoryStore::new(clock.clone())), clock)
}

fn env() -> Env {
    Env::from_pairs([("WECHAT_APPID", APPID), ("WECHAT_APPSECRET", "s")])
}

#[tokio::test]
async fn the_http_samples_of_admin_health_and_followers_are_answered() {
    let (store, clock) = memory();
    let admin_deps = AdminDeps::new(AdminConfig::from_env(&env()).unwrap(), store.clone(), clock.clone()).unwrap();
    let answer = admin::handle(&admin_deps, event("admin-breakers-get.json")).await;
    assert_eq!(answer.status(), 200, "{}", body_text(&answer));
    assert!(
        body_json(&answer)["data"]["breakers"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    );

    let health_config = HealthConfig {
        client: None,
        store: Store::Memory,
        secret_ids: Vec::new(),
        store_timeout: Duration::from_millis(500),
    };
    let health_deps = HealthDeps::new(health_config, store.clone(), clock).unwrap();
    let answer = health::handle(&health_deps, event("health-ready-get.json")).await;
    assert_eq!(answer.status(), 200, "{}", body_text(&answer));

    let read = FollowersDeps {
        store,
        internal_api_key: None,
    };
    let answer = followers::handle(&read, event("followers-list-get.json")).await;
    assert_eq!(answer.status(), 200, "{}", body_text(&answer));
    assert_eq!(body_json(&answer)["data"]["followers"], serde_json::json!([]));
}

#[tokio::test]
async fn the_scheduled_samples_run_the_tuner_and_the_sync() {
    let (store, clock) = memory();
    let tuner_deps = TunerDeps::new(TunerConfig::from_env(&env()).unwrap(), store.clone(), clock.clone()).unwrap();
    let _schedule: aws_lambda_events::event::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_value(event_json("breaker-tuner-scheduled.json")).expect("an EventBridge event");
    tuner::handle(&tuner_deps).await.expect("a tuner run");

    let mock = start_mock().await;
    let (wechat, _registry) = client(&mock, store.clone(), clock.clone());
    let deps = SyncDeps {
        syncer: Syncer {
            client: wechat,
            store,
            clock,
            politeness: Politeness {
                calls_per_minute: 60_000,
                concurrency: 2,
            },
        },
        run_margin: Duration::from_secs(1),
    };
    let deadline = || Some(Deadline::after(Duration::from_secs(30)));
    let tick = sync::Trigger::of(&event_json("sync-tick-scheduled.json"));
    assert_eq!(sync::handle(&deps, tick, deadline()).await.outcome, Outcome::Idle);
    let start = sync::Trigger::of(&event_json("sync-start-scheduled.json"));
    let report = sync::handle(&deps, start, deadline()).await;
    assert_eq!(report.outcome, Outcome::Finished, "{report:?}");
    assert_eq!(report.counts.stored, 150, "the mock's followers");
}

#[test]
fn the_callback_ip_refresh_and_hook_samples_carry_what_their_functions_read() {
    // callback-ip-refresh ignores its payload: any EventBridge schedule event starts a refresh.
    let refresh: aws_lambda_events::event::eventbridge::EventBridgeEvent<serde_json::Value> =
        serde_json::from_value(event_json("callback-ip-refresh-scheduled.json")).expect("an EventBridge event");
    assert_eq!(refresh.detail_type, "Scheduled Event");
    // The hook reads exactly these two fields of CodeDeploy's lifecycle event.
    let lifecycle = event_json("pre-traffic-hook-lifecycle.json");
    for field in ["DeploymentId", "LifecycleEventHookExecutionId"] {
        assert!(lifecycle[field].as_str().is_some_and(|v| !v.is_empty()), "{field}");
    }
}
