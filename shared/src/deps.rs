//! Dependencies built once per cold start and borrowed by every request of the instance.
//!
//! Lambda keeps an instance alive across invocations, so clients, key rings, the rule set and
//! per-instance caches live here, not in handlers. State scope: the [`Deps`] value is per
//! instance; what it points to in the store is per fleet.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{ConfigError, Settings, StoreKind};
use crate::dedup::{DedupConfig, DedupConfigError, IdempotencyLedger};
use crate::handler::{MessageHandler, RuleError, RuleHandler};
use crate::queue::SharedQueue;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::store::dynamo::{DynamoClientConfig, DynamoStore};
use crate::store::memory::MemoryStore;
use crate::store::{SharedStore, StoreError};
use crate::wechat::{ClientBuildError, SecretSource, WechatClient};

/// Why an instance cannot start. Printed once at cold start; names the variable or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The reply rules file is unusable.
    #[error("REPLY_RULES_FILE: {0}")]
    Rules(#[from] RuleError),
    /// The dedup settings are inconsistent.
    #[error("DEDUP_TTL_SECS / DEDUP_LEASE_MS: {0}")]
    Dedup(#[from] DedupConfigError),
    /// The state store could not be prepared (local DynamoDB table creation).
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// The WeChat client could not be built (AppSecret not loadable, HTTP client).
    #[error("WeChat client: {0}")]
    Client(#[from] ClientBuildError),
}

/// Everything a route needs, built once per instance.
#[derive(Debug)]
pub struct Deps {
    /// Validated settings.
    pub settings: Settings,
    /// Wall clock (a `ManualClock` in tests).
    pub clock: SharedClock,
    /// The fleet-wide state store.
    pub store: SharedStore,
    /// Exactly-once processing of callback messages, on the fleet store.
    pub ledger: IdempotencyLedger,
    /// The same ledger on instance memory: used only while the fleet store is unreachable, so a
    /// DynamoDB outage still de-duplicates retries that reach the same instance.
    pub local_ledger: IdempotencyLedger,
    /// The business handler.
    pub handler: Arc<dyn MessageHandler>,
    /// The WeChat API client, when configured.
    pub wechat: Option<WechatClient>,
    /// The work queue: SQS on AWS (`SEND_QUEUE_URL`), in memory locally.
    pub queue: SharedQueue,
    /// Delivery ledger: a message id is sent at most once (namespace `out`).
    pub outbound_ledger: IdempotencyLedger,
    /// Request ledger: a send request's `Idempotency-Key` gets one answer (namespace `req`).
    pub request_ledger: IdempotencyLedger,
}

/// How long delivery records live: longer than SQS keeps a message (4 days in the template).
const OUTBOUND_RECORD_TTL: Duration = Duration::from_secs(5 * 86_400);
/// How long a send request's answer is replayed for its `Idempotency-Key`.
const REQUEST_RECORD_TTL: Duration = Duration::from_secs(86_400);
/// Messages a local queue delivers before its dead-letter queue (SQS: the template's redrive policy).
pub const LOCAL_MAX_RECEIVES: u32 = 10;

impl Deps {
    /// Reads the environment and builds everything (the Lambda cold start).
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::from_settings(Settings::from_env()?).await
    }

    /// Builds everything from validated settings, with the store the settings name.
    pub async fn from_settings(settings: Settings) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        // The SDK configuration is the expensive part (credential chain, region): load it once per
        // cold start, and only when an AWS service is used; its clients are cheap.
        let needs_aws = settings.store.kind == StoreKind::Dynamodb
            || settings.outbound.queue_url.is_some()
            || settings
                .client
                .as_ref()
                .is_some_and(|c| matches!(c.secret, SecretSource::SecretsManager(_)));
        let sdk = match needs_aws {
            true => Some(aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await),
            false => None,
        };
        let store: SharedStore = match (settings.store.kind, settings.store.table.as_deref(), &sdk) {
            (StoreKind::Dynamodb, Some(table), Some(sdk)) => Arc::new(DynamoStore::new(
                DynamoClientConfig::default().client(sdk),
                table,
                clock.clone(),
            )),
            _ => Arc::new(MemoryStore::new(clock.clone())),
        };
        let handler = Arc::new(RuleHandler::from_file(settings.callback.rules_file.as_deref())?);
        let wechat = match &settings.client {
            Some(client) => {
                let secret = match &sdk {
                    Some(sdk) => client.secret.load_with(sdk).await,
                    None => client.secret.load().await,
                }
                .map_err(ClientBuildError::from)?;
                Some(WechatClient::new(client, secret, store.clone(), clock.clone())?)
            }
            None => None,
        };
        let queue: SharedQueue = match (&settings.outbound.queue_url, &sdk) {
            (Some(url), Some(sdk)) => Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url.clone())),
            _ => {
                if settings.on_lambda {
                    tracing::warn!("SEND_QUEUE_URL is unset on Lambda: deferred work stays in this instance's memory");
                }
                Arc::new(MemoryQueue::new(LOCAL_MAX_RECEIVES))
            }
        };
        Ok(Self::with_parts(settings, store, clock, handler)?
            .with_wechat(wechat)
            .with_queue(queue))
    }

    /// Assembles `Deps` from given parts (tests, the local server, custom business handlers).
    pub fn with_parts(
        settings: Settings,
        store: SharedStore,
        clock: SharedClock,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Self, StartupError> {
        let dedup = DedupConfig::new(settings.callback.dedup_ttl, settings.callback.dedup_lease)?;
        // A delivery claim must outlive the longest send, or a redelivery could take over mid-send.
        let send_lease = settings.outbound.send_budget.max(settings.outbound.worker_budget) + Duration::from_secs(5);
        let outbound = DedupConfig::new(OUTBOUND_RECORD_TTL, send_lease)?.with_namespace("out")?;
        let requests = DedupConfig::new(REQUEST_RECORD_TTL, send_lease)?.with_namespace("req")?;
        let local_store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        Ok(Self {
            ledger: IdempotencyLedger::new(store.clone(), clock.clone(), dedup.clone()),
            local_ledger: IdempotencyLedger::new(local_store, clock.clone(), dedup),
            outbound_ledger: IdempotencyLedger::new(store.clone(), clock.clone(), outbound),
            request_ledger: IdempotencyLedger::new(store.clone(), clock.clone(), requests),
            wechat: None,
            queue: Arc::new(MemoryQueue::new(LOCAL_MAX_RECEIVES)),
            settings,
            clock,
            store,
            handler,
        })
    }

    /// Uses `client` for WeChat API calls.
    pub fn with_wechat(mut self, client: Option<WechatClient>) -> Self {
        self.wechat = client;
        self
    }

    /// Uses `queue` for deferred work.
    pub fn with_queue(mut self, queue: SharedQueue) -> Self {
        self.queue = queue;
        self
    }
}
