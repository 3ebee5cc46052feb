//! Each function's dependencies, built once per cold start from its configuration and borrowed
//! by every request of the instance.
//!
//! Lambda keeps an instance alive across invocations, so clients, key rings, the bot and
//! per-instance caches live here, not in handlers. Each function builds only what it uses — the
//! callback never loads an AppSecret or builds a WeChat client — and what it needs is a field,
//! not an `Option` checked per request: a missing piece fails the cold start. State scope: a deps
//! value is per instance; what it points to in the store is per fleet.

mod auth;
mod aws;
mod callback;
mod operations;
mod outbound;
mod pay;
mod sdk_http;
mod sync;
mod tokens;

use crate::bot::RuleError;
use crate::config::ConfigError;
use crate::ledger::LedgerConfigError;
use crate::store::StoreError;
use crate::wechat::ClientBuildError;

pub use auth::{AuthDeps, WebLogin};
pub use aws::{Aws, LOCAL_MAX_RECEIVES};
pub use callback::{CallbackDeps, load_account};
pub use operations::{AdminDeps, HealthDeps, TunerDeps};
pub use outbound::{SendDeps, WorkerDeps, deliveries, request_ledger};
pub use pay::{CERTIFICATE_REFRESH_EVERY, PAY_RECORD_TTL, PayDeps};
pub use sync::{FollowersDeps, SyncDeps};
pub use tokens::{JssdkDeps, TokenRefreshDeps, wechat_client};

/// Why an instance cannot start. Printed once at cold start; names the variable or piece at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configuration variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The reply rules are unusable.
    #[error("REPLY_RULES_FILE: {0}")]
    Rules(#[from] RuleError),
    /// The ledger settings are inconsistent.
    #[error("DEDUP_TTL_SECS / DEDUP_LEASE_MS: {0}")]
    Ledger(#[from] LedgerConfigError),
    /// The state store could not be prepared (local DynamoDB table creation).
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// A secret could not be loaded.
    #[error("{0}")]
    Secret(String),
    /// The WeChat client could not be built.
    #[error("WeChat client: {0}")]
    Client(#[from] ClientBuildError),
}
