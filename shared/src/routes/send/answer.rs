//! The send API's answers, and their stored form for `Idempotency-Key` replays.

use http::StatusCode;
use serde_json::{Value, json};

use crate::http::{ApiBody, Response, json_response};

/// One answer of the send API: status, code, message and data.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Answer {
    status: StatusCode,
    code: &'static str,
    message: String,
    data: Value,
}

impl Answer {
    /// Sent now, sent before, or refused by WeChat for good.
    pub(super) fn settled(id: &str, record: Value) -> Self {
        let status = settled_status(&record);
        if status == StatusCode::OK {
            Self {
                status,
                code: "OK",
                message: "sent".into(),
                data: sent_data(id, &record),
            }
        } else {
            Self {
                status,
                code: "WECHAT_REJECTED",
                message: "WeChat refused the message; retrying will not help".into(),
                data: json!({"message_id": id, "status": "rejected", "errcode": record["errcode"], "errmsg": record["errmsg"]}),
            }
        }
    }

    /// Queued for the worker.
    pub(super) fn queued(id: &str, reason: &str) -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            code: "ACCEPTED",
            message: "queued: it will be delivered when WeChat is healthy".into(),
            data: json!({"message_id": id, "status": "queued", "reason": reason}),
        }
    }

    /// The answer stored for an `Idempotency-Key`, replayed.
    pub(super) fn replayed(record: &str) -> Self {
        let value: Value = serde_json::from_str(record).unwrap_or(Value::Null);
        let status = value["status"]
            .as_u64()
            .and_then(|s| StatusCode::from_u16(s as u16).ok())
            .unwrap_or(StatusCode::OK);
        let code = match status.as_u16() {
            200 => "OK",
            202 => "ACCEPTED",
            _ => "WECHAT_REJECTED",
        };
        Self {
            status,
            code,
            message: value["message"].as_str().unwrap_or_default().to_owned(),
            data: value["data"].clone(),
        }
    }

    /// The form stored in the request ledger.
    pub(super) fn to_record(&self) -> String {
        json!({"status": self.status.as_u16(), "message": self.message, "data": self.data}).to_string()
    }

    /// The unified response.
    pub(super) fn into_response(self, request_id: &str) -> Response {
        let body = ApiBody {
            code: self.code,
            message: self.message,
            data: Some(self.data),
            request_id: request_id.to_owned(),
        };
        json_response(self.status, &body)
    }
}

/// The `data` of a 200 answer, shown in the docs and the tests.
fn sent_data(id: &str, record: &Value) -> Value {
    json!({"message_id": id, "status": record["status"], "msgid": record["msgid"]})
}

/// HTTP status of a settled delivery record.
fn settled_status(record: &Value) -> StatusCode {
    if record["status"] == "rejected" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_answer_replays_identically() {
        for answer in [
            Answer::settled("m1", json!({"status": "sent", "msgid": 42})),
            Answer::settled(
                "m2",
                json!({"status": "rejected", "errcode": 43004, "errmsg": "require subscribe"}),
            ),
            Answer::queued("m3", "circuit open"),
        ] {
            assert_eq!(Answer::replayed(&answer.to_record()), answer);
        }
    }
}
