//! The bot: what the account answers. A trait users implement ([`MessageHandler`]), plus a
//! rule-based one ([`RuleHandler`]).
//!
//! The callback route calls [`MessageHandler::handle`] once per message (after de-duplication)
//! under a deadline; whatever it returns is the passive reply. Implement the trait for custom
//! logic; [`RuleHandler`] covers keyword replies, a welcome text and a default from a JSON file.

mod rules;

use async_trait::async_trait;

use crate::protocol::{Message, Reply};

pub use rules::{KeywordRule, MatchKind, ReplySpec, RuleError, RuleHandler, Rules};

/// Why the business handler could not answer. The callback releases the message's claim and
/// answers 503, so WeChat's own retry gets a second chance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("business handler failed: {0}")]
pub struct HandlerError(pub String);

/// Produces the passive reply to one inbound message.
///
/// Called at most once per message across the fleet (the idempotency ledger guards it) and
/// under the callback's deadline: work that may take longer belongs on the queue.
#[async_trait]
pub trait MessageHandler: Send + Sync + std::fmt::Debug {
    /// The reply to `message` ([`Reply::Success`] for none).
    async fn handle(&self, message: &Message) -> Result<Reply, HandlerError>;
}

const _: Option<&dyn MessageHandler> = None; // object safety, checked at compile time
