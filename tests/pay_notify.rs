//! `POST /pay/notify` and the reconciliation against the WeChat Pay mock: notices signed with the
//! platform certificate and with the public key both accepted by one deployment, every refusal of
//! the list answered as specified with nothing recorded, duplicates and concurrent
//! duplicates processed once, a failing hook retried, an unacceptable notice kept, and a lost
//! notice recovered by the reconciliation — once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use lambda_http::Body;
use serde_json::json;
use shared::clock::{Clock, SharedClock, SystemClock};
use shared::config::{Env, PayConfig, PaySecrets};
use shared::deps::PayDeps;
use shared::pay::crypto::{encrypt_resource, signed_message};
use shared::pay::{HookError, HookOutcome, PayEvent, PaySigner, PaymentHook, PendingOrders};
use shared::routes::{pay_notify, pay_reconcile};
use shared::secret::Secret;
use shared::store::memory::MemoryStore;
use shared::store::{Key, SharedStore};
use wechat_ha_tests::body_json;
use wechatpay_mock::{PayMockHandle, SigningKey};

fn secrets(with_certificate: bool) -> PaySecrets {
    PaySecrets {
        apiv3_key: Secret::new(wechatpay_mock::API_V3_KEY),
        public_key_id: Some(wechatpay_mock::PUBLIC_KEY_ID.to_owned()),
        public_key_pem: Some(wechatpay_mock::PUBLIC_KEY_PEM.to_owned()),
        platform_certificates: if with_certificate {
            vec![wechatpay_mock::PLATFORM_CERT_PEM.to_owned()]
        } else {
            Vec::new()
        },
        merchant_private_key_pem: Some(Secret::new(wechatpay_mock::PUBLIC_KEY_SIGNER_PEM)),
        merchant_serial_no: Some(wechatpay_mock::MERCHANT_SERIAL.to_owned()),
    }
}

/// Counts the hook's runs, and can be slow or fail, around the default recording hook.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn PaymentHook>,
    runs: AtomicUsize,
    delay: Duration,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl PaymentHook for Counting {
    async fn handle(&self, notice_id: Option<&str>, event: &PayEvent) -> Result<HookOutcome, HookError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(HookError("the merchant's system is down".into()));
        }
        self.inner.handle(notice_id, event).await
    }
}

struct World {
    mock: PayMockHandle,
    store: SharedStore,
    deps: PayDeps,
    hook: Arc<Counting>,
}

async fn world(with_certificate: bool, delay: Duration) -> World {
    let mock = wechatpay_mock::start().await.expect("the WeChat Pay mock");
    let clock: SharedClock = Arc::new(SystemClock);
    let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
    let env = Env::from_pairs([
        ("PAY_MCHID", wechatpay_mock::MCHID),
        ("PAY_APIV3_KEY", wechatpay_mock::API_V3_KEY),
    ]);
    let mut config = PayConfig::from_env(&env).expect("config");
    config.api_bases = vec![mock.base_url()];
    let deps = PayDeps::new(config, secrets(with_certificate), store.clone(), None, clock).expect("deps");
    let hook = Arc::new(Counting {
        inner: deps.hook.clone(),
        runs: AtomicUsize::new(0),
        delay,
        failing: std::sync::atomic::AtomicBool::new(false),
    });
    let deps = deps.with_hook(hook.clone());
    World {
        mock,
        store,
        deps,
        hook,
    }
}

fn request(headers: &[(&str, String)], body: &str) -> lambda_http::Request {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("https://api.example/pay/notify")
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::Text(body.to_owned())).expect("request")
}

impl World {
    async fn post(&self, headers: &[(&str, String)], body: &str) -> (u16, serde_json::Value) {
        let response = pay_notify::handle(&self.deps, request(headers, body)).await;
        let status = response.status().as_u16();
        let body = if status == 204 {
            json!(null)
        } else {
            body_json(&response)
        };
        (status, body)
    }

