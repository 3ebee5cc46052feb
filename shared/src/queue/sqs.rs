//! The SQS implementation of [`WorkQueue`], plus queue creation for tests and local runs.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::{QueueError, Received, WorkQueue};

/// SQS allows at most 10 messages per receive and 20 s of long polling.
const MAX_BATCH: usize = 10;
const MAX_WAIT_SECS: u64 = 20;

/// A queue on Amazon SQS (or an emulator via `AWS_ENDPOINT_URL_SQS`).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// A queue at `url` through `client`.
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQS client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Service errors that mean "this request is wrong" rather than "SQS is unwell".
fn convert<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(error: SdkError<E, R>) -> QueueError {
    let code = error.code().unwrap_or("unknown").to_owned();
    let message = error.message().unwrap_or_default().to_owned();
    match &error {
        SdkError::ServiceError(_)
            if !code.contains("Throttl") && !code.contains("InternalError") && !code.contains("ServiceUnavailable") =>
        {
            QueueError::Rejected(format!("{code}: {message}"))
        }
        _ => QueueError::Unavailable(format!("{code}: {message}")),
    }
}

fn whole_secs(duration: Duration, max: u64) -> i32 {
    i32::try_from(duration.as_secs().min(max)).unwrap_or(i32::MAX)
}

#[async_trait]
impl WorkQueue for SqsQueue {
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(whole_secs(delay, super::MAX_DELAY.as_secs()))
            .send()
            .await
            .map_err(convert)?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }

    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1))
            .wait_time_seconds(whole_secs(wait, MAX_WAIT_SECS))
            .visibility_timeout(whole_secs(visibility, 12 * 3600))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(convert)?;
        Ok(output
            .messages()
            .iter()
            .map(|message| Received {
                message_id: message.message_id().unwrap_or_default().to_owned(),
                receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                receive_count: message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(convert)?;
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_secs(timeout, 12 * 3600))
            .send()
            .await
            .map_err(convert)?;
        Ok(())
    }
}

/// Creates `name` and `name-dlq` with a redrive policy after `max_receive_count` receives
/// (tests and `wechat-local` against an emulator; on AWS the template creates them).
/// Returns `(queue URL, dead-letter queue URL)`.
pub async fn create_queue_with_dlq(
    client: &Client,
    name: &str,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(convert)?;
    let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(convert)?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| QueueError::Rejected("dead-letter queue has no ARN".into()))?;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count});
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(convert)?;
    Ok((queue.queue_url().unwrap_or_default().to_owned(), dlq_url))
}
