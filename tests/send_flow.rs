//! The outbound path end to end: send API, queue, worker, WeChat mock; memory queue and SQS (moto).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use shared::bot::{HandlerError, MessageHandler, RuleHandler};
use shared::clock::SharedClock;
use shared::config::{SendConfig, WorkerConfig};
use shared::delivery::{Job, SendKind};
use shared::deps::{CallbackDeps, SendDeps, WorkerDeps};
use shared::protocol::{Message, Reply};
use shared::queue::memory::MemoryQueue;
use shared::queue::poller::{PollerConfig, poll_once};
use shared::queue::sqs::{SqsQueue, create_queue_with_dlq};
use shared::queue::{QueueError, Received, SharedQueue, WorkQueue};
use shared::resilience::{Registry, State};
use shared::routes::{callback, send, send_worker};
use shared::store::SharedStore;
use wechat_ha_tests::wechat::{client, start_mock};
use wechat_ha_tests::*;
use wechat_mock::MockHandle;

/// Redeliver at once: tests drive the worker round by round.
const ROUNDS: PollerConfig = PollerConfig {
    batch_size: 10,
    wait: Duration::ZERO,
    visibility: Duration::ZERO,
};

/// One deployment: the send API, the worker and the callback on one store, queue and account.
struct Flow {
    send: SendDeps,
    worker: WorkerDeps,
    callback: CallbackDeps,
    queue: SharedQueue,
    mock: MockHandle,
    registry: Registry,
}

async fn flow(queue: SharedQueue, handler: Option<Arc<dyn MessageHandler>>, extra: &[(&str, &str)]) -> Flow {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let (wechat, registry) = client(&mock, store.clone(), shared_clock.clone());
    let env = env("compatible", extra);
    let handler: Arc<dyn MessageHandler> = handler.unwrap_or_else(|| Arc::new(RuleHandler::demo()));
    let send_config = SendConfig::from_env(&env).expect("valid");
    let worker_config = WorkerConfig::from_env(&env).expect("valid");
    let s: SharedStore = store.clone();
    Flow {
        send: SendDeps::new(
            send_config,
            wechat.clone(),
            s.clone(),
            queue.clone(),
            shared_clock.clone(),
        )
        .expect("deps"),
        worker: WorkerDeps::new(
            worker_config,
            wechat,
            s.clone(),
            queue.clone(),
            shared_clock,
            handler.clone(),
        )
        .expect("deps"),
        callback: deps_with_queue(settings("compatible", extra), s, clock, handler, queue.clone()),
        queue,
        mock,
        registry,
    }
}

async fn worker_round(flow: &Flow) -> usize {
    poll_once(&flow.queue, &ROUNDS, &|event: SqsEvent| {
        send_worker::handle(&flow.worker, event)
    })
    .await
}

async fn message_breaker_forced(registry: &Registry, state: State) {
    registry
        .breaker("wechat.message")
        .force(state)
        .await
        .expect("force the breaker");
}

