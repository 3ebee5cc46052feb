//! The callback's dependencies: the account, the ledger (with its instance-local fallback), the
//! bot and the queue — no WeChat client, no AppSecret.

use std::sync::Arc;
use std::time::Duration;

use super::{Aws, StartupError};
use crate::bot::{MessageHandler, RuleHandler};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{CallbackAccount, CallbackConfig};
use crate::ledger::{Ledger, LedgerConfig};
use crate::queue::SharedQueue;
use crate::store::SharedStore;
use crate::store::memory::MemoryStore;

/// Everything `routes::callback` needs, built once per instance.
#[derive(Debug)]
pub struct CallbackDeps {
    /// Token, AppID, key ring, mode.
    pub account: CallbackAccount,
    /// Wall clock (a `ManualClock` in tests).
    pub clock: SharedClock,
    /// Exactly-once processing of messages on the fleet store; on instance memory only while the
    /// fleet store is out, so an outage still de-duplicates retries that reach this instance.
    pub ledger: Ledger,
    /// The business handler.
    pub bot: Arc<dyn MessageHandler>,
    /// Where a handler that overran WeChat's 5 s hands its work.
    pub queue: SharedQueue,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// The business handler's deadline within WeChat's 5 s.
    pub budget: Duration,
}

impl CallbackDeps {
    /// The cold start: the store and queue `config` names, the built-in bot over its rules.
    ///
    /// # Errors
    /// [`StartupError`] when the ledger settings are inconsistent.
    pub async fn from_config(config: CallbackConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let queue = aws.queue(&config.queue).await;
        let bot = Arc::new(RuleHandler::new(config.rules.clone()));
        Self::new(config, store, queue, clock, bot)
    }

    /// Assembles the deps from given parts (tests, the local server, custom bots).
    ///
    /// # Errors
    /// [`StartupError`] when the ledger settings are inconsistent.
    pub fn new(
        config: CallbackConfig,
        store: SharedStore,
        queue: SharedQueue,
        clock: SharedClock,
        bot: Arc<dyn MessageHandler>,
    ) -> Result<Self, StartupError> {
        let ledger_config = LedgerConfig::new(config.dedup_ttl, config.dedup_lease)?;
        let local_store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        let local = Ledger::new(local_store, clock.clone(), ledger_config.clone());
        Ok(Self {
            ledger: Ledger::new(store, clock.clone(), ledger_config).with_fallback(local),
            account: config.account,
            clock,
            bot,
            queue,
            max_body_bytes: config.max_body_bytes,
            budget: config.budget,
        })
    }
}
