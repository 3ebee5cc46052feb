//! An in-memory queue with SQS semantics: visibility timeouts, receive counts, a dead-letter queue.
//!
//! Bounded: at most [`MemoryQueue::DEFAULT_MAX_MESSAGES`] messages of at most
//! [`MAX_MESSAGE_BYTES`] each (SQS's own limit) and [`MemoryQueue::DEFAULT_MAX_BYTES`] of bodies
//! in all (a send beyond is refused with [`QueueError::Rejected`], as SQS refuses what it cannot
//! take, so the caller answers 503 and the client retries — nothing is silently dropped), and the
//! dead-letter list keeps the newest [`MemoryQueue::DEFAULT_MAX_DEAD_LETTERS`] (the oldest
//! dropped with an error log).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{QueueError, Received, WorkQueue};

#[derive(Debug)]
struct Stored {
    body: String,
    receive_count: u32,
    visible_at: Instant,
    receipt: Option<String>,
}

/// The largest message body SQS accepts (256 KiB), refused here too.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    messages: BTreeMap<u64, Stored>,
    dead_letters: Vec<(String, String)>,
    /// Body bytes of `messages` and `dead_letters` together.
    bytes: usize,
}

/// An in-memory queue. After `max_receive_count` receives a message goes to the dead-letter
/// list on its next receive, as SQS's redrive policy does.
#[derive(Debug)]
pub struct MemoryQueue {
    inner: Mutex<Inner>,
    max_receive_count: u32,
    max_messages: usize,
    max_bytes: usize,
    arrived: Notify,
}

impl MemoryQueue {
    /// Messages the queue holds at most.
    pub const DEFAULT_MAX_MESSAGES: usize = 100_000;
    /// Dead letters kept at most.
    pub const DEFAULT_MAX_DEAD_LETTERS: usize = 10_000;
    /// Body bytes the queue (dead letters included) holds at most.
    pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

    /// An empty queue with a redrive after `max_receive_count` receives (at least 1).
    pub fn new(max_receive_count: u32) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_receive_count: max_receive_count.max(1),
            max_messages: Self::DEFAULT_MAX_MESSAGES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            arrived: Notify::new(),
        }
    }

    /// The same queue holding at most `max_messages` (at least 1).
    pub fn with_max_messages(mut self, max_messages: usize) -> Self {
        self.max_messages = max_messages.max(1);
        self
    }

    /// The same queue holding at most `max_bytes` of bodies (at least one largest message).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(MAX_MESSAGE_BYTES);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every mutation is a single map operation, so a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Messages still in the queue (visible or in flight).
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether the queue holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dead-letter queue's messages as `(message id, body)`.
    pub fn dead_letters(&self) -> Vec<(String, String)> {
        self.lock().dead_letters.clone()
    }

    /// Makes every message visible now, delayed and in-flight ones included (what waiting out the
    /// delays would do): for draining the local queue at once, and for tests that must not sleep.
    pub fn make_all_visible(&self) {
        let now = Instant::now();
        for message in self.lock().messages.values_mut() {
            message.visible_at = message.visible_at.min(now);
        }
    }

    /// Moves every dead letter back to the queue (the documented redrive), returning how many.
    pub fn redrive(&self) -> usize {
        let mut inner = self.lock();
        let letters = std::mem::take(&mut inner.dead_letters);
        let count = letters.len();
        for (_, body) in letters {
            let id = inner.next_id;
            inner.next_id += 1;
            inner.messages.insert(
                id,
                Stored {
                    body,
                    receive_count: 0,
                    visible_at: Instant::now(),
                    receipt: None,
                },
            );
        }
        drop(inner);
        self.arrived.notify_waiters();
        count
    }

    fn take_visible(&self, max: usize, visibility: Duration) -> Vec<Received> {
        let now = Instant::now();
        let mut inner = self.lock();
        let ready: Vec<u64> = inner
            .messages
            .iter()
            .filter(|(_, m)| m.visible_at <= now)
            .map(|(id, _)| *id)
            .take(max)
            .collect();
        let mut out = Vec::new();
        for id in ready {
            let Some(message) = inner.messages.get_mut(&id) else {
                continue;
            };
            if message.receive_count >= self.max_receive_count {
                if let Some(dead) = inner.messages.remove(&id) {
                    if inner.dead_letters.len() >= Self::DEFAULT_MAX_DEAD_LETTERS {
                        let (dropped, body) = inner.dead_letters.remove(0);
                        inner.bytes -= body.len();
                        tracing::error!(message_id = %dropped, "in-memory dead-letter list full; its oldest message dropped");
                    }
                    inner.dead_letters.push((id.to_string(), dead.body));
                }
                continue;
            }
            message.receive_count += 1;
            message.visible_at = now + visibility;
            let receipt = format!("{id}-{}", message.receive_count);
            message.receipt = Some(receipt.clone());
            out.push(Received {
                message_id: id.to_string(),
                receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
        }
        out
    }

    fn find_by_receipt<'a>(inner: &'a mut Inner, receipt: &str) -> Option<(u64, &'a mut Stored)> {
        let id: u64 = receipt.split('-').next()?.parse().ok()?;
        let message = inner.messages.get_mut(&id)?;
        (message.receipt.as_deref() == Some(receipt)).then_some((id, message))
    }
}

