//! The resilient WeChat API client: per-API policies, domain failover, fleet-wide token manager.
//!
//! Build one [`WechatClient`] per cold start from [`ClientSettings`] and the loaded AppSecret;
//! every call declares its [`Api`], runs under that API's policy ([`policy`]) with the client's
//! classifier ([`classify`], over the one errcode table in [`errcode`]), walks the API domains in
//! order (failover), and authenticates with the fleet's single access token ([`TokenManager`]).

pub mod api;
pub mod classify;
mod client;
mod core;
pub mod daily_quota;
pub mod errcode;
pub mod error;
mod failover;
mod followers;
mod login;
mod messages;
pub mod policy;
pub mod settings;
pub mod token;
mod transport;
mod upstream;

pub use api::{Api, ApiPolicies, ApiPolicy};
pub use client::{ClientBuildError, WechatClient};
pub use daily_quota::{beijing_day, next_daily_reset_ms};
pub use errcode::{Errcode, ErrcodeClass};
pub use error::WechatError;
pub use followers::{FollowerPage, PROFILE_BATCH, Tag};
pub use login::{MiniProgramSession, OauthGrant, PhoneNumber};
pub use messages::SendReceipt;
pub use policy::{breaker_names, domain_breaker_name, policy_name, register};
pub use settings::{ClientSettings, DEFAULT_API_BASES};
pub use token::{TokenConfig, TokenKind, TokenManager, TokenMode, TokenStats, fleet_token_lifetime};
