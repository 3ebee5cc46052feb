//! The resilient WeChat API client: per-API policies, domain failover, fleet-wide token manager.

pub mod errcode;
pub mod error;
pub mod token;

// Interim: the resilience core's `Deadline` until `resilience/mod.rs` exports it.
#[path = "../resilience/deadline.rs"]
#[allow(dead_code, unreachable_pub)]
mod interim_deadline;

pub use errcode::{ApiError, ErrcodeClass};
pub use error::WechatError;