    fn notice(&self, out_trade_no: &str, key: SigningKey) -> (Vec<(&'static str, String)>, String) {
        self.mock.notice(out_trade_no, key).expect("an order")
    }

    async fn order_state(&self, out_trade_no: &str) -> Option<String> {
        self.store
            .get(&Key::new("pay#order", out_trade_no))
            .await
            .expect("read")
            .and_then(|attrs| match attrs.get("trade_state") {
                Some(shared::store::AttrValue::S(state)) => Some(state.to_string()),
                _ => None,
            })
    }

    fn runs(&self) -> usize {
        self.hook.runs.load(Ordering::SeqCst)
    }
}

/// A notice's headers, as (name, value) pairs.
type Headers = Vec<(&'static str, String)>;

fn owned(headers: Headers) -> Headers {
    headers
}

/// A notice built and signed here with the platform key (for the cases the mock would not send).
fn forged(timestamp: i64, body: &str, sign_with: &PaySigner) -> Vec<(&'static str, String)> {
    let nonce = "0123456789abcdef0123456789abcdef".to_owned();
    let signature = sign_with.sign(&signed_message(&timestamp.to_string(), &nonce, body.as_bytes()));
    vec![
        ("wechatpay-serial", wechatpay_mock::CERTIFICATE_SERIAL.to_owned()),
        ("wechatpay-timestamp", timestamp.to_string()),
        ("wechatpay-nonce", nonce),
        ("wechatpay-signature", signature),
        ("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048".to_owned()),
    ]
}

fn platform() -> PaySigner {
    PaySigner::from_pkcs8_pem(wechatpay_mock::PLATFORM_KEY_PEM).expect("key")
}

fn envelope(ciphertext: &str, nonce: &str, aad: &str) -> String {
    json!({"id": "EV-forged", "create_time": "2026-12-01T10:00:00+08:00", "resource_type": "encrypt-resource",
           "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
           "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                        "ciphertext": ciphertext, "associated_data": aad, "nonce": nonce}})
    .to_string()
}

#[tokio::test]
async fn notices_signed_by_the_certificate_and_by_the_public_key_are_both_processed_once() {
    let world = world(true, Duration::ZERO).await;
    world.mock.set_order("ORDER-CERT-1", 100, "SUCCESS");
    world.mock.set_order("ORDER-PUB-1", 200, "SUCCESS");
    let (headers, body) = world.notice("ORDER-CERT-1", SigningKey::Certificate);
    assert_eq!(world.post(&owned(headers), &body).await.0, 204);
    let (headers, body) = world.notice("ORDER-PUB-1", SigningKey::PublicKey);
    assert_eq!(world.post(&owned(headers), &body).await.0, 204);
    assert_eq!(world.order_state("ORDER-CERT-1").await.as_deref(), Some("SUCCESS"));
    assert_eq!(world.order_state("ORDER-PUB-1").await.as_deref(), Some("SUCCESS"));
    assert_eq!(world.runs(), 2);
}

#[tokio::test]
async fn the_same_notice_twice_and_two_notices_of_one_order_run_the_hook_once() {
    let world = world(true, Duration::ZERO).await;
    world.mock.set_order("ORDER-DUP-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-DUP-1", SigningKey::Certificate);
    for _ in 0..2 {
        assert_eq!(world.post(&headers, &body).await.0, 204);
    }
    // WeChat Pay may also notify the same order again under a new notice id.
    let (headers, body) = world.notice("ORDER-DUP-1", SigningKey::PublicKey);
    assert_eq!(world.post(&owned(headers), &body).await.0, 204);
    assert_eq!(world.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_all_answered_204_after_one_processing() {
    let world = Arc::new(world(true, Duration::from_millis(300)).await);
    world.mock.set_order("ORDER-CONC-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-CONC-1", SigningKey::Certificate);
    let answers = futures_util::future::join_all((0..3).map(|_| {
        let (world, headers, body) = (world.clone(), headers.clone(), body.clone());
        async move { world.post(&headers, &body).await.0 }
    }))
    .await;
    assert_eq!(answers, [204, 204, 204]);
    assert_eq!(world.runs(), 1);
}

#[tokio::test]
async fn every_bad_notice_is_refused_with_the_fail_body_and_nothing_is_recorded() {
    let world = world(true, Duration::ZERO).await;
    world.mock.set_order("ORDER-BAD-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-BAD-1", SigningKey::Certificate);
    let now = SystemClock.now_secs();
    let key = platform();
    let with = |name: &str, value: &str| -> Headers {
        headers
            .iter()
            .map(|(n, v)| (*n, if *n == name { value.to_owned() } else { v.clone() }))
            .collect()
    };
    let without = |name: &str| -> Headers { headers.iter().filter(|(n, _)| *n != name).cloned().collect() };
    let mut tampered_body = body.clone();
    tampered_body.insert(1, ' ');
    let plaintext = json!({"mchid": wechatpay_mock::MCHID, "out_trade_no": "ORDER-BAD-1", "trade_state": "SUCCESS", "amount": {"total": 100}}).to_string();
    let key_bytes = wechatpay_mock::API_V3_KEY.as_bytes();
    let sealed = encrypt_resource(key_bytes, "abcdefghijkl", "transaction", plaintext.as_bytes()).expect("encrypt");
    let mut flipped = sealed.clone().into_bytes();
    flipped[4] = if flipped[4] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("base64");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    let cases: Vec<(&str, Headers, String, u16)> = vec![
        (
            "a wrong signature",
            with("wechatpay-signature", &key.sign(b"something else")),
            body.clone(),
            401,
        ),
        ("no signature", without("wechatpay-signature"), body.clone(), 401),
        ("no serial", without("wechatpay-serial"), body.clone(), 401),
        (
            "a signature probe",
            with("wechatpay-signature", "WECHATPAY/SIGNTEST/bm90IGEgc2lnbmF0dXJl"),
            body.clone(),
            401,
        ),
        (
            "an unknown serial",
            with("wechatpay-serial", "0123456789ABCDEF0123"),
            body.clone(),
            401,
        ),
        ("a tampered body", headers.clone(), tampered_body, 401),
        ("a stale timestamp", forged(now - 301, &body, &key), body.clone(), 401),
        ("a future timestamp", forged(now + 301, &body, &key), body.clone(), 401),
        (
            "a signature by another key",
            forged(
                now,
                &body,
                &PaySigner::from_pkcs8_pem(wechatpay_mock::PUBLIC_KEY_SIGNER_PEM).expect("key"),
            ),
            body.clone(),
            401,
        ),
        (
            "non-JSON, signed",
            forged(now, "not json", &key),
            "not json".to_owned(),
            400,
        ),
        (
            "a tampered ciphertext, signed",
            forged(now, &envelope(&flipped, "abcdefghijkl", "transaction"), &key),
            envelope(&flipped, "abcdefghijkl", "transaction"),
            400,
        ),
        (
            "tampered associated data, signed",
            forged(now, &envelope(&sealed, "abcdefghijkl", "refund"), &key),
            envelope(&sealed, "abcdefghijkl", "refund"),
            400,
        ),
        ("an oversized body", headers.clone(), huge, 413),
    ];
    for (what, headers, body, status) in cases {
        let (got, answer) = world.post(&headers, &body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["code"], "FAIL", "{what}: the FAIL body");
        assert!(answer["message"].is_string(), "{what}");
    }
    assert_eq!(world.runs(), 0, "nothing processed");
    assert!(
        world.store.query("payonce#notice").await.expect("query").is_empty(),
        "nothing recorded"
    );
    assert!(world.store.query("payonce#order").await.expect("query").is_empty());
    assert_eq!(world.order_state("ORDER-BAD-1").await, None);
    // The genuine notice still goes through afterwards.
    assert_eq!(world.post(&headers, &body).await.0, 204);
}

#[tokio::test]
async fn a_failing_hook_is_answered_500_records_nothing_and_the_retry_is_processed_once() {
    let world = world(true, Duration::ZERO).await;
    world.mock.set_order("ORDER-RETRY-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-RETRY-1", SigningKey::Certificate);
    world.hook.failing.store(true, Ordering::SeqCst);
    let (status, answer) = world.post(&headers, &body).await;
    assert_eq!((status, answer["code"].as_str()), (500, Some("FAIL")));
    assert_eq!(world.order_state("ORDER-RETRY-1").await, None, "nothing half-recorded");
    world.hook.failing.store(false, Ordering::SeqCst);
    assert_eq!(world.post(&headers, &body).await.0, 204, "WeChat Pay's retry");
    assert_eq!(world.post(&headers, &body).await.0, 204, "and a duplicate of it");
    assert_eq!(world.runs(), 2, "one failed run, one good one");
    assert_eq!(world.order_state("ORDER-RETRY-1").await.as_deref(), Some("SUCCESS"));
}

#[tokio::test]
async fn an_authentic_notice_the_business_refuses_is_kept_and_not_processed() {
    let world = world(true, Duration::ZERO).await;
    let pending = PendingOrders::new(world.store.clone());
    pending
        .register("ORDER-AMOUNT-1", SystemClock.now_ms(), Some(999))
        .await
        .expect("register");
    world.mock.set_order("ORDER-AMOUNT-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-AMOUNT-1", SigningKey::Certificate);
    assert_eq!(
        world.post(&headers, &body).await.0,
        204,
        "received, so WeChat Pay stops"
    );
    assert_eq!(world.order_state("ORDER-AMOUNT-1").await, None, "not marked paid");
    let kept = world
        .store
        .get(&Key::new("pay#unacceptable", "trade:ORDER-AMOUNT-1:SUCCESS"))
        .await
        .expect("read")
        .expect("kept for an operator");
    assert!(matches!(kept.get("reason"), Some(shared::store::AttrValue::S(r)) if r.contains("999")));
}

#[tokio::test]
async fn an_unknown_serial_refreshes_the_certificates_once_and_then_verifies() {
    let world = world(false, Duration::ZERO).await;
    world.mock.set_order("ORDER-REFRESH-1", 100, "SUCCESS");
    let (headers, body) = world.notice("ORDER-REFRESH-1", SigningKey::Certificate);
    assert_eq!(
        world.post(&headers, &body).await.0,
        204,
        "certificate downloaded, notice verified"
    );
    assert!(world.deps.keys.uses_certificates());
}

#[tokio::test]
async fn a_lost_notice_is_recovered_by_the_reconciliation_once() {
    let world = world(true, Duration::ZERO).await;
    let pending = PendingOrders::new(world.store.clone());
    let an_hour_ago = SystemClock.now_ms() - 3_600_000;
    pending
        .register("ORDER-LOST-1", an_hour_ago, Some(100))
        .await
        .expect("register");
    pending
        .register("ORDER-UNPAID-1", an_hour_ago, None)
        .await
        .expect("register");
    pending
        .register("ORDER-NEW-1", SystemClock.now_ms(), None)
        .await
        .expect("register");
    world.mock.set_order("ORDER-LOST-1", 100, "SUCCESS");
    world.mock.set_order("ORDER-UNPAID-1", 50, "NOTPAY");
    // The notice of ORDER-LOST-1 never arrives.
    let report = pay_reconcile::handle(&world.deps).await.expect("run");
    assert_eq!(report.settled, ["ORDER-LOST-1"]);
    assert_eq!(
        (report.looked_up, report.still_pending, report.failed),
        (2, 1, 0),
        "{report:?}"
    );
    assert_eq!(world.order_state("ORDER-LOST-1").await.as_deref(), Some("SUCCESS"));
    assert_eq!(world.runs(), 1);
    // The notice arrives after all: a duplicate.
    let (headers, body) = world.notice("ORDER-LOST-1", SigningKey::Certificate);
    assert_eq!(world.post(&headers, &body).await.0, 204);
    assert_eq!(world.runs(), 1, "never processed twice");
    // The next run no longer looks it up.
    let again = pay_reconcile::handle(&world.deps).await.expect("run");
    assert!(again.settled.is_empty() && again.looked_up == 1, "{again:?}");
    assert_eq!(world.mock.queries(), 3);
}

/// The sample events (`events/pay-*.json`) replayed on a clock at the notice's time.
#[tokio::test]
async fn the_sample_pay_events_are_answered_as_on_lambda() {
    let clock = shared::clock::ManualClock::new(1_624_523_846_000);
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let store: SharedStore = Arc::new(MemoryStore::new(shared_clock.clone()));
    let env = Env::from_pairs([
        ("PAY_MCHID", "1230000109"),
        ("PAY_APIV3_KEY", wechatpay_mock::API_V3_KEY),
    ]);
    let mut config = PayConfig::from_env(&env).expect("config");
    let mock = wechatpay_mock::start().await.expect("mock");
    config.api_bases = vec![mock.base_url()];
    let deps = PayDeps::new(config, secrets(true), store.clone(), None, shared_clock).expect("deps");
    let answer = pay_notify::handle(&deps, wechat_ha_tests::event("pay-notify-post.json")).await;
    assert_eq!(answer.status(), 204);
    assert_eq!(
        pay_notify::handle(&deps, wechat_ha_tests::event("pay-notify-post.json"))
            .await
            .status(),
        204,
        "a retry of the same notice"
    );
    let order = store
        .get(&Key::new("pay#order", "1217752501201407033233368018"))
        .await
        .expect("read");
    assert!(order.is_some(), "recorded");
    // The scheduled event carries nothing the reconciliation reads; its run is the handler's.
    let schedule = wechat_ha_tests::event_json("pay-reconcile-scheduled.json");
    assert_eq!(schedule["detail-type"], "Scheduled Event");
    let report = pay_reconcile::handle(&deps).await.expect("run");
    assert_eq!(report.looked_up, 0, "nothing pending");
}