#[tokio::test]
async fn sample_send_events_are_sent_once_each_through_the_mock() {
    let queue = Arc::new(MemoryQueue::new(5));
    let flow = flow(queue.clone(), None, &[]).await;
    for (name, kind) in [
        ("send-custom-post.json", "custom"),
        ("send-template-post.json", "template"),
        ("send-subscribe-post.json", "subscribe"),
    ] {
        let response = send::handle(&flow.send, event(name)).await;
        assert_eq!(response.status(), 200, "{name}: {}", body_text(&response));
        let body = body_json(&response);
        assert_eq!(
            (body["code"].as_str(), body["data"]["status"].as_str()),
            (Some("OK"), Some("sent")),
            "{name}"
        );
        assert!(
            flow.mock.messages().iter().any(|m| m.kind == kind),
            "{name} reached WeChat"
        );
    }
    assert_eq!(flow.mock.messages().len(), 3);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn a_retried_request_with_the_same_idempotency_key_gets_the_first_answer_and_sends_nothing() {
    let flow = flow(Arc::new(MemoryQueue::new(5)), None, &[]).await;
    let first = send::handle(&flow.send, event("send-custom-post.json")).await;
    let second = send::handle(&flow.send, event("send-custom-post.json")).await;
    assert_eq!(first.status(), second.status());
    assert_eq!(body_json(&first)["data"], body_json(&second)["data"]);
    assert_eq!(flow.mock.messages().len(), 1);
}

#[tokio::test]
async fn a_dry_run_validates_and_authenticates_but_sends_and_records_nothing() {
    let queue = Arc::new(MemoryQueue::new(5));
    let flow = flow(queue.clone(), None, &[]).await;
    let mut json = wechat_ha_tests::event_json("send-custom-post.json");
    json["headers"]["x-dry-run"] = serde_json::json!("true");
    let request = lambda_http::request::from_str(&json.to_string()).expect("request");
    let response = send::handle(&flow.send, request).await;
    assert_eq!(response.status(), 200, "{}", body_text(&response));
    assert_eq!(body_json(&response)["data"]["status"], "dry_run");
    assert!(flow.mock.messages().is_empty(), "nothing sent");
    assert!(queue.is_empty(), "nothing queued");
    // The real send with the same Idempotency-Key afterwards is not answered from a record.
    let sent = send::handle(&flow.send, event("send-custom-post.json")).await;
    assert_eq!(body_json(&sent)["data"]["status"], "sent");
    json["headers"]["x-dry-run"] = serde_json::json!("maybe");
    let request = lambda_http::request::from_str(&json.to_string()).expect("request");
    assert_eq!(send::handle(&flow.send, request).await.status(), 400);
}

#[tokio::test]
async fn unauthenticated_and_invalid_requests_are_refused_before_anything_is_sent() {
    let flow = flow(
        Arc::new(MemoryQueue::new(5)),
        None,
        &[("INTERNAL_API_KEY", "local-key")],
    )
    .await;
    // The sample carries an IAM identity, but a configured key is required instead.
    assert_eq!(
        send::handle(&flow.send, event("send-custom-post.json")).await.status(),
        401
    );
    let with_key = |body: &str| {
        let (mut parts, _) = event("send-template-post.json").into_parts();
        parts
            .headers
            .insert("authorization", "Bearer local-key".parse().unwrap());
        http::Request::from_parts(parts, lambda_http::Body::Text(body.to_owned()))
    };
    assert_eq!(send::handle(&flow.send, with_key("not json")).await.status(), 400);
    let missing = send::handle(&flow.send, with_key(r#"{"touser":"o1"}"#)).await;
    assert_eq!(missing.status(), 400);
    assert!(body_json(&missing)["message"].as_str().unwrap().contains("template_id"));
    assert_eq!(
        send::handle(&flow.send, with_key(r#"{"touser":"o1","template_id":"t"}"#))
            .await
            .status(),
        200
    );
    assert_eq!(flow.mock.messages().len(), 1);
}

#[tokio::test]
async fn breaker_open_answers_202_queues_once_and_the_worker_delivers_once_after_recovery() {
    let queue = Arc::new(MemoryQueue::new(5));
    let flow = flow(queue.clone(), None, &[]).await;
    message_breaker_forced(&flow.registry, State::ForcedOpen).await;

    let response = send::handle(&flow.send, event("send-template-post.json")).await;
    assert_eq!(response.status(), 202, "{}", body_text(&response));
    let body = body_json(&response);
    assert_eq!(body["data"]["status"], "queued");
    assert_eq!(queue.len(), 1, "one message on the queue");
    assert!(flow.mock.messages().is_empty(), "nothing reached WeChat while open");

    message_breaker_forced(&flow.registry, State::Closed).await;
    assert_eq!(worker_round(&flow).await, 1);
    assert_eq!(flow.mock.messages().len(), 1, "delivered once");
    assert!(queue.is_empty());
    let sent = &flow.mock.messages()[0];
    assert_eq!(sent.body["template_id"], "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY");
}

#[tokio::test]
async fn waiting_out_an_open_breaker_requeues_the_job_without_using_up_receives() {
    let queue = Arc::new(MemoryQueue::new(2));
    let flow = flow(queue.clone(), None, &[]).await;
    message_breaker_forced(&flow.registry, State::ForcedOpen).await;
    let payload = serde_json::json!({"touser": "o1", "msgtype": "text", "text": {"content": "later"}});
    queue
        .send(
            &Job::Send {
                id: "wait-1".into(),
                kind: SendKind::Custom,
                payload,
            }
            .to_body(),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        worker_round(&flow).await;
    }
    assert_eq!(queue.len(), 1, "the job is still queued, as a fresh delayed copy");
    assert!(queue.dead_letters().is_empty(), "waiting used up no receives");
    assert!(flow.mock.messages().is_empty(), "nothing was attempted while open");
}

/// A queue whose first deletes fail: the worker "crashes" after sending, before acknowledging.
#[derive(Debug)]
struct LostAcks {
    inner: MemoryQueue,
    failing_deletes: AtomicUsize,
}

#[async_trait]
impl WorkQueue for LostAcks {
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        self.inner.send_delayed(body, delay).await
    }
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, wait, visibility).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        if self.failing_deletes.load(Ordering::SeqCst) > 0 {
            self.failing_deletes.fetch_sub(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable("connection reset".into()));
        }
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.inner.change_visibility(receipt, timeout).await
    }
}

#[tokio::test]
async fn a_lost_acknowledgement_after_sending_never_sends_twice() {
    let queue = Arc::new(LostAcks {
        inner: MemoryQueue::new(5),
        failing_deletes: AtomicUsize::new(1),
    });
    let flow = flow(queue.clone(), None, &[]).await;
    let job = Job::Send {
        id: "order-7".into(),
        kind: SendKind::Custom,
        payload: serde_json::json!({"touser": "oUser123", "msgtype": "text", "text": {"content": "hi"}}),
    };
    queue.send(&job.to_body()).await.unwrap();
    assert_eq!(worker_round(&flow).await, 1, "sent, but the ack is lost");
    assert_eq!(queue.inner.len(), 1, "redelivered");
    assert_eq!(worker_round(&flow).await, 1, "the redelivery is acknowledged");
    assert!(queue.inner.is_empty());
    assert_eq!(flow.mock.messages().len(), 1, "no second send");
}

#[tokio::test]
async fn a_poison_message_reaches_the_dlq_after_n_receives_and_its_batch_is_unaffected() {
    let queue = Arc::new(MemoryQueue::new(3));
    let flow = flow(queue.clone(), None, &[]).await;
    queue.send("not a job").await.unwrap();
    let job = Job::Send {
        id: "ok-1".into(),
        kind: SendKind::Custom,
        payload: serde_json::json!({"touser": "o1", "msgtype": "text", "text": {"content": "x"}}),
    };
    queue.send(&job.to_body()).await.unwrap();
    for _ in 0..4 {
        worker_round(&flow).await;
    }
    assert_eq!(
        flow.mock.messages().len(),
        1,
        "the good message of the same batch was delivered once"
    );
    let dead: Vec<String> = queue.dead_letters().into_iter().map(|(_, body)| body).collect();
    assert_eq!(dead, ["not a job"]);
    assert!(queue.is_empty());
}

#[tokio::test]
async fn the_sample_sqs_batch_reports_only_its_poison_record() {
    let flow = flow(Arc::new(MemoryQueue::new(5)), None, &[]).await;
    let batch: SqsEvent = serde_json::from_value(event_json("send-worker-sqs-batch.json")).expect("SQS event");
    let response = send_worker::handle(&flow.worker, batch).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["33333333-3333-4333-8333-333333333333"]);
    assert_eq!(flow.mock.messages().len(), 2);
}

/// A handler slower than the callback budget, counting its runs.
#[derive(Debug, Default)]
struct Slow(AtomicUsize);

#[async_trait]
impl MessageHandler for Slow {
    async fn handle(&self, message: &Message) -> Result<Reply, HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let shared::protocol::MessageKind::Text { content } = &message.kind else {
            return Ok(Reply::Success);
        };
        Ok(Reply::text(format!("slow answer to {content}")))
    }
}

