//! Configuration: the only place that reads the environment.
//!
//! [`Settings::from_env`] runs once per cold start; a missing or invalid variable fails it with a
//! [`ConfigError`] naming the variable and the broken rule, so a bad deployment fails at start,
//! never in the middle of a request. Every variable and its default is listed in the README.

mod env;
mod secret;
mod settings;

pub use env::{ConfigError, Env};
pub use secret::Secret;
pub use settings::{CallbackSettings, OutboundSettings, Settings, StoreKind, StoreSettings, WechatSettings};
