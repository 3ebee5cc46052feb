//! The send API's answers, and their stored form for `Idempotency-Key` replays.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::delivery::DeliveryRecord;
use crate::http::{ApiBody, Response, json_response};

/// One answer of the send API: status, code, message and data — stored as is in the request
/// ledger, so a retried request gets exactly the first answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Answer {
    #[serde(with = "status_code")]
    status: StatusCode,
    code: String,
    message: String,
    data: Value,
    /// Set on a replay of the stored answer (not stored itself).
    #[serde(skip)]
    replayed: bool,
}

impl Answer {
    /// Sent now, sent before, or refused by WeChat for good.
    pub(super) fn settled(id: &str, record: &DeliveryRecord) -> Self {
        match record {
            DeliveryRecord::Sent { msgid } => Self {
                status: StatusCode::OK,
                code: "OK".into(),
                message: "sent".into(),
                data: json!({"message_id": id, "status": "sent", "msgid": msgid}),
                replayed: false,
            },
            DeliveryRecord::Rejected { errcode, errmsg } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "WECHAT_REJECTED".into(),
                message: "WeChat refused the message; retrying will not help".into(),
                data: json!({"message_id": id, "status": "rejected", "errcode": errcode, "errmsg": errmsg}),
                replayed: false,
            },
            DeliveryRecord::InDoubt { reason } => Self {
                status: StatusCode::ACCEPTED,
                code: "IN_DOUBT".into(),
                message: "WeChat may have received the message but did not answer; it is not sent again automatically"
                    .into(),
                data: json!({"message_id": id, "status": "in_doubt", "reason": reason}),
                replayed: false,
            },
        }
    }

    /// A dry run (`X-Dry-Run: true`): the payload is valid and an access token is at hand;
    /// nothing was sent, recorded or queued.
    pub(super) fn dry_run(kind: &str) -> Self {
        Self {
            status: StatusCode::OK,
            code: "OK".into(),
            message: "dry run: valid, not sent".into(),
            data: json!({"status": "dry_run", "kind": kind}),
            replayed: false,
        }
    }

    /// Queued for the worker.
    pub(super) fn queued(id: &str, reason: &str) -> Self {
        Self {
            status: StatusCode::ACCEPTED,
            code: "ACCEPTED".into(),
            message: "queued: it will be delivered when WeChat is healthy".into(),
            data: json!({"message_id": id, "status": "queued", "reason": reason}),
            replayed: false,
        }
    }

    /// The stored answer, replayed for a retried request: it says so in the
    /// `Idempotent-Replayed: true` header.
    pub(super) fn replayed(mut self) -> Self {
        self.replayed = true;
        self
    }

    /// The unified response.
    pub(super) fn into_response(self, request_id: &str) -> Response {
        let code: &'static str = match self.code.as_str() {
            "OK" => "OK",
            "ACCEPTED" => "ACCEPTED",
            "IN_DOUBT" => "IN_DOUBT",
            _ => "WECHAT_REJECTED",
        };
        let body = ApiBody {
            code,
            message: self.message,
            data: Some(self.data),
            request_id: request_id.to_owned(),
        };
        let mut response = json_response(self.status, &body);
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", http::HeaderValue::from_static("true"));
        }
        response
    }
}

/// `StatusCode` as its number in the stored answer.
mod status_code {
    use http::StatusCode;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(status: &StatusCode, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(status.as_u16())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<StatusCode, D::Error> {
        let code = u16::deserialize(deserializer)?;
        StatusCode::from_u16(code).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_answer_replays_identically() {
        for answer in [
            Answer::settled("m1", &DeliveryRecord::Sent { msgid: Some(42) }),
            Answer::settled(
                "m2",
                &DeliveryRecord::Rejected {
                    errcode: Some(43004),
                    errmsg: "require subscribe".into(),
                },
            ),
            Answer::queued("m3", "circuit open"),
        ] {
            let stored = serde_json::to_string(&answer).unwrap();
            let replayed: Answer = serde_json::from_str(&stored).unwrap();
            assert_eq!(replayed, answer);
            assert_eq!(
                answer.replayed().into_response("r").headers()["idempotent-replayed"],
                "true"
            );
        }
    }
}