#[tokio::test]
async fn a_slow_handler_is_answered_success_and_its_reply_arrives_through_the_queue() {
    let queue = Arc::new(MemoryQueue::new(5));
    let handler = Arc::new(Slow::default());
    let flow = flow(queue.clone(), Some(handler.clone()), &[("CALLBACK_BUDGET_MS", "100")]).await;
    let started = std::time::Instant::now();
    let response = callback::handle(&flow.callback, event("callback-text-post.json")).await;
    assert!(
        started.elapsed() < Duration::from_millis(280),
        "answered within the budget"
    );
    assert_eq!(body_text(&response), "success");
    assert_eq!(queue.len(), 1, "the work is queued");

    let retry = callback::handle(&flow.callback, event("callback-text-post.json")).await;
    assert_eq!(body_text(&retry), "success");
    assert_eq!(
        handler.0.load(Ordering::SeqCst),
        1,
        "WeChat's retry started nothing new"
    );
    assert_eq!(queue.len(), 1);

    assert_eq!(worker_round(&flow).await, 1);
    let messages = flow.mock.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].kind, "custom");
    assert_eq!(messages[0].body["touser"], "oUser123");
    assert_eq!(messages[0].body["text"]["content"], "slow answer to hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqs_a_queued_send_is_delivered_once_and_poison_reaches_the_dlq() {
    if std::env::var("AWS_ENDPOINT_URL_SQS").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AWS_ENDPOINT_URL_SQS is unset"
        );
        eprintln!("skipped: set AWS_ENDPOINT_URL_SQS (scripts/test.sh starts moto) to run this test");
        return;
    }
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("wechat-ha-send-{}-{}", std::process::id(), rand_suffix());
    let (url, dlq_url) = create_queue_with_dlq(&sqs, &name, 2).await.expect("queues");
    let queue = Arc::new(SqsQueue::new(sqs.clone(), url));
    let flow = flow(queue.clone(), None, &[]).await;

    message_breaker_forced(&flow.registry, State::ForcedOpen).await;
    assert_eq!(
        send::handle(&flow.send, event("send-template-post.json"))
            .await
            .status(),
        202
    );
    queue.send("not a job").await.unwrap();
    message_breaker_forced(&flow.registry, State::Closed).await;

    for _ in 0..4 {
        worker_round(&flow).await;
    }
    assert_eq!(flow.mock.messages().len(), 1, "delivered exactly once");
    let dlq = SqsQueue::new(sqs, dlq_url);
    let dead = dlq
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["not a job"]);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
