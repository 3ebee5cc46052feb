//! Registry tests: naming, shared breakers, deploy-time validation, runtime overrides.

use std::sync::Arc;
use std::time::Duration;

use shared::clock::ManualClock;
use shared::deadline::Deadline;
use shared::resilience::{AttemptError, Outcome, OverrideSet, PolicyConfig, Registry};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::store::{AttrValue, Attrs, Condition, Key};
use testkit::CountingObserver;
use testkit::counting;

fn rig() -> (ManualClock, SharedStore) {
    let clock = ManualClock::new(1_700_000_000_000);
    let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    (clock, store)
}

#[test]
fn policies_over_one_breaker_share_it_and_names_are_cached() {
    let (clock, store) = rig();
    let registry = Registry::builder(store, Arc::new(clock)).build().unwrap();
    let send = registry.policy_for("send", "api.weixin.qq.com");
    let menu = registry.policy_for("menu", "api.weixin.qq.com");
    assert!(Arc::ptr_eq(send.breaker(), menu.breaker()));
    assert!(Arc::ptr_eq(send.bulkhead(), menu.bulkhead()));
    assert!(Arc::ptr_eq(&send, &registry.policy_for("send", "api.weixin.qq.com")));
    assert_eq!(registry.breakers().len(), 1);
}

#[test]
fn configs_and_overrides_are_validated_at_build_naming_policy_and_setting() {
    let (clock, store) = rig();
    let overrides = OverrideSet::from_json(r#"{"send": {"max_attempts": 0}}"#).unwrap();
    let err = Registry::builder(store, Arc::new(clock))
        .overrides(overrides)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "send.max_attempts");
}

