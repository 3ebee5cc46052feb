//! The delivery path when it cannot be sure (issue 10): a send whose completion record the store
//! refuses, a send while the ledger is down (per API: queue or send), a send in doubt (held or
//! resent). Memory store behind a switchable fault wrapper, memory queue, the WeChat mock.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::Body;
use shared::bot::RuleHandler;
use shared::clock::SharedClock;
use shared::config::{SendConfig, WorkerConfig};
use shared::delivery::{DeliveryRecord, Job, SendKind};
use shared::deps::{SendDeps, WorkerDeps};
use shared::ledger::Begin;
use shared::queue::memory::MemoryQueue;
use shared::queue::poller::{PollerConfig, poll_once};
use shared::queue::{SharedQueue, WorkQueue};
use shared::routes::{send, send_worker};
use shared::store::SharedStore;
use testkit::{FlakyStore, Health};
use wechat_ha_tests::wechat::{client, start_mock};
use wechat_ha_tests::*;
use wechat_mock::{Fault, MockHandle};

const CUSTOM: &str = "/cgi-bin/message/custom/send";
const ROUND: PollerConfig = PollerConfig {
    batch_size: 10,
    wait: Duration::ZERO,
    visibility: Duration::ZERO,
};

struct World {
    store: Arc<FlakyStore>,
    queue: Arc<MemoryQueue>,
    mock: MockHandle,
    send: SendDeps,
    worker: WorkerDeps,
}

async fn world(extra: &[(&str, &str)]) -> World {
    let (memory, clock) = memory_store();
    let store = Arc::new(FlakyStore::new(memory, Duration::from_secs(30)));
    let shared_store: SharedStore = store.clone();
    let queue = Arc::new(MemoryQueue::new(5));
    let shared_queue: SharedQueue = queue.clone();
    let mock = start_mock().await;
    let shared_clock: SharedClock = Arc::new(clock);
    let (wechat, _) = client(&mock, shared_store.clone(), shared_clock.clone());
    let env = env("compatible", extra);
    World {
        send: SendDeps::new(
            SendConfig::from_env(&env).expect("config"),
            wechat.clone(),
            shared_store.clone(),
            shared_queue.clone(),
            shared_clock.clone(),
        )
        .expect("send deps"),
        worker: WorkerDeps::new(
            WorkerConfig::from_env(&env).expect("config"),
            wechat,
            shared_store,
            shared_queue,
            shared_clock,
            Arc::new(RuleHandler::demo()),
        )
        .expect("worker deps"),
        store,
        queue,
        mock,
    }
}