#[async_trait]
impl WorkQueue for MemoryQueue {
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let visible_at = Instant::now() + delay.min(super::MAX_DELAY);
        let id = {
            let mut inner = self.lock();
            if body.len() > MAX_MESSAGE_BYTES {
                return Err(QueueError::Rejected(format!(
                    "message of {} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                    body.len()
                )));
            }
            if inner.messages.len() >= self.max_messages || inner.bytes + body.len() > self.max_bytes {
                tracing::error!(
                    max_messages = self.max_messages,
                    max_bytes = self.max_bytes,
                    "in-memory queue full; send refused"
                );
                return Err(QueueError::Rejected(format!(
                    "in-memory queue full ({} messages, {} bytes)",
                    inner.messages.len(),
                    inner.bytes
                )));
            }
            inner.bytes += body.len();
            let id = inner.next_id;
            inner.next_id += 1;
            inner.messages.insert(
                id,
                Stored {
                    body: body.to_owned(),
                    receive_count: 0,
                    visible_at,
                    receipt: None,
                },
            );
            id
        };
        self.arrived.notify_waiters();
        Ok(id.to_string())
    }

    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        let until = Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            let batch = self.take_visible(max.max(1), visibility);
            if !batch.is_empty() || Instant::now() >= until {
                return Ok(batch);
            }
            // Wake on a new message, or re-check soon for messages becoming visible again.
            let recheck = (Instant::now() + Duration::from_millis(20)).min(until);
            let _ = tokio::time::timeout_at(recheck, notified).await;
        }
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let mut inner = self.lock();
        let id = Self::find_by_receipt(&mut inner, receipt)
            .map(|(id, _)| id)
            .ok_or_else(|| QueueError::Rejected(format!("unknown receipt {receipt}")))?;
        if let Some(message) = inner.messages.remove(&id) {
            inner.bytes -= message.body.len();
        }
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        let mut inner = self.lock();
        let (_, message) = Self::find_by_receipt(&mut inner, receipt)
            .ok_or_else(|| QueueError::Rejected(format!("unknown receipt {receipt}")))?;
        message.visible_at = Instant::now() + timeout;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISIBILITY: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_queue_over_its_byte_budget_refuses_and_frees_on_delete() {
        let queue = MemoryQueue::new(5).with_max_bytes(MAX_MESSAGE_BYTES);
        let big = "x".repeat(MAX_MESSAGE_BYTES / 2);
        queue.send_delayed(&big, Duration::ZERO).await.expect("first half");
        queue.send_delayed(&big, Duration::ZERO).await.expect("second half");
        assert!(matches!(
            queue.send_delayed("one more", Duration::ZERO).await,
            Err(QueueError::Rejected(_))
        ));
        let oversized = "x".repeat(MAX_MESSAGE_BYTES + 1);
        assert!(matches!(
            MemoryQueue::new(5).send_delayed(&oversized, Duration::ZERO).await,
            Err(QueueError::Rejected(_))
        ));
        let received = queue
            .receive(1, Duration::ZERO, Duration::from_secs(30))
            .await
            .expect("receive");
        queue.delete(&received[0].receipt).await.expect("delete");
        queue
            .send_delayed("fits again", Duration::ZERO)
            .await
            .expect("room after the delete");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_sends_instead_of_growing() {
        let queue = MemoryQueue::new(5).with_max_messages(2);
        queue.send("a").await.unwrap();
        queue.send("b").await.unwrap();
        assert!(matches!(queue.send("c").await, Err(QueueError::Rejected(_))));
        assert_eq!(queue.len(), 2);
        let received = queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap();
        queue.delete(&received[0].receipt).await.unwrap();
        assert!(queue.send("c").await.is_ok(), "room again once a message is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn received_message_is_hidden_until_its_visibility_ends() {
        let queue = MemoryQueue::new(5);
        queue.send("a").await.unwrap();
        let first = queue.receive(10, Duration::ZERO, VISIBILITY).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(queue.receive(10, Duration::ZERO, VISIBILITY).await.unwrap().is_empty());
        tokio::time::advance(VISIBILITY).await;
        let again = queue.receive(10, Duration::ZERO, VISIBILITY).await.unwrap();
        assert_eq!(again[0].receive_count, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn deleted_message_is_gone_and_an_old_receipt_is_rejected() {
        let queue = MemoryQueue::new(5);
        queue.send("a").await.unwrap();
        let first = queue.receive(1, Duration::ZERO, Duration::ZERO).await.unwrap();
        let second = queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap();
        assert!(queue.delete(&first[0].receipt).await.is_err(), "stale receipt");
        queue.delete(&second[0].receipt).await.unwrap();
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn message_received_too_often_moves_to_the_dead_letter_queue_and_can_be_redriven() {
        let queue = MemoryQueue::new(2);
        queue.send("poison").await.unwrap();
        for _ in 0..2 {
            assert_eq!(queue.receive(1, Duration::ZERO, Duration::ZERO).await.unwrap().len(), 1);
        }
        assert!(
            queue
                .receive(1, Duration::ZERO, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(queue.dead_letters().len(), 1);
        assert_eq!(queue.redrive(), 1);
        assert_eq!(
            queue.receive(1, Duration::ZERO, Duration::ZERO).await.unwrap()[0].body,
            "poison"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn receive_waits_for_a_message_sent_later() {
        let queue = std::sync::Arc::new(MemoryQueue::new(3));
        let sender = queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sender.send("late").await.unwrap();
        });
        let got = queue.receive(1, Duration::from_secs(1), VISIBILITY).await.unwrap();
        assert_eq!(got[0].body, "late");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_message_stays_hidden_until_its_delay_ends() {
        let queue = MemoryQueue::new(5);
        queue.send_delayed("later", Duration::from_secs(20)).await.unwrap();
        assert!(queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap()[0].receive_count,
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn change_visibility_delays_the_next_receive() {
        let queue = MemoryQueue::new(5);
        queue.send("a").await.unwrap();
        let got = queue.receive(1, Duration::ZERO, Duration::ZERO).await.unwrap();
        queue
            .change_visibility(&got[0].receipt, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(queue.receive(1, Duration::ZERO, VISIBILITY).await.unwrap().len(), 1);
    }
}
