//! The resilient WeChat API client: per-API policies, domain failover, fleet-wide token manager.

pub mod errcode;
pub mod error;
pub mod token;

pub use errcode::{ApiError, ErrcodeClass};
pub use error::WechatError;
