//! Permissions proven by test: every function's real AWS calls, recorded by moto while its happy
//! and fault paths run, checked against that function's policy in `template.yaml` as the real SAM
//! translator expands it (`scripts/iam_check.py`) — every call allowed (actions, resources, the
//! `dynamodb:LeadingKeys` partitions), every granted action used.
//!
//! Each function's SDK clients sign with its template logical id as access key id, so the
//! recording says who called; set-up calls use `test` and are ignored. The test has a moto server
//! of its own (`RECORDER_ENDPOINT_URL`, started by `scripts/test.sh`): the recorder must see this
//! test's calls and nothing else. Without it the test skips locally and fails under `CI=true`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::bot::{HandlerError, MessageHandler};
use shared::clock::{SharedClock, SystemClock};
use shared::config::{CallbackConfig, Env, JssdkConfig, SendConfig, TokenRefreshConfig, WorkerConfig};
use shared::delivery::{Job, SendKind};
use shared::deps::{Aws, CallbackDeps, JssdkDeps, SendDeps, TokenRefreshDeps, WorkerDeps};
use shared::protocol::{Message, Reply, url_signature};
use shared::queue::sqs::create_queue_with_dlq;
use shared::routes::{callback, jssdk, send, send_worker, token_refresh};
use shared::store::dynamo::create_table_if_missing;
use shared::store::{AttrValue, Attrs, Condition, Key};
use wechat_ha_tests::wechat::{SECRET, start_mock};
use wechat_ha_tests::*;
use wechat_mock::Fault;

/// The recorder's moto, or `None` (after saying so) when it is not configured.
fn recorder() -> Option<(String, String)> {
    let endpoint = std::env::var("RECORDER_ENDPOINT_URL").ok();
    let python = std::env::var("IAM_CHECK_PYTHON").ok();
    match (endpoint, python) {
        (Some(endpoint), Some(python)) => Some((endpoint, python)),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but RECORDER_ENDPOINT_URL / IAM_CHECK_PYTHON are unset: run through scripts/test.sh"
            );
            eprintln!("skipped: run through scripts/test.sh (a recorder moto and the checker's Python)");
            None
        }
    }
}

/// SDK configuration signing as `function` (the access key id the checker attributes by).
fn sdk_as(function: &str, endpoint: &str) -> SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
    let credentials = Credentials::new(function, "test", None, None, "static");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// What the deployment is made of on the recorder's moto.
struct World {
    endpoint: String,
    table: String,
    queue_url: String,
    queue_name: String,
    dlq_name: String,
    appsecret_arn: String,
    callback_secret_arn: String,
    mock: wechat_mock::MockHandle,
    pay_secret_arn: String,
    pay_queue_url: String,
    pay_queue_name: String,
    pay_mock: wechatpay_mock::PayMockHandle,
    miniprogram_secret_arn: String,
}

impl World {
    async fn create(endpoint: &str) -> World {
        let admin = sdk_as("test", endpoint);
        let suffix = unique();
        let table = format!("perm-{suffix}");
        create_table_if_missing(&aws_sdk_dynamodb::Client::new(&admin), &table)
            .await
            .expect("table");
        let queue_name = format!("perm-send-{suffix}");
        let sqs = aws_sdk_sqs::Client::new(&admin);
        let (queue_url, _) = create_queue_with_dlq(&sqs, &queue_name, 10).await.expect("queues");
        let secrets = aws_sdk_secretsmanager::Client::new(&admin);
        let appsecret_arn = secrets
            .create_secret()
            .name(format!("perm/appsecret-{suffix}"))
            .secret_string(SECRET)
            .send()
            .await
            .expect("AppSecret")
            .arn()
            .unwrap_or_default()
            .to_owned();
        let callback_secret = serde_json::json!({"token": TOKEN, "encoding_aes_key": AES_KEY}).to_string();
        let callback_secret_arn = secrets
            .create_secret()
            .name(format!("perm/callback-{suffix}"))
            .secret_string(callback_secret)
            .send()
            .await
            .expect("callback secret")
            .arn()
            .unwrap_or_default()
            .to_owned();
        // The merchant's keys (the WeChat Pay mock's), without the platform certificate: the
        // first certificate-signed notice downloads it.
        let pay_secret = serde_json::json!({
            "apiv3_key": wechatpay_mock::API_V3_KEY,
            "public_key_id": wechatpay_mock::PUBLIC_KEY_ID,
            "public_key_pem": wechatpay_mock::PUBLIC_KEY_PEM,
            "merchant_private_key_pem": wechatpay_mock::PUBLIC_KEY_SIGNER_PEM,
            "merchant_serial_no": wechatpay_mock::MERCHANT_SERIAL,
        })
        .to_string();
        let pay_secret_arn = secrets
            .create_secret()
            .name(format!("perm/pay-{suffix}"))
            .secret_string(pay_secret)
            .send()
            .await
            .expect("pay secret")
            .arn()
            .unwrap_or_default()
            .to_owned();
        let pay_queue_name = format!("perm-pay-{suffix}");
        let pay_queue_url = sqs
            .create_queue()
            .queue_name(&pay_queue_name)
            .send()
            .await
            .expect("pay events queue")
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        let miniprogram_secret_arn = secrets
            .create_secret()
            .name(format!("perm/miniprogram-{suffix}"))
            .secret_string(wechat_mock::DEFAULT_MINIPROGRAM_SECRET)
            .send()
            .await
            .expect("mini-program secret")
            .arn()
            .unwrap_or_default()
            .to_owned();
        World {
            miniprogram_secret_arn,
            pay_secret_arn,
            pay_queue_url,
            pay_queue_name,
            pay_mock: wechatpay_mock::start().await.expect("the WeChat Pay mock"),
            endpoint: endpoint.to_owned(),
            dlq_name: format!("{queue_name}-dlq"),
            table,
            queue_url,
            queue_name,
            appsecret_arn,
            callback_secret_arn,
            mock: start_mock().await,
        }
    }