impl World {
    /// `POST /messages/{kind}` with message `content` and an Idempotency-Key of its own.
    async fn post(&self, kind: SendKind, content: &str) -> (u16, String) {
        let (event, payload) = match kind {
            SendKind::Custom => (
                "send-custom-post.json",
                serde_json::json!({"touser": "oD", "msgtype": "text", "text": {"content": content}}),
            ),
            _ => (
                "send-template-post.json",
                serde_json::json!({"touser": "oD", "template_id": "t1", "data": {"first": {"value": content}}}),
            ),
        };
        let mut request = with_body(event, Body::Text(payload.to_string()));
        request
            .headers_mut()
            .insert("idempotency-key", http::HeaderValue::from_str(content).expect("header"));
        let response = send::handle(&self.send, request).await;
        let status = body_json(&response)["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (response.status().as_u16(), status)
    }

    async fn worker_round(&self) -> usize {
        let queue: SharedQueue = self.queue.clone();
        poll_once(&queue, &ROUND, &|event: SqsEvent| {
            send_worker::handle(&self.worker, event)
        })
        .await
    }

    fn delivered(&self, content: &str) -> usize {
        self.mock
            .messages()
            .iter()
            .filter(|m| m.body["text"]["content"].as_str() == Some(content))
            .count()
    }

    async fn record(&self, id: &str) -> Option<DeliveryRecord> {
        match self
            .send
            .deliveries
            .ledger()
            .begin::<DeliveryRecord>("send", id)
            .await
            .expect("read the record")
        {
            Begin::Completed { result } => Some(result),
            _ => None,
        }
    }
}

#[tokio::test]
async fn a_send_whose_record_the_store_refuses_is_completed_by_the_worker_and_never_sent_twice() {
    let world = world(&[]).await;
    assert_eq!(world.post(SendKind::Custom, "warm").await, (200, "sent".into()));
    let deferred = counter("wechat_delivery_completion_deferred_total");
    // The claim (a put) succeeds, the completion (an update) keeps failing.
    world.store.set(Health::UpdatesDown);
    assert_eq!(
        world.post(SendKind::Custom, "m1").await,
        (200, "sent".into()),
        "sent: WeChat has it"
    );
    assert_eq!(world.delivered("m1"), 1);
    assert!(counter("wechat_delivery_completion_deferred_total") > deferred);
    let handed_over = world.queue.len();
    assert_eq!(handed_over, 1, "the completion waits on the queue");
    // The worker writes it once the store takes updates again; until then it waits its turn.
    world.queue.make_all_visible();
    assert_eq!(world.worker_round().await, 1);
    assert_eq!(world.queue.len(), 1, "store still refusing: the completion is requeued");
    world.store.set(Health::Up);
    world.queue.make_all_visible();
    while world.worker_round().await > 0 {}
    assert_eq!(
        world.record("m1").await,
        Some(DeliveryRecord::Sent { msgid: None }),
        "recorded as sent"
    );
    // A redelivery of the message finds it settled and sends nothing.
    let job = Job::Send {
        id: "m1".into(),
        kind: SendKind::Custom,
        payload: serde_json::json!({"touser": "oD", "msgtype": "text", "text": {"content": "m1"}}),
    };
    world.queue.send(&job.to_body()).await.expect("enqueue");
    while world.worker_round().await > 0 {}
    assert_eq!(world.delivered("m1"), 1, "never sent twice");
}

#[tokio::test]
async fn while_the_ledger_is_down_each_api_queues_or_sends_as_configured() {
    let world = world(&[("SEND_WHEN_LEDGER_DOWN", "custom=send,template=queue")]).await;
    assert_eq!(world.post(SendKind::Custom, "warm").await, (200, "sent".into()));
    let without = counter("wechat_delivery_without_ledger_total");
    world.store.set(Health::Down);
    assert_eq!(
        world.post(SendKind::Custom, "now").await,
        (200, "sent".into()),
        "custom: sent now on instance memory"
    );
    assert_eq!(world.delivered("now"), 1);
    assert!(counter("wechat_delivery_without_ledger_total") > without);
    assert_eq!(
        world.post(SendKind::Template, "later").await,
        (202, "queued".into()),
        "template: queued until the ledger is back"
    );
    // The same custom message again on this instance: its memory keeps it once.
    assert_eq!(world.post(SendKind::Custom, "now").await.0, 200);
    assert_eq!(world.delivered("now"), 1);
}

#[tokio::test]
async fn by_default_a_send_is_queued_while_the_ledger_is_down_and_the_worker_requeues_it_until_the_store_is_back() {
    let world = world(&[]).await;
    assert_eq!(world.post(SendKind::Custom, "warm").await, (200, "sent".into()));
    world.store.set(Health::Down);
    assert_eq!(world.post(SendKind::Custom, "q1").await, (202, "queued".into()));
    assert_eq!(world.worker_round().await, 1);
    assert_eq!(world.delivered("q1"), 0, "nothing sent without the exactly-once guard");
    assert_eq!(
        world.queue.len(),
        1,
        "requeued as a new message, not redelivered with backoff"
    );
    assert!(world.queue.dead_letters().is_empty());
    world.store.set(Health::Up);
    world.queue.make_all_visible();
    while world.worker_round().await > 0 {}
    assert_eq!(world.delivered("q1"), 1);
}

#[tokio::test]
async fn a_send_in_doubt_is_held_by_default_and_resent_when_configured() {
    for (policy, expected_later) in [("hold", 0), ("resend", 1)] {
        // Budgets far below WeChat's delay: every attempt ends without an answer.
        let world = world(&[
            ("DELIVERY_IN_DOUBT", policy),
            ("SEND_BUDGET_MS", "300"),
            ("WORKER_BUDGET_MS", "500"),
        ])
        .await;
        assert_eq!(world.post(SendKind::Custom, "warm").await, (200, "sent".into()));
        let in_doubt = counter("wechat_delivery_in_doubt_total");
        world.mock.inject(Fault::delay_ms(1_000).on_path(CUSTOM).times(2));
        let answer = world.post(SendKind::Custom, "d1").await;
        assert!(
            counter("wechat_delivery_in_doubt_total") > in_doubt,
            "{policy}: counted"
        );
        // Whatever the late call did at WeChat is done after its delay.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let delivered_so_far = world.delivered("d1");
        match policy {
            "hold" => {
                assert_eq!(answer, (202, "in_doubt".into()));
                assert!(
                    matches!(world.record("d1").await, Some(DeliveryRecord::InDoubt { .. })),
                    "marked"
                );
            }
            _ => assert_eq!(answer, (202, "queued".into()), "released and queued to be sent again"),
        }
        for _ in 0..5 {
            world.queue.make_all_visible();
            world.worker_round().await;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(
            world.delivered("d1") - delivered_so_far,
            expected_later,
            "{policy}: sent again later?"
        );
    }
}
