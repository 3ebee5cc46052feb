//! Dependencies built once per cold start and borrowed by every request of the instance.
//!
//! Lambda keeps an instance alive across invocations, so clients, key rings, the rule set and
//! per-instance caches live here, not in handlers. State scope: the [`Deps`] value is per
//! instance; what it points to in the store is per fleet.

use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{ConfigError, Settings, StoreKind};
use crate::dedup::{DedupConfig, DedupConfigError, IdempotencyLedger};
use crate::handler::{MessageHandler, RuleError, RuleHandler};
use crate::store::dynamo::{DynamoClientConfig, DynamoStore};
use crate::store::memory::MemoryStore;
use crate::store::{SharedStore, StoreError};

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
}

impl Deps {
    /// Reads the environment and builds everything (the Lambda cold start).
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::from_settings(Settings::from_env()?).await
    }

    /// Builds everything from validated settings, with the store the settings name.
    pub async fn from_settings(settings: Settings) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store: SharedStore = match (settings.store.kind, settings.store.table.as_deref()) {
            (StoreKind::Dynamodb, Some(table)) => {
                Arc::new(DynamoStore::from_env(table, clock.clone(), DynamoClientConfig::default()).await)
            }
            _ => Arc::new(MemoryStore::new(clock.clone())),
        };
        let handler = Arc::new(RuleHandler::from_file(settings.callback.rules_file.as_deref())?);
        Self::with_parts(settings, store, clock, handler)
    }

    /// Assembles `Deps` from given parts (tests, the local server, custom business handlers).
    pub fn with_parts(
        settings: Settings,
        store: SharedStore,
        clock: SharedClock,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Self, StartupError> {
        let dedup = DedupConfig::new(settings.callback.dedup_ttl, settings.callback.dedup_lease)?;
        let local_store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        Ok(Self {
            ledger: IdempotencyLedger::new(store.clone(), clock.clone(), dedup.clone()),
            local_ledger: IdempotencyLedger::new(local_store, clock.clone(), dedup),
            settings,
            clock,
            store,
            handler,
        })
    }
}
