//! Where the run keeps its state: MemoryStore + MemoryQueue, or DynamoDB + SQS on an emulator
//! (moto) when `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS` are both set.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use shared::clock::SharedClock;
use shared::queue::memory::MemoryQueue;
use shared::queue::sqs::{SqsQueue, create_queue_with_dlq};
use shared::queue::{SharedQueue, WorkQueue};
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;

type BoxError = Box<dyn Error + Send + Sync>;

/// The queue under test, with the views the report needs (depth, dead letters, redrive).
#[derive(Debug)]
pub enum Queue {
    /// In-process queue with SQS semantics.
    Memory(Arc<MemoryQueue>),
    /// SQS (emulated), with its dead-letter queue.
    Sqs {
        /// The work queue.
        queue: Arc<SqsQueue>,
        /// Its dead-letter queue.
        dlq: SqsQueue,
        /// The SDK client.
        client: aws_sdk_sqs::Client,
    },
}

/// The store and queue of one run.
#[derive(Debug)]
pub struct Backend {
    /// The state store.
    pub store: SharedStore,
    /// The queue.
    pub queue: Queue,
    /// `memory` or `dynamodb+sqs (moto)`.
    pub name: &'static str,
}

impl Backend {
    /// Memory, or the emulator when both endpoint variables are set.
    pub async fn from_env(clock: SharedClock, max_receives: u32) -> Result<Self, BoxError> {
        let emulated = std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some()
            && std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some();
        if !emulated {
            return Ok(Self {
                store: Arc::new(MemoryStore::new(clock)),
                queue: Queue::Memory(Arc::new(MemoryQueue::new(max_receives))),
                name: "MemoryStore + MemoryQueue (in process)",
            });
        }
        let store: SharedStore = wechat_ha_tests::dynamo::fresh_store(clock)
            .await
            .ok_or("AWS_ENDPOINT_URL_DYNAMODB is set but no store was created")?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let client = aws_sdk_sqs::Client::new(&sdk);
        let name = format!("wechat-ha-reliability-{}", std::process::id());
        let (url, dlq_url) = create_queue_with_dlq(&client, &name, max_receives).await?;
        Ok(Self {
            store,
            queue: Queue::Sqs {
                queue: Arc::new(SqsQueue::new(client.clone(), url)),
                dlq: SqsQueue::new(client.clone(), dlq_url),
                client,
            },
            name: "DynamoDB + SQS (moto emulator over HTTP)",
        })
    }
}

impl Queue {
    /// The handle `Deps` uses.
    pub fn shared(&self) -> SharedQueue {
        match self {
            Self::Memory(queue) => queue.clone(),
            Self::Sqs { queue, .. } => queue.clone(),
        }
    }

    /// Messages still on the queue, visible or in flight.
    pub async fn pending(&self) -> Result<usize, BoxError> {
        match self {
            Self::Memory(queue) => Ok(queue.len()),
            Self::Sqs { queue, client, .. } => {
                let attributes = client
                    .get_queue_attributes()
                    .queue_url(queue.url())
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                    .send()
                    .await?;
                Ok(attributes
                    .attributes()
                    .map(|a| a.values().filter_map(|v| v.parse::<usize>().ok()).sum())
                    .unwrap_or(0))
            }
        }
    }

    /// The dead-letter queue's bodies (left there).
    pub async fn dead_letters(&self) -> Result<Vec<String>, BoxError> {
        match self {
            Self::Memory(queue) => Ok(queue.dead_letters().into_iter().map(|(_, body)| body).collect()),
            Self::Sqs { dlq, .. } => {
                // Hide each while reading (so the loop ends), then make them all visible again.
                let mut read = Vec::new();
                loop {
                    let batch = dlq.receive(10, Duration::ZERO, Duration::from_secs(300)).await?;
                    if batch.is_empty() {
                        break;
                    }
                    read.extend(batch);
                }
                for message in &read {
                    dlq.change_visibility(&message.receipt, Duration::ZERO).await?;
                }
                Ok(read.into_iter().map(|m| m.body).collect())
            }
        }
    }

    /// Moves every dead letter back to the work queue (the documented operator redrive).
    pub async fn redrive(&self) -> Result<usize, BoxError> {
        match self {
            Self::Memory(queue) => Ok(queue.redrive()),
            Self::Sqs { queue, dlq, .. } => {
                let mut moved = 0;
                loop {
                    let batch = dlq.receive(10, Duration::ZERO, Duration::from_secs(60)).await?;
                    if batch.is_empty() {
                        return Ok(moved);
                    }
                    for message in batch {
                        queue.send(&message.body).await?;
                        dlq.delete(&message.receipt).await?;
                        moved += 1;
                    }
                }
            }
        }
    }
}
