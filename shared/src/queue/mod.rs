//! The work queue: where the callback and the send API put what cannot finish in time.
//!
//! [`WorkQueue`] models the SQS operations the project uses — send, receive with a visibility
//! timeout, delete, change visibility — with [`sqs::SqsQueue`] for AWS and [`memory::MemoryQueue`]
//! (same semantics: receive counts, visibility, a dead-letter queue after N receives) for local
//! runs. On Lambda, SQS itself drives the worker through the event source mapping; locally,
//! [`poller::run_poller`] plays that role over either implementation.

pub mod memory;
pub mod poller;
pub mod sqs;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// A message as received: its id, the handle to delete it, its body and how often it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The queue's message id.
    pub message_id: String,
    /// The receipt handle of this receive (delete / change visibility with it).
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// Why a queue operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue could not be reached or answered with an error.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The request was rejected (too large, unknown receipt, bad queue URL).
    #[error("queue rejected the request: {0}")]
    Rejected(String),
}

/// A durable queue with SQS semantics.
#[async_trait]
pub trait WorkQueue: Send + Sync + Debug {
    /// Enqueues `body`; returns the message id.
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        self.send_delayed(body, Duration::ZERO).await
    }

    /// Enqueues `body`, invisible for `delay` (SQS allows at most 15 minutes).
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError>;

    /// Receives up to `max` visible messages (waiting up to `wait` for the first), hiding them
    /// for `visibility`. Messages received too often go to the dead-letter queue instead.
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError>;

    /// Deletes a received message (acknowledges it).
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Hides a received message for `timeout` from now (backoff before the next attempt).
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;
}

/// The longest delivery delay SQS accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Receives after which the queue moves a message to the dead-letter queue: the template's
/// `maxReceiveCount` and the in-memory queue's redrive.
pub const MAX_RECEIVES: u32 = 10;

/// A shared queue handle.
pub type SharedQueue = Arc<dyn WorkQueue>;

const _: Option<&dyn WorkQueue> = None; // object safety, checked at compile time