    /// The environment the template gives `function` (plus the test's endpoints).
    fn env(&self, function: &str, extra: &[(&str, &str)]) -> Env {
        let mut env = Env::from_pairs([
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("STATE_STORE", "dynamodb"),
            ("DYNAMODB_TABLE", self.table.as_str()),
            ("WECHAT_APPID", APPID),
        ]);
        match function {
            "CallbackFunction" => {
                env.set("WECHAT_CALLBACK_SECRET_ID", self.callback_secret_arn.as_str());
                env.set("WECHAT_ENCRYPT_MODE", "compatible");
                env.set("SEND_QUEUE_URL", self.queue_url.as_str());
            }
            "HealthFunction" => {
                env.set(
                    "HEALTH_SECRET_IDS",
                    format!("{},{}", self.callback_secret_arn, self.appsecret_arn),
                );
            }
            // No secret, no WeChat client: the breakers by name only.
            "AdminFunction" | "BreakerTunerFunction" | "FollowersFunction" => {}
            "AuthFunction" => {
                env.set("OAUTH_REDIRECT_URI", AUTH_REDIRECT_URI);
                env.set("WECHAT_APPSECRET_SECRET_ID", self.appsecret_arn.as_str());
                env.set("MINIPROGRAM_APPID", wechat_mock::DEFAULT_MINIPROGRAM_APPID);
                env.set("MINIPROGRAM_APPSECRET_SECRET_ID", self.miniprogram_secret_arn.as_str());
                env.set(
                    "WECHAT_API_BASE",
                    format!("{},{}", self.mock.base_url("api"), self.mock.base_url("api2")),
                );
                env.set(
                    "OAUTH_AUTHORIZE_URL",
                    format!("{}/connect/oauth2/authorize", self.mock.base_url("api")),
                );
            }
            "PayNotifyFunction" | "PayReconcileFunction" => {
                env.set("PAY_MCHID", wechatpay_mock::MCHID);
                env.set("PAY_SECRET_ID", self.pay_secret_arn.as_str());
                env.set("PAY_EVENTS_QUEUE_URL", self.pay_queue_url.as_str());
                env.set("PAY_API_BASE", self.pay_mock.base_url());
            }
            _ => {
                env.set("WECHAT_APPSECRET_SECRET_ID", self.appsecret_arn.as_str());
                env.set(
                    "WECHAT_API_BASE",
                    format!("{},{}", self.mock.base_url("api"), self.mock.base_url("api2")),
                );
                env.set("SEND_QUEUE_URL", self.queue_url.as_str());
            }
        }
        for (name, value) in extra {
            env.set(name, *value);
        }
        env
    }

    fn aws(&self, function: &str) -> Aws {
        Aws::with_config(sdk_as(function, &self.endpoint))
    }

    /// The table as the test sees it (calls not attributed to any function).
    async fn store_as_test(&self) -> shared::store::SharedStore {
        let clock: SharedClock = Arc::new(SystemClock);
        Aws::with_config(sdk_as("test", &self.endpoint))
            .store(
                &shared::config::Store::Dynamodb {
                    table: self.table.clone(),
                },
                &clock,
            )
            .await
    }

    async fn put_as_test(&self, key: Key, attrs: Attrs) {
        self.store_as_test()
            .await
            .put(&key, attrs, Condition::Always)
            .await
            .expect("test put");
    }

    async fn delete_as_test(&self, key: Key) {
        self.store_as_test()
            .await
            .delete(&key, Condition::Always)
            .await
            .expect("test delete");
    }
}

/// A suffix that makes this run's table, queue and secret names its own.
fn unique() -> String {
    use shared::clock::Clock;
    format!("{}-{}", std::process::id(), SystemClock.now_ms())
}

