//! Configuration: the only place that reads the environment, and the files it names.
//!
//! Each function reads exactly what it uses, once per cold start ([`CallbackConfig::from_env`],
//! [`SendConfig::from_env`], …), into plain data; a missing or invalid variable fails it with a
//! [`ConfigError`] naming the variable and the broken rule, so a bad deployment fails at start,
//! never in the middle of a request. Every variable and its default is listed in the README.
//! Nothing below this module imports it: the types it fills in belong to the modules that use them.

mod account;
mod auth;
mod env;
mod functions;
mod hook;
mod operations;
mod pay;
mod secret_ref;
mod store;
mod sync;
mod waf;
mod wechat;

pub use account::{AccountParts, AccountSource, CALLBACK_SECRET_VAR, CallbackAccount, SHORT_TOKEN};
pub use auth::{AuthConfig, DEFAULT_AUTHORIZE_URL, WebLoginConfig};
pub use env::{ConfigError, Env};
pub use functions::{
    CallbackConfig, DELIVERY_RECORD_TTL, JssdkConfig, LocalApiConfig, LocalConfig, OutboundConfig, REQUEST_RECORD_TTL,
    SendConfig, TokenRefreshConfig, WorkerConfig, local_worker_threads,
};
pub use hook::{HookConfig, HookVersions};
pub use operations::{AdminConfig, HealthConfig, TunerConfig};
pub use pay::{PayConfig, PaySecrets, PaySecretsSource, split_pems};
pub use secret_ref::SecretRef;
pub use store::{Queue, Store};
pub use sync::{FollowersConfig, SyncConfig};
pub use waf::{CallbackIpConfig, IpSetRef};
pub use wechat::{WechatConfig, client_settings, miniprogram_config};

/// The log filter (`RUST_LOG`, default `info`).
pub fn log_filter(env: &Env) -> String {
    env.optional("RUST_LOG").unwrap_or("info").to_owned()
}

/// `METRICS_NAMESPACE` (default `WechatHa`): the CloudWatch namespace of the functions' metrics.
pub fn metrics_namespace(env: &Env) -> String {
    env.optional("METRICS_NAMESPACE").unwrap_or("WechatHa").to_owned()
}
