//! The callback's dependencies: the account, the ledger (with its instance-local fallback), the
//! bot and the queue — no WeChat client, no AppSecret.

use std::sync::Arc;
use std::time::Duration;

use super::{Aws, StartupError};
use crate::bot::{MessageHandler, RuleHandler};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AccountParts, AccountSource, CALLBACK_SECRET_VAR, CallbackAccount, CallbackConfig, ConfigError};
use crate::ledger::{Ledger, LedgerConfig};
use crate::queue::SharedQueue;
use crate::replay::ReplayGuard;
use crate::store::SharedStore;
use crate::store::memory::MemoryStore;
use crate::telemetry::handles::CallbackMetrics;

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
    /// Plaintext requests: one signed query, one body.
    pub replay: ReplayGuard,
    /// The business handler.
    pub bot: Arc<dyn MessageHandler>,
    /// Where a handler that overran WeChat's 5 s hands its work.
    pub queue: SharedQueue,
    /// The fleet's table (follower items from subscribe / unsubscribe events).
    pub store: SharedStore,
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// The business handler's deadline, counted from the request's arrival.
    pub budget: Duration,
    /// The freshness window of `timestamp`, either way.
    pub max_skew_secs: u32,
    /// Every request's outcome and latency, through handles kept from the first request.
    pub metrics: CallbackMetrics,
}

impl CallbackDeps {
    /// The cold start: the account's secrets (loaded once, when they come from Secrets
    /// Manager), the store and queue `config` names, the built-in bot over its rules.
    ///
    /// # Errors
    /// [`StartupError`] when a secret cannot be loaded or a setting is inconsistent.
    pub async fn from_config(config: CallbackConfig, aws: &Aws) -> Result<Self, StartupError> {
        let config = Self::load_account(config, aws).await?;
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let queue = aws.queue(&config.queue).await;
        let bot = Arc::new(RuleHandler::new(config.rules.clone()));
        Self::new(config, store, queue, clock, bot)
    }

    /// `config` with the account's secrets loaded (once, from Secrets Manager, when they come
    /// from there), ready for [`CallbackDeps::new`].
    ///
    /// # Errors
    /// [`StartupError`] when the secret cannot be loaded or its values are invalid.
    pub async fn load_account(mut config: CallbackConfig, aws: &Aws) -> Result<CallbackConfig, StartupError> {
        config.account = AccountSource::Ready(load_account(&config.account, aws).await?);
        Ok(config)
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
        let AccountSource::Ready(account) = config.account else {
            return Err(
                ConfigError::new(CALLBACK_SECRET_VAR, "must be loaded first (CallbackDeps::from_config)").into(),
            );
        };
        let ledger_config = LedgerConfig::new(config.dedup_ttl, config.dedup_lease)?;
        let local_store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
        let local = Ledger::new(local_store, clock.clone(), ledger_config.clone());
        let window = Duration::from_secs(u64::from(config.max_skew_secs));
        Ok(Self {
            replay: ReplayGuard::new(store.clone(), clock.clone(), window, ledger_config.store_timeout()),
            ledger: Ledger::new(store.clone(), clock.clone(), ledger_config).with_fallback(local),
            store,
            account,
            clock,
            bot,
            queue,
            max_body_bytes: config.max_body_bytes,
            budget: config.budget,
            max_skew_secs: config.max_skew_secs,
            metrics: CallbackMetrics::default(),
        })
    }
}

/// The account, its secrets loaded from Secrets Manager when they come from there (the
/// callback's cold start; the pre-traffic hook, which signs its checks with them).
///
/// # Errors
/// [`StartupError`] when the secret cannot be loaded or its values are invalid.
pub async fn load_account(source: &AccountSource, aws: &Aws) -> Result<CallbackAccount, StartupError> {
    let (id, appid, mode) = match source {
        AccountSource::Ready(account) => return Ok(account.clone()),
        AccountSource::SecretsManager { id, appid, mode } => (id, appid, *mode),
    };
    let raw = aws.secret_string(id).await?;
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.expose()).map_err(|_| {
        StartupError::Secret(format!(
            "secret {id}: expected a JSON object with token, encoding_aes_key"
        ))
    })?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let token = text("token").ok_or_else(|| StartupError::Secret(format!("secret {id}: field token is missing")))?;
    let parts = AccountParts {
        token,
        appid,
        key: text("encoding_aes_key"),
        previous: text("encoding_aes_key_previous"),
        mode,
    };
    Ok(CallbackAccount::from_parts(parts, Some(CALLBACK_SECRET_VAR))?)
}
