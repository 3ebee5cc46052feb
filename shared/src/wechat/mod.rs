//! The resilient WeChat API client: per-API policies, domain failover, fleet-wide token manager.
//!
//! Build one [`WechatClient`] per cold start from [`ClientSettings`]; every call declares its
//! [`api::ApiPolicy`], walks the API domains in order (failover), and authenticates with the
//! fleet's single access token ([`token::TokenManager`]).

pub mod api;
mod client;
pub mod errcode;
pub mod error;
mod failover;
mod guard;
mod messages;
mod quota;
pub mod secret;
pub mod settings;
pub mod token;
mod transport;
mod upstream;

pub use api::{Api, ApiPolicies, ApiPolicy};
pub use client::{ClientBuildError, WechatClient};
pub use errcode::{ApiError, ErrcodeClass};
pub use error::WechatError;
pub use messages::SendReceipt;
pub use secret::{SecretError, SecretSource};
pub use settings::ClientSettings;
pub use token::{TokenConfig, TokenKind, TokenManager, TokenMode, TokenStats};