#[test]
fn named_config_then_file_then_env_apply_in_order() {
    let (clock, store) = rig();
    let mut send = PolicyConfig::default();
    send.retry = send.retry.to_builder().max_attempts(1).build().unwrap();
    let file = OverrideSet::from_json(r#"{"send": {"max_attempts": 4, "minimum_calls": 7}}"#).unwrap();
    let env = OverrideSet::from_variables([("RESILIENCE__SEND__MAX_ATTEMPTS".to_owned(), "2".to_owned())]).unwrap();
    let registry = Registry::builder(store, Arc::new(clock))
        .config("send", send)
        .overrides(file)
        .overrides(env)
        .build()
        .unwrap();
    let policy = registry.policy("send");
    assert_eq!(policy.retry_config().max_attempts(), 2);
    assert_eq!(policy.breaker().config().minimum_calls(), 7);
    assert_eq!(registry.config_for("other"), PolicyConfig::default());
}

#[tokio::test]
async fn runtime_overrides_from_the_store_apply_within_the_refresh_interval_and_revert() {
    let (clock, store) = rig();
    let (counted, counts) = counting(Arc::clone(&store));
    let observer = Arc::new(CountingObserver::new());
    let registry = Registry::builder(counted, Arc::new(clock.clone()))
        .observer(observer.clone())
        .build()
        .unwrap();
    let policy = registry.policy("send");
    let ok = |_| async { Ok::<_, ()>(1) };
    let deadline = || Deadline::after(Duration::from_secs(1));
    shared::resilience::execute(&policy, deadline(), ok_classifier, ok)
        .await
        .unwrap();
    let mut item = Attrs::new();
    item.insert("max_attempts".into(), AttrValue::N(5));
    item.insert("failure_rate_threshold".into(), AttrValue::N(25));
    store
        .put(&Key::new("config#breaker", "send"), item, Condition::Always)
        .await
        .unwrap();
    shared::resilience::execute(&policy, deadline(), ok_classifier, ok)
        .await
        .unwrap();
    assert_eq!(
        policy.retry_config().max_attempts(),
        3,
        "not re-read before the interval"
    );
    clock.advance(1_000);
    counts.reset();
    shared::resilience::execute(&policy, deadline(), ok_classifier, ok)
        .await
        .unwrap();
    assert_eq!(policy.retry_config().max_attempts(), 5);
    assert_eq!(policy.breaker().config().failure_rate_threshold(), 25.0);
    assert_eq!(counts.ops().queries, 1, "one read of the config partition");
    let mut bad = Attrs::new();
    bad.insert("buckets".into(), AttrValue::N(2));
    store
        .put(&Key::new("config#breaker", "send"), bad, Condition::Always)
        .await
        .unwrap();
    clock.advance(1_000);
    shared::resilience::execute(&policy, deadline(), ok_classifier, ok)
        .await
        .unwrap();
    assert_eq!(policy.retry_config().max_attempts(), 5, "an invalid item is ignored");
    assert!(observer.overrides_rejected() >= 1);
    store
        .delete(&Key::new("config#breaker", "send"), Condition::Always)
        .await
        .unwrap();
    clock.advance(1_000);
    shared::resilience::execute(&policy, deadline(), ok_classifier, ok)
        .await
        .unwrap();
    assert_eq!(
        policy.retry_config().max_attempts(),
        3,
        "back to the deploy-time config"
    );
}

#[tokio::test]
async fn every_registry_counts_events_whatever_its_observer() {
    use shared::resilience::breaker::{BreakerConfig, Observation};
    use shared::resilience::classify::Outcome;
    use shared::resilience::events::TracingObserver;
    use testkit::{FlakyStore, Health};
    let (clock, store) = rig();
    let flaky = Arc::new(FlakyStore::new(store, Duration::ZERO));
    let config = PolicyConfig {
        breaker: BreakerConfig::builder().minimum_calls(1).build().unwrap(),
        ..PolicyConfig::default()
    };
    let registry = Registry::builder(flaky.clone(), Arc::new(clock))
        .observer(Arc::new(TracingObserver))
        .config("domain", config)
        .runtime_overrides(None)
        .build()
        .unwrap();
    let counters = Arc::clone(registry.counters());
    let breaker = registry.breaker("domain");
    flaky.set(Health::Down);
    let permit = breaker
        .acquire()
        .await
        .expect("the store read fails; local state allows");
    let failed = Observation {
        outcome: Outcome::Retryable,
        elapsed: Duration::from_millis(1),
        retry: None,
    };
    breaker.record(permit, failed).await;
    assert!(breaker.acquire().await.is_err(), "tripped on local state");
    let counts = counters.snapshot();
    assert_eq!(
        (
            counts.store_fallbacks,
            counts.local_transitions,
            counts.opened,
            counts.rejected
        ),
        (1, 1, 1, 1),
        "{counts:?}"
    );
}

fn success() -> shared::resilience::breaker::Observation {
    shared::resilience::breaker::Observation {
        outcome: shared::resilience::classify::Outcome::Success,
        elapsed: Duration::from_millis(1),
        retry: None,
    }
}

#[tokio::test]
async fn runtime_overrides_reach_breakers_taken_by_name_within_the_refresh_interval() {
    let (clock, store) = rig();
    let registry = Registry::builder(Arc::clone(&store), Arc::new(clock.clone()))
        .build()
        .unwrap();
    let domain = registry.breaker("wechat.domain.api.weixin.qq.com");
    let permit = domain.acquire().await.unwrap();
    domain.record(permit, success()).await;
    let mut item = Attrs::new();
    item.insert("failure_rate_threshold".into(), AttrValue::S("37.5".into()));
    item.insert("minimum_calls".into(), AttrValue::N(7));
    store
        .put(
            &Key::new("config#breaker", "wechat.domain.api.weixin.qq.com"),
            item,
            Condition::Always,
        )
        .await
        .unwrap();
    clock.advance(1_000);
    let permit = domain.acquire().await.unwrap();
    domain.record(permit, success()).await;
    assert_eq!(domain.config().failure_rate_threshold(), 37.5);
    assert_eq!(domain.config().minimum_calls(), 7);
    store
        .delete(
            &Key::new("config#breaker", "wechat.domain.api.weixin.qq.com"),
            Condition::Always,
        )
        .await
        .unwrap();
    clock.advance(1_000);
    let _ = domain.acquire().await.unwrap();
    assert_eq!(
        domain.config().failure_rate_threshold(),
        50.0,
        "back to the deploy-time config"
    );
}

#[tokio::test]
async fn one_config_read_per_interval_serves_every_policy_and_breaker() {
    let (clock, store) = rig();
    let (counted, counts) = counting(store);
    let registry = Registry::builder(counted, Arc::new(clock.clone())).build().unwrap();
    let policies = [
        registry.policy_for("send", "api"),
        registry.policy_for("menu", "api"),
        registry.policy("token"),
    ];
    let domains = [registry.breaker("domain-a"), registry.breaker("domain-b")];
    let ok = |_| async { Ok::<_, ()>(1) };
    for _ in 0..30 {
        clock.advance(100); // 30 rounds of 100 ms: 3 refresh intervals
        for policy in &policies {
            shared::resilience::execute(policy, Deadline::after(Duration::from_secs(1)), ok_classifier, ok)
                .await
                .unwrap();
        }
        for domain in &domains {
            let permit = domain.acquire().await.unwrap();
            domain.record(permit, success()).await;
        }
    }
    assert_eq!(
        counts.ops().queries,
        3,
        "one query of config#breaker per interval, in total"
    );
}

/// Everything succeeds in these tests.
fn ok_classifier(_: &Result<i32, AttemptError<()>>) -> Outcome {
    Outcome::Success
}
