//! The send API's and the worker's dependencies: the WeChat client, the delivery ledger (both
//! must agree on it), the queue; the send API adds the request ledger, the worker the bot.

use std::sync::Arc;
use std::time::Duration;

use super::{Aws, StartupError, wechat_client};
use crate::bot::{MessageHandler, RuleHandler};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{DELIVERY_RECORD_TTL, OutboundConfig, REQUEST_RECORD_TTL, SendConfig, WorkerConfig};
use crate::delivery::Deliveries;
use crate::ledger::{Ledger, LedgerConfig};
use crate::queue::SharedQueue;
use crate::resilience::{Backoff, BackoffKind, Jitter};
use crate::secret::Secret;
use crate::store::SharedStore;
use crate::store::memory::MemoryStore;
use crate::wechat::WechatClient;

/// The delivery ledger: a message id is sent at most once (namespace `out`), with the
/// deployment's delivery policy; `queue` takes the completions the store could not.
///
/// # Errors
/// [`StartupError::Ledger`] for an inconsistent lease.
pub fn deliveries(
    config: &OutboundConfig,
    store: SharedStore,
    queue: SharedQueue,
    clock: SharedClock,
) -> Result<Deliveries, StartupError> {
    let settings = LedgerConfig::new(DELIVERY_RECORD_TTL, config.delivery_lease())?.with_namespace("out")?;
    let local: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
    let with_local_fallback = Ledger::new(store.clone(), clock.clone(), settings.clone()).with_fallback(Ledger::new(
        local,
        clock.clone(),
        settings.clone(),
    ));
    Ok(Deliveries::new(
        Ledger::new(store, clock, settings),
        with_local_fallback,
        config.delivery,
        queue,
    ))
}

/// The request ledger: a send request's `Idempotency-Key` gets one answer (namespace `req`).
///
/// # Errors
/// [`StartupError::Ledger`] for an inconsistent lease.
pub fn request_ledger(config: &OutboundConfig, store: SharedStore, clock: SharedClock) -> Result<Ledger, StartupError> {
    let settings = LedgerConfig::new(REQUEST_RECORD_TTL, config.delivery_lease())?.with_namespace("req")?;
    Ok(Ledger::new(store, clock, settings))
}

/// Everything `routes::send` needs.
#[derive(Debug)]
pub struct SendDeps {
    /// The WeChat client.
    pub client: WechatClient,
    /// Delivery ledger (message ids) and policy.
    pub deliveries: Deliveries,
    /// Request ledger (`Idempotency-Key`s).
    pub requests: Ledger,
    /// Where deferred sends go.
    pub queue: SharedQueue,
    /// Wall clock.
    pub clock: SharedClock,
    /// How long a send tries WeChat before queueing.
    pub send_budget: Duration,
    /// Bearer key of the internal routes (`None`: IAM only).
    pub internal_api_key: Option<Secret>,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
}

impl SendDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] when the AppSecret cannot be loaded or a setting is inconsistent.
    pub async fn from_config(config: SendConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.outbound.store, &clock).await;
        let queue = aws.queue(&config.outbound.queue).await;
        let client = wechat_client(&config.outbound.wechat, store.clone(), clock.clone(), aws).await?;
        Self::new(config, client, store, queue, clock)
    }

    /// Assembles the deps from given parts (tests, the local server).
    ///
    /// # Errors
    /// [`StartupError::Ledger`] for an inconsistent lease.
    pub fn new(
        config: SendConfig,
        client: WechatClient,
        store: SharedStore,
        queue: SharedQueue,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        Ok(Self {
            deliveries: deliveries(&config.outbound, store.clone(), queue.clone(), clock.clone())?,
            requests: request_ledger(&config.outbound, store, clock.clone())?,
            client,
            queue,
            clock,
            send_budget: config.outbound.send_budget,
            internal_api_key: config.internal_api_key,
            max_body_bytes: config.max_body_bytes,
        })
    }
}

/// Everything `routes::send_worker` needs.
#[derive(Debug)]
pub struct WorkerDeps {
    /// The WeChat client.
    pub client: WechatClient,
    /// Delivery ledger (message ids), the same records the send API uses, and policy.
    pub deliveries: Deliveries,
    /// The business handler, for callbacks whose handler overran WeChat's 5 s.
    pub bot: Arc<dyn MessageHandler>,
    /// The queue (requeues of jobs that must wait).
    pub queue: SharedQueue,
    /// Wall clock.
    pub clock: SharedClock,
    /// The deadline per message.
    pub worker_budget: Duration,
    /// Redelivery backoff per receive: exponential, equal jitter.
    pub redelivery: Backoff,
}

impl WorkerDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] when the AppSecret cannot be loaded or a setting is inconsistent.
    pub async fn from_config(config: WorkerConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.outbound.store, &clock).await;
        let queue = aws.queue(&config.outbound.queue).await;
        let client = wechat_client(&config.outbound.wechat, store.clone(), clock.clone(), aws).await?;
        let bot = Arc::new(RuleHandler::new(config.rules.clone()));
        Self::new(config, client, store, queue, clock, bot)
    }

    /// Assembles the deps from given parts (tests, the local server).
    ///
    /// # Errors
    /// [`StartupError::Ledger`] for an inconsistent lease.
    pub fn new(
        config: WorkerConfig,
        client: WechatClient,
        store: SharedStore,
        queue: SharedQueue,
        clock: SharedClock,
        bot: Arc<dyn MessageHandler>,
    ) -> Result<Self, StartupError> {
        Ok(Self {
            deliveries: deliveries(&config.outbound, store, queue.clone(), clock.clone())?,
            client,
            bot,
            queue,
            clock,
            worker_budget: config.outbound.worker_budget,
            redelivery: Backoff::new(
                BackoffKind::Exponential,
                Jitter::Equal,
                config.retry_base,
                config.retry_max,
            ),
        })
    }
}
