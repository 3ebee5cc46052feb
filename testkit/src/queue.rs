//! A queue that answers late: a slow or black-holed SQS, for the callback's hand-over deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use shared::queue::{QueueError, Received, SharedQueue, WorkQueue};

/// Delays every `send` (tokio time) by a settable amount before passing it through.
#[derive(Debug)]
pub struct SlowQueue {
    inner: SharedQueue,
    send_ms: AtomicU64,
    sent: AtomicU64,
}

impl SlowQueue {
    /// Wraps `inner`, sends delayed by `delay`.
    pub fn new(inner: SharedQueue, delay: Duration) -> Self {
        Self {
            inner,
            send_ms: AtomicU64::new(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            sent: AtomicU64::new(0),
        }
    }

    /// Sends that completed.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl WorkQueue for SlowQueue {
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        tokio::time::sleep(Duration::from_millis(self.send_ms.load(Ordering::SeqCst))).await;
        let id = self.inner.send_delayed(body, delay).await?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        self.inner.receive(max, wait, visibility).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.inner.change_visibility(receipt, timeout).await
    }
}
