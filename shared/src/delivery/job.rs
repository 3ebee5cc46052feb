//! The queued unit of work, as JSON in an SQS message body.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::DeliveryRecord;

/// Which WeChat send API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// Customer-service message (`/cgi-bin/message/custom/send`), 48 h after the user's last interaction.
    Custom,
    /// Template message (`/cgi-bin/message/template/send`).
    Template,
    /// Subscribe message (`/cgi-bin/message/subscribe/send`).
    Subscribe,
}

impl SendKind {
    /// The route segment and stable name: `custom`, `template`, `subscribe`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Custom => "custom",
            Self::Template => "template",
            Self::Subscribe => "subscribe",
        }
    }

    /// The kind named by a route segment.
    pub fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "custom" => Some(Self::Custom),
            "template" => Some(Self::Template),
            "subscribe" => Some(Self::Subscribe),
            _ => None,
        }
    }

    /// The fields WeChat requires in this API's JSON (checked before anything is queued).
    pub const fn required_fields(self) -> &'static [&'static str] {
        match self {
            Self::Custom => &["touser", "msgtype"],
            Self::Template => &["touser", "template_id"],
            Self::Subscribe => &["touser", "template_id", "data"],
        }
    }
}

/// A completion the store could not take in time: enough to write it later (the claim's key and
/// owner, and the record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The record's key.
    pub key: crate::store::Key,
    /// The claim's owner (the completion is conditional on it).
    pub owner: String,
    /// What to record.
    pub record: DeliveryRecord,
}

/// A job on the work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// Send `payload` (WeChat's own JSON) through `kind`'s API; `id` is the message id.
    Send {
        /// Message id: the delivery ledger key.
        id: String,
        /// Which API.
        kind: SendKind,
        /// WeChat's JSON body for that API.
        payload: Value,
    },
    /// A callback whose business handler overran WeChat's budget: run it again here and send its
    /// reply as a customer-service message.
    CallbackReply {
        /// The message's dedup key (also the delivery id of the reply).
        id: String,
        /// The plaintext message body (XML or JSON) as WeChat sent it.
        message: String,
    },
    /// A delivery record the store could not take when the message was settled: write it.
    Complete(Completion),
}

/// A queue message that is not a job.
#[derive(Debug, thiserror::Error)]
#[error("not a job: {0}")]
pub struct JobError(String);

impl Job {
    /// The job as a queue message body.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a queue message body.
    pub fn from_body(body: &str) -> Result<Self, JobError> {
        serde_json::from_str(body).map_err(|e| JobError(e.to_string()))
    }

    /// The job's id (for a completion, its record's sort key: the message id).
    pub fn id(&self) -> &str {
        match self {
            Self::Send { id, .. } | Self::CallbackReply { id, .. } => id,
            Self::Complete(completion) => &completion.key.sk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_a_queue_body() {
        let job = Job::Send {
            id: "m1".into(),
            kind: SendKind::Template,
            payload: serde_json::json!({"touser": "o1"}),
        };
        assert_eq!(Job::from_body(&job.to_body()).unwrap(), job);
        let body = Job::CallbackReply {
            id: "k".into(),
            message: "<xml/>".into(),
        }
        .to_body();
        assert!(body.contains(r#""type":"callback_reply""#), "{body}");
    }

    #[test]
    fn a_body_that_is_not_a_job_is_an_error() {
        assert!(Job::from_body("{}").is_err());
        assert!(Job::from_body("poison").is_err());
    }

    #[test]
    fn kinds_name_their_route_segment() {
        for kind in [SendKind::Custom, SendKind::Template, SendKind::Subscribe] {
            assert_eq!(SendKind::from_segment(kind.as_str()), Some(kind));
        }
        assert_eq!(SendKind::from_segment("mass"), None);
    }
}