/// A bot that fails (the claim is released) or overruns (the work is handed to the queue).
#[derive(Debug)]
struct Bot {
    fail: bool,
    delay: Duration,
    calls: AtomicUsize,
}

#[async_trait]
impl MessageHandler for Bot {
    async fn handle(&self, _message: &Message) -> Result<Reply, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.fail {
            return Err(HandlerError("down for the test".into()));
        }
        Ok(Reply::text("late"))
    }
}

/// A plaintext event from `openid`, signed now.
fn fresh_event(openid: &str, event: &str) -> lambda_http::Request {
    use shared::clock::Clock;
    let now = SystemClock.now_secs().to_string();
    let nonce = format!("n{openid}{event}");
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_perm]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event></xml>"
    );
    let query = [
        ("signature", url_signature(TOKEN, &now, &nonce)),
        ("timestamp", now.clone()),
        ("nonce", nonce),
    ];
    let uri = format!(
        "https://api.example/wechat?{}",
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let params: std::collections::HashMap<String, Vec<String>> =
        query.iter().map(|(k, v)| ((*k).to_owned(), vec![v.clone()])).collect();
    lambda_http::RequestExt::with_query_string_parameters(
        http::Request::builder()
            .method("POST")
            .uri(uri)
            .body(lambda_http::Body::Text(body))
            .expect("request"),
        params,
    )
}

/// A plaintext text message signed now (fresh timestamp), with its own MsgId.
fn fresh_text(msg_id: u64) -> lambda_http::Request {
    use shared::clock::Clock;
    text_at(msg_id, SystemClock.now_secs())
}

/// A plaintext text message created and signed at `now_secs`, with its own MsgId.
fn text_at(msg_id: u64, now_secs: i64) -> lambda_http::Request {
    use shared::clock::Clock;
    let now = now_secs.to_string();
    let nonce = format!("n{msg_id}");
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_perm]]></ToUserName><FromUserName><![CDATA[oPerm]]></FromUserName>\
         <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>"
    );
    let query = [
        ("signature", url_signature(TOKEN, &now, &nonce)),
        ("timestamp", now.clone()),
        ("nonce", nonce),
    ];
    let (parts, _) = event_arrived_at("callback-text-post.json", SystemClock.now_ms()).into_parts();
    let request = http::Request::from_parts(parts, lambda_http::Body::Text(body));
    lambda_http::RequestExt::with_query_string_parameters(
        request,
        query
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<std::collections::HashMap<_, _>>(),
    )
}

/// A GET verification signed now.
fn fresh_verify() -> lambda_http::Request {
    use shared::clock::Clock;
    let now = SystemClock.now_secs().to_string();
    let query = [
        ("signature", url_signature(TOKEN, &now, "v1")),
        ("timestamp", now.clone()),
        ("nonce", "v1".to_owned()),
        ("echostr", "perm-echo".to_owned()),
    ];
    lambda_http::RequestExt::with_query_string_parameters(
        event_arrived_at("callback-verify-get.json", SystemClock.now_ms()),
        query
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<std::collections::HashMap<_, _>>(),
    )
}

/// The callback's paths: verify, a message, a duplicate waiting for a live claim, a failing bot
/// (release), an overrunning bot (hand-over to the queue), all from its secret-loaded account.
async fn exercise_callback(world: &World) {
    let function = "CallbackFunction";
    let aws = world.aws(function);
    let config = CallbackConfig::from_env(&world.env(function, &[("CALLBACK_BUDGET_MS", "300")])).expect("config");
    let deps = CallbackDeps::from_config(config.clone(), &aws)
        .await
        .expect("callback deps");
    let verified = callback::handle(&deps, fresh_verify()).await;
    assert_eq!(verified.status(), 200, "{}", body_text(&verified));
    let answered = callback::handle(&deps, fresh_text(1)).await;
    assert_eq!(answered.status(), 200, "{}", body_text(&answered));
    // Another instance holds a live claim: this one waits for its reply (reads), then `success`.
    let mut pending = Attrs::new();
    pending.insert("status".into(), AttrValue::from("pending"));
    pending.insert("owner".into(), AttrValue::from("another-instance"));
    pending.insert("lease_until".into(), AttrValue::N(i64::MAX / 2));
    // One timestamp for the record and the message (a second boundary between them would make
    // them different messages).
    let at = now_secs();
    world
        .put_as_test(Key::new("msg#gh_perm", format!("2:oPerm:{at}")), pending)
        .await;
    assert_eq!(body_text(&callback::handle(&deps, text_at(2, at)).await), "success");
    // A subscribe event updates the follower's item at once.
    let subscribed = callback::handle(&deps, fresh_event("oPermFollower", "subscribe")).await;
    assert_eq!(subscribed.status(), 200, "{}", body_text(&subscribed));
    // The same clients with bots that fail or overrun.
    let loaded = CallbackDeps::load_account(config, &aws).await.expect("account");
    let clock: SharedClock = Arc::new(SystemClock);
    let store = aws.store(&loaded.store, &clock).await;
    let queue = aws.queue(&loaded.queue).await;
    for (msg_id, fail, delay) in [(3, true, Duration::ZERO), (4, false, Duration::from_secs(2))] {
        let bot = Arc::new(Bot {
            fail,
            delay,
            calls: AtomicUsize::new(0),
        });
        let deps = CallbackDeps::new(loaded.clone(), store.clone(), queue.clone(), clock.clone(), bot).expect("deps");
        let response = callback::handle(&deps, fresh_text(msg_id)).await;
        assert_eq!(
            response.status(),
            if fail { 503 } else { 200 },
            "{}",
            body_text(&response)
        );
    }
}

