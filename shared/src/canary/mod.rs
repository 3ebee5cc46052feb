//! The pre-traffic checks of a release: before CodeDeploy shifts any traffic to new versions,
//! the hook invokes them with requests signed now — a callback URL verification, a text message
//! (encrypted in safe mode), a dry-run send to a test openid, a JS-SDK config — and fails the
//! deployment when an answer is wrong. A wrong token, key, secret or a broken build answers
//! wrongly, and CodeDeploy rolls back before users see it.
//!
//! - [`checks`]: the requests (API Gateway HTTP API events) and what a right answer is;
//! - [`Invoke`]: how a request reaches the version — the Lambda API on AWS (the hook function),
//!   or HTTP to a running server locally ([`HttpInvoker`], `pre-traffic-hook --against URL`).

mod checks;
mod http_invoke;

pub use checks::{Check, CheckResult, Target, run, standard_checks};
pub use http_invoke::HttpInvoker;

use async_trait::async_trait;
use serde_json::Value;

/// Sends one API Gateway (payload 2.0) event to a target and returns its response JSON
/// (`statusCode`, `headers`, `body`).
#[async_trait]
pub trait Invoke: Send + Sync {
    /// The answer of `target` to `event`.
    ///
    /// # Errors
    /// Why no answer came (the invocation failed, the function errored).
    async fn invoke(&self, target: Target, event: &Value) -> Result<Value, String>;

    /// Whether `target` is deployed (a callback-only stack has no send or JS-SDK function).
    fn has(&self, target: Target) -> bool;
}
