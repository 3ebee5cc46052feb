//! The local stand-in for Lambda's SQS event source mapping: receive a batch, hand it to the
//! worker as an [`SqsEvent`], delete what succeeded, leave the reported failures for redelivery.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use super::{Received, SharedQueue};

/// How the poller receives.
#[derive(Debug, Clone, Copy)]
pub struct PollerConfig {
    /// Messages per batch (SQS: at most 10).
    pub batch_size: usize,
    /// Long-poll wait per receive.
    pub wait: Duration,
    /// Visibility timeout of received messages (the queue's in the template).
    pub visibility: Duration,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            wait: Duration::from_secs(1),
            visibility: Duration::from_secs(60),
        }
    }
}

/// The event Lambda would deliver for `messages`.
pub fn to_event(messages: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = Some(m.message_id.clone());
            record.receipt_handle = Some(m.receipt.clone());
            record.body = Some(m.body.clone());
            record.attributes = HashMap::from([("ApproximateReceiveCount".to_owned(), m.receive_count.to_string())]);
            record.event_source = Some("aws:sqs".to_owned());
            record
        })
        .collect();
    event
}

/// One receive → handle → delete round; returns how many messages were received.
pub async fn poll_once<F, Fut>(queue: &SharedQueue, config: &PollerConfig, handler: &F) -> usize
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let messages = match queue.receive(config.batch_size, config.wait, config.visibility).await {
        Ok(messages) => messages,
        Err(error) => {
            tracing::warn!(reason = %error, "queue receive failed; retrying");
            tokio::time::sleep(config.wait).await;
            return 0;
        }
    };
    if messages.is_empty() {
        return 0;
    }
    let response = handler(to_event(&messages)).await;
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for message in messages.iter().filter(|m| !failed.contains(m.message_id.as_str())) {
        if let Err(error) = queue.delete(&message.receipt).await {
            tracing::warn!(message_id = %message.message_id, reason = %error, "delete failed; the message will be redelivered");
        }
    }
    messages.len()
}

/// Polls forever (run it in a task; abort the task to stop).
pub async fn run_poller<F, Fut>(queue: SharedQueue, config: PollerConfig, handler: F)
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    loop {
        poll_once(&queue, &config, &handler).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::WorkQueue;
    use crate::queue::memory::MemoryQueue;
    use aws_lambda_events::event::sqs::BatchItemFailure;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn successes_are_deleted_and_reported_failures_stay_queued() {
        let memory = Arc::new(MemoryQueue::new(5));
        memory.send("ok").await.unwrap();
        memory.send("fail").await.unwrap();
        let queue: SharedQueue = memory.clone();
        let config = PollerConfig {
            visibility: Duration::from_secs(5),
            ..PollerConfig::default()
        };
        let handler = |event: SqsEvent| async move {
            let mut response = SqsBatchResponse::default();
            for record in event.records.iter().filter(|r| r.body.as_deref() == Some("fail")) {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
            response
        };
        assert_eq!(poll_once(&queue, &config, &handler).await, 2);
        assert_eq!(memory.len(), 1, "only the failed message is left");
    }
}
