//! wechat-ha shared library: everything the Lambda functions and the local server have in common.
//!
//! A request flows handler → protocol → business handler → resilient client → store:
//! - [`routes`]: one `handle(&Deps, Request)` per Lambda function, mounted by Lambda and by the local server;
//! - [`protocol`]: WeChat signatures, XML messages, passive replies and safe-mode crypto (pure, no I/O);
//! - [`dedup`]: exactly-once processing of callback messages on the state store;
//! - [`resilience`]: retry, retry budget, circuit breaker shared through the store;
//! - [`wechat`]: the WeChat API client and the fleet-wide token manager;
//! - [`store`]: the state store trait with its in-memory and DynamoDB implementations;
//! - [`http`]: the unified `{code, message, data}` response and the one error→status mapping.

pub mod admin;
#[cfg(feature = "mimalloc")]
mod allocator;
pub mod auth;
pub mod bot;
pub mod canary;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod delivery;
pub mod deps;
pub mod error_chain;
pub mod hex_text;
pub mod http;
pub mod ledger;
pub mod pay;
pub mod protocol;
pub mod queue;
pub mod replay;
pub mod resilience;
pub mod routes;
pub mod secret;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod wechat;