fn now_secs() -> i64 {
    use shared::clock::Clock;
    SystemClock.now_secs()
}

/// The send API's paths: a send with an Idempotency-Key (token fetch, breakers, both ledgers),
/// and one WeChat keeps failing (the delivery claim released, the job queued).
async fn exercise_send(world: &World) {
    let function = "SendFunction";
    let config = SendConfig::from_env(&world.env(function, &[])).expect("config");
    let deps = SendDeps::from_config(config, &world.aws(function))
        .await
        .expect("send deps");
    let sent = send::handle(&deps, event("send-custom-post.json")).await;
    assert_eq!(sent.status(), 200, "{}", body_text(&sent));
    world
        .mock
        .inject(Fault::errcode(-1).on_path("/cgi-bin/message/template/send").times(50));
    let queued = send::handle(&deps, event("send-template-post.json")).await;
    assert_eq!(queued.status(), 202, "{}", body_text(&queued));
}

/// The worker's paths: a delivery, a requeue while the breaker is open, a redelivery backoff.
async fn exercise_worker(world: &World) {
    let function = "SendWorkerFunction";
    let config = WorkerConfig::from_env(&world.env(function, &[])).expect("config");
    let aws = world.aws(function);
    let deps = WorkerDeps::from_config(config, &aws).await.expect("worker deps");
    let job = |id: &str| Job::Send {
        id: id.to_owned(),
        kind: SendKind::Custom,
        payload: serde_json::json!({"touser": "oPerm", "msgtype": "text", "text": {"content": id}}),
    };
    // A real receipt handle for the backoff path: the test receives a message first.
    let admin = aws_sdk_sqs::Client::new(&sdk_as("test", &world.endpoint));
    admin
        .send_message()
        .queue_url(&world.queue_url)
        .message_body(job("w-transient").to_body())
        .send()
        .await
        .expect("enqueue");
    let received = admin
        .receive_message()
        .queue_url(&world.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let receipt = received
        .messages()
        .iter()
        .find_map(|m| m.receipt_handle().map(str::to_owned))
        .expect("a receipt");
    let record = |id: &str, body: String, receipt: &str| {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.receipt_handle = Some(receipt.to_owned());
        message.body = Some(body);
        message
    };
    let batch = |records: Vec<SqsMessage>| {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    };
    let delivered = send_worker::handle(&deps, batch(vec![record("w1", job("w-ok").to_body(), "r1")])).await;
    assert!(delivered.batch_item_failures.is_empty());
    // WeChat busy for good: the claim is released and the message backs off by visibility.
    world
        .mock
        .inject(Fault::errcode(-1).on_path("/cgi-bin/message/custom/send").times(50));
    let backed_off =
        send_worker::handle(&deps, batch(vec![record("w2", job("w-transient").to_body(), &receipt)])).await;
    assert_eq!(backed_off.batch_item_failures.len(), 1);
    world.mock.clear_faults();
    // The send breaker forced open by an operator (the test): a cold instance inherits it, makes
    // no attempt and requeues the job as a new delayed message.
    let registry = shared::resilience::Registry::builder(world.store_as_test().await, Arc::new(SystemClock))
        .build()
        .expect("registry");
    let breaker = registry.breaker("wechat.message");
    breaker
        .force(shared::resilience::State::ForcedOpen)
        .await
        .expect("force open");
    let cold = WorkerDeps::from_config(WorkerConfig::from_env(&world.env(function, &[])).expect("config"), &aws)
        .await
        .expect("worker deps");
    let calls_before = world.mock.calls("/cgi-bin/message/custom/send");
    let requeued = send_worker::handle(&cold, batch(vec![record("w3", job("w-open").to_body(), "r3")])).await;
    assert_eq!(
        world.mock.calls("/cgi-bin/message/custom/send"),
        calls_before,
        "no attempt while open"
    );
    assert!(requeued.batch_item_failures.is_empty(), "requeued, acknowledged");
    breaker.force(shared::resilience::State::Closed).await.expect("close");
}

/// The token functions: a scheduled refresh on a cold fleet, then a JS-SDK signature after the
/// records are gone (it fetches the token and ticket itself).
async fn exercise_tokens(world: &World) {
    let refresh = TokenRefreshDeps::from_config(
        TokenRefreshConfig::from_env(&world.env("TokenRefreshFunction", &[])).expect("config"),
        &world.aws("TokenRefreshFunction"),
    )
    .await
    .expect("refresh deps");
    token_refresh::handle(&refresh).await.expect("refresh");
    for record in ["access_token", "jsapi_ticket"] {
        world.delete_as_test(Key::new(format!("token#{APPID}"), record)).await;
    }
    let jssdk_deps = JssdkDeps::from_config(
        JssdkConfig::from_env(&world.env("JssdkFunction", &[])).expect("config"),
        &world.aws("JssdkFunction"),
    )
    .await
    .expect("jssdk deps");
    let signed = jssdk::handle(&jssdk_deps, event("jssdk-config-get.json")).await;
    assert_eq!(signed.status(), 200, "{}", body_text(&signed));
}

/// `method path` with `body`, as API Gateway delivers it with an IAM identity (the admin routes).
fn iam_request(method: &str, path: &str, body: &str) -> lambda_http::Request {
    let mut json = event_json("send-custom-post.json");
    json["rawPath"] = serde_json::json!(path);
    json["routeKey"] = serde_json::json!(format!("{method} {path}"));
    json["requestContext"]["http"]["method"] = serde_json::json!(method);
    json["requestContext"]["http"]["path"] = serde_json::json!(path);
    json["headers"]
        .as_object_mut()
        .expect("headers")
        .remove("idempotency-key");
    json["body"] = serde_json::json!(body);
    lambda_http::request::from_str(&json.to_string()).expect("request")
}

/// The operators' functions: readiness (store, secrets), every admin action, and tuner runs
/// that change a threshold.
async fn exercise_operations(world: &World) {
    use shared::config::{AdminConfig, HealthConfig, TunerConfig};
    use shared::deps::{AdminDeps, HealthDeps, TunerDeps};
    use shared::routes::{admin, health, tuner};
    let health_deps = HealthDeps::from_config(
        HealthConfig::from_env(&world.env("HealthFunction", &[])).expect("config"),
        &world.aws("HealthFunction"),
    )
    .await
    .expect("health deps");
    let ready = health::handle(&health_deps, iam_request("GET", "/health/ready", "")).await;
    assert_eq!(ready.status(), 200, "{}", body_text(&ready));

    let admin_deps = AdminDeps::from_config(
        AdminConfig::from_env(&world.env("AdminFunction", &[])).expect("config"),
        &world.aws("AdminFunction"),
    )
    .await
    .expect("admin deps");
    let name = "wechat.message";
    for (method, path, body) in [
        ("GET", "/admin/breakers".to_owned(), ""),
        (
            "POST",
            format!("/admin/breakers/{name}/force"),
            r#"{"state":"forced_open"}"#,
        ),
        ("POST", format!("/admin/breakers/{name}/reset"), ""),
        (
            "PUT",
            format!("/admin/breakers/{name}/thresholds"),
            r#"{"minimum_calls": 10}"#,
        ),
        ("PUT", format!("/admin/breakers/{name}/pin"), ""),
        ("DELETE", format!("/admin/breakers/{name}/pin"), ""),
        ("GET", "/admin/audit".to_owned(), ""),
        ("POST", "/admin/sync".to_owned(), ""),
        ("GET", "/admin/sync".to_owned(), ""),
    ] {
        let answer = admin::handle(&admin_deps, iam_request(method, &path, body)).await;
        assert_eq!(answer.status(), 200, "{method} {path}: {}", body_text(&answer));
    }

    // Failures recorded by the fleet (as the test): the tuner lowers the threshold on its third run.
    let registry = shared::resilience::Registry::builder(world.store_as_test().await, Arc::new(SystemClock))
        .build()
        .expect("registry");
    let breaker = registry.breaker(name);
    for _ in 0..30 {
        let Ok(permit) = breaker.acquire().await else { break };
        let observation = shared::resilience::breaker::Observation {
            outcome: shared::resilience::Outcome::Retryable,
            elapsed: Duration::from_millis(20),
            retry: None,
        };
        let _ = breaker.record(permit, observation).await;
    }
    let tuner_deps = TunerDeps::from_config(
        TunerConfig::from_env(&world.env("BreakerTunerFunction", &[])).expect("config"),
        &world.aws("BreakerTunerFunction"),
    )
    .await
    .expect("tuner deps");
    let mut changes = 0;
    for _ in 0..3 {
        changes += tuner::handle(&tuner_deps).await.expect("tuner run").changes.len();
    }
    assert!(changes >= 1, "the tuner changed a threshold");
}

/// The payment functions: a certificate-signed notice (the certificate downloaded under the
/// breaker), its duplicate, and a reconciliation that finds a lost notice's order paid.
async fn exercise_pay(world: &World) {
    use shared::config::PayConfig;
    use shared::deps::PayDeps;
    use shared::routes::{pay_notify, pay_reconcile};
    let notify = PayDeps::from_config(
        PayConfig::from_env(&world.env("PayNotifyFunction", &[])).expect("config"),
        &world.aws("PayNotifyFunction"),
    )
    .await
    .expect("pay-notify deps");
    world.pay_mock.set_order("PERM-ORDER-1", 100, "SUCCESS");
    let (headers, body) = world
        .pay_mock
        .notice("PERM-ORDER-1", wechatpay_mock::SigningKey::Certificate)
        .expect("order");
    for _ in 0..2 {
        let mut request = http::Request::builder()
            .method("POST")
            .uri("https://api.example/pay/notify");
        for (name, value) in &headers {
            request = request.header(*name, value.as_str());
        }
        let request = request.body(lambda_http::Body::Text(body.clone())).expect("request");
        let answer = pay_notify::handle(&notify, request).await;
        assert_eq!(answer.status(), 204, "{}", body_text(&answer));
    }
    // A pending order whose notice is lost: the reconciliation settles it.
    let mut pending = Attrs::new();
    pending.insert("registered_at_ms".into(), AttrValue::N(now_secs() * 1000 - 3_600_000));
    world
        .put_as_test(Key::new("pay#pending", "PERM-ORDER-2"), pending)
        .await;
    world.pay_mock.set_order("PERM-ORDER-2", 200, "SUCCESS");
    let reconcile = PayDeps::from_config(
        PayConfig::from_env(&world.env("PayReconcileFunction", &[])).expect("config"),
        &world.aws("PayReconcileFunction"),
    )
    .await
    .expect("pay-reconcile deps");
    let report = pay_reconcile::handle(&reconcile).await.expect("reconcile");
    assert_eq!(report.settled, ["PERM-ORDER-2"]);
}

/// The pre-traffic hook's AWS call the recorder sees: the callback secret it signs its checks
/// with. (Its Lambda invokes of the new versions and its CodeDeploy report are proven by the
/// template tests: moto's recorder cannot attribute them.)
async fn exercise_hook(world: &World) {
    let source = shared::config::AccountSource::SecretsManager {
        id: world.callback_secret_arn.clone(),
        appid: APPID.to_owned(),
        mode: None,
    };
    let account = shared::deps::load_account(&source, &world.aws("PreTrafficHookFunction"))
        .await
        .expect("the hook loads the callback's secret");
    assert_eq!(account.token.expose(), TOKEN);
}

/// The follower sync: a full pass over the mock's followers (the lease and checkpoint, pages,
/// follower items), then a second one after a follower left (the sweep marks them); and the
/// read API over what it stored.
async fn exercise_sync(world: &World) {
    use shared::config::{FollowersConfig, SyncConfig};
    use shared::deps::{FollowersDeps, SyncDeps};
    use shared::routes::{followers, sync};
    let deps = SyncDeps::from_config(
        SyncConfig::from_env(&world.env("SyncFunction", &[("SYNC_CALLS_PER_MINUTE", "6000")])).expect("config"),
        &world.aws("SyncFunction"),
    )
    .await
    .expect("sync deps");
    let deadline = || Some(shared::deadline::Deadline::after(Duration::from_secs(60)));
    for round in 0..2 {
        let report = sync::handle(&deps, sync::Trigger::Start, deadline()).await;
        assert_eq!(
            report.outcome,
            shared::sync::Outcome::Finished,
            "round {round}: {report:?}"
        );
        world.mock.unsubscribe_follower(&wechat_mock::follower_openid(3));
    }
    let report = sync::handle(&deps, sync::Trigger::Tick, deadline()).await;
    assert_eq!(report.outcome, shared::sync::Outcome::Idle);

    let read = FollowersDeps::from_config(
        FollowersConfig::from_env(&world.env("FollowersFunction", &[])).expect("config"),
        &world.aws("FollowersFunction"),
    )
    .await;
    let one = followers::handle(
        &read,
        iam_request("GET", &format!("/followers/{}", wechat_mock::follower_openid(3)), ""),
    )
    .await;
    assert_eq!(one.status(), 200, "{}", body_text(&one));
    assert_eq!(body_json(&one)["data"]["subscribed"], false, "swept");
    let page = followers::handle(&read, iam_request("GET", "/followers", "")).await;
    assert_eq!(page.status(), 200, "{}", body_text(&page));
}

/// The login function's deployment URL (what the template's `OauthRedirectUri` names).
const AUTH_REDIRECT_URI: &str = "https://login.example.com/oauth/callback";

/// A GET to the login function as API Gateway delivers it.
fn auth_get(uri: &str, cookie: Option<String>) -> lambda_http::Request {
    let (_, query) = uri.split_once('?').unwrap_or((uri, ""));
    let params: std::collections::HashMap<String, Vec<String>> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
        .collect();
    let mut request = http::Request::builder().uri(format!("https://login.example.com{uri}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    lambda_http::RequestExt::with_query_string_parameters(
        request.body(lambda_http::Body::Empty).expect("request"),
        params,
    )
}

/// `/oauth/authorize`: the state and the browser's binding cookie (`name=value`).
async fn start_web_login(deps: &shared::deps::AuthDeps) -> (String, String) {
    let answer = shared::routes::auth::handle(deps, auth_get("/oauth/authorize?return_to=/welcome", None)).await;
    assert_eq!(answer.status(), 302, "{}", body_text(&answer));
    let location = answer.headers()["location"].to_str().expect("location").to_owned();
    let state = location
        .split(['?', '&', '#'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state")
        .to_owned();
    let cookie = answer.headers()["set-cookie"].to_str().expect("cookie");
    let binding = cookie.split(';').next().expect("binding").to_owned();
    (state, binding)
}

/// The login function: a web login (state stored, bound, code exchanged once, session
/// created), a declined one (state read and deleted), `/me`, a mini-program login, its phone
/// number (the mini-program's own access token, under the fleet's token and quota records),
/// logout (session deleted) and a replayed code.
async fn exercise_auth(world: &World) {
    use shared::config::AuthConfig;
    use shared::deps::AuthDeps;
    use shared::routes::auth;
    let deps = AuthDeps::from_config(
        AuthConfig::from_env(&world.env("AuthFunction", &[])).expect("config"),
        &world.aws("AuthFunction"),
    )
    .await
    .expect("auth deps");
    let (state, binding) = start_web_login(&deps).await;
    let code = world.mock.mint_oauth_code(APPID, "perm", "snsapi_userinfo");
    let callback = auth_get(&format!("/oauth/callback?code={code}&state={state}"), Some(binding));
    let answer = auth::handle(&deps, callback).await;
    assert_eq!(answer.status(), 302, "{}", body_text(&answer));
    let session = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-wxha_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_owned();
    let me = auth::handle(&deps, auth_get("/me", Some(session.clone()))).await;
    assert_eq!(me.status(), 200, "{}", body_text(&me));
    let (state, binding) = start_web_login(&deps).await;
    let declined = auth::handle(
        &deps,
        auth_get(&format!("/oauth/callback?state={state}"), Some(binding)),
    )
    .await;
    assert_eq!(declined.status(), 302, "{}", body_text(&declined));

    let post = |path: &str, body: serde_json::Value, bearer: Option<&str>| {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("https://login.example.com{path}"))
            .header("content-type", "application/json");
        if let Some(bearer) = bearer {
            request = request.header("authorization", format!("Bearer {bearer}"));
        }
        request
            .body(lambda_http::Body::Text(body.to_string()))
            .expect("request")
    };
    let code = world
        .mock
        .mint_miniprogram_code(wechat_mock::DEFAULT_MINIPROGRAM_APPID, "perm");
    let login = auth::handle(
        &deps,
        post("/miniprogram/login", serde_json::json!({ "code": code }), None),
    )
    .await;
    assert_eq!(login.status(), 200, "{}", body_text(&login));
    let bearer = body_json(&login)["data"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    let phone_code = world
        .mock
        .mint_phone_code(wechat_mock::DEFAULT_MINIPROGRAM_APPID, "+8613800138000");
    let phone = auth::handle(
        &deps,
        post(
            "/miniprogram/phone",
            serde_json::json!({ "code": phone_code }),
            Some(&bearer),
        ),
    )
    .await;
    assert_eq!(phone.status(), 200, "{}", body_text(&phone));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let replay = auth::handle(
        &deps,
        post("/miniprogram/login", serde_json::json!({ "code": code }), None),
    )
    .await;
    assert_eq!(replay.status(), 400, "{}", body_text(&replay));
    let logout = http::Request::builder()
        .method("POST")
        .uri("https://login.example.com/logout")
        .header("cookie", session)
        .body(lambda_http::Body::Empty)
        .expect("request");
    let logout = auth::handle(&deps, logout).await;
    assert_eq!(logout.status(), 200, "{}", body_text(&logout));
}

async fn recorder_call(endpoint: &str, action: &str) -> String {
    let url = format!("{endpoint}/moto-api/recorder/{action}");
    let client = reqwest::Client::new();
    let response = if action == "download-recording" {
        client.get(url).send().await
    } else {
        client.post(url).send().await
    };
    response.expect("recorder").text().await.expect("recorder body")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the checker over `template`; returns its exit code and report.
fn check(python: &str, template: &Path, recording: &Path, world: &World) -> (i32, String) {
    let output = std::process::Command::new(python)
        .current_dir(repo_root())
        .arg("scripts/iam_check.py")
        .arg("check")
        .arg("--template")
        .arg(template)
        .arg("--recording")
        .arg(recording)
        .args(["--param", &format!("WechatAppSecretArn={}", world.appsecret_arn)])
        .args([
            "--param",
            &format!("WechatCallbackSecretArn={}", world.callback_secret_arn),
        ])
        .args(["--param", &format!("WechatAppId={APPID}")])
        .args(["--map", &format!("StateTable={}", world.table)])
        .args(["--map", &format!("SendQueue={}", world.queue_name)])
        .args(["--map", &format!("SendDeadLetterQueue={}", world.dlq_name)])
        .args(["--map", &format!("PayEventsQueue={}", world.pay_queue_name)])
        .args(["--param", &format!("PaySecretArn={}", world.pay_secret_arn)])
        .args(["--param", &format!("PayMerchantId={}", wechatpay_mock::MCHID)])
        .args(["--param", &format!("OauthRedirectUri={AUTH_REDIRECT_URI}")])
        .args([
            "--param",
            &format!("MiniProgramAppId={}", wechat_mock::DEFAULT_MINIPROGRAM_APPID),
        ])
        .args([
            "--param",
            &format!("MiniProgramSecretArn={}", world.miniprogram_secret_arn),
        ])
        .output()
        .expect("run the checker");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_makes_only_the_calls_its_policy_allows_and_uses_every_grant() {
    let Some((endpoint, python)) = recorder() else { return };
    let world = World::create(&endpoint).await;
    recorder_call(&endpoint, "reset-recording").await;
    recorder_call(&endpoint, "start-recording").await;
    exercise_callback(&world).await;
    exercise_tokens(&world).await;
    exercise_send(&world).await;
    exercise_worker(&world).await;
    exercise_operations(&world).await;
    exercise_pay(&world).await;
    exercise_auth(&world).await;
    exercise_sync(&world).await;
    exercise_hook(&world).await;
    recorder_call(&endpoint, "stop-recording").await;
    let recording = recorder_call(&endpoint, "download-recording").await;
    let dir = std::env::temp_dir().join(format!("wechat-ha-permissions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let recording_file = dir.join("recording.jsonl");
    std::fs::write(&recording_file, &recording).expect("write the recording");

    let template = repo_root().join("template.yaml");
    let (code, report) = check(&python, &template, &recording_file, &world);
    assert_eq!(
        code, 0,
        "template.yaml does not match the calls the functions make:\n{report}"
    );

    // The check has teeth: a deliberately removed permission, a narrowed partition, an unused
    // grant each fail it.
    let original = std::fs::read_to_string(&template).expect("template");
    let broken = [
        (
            "the worker's requeue permission removed",
            original.replace(
                "Action: [sqs:SendMessage, sqs:ChangeMessageVisibility]",
                "Action: [sqs:ChangeMessageVisibility]",
            ),
            "SendWorkerFunction sqs:SendMessage",
        ),
        (
            "the callback's secret permission removed",
            original.replace(
                "Resource: !Ref WechatCallbackSecretArn",
                "Resource: !Ref WechatAppSecretArn",
            ),
            "CallbackFunction secretsmanager:GetSecretValue",
        ),
        (
            "the callback limited to msg# (its replay guard writes sig#)",
            original.replace(
                r#"dynamodb:LeadingKeys: ["msg#*", "sig#*", "follower#*"]"#,
                r#"dynamodb:LeadingKeys: ["msg#*", "follower#*"]"#,
            ),
            "CallbackFunction dynamodb:PutItem",
        ),
        (
            "the login function limited to auth# (its code exchanges write authonce#)",
            original.replace(
                r#"dynamodb:LeadingKeys: ["auth#*", "authonce#*"]"#,
                r#"dynamodb:LeadingKeys: ["auth#*"]"#,
            ),
            "AuthFunction dynamodb:",
        ),
        (
            "a grant the callback never uses",
            original.replace(
                "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem]",
                "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:Scan]",
            ),
            "GRANTED BUT NEVER USED: CallbackFunction dynamodb:Scan",
        ),
    ];
    for (what, text, expected) in broken {
        assert_ne!(text, original, "{what}: the edit must apply");
        let file = dir.join("template-broken.yaml");
        std::fs::write(&file, text).expect("write");
        let (code, report) = check(&python, &file, &recording_file, &world);
        assert_eq!(code, 1, "{what}: the check must fail:\n{report}");
        assert!(report.contains(expected), "{what}: expected {expected:?} in:\n{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
