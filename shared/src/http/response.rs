//! Response builders: the unified JSON body and the plain-text / XML bodies WeChat expects.

use http::StatusCode;
use http::header::CONTENT_TYPE;
use lambda_http::Body;
use serde::Serialize;

use crate::protocol::{BodyFormat, SUCCESS, SealedReply};

/// The response type every route returns (what `lambda_http` and the local server both serve).
pub type Response = http::Response<Body>;

/// The unified JSON body of every JSON route: `{code, message, data, request_id}`.
///
/// `code` is a stable machine-readable string (`OK`, `INVALID_SIGNATURE`, …); `message` is safe to
/// show a client; `data` is the payload (or `null`); `request_id` ties the answer to the logs.
#[derive(Debug, Serialize)]
pub struct ApiBody<T: Serialize> {
    /// Stable, machine-readable result code.
    pub code: &'static str,
    /// Human-readable, client-safe message.
    pub message: String,
    /// The payload, `null` on errors.
    pub data: Option<T>,
    /// The id of the request, as logged.
    pub request_id: String,
}

/// A JSON response with the unified body.
pub fn json_response<T: Serialize>(status: StatusCode, body: &ApiBody<T>) -> Response {
    // Serializing our own plain structs cannot fail; fall back to a fixed body rather than panic.
    let text = serde_json::to_string(body)
        .unwrap_or_else(|_| r#"{"code":"INTERNAL","message":"internal error","data":null}"#.to_owned());
    build(status, "application/json; charset=utf-8", text)
}

/// A JSON response with a body of the caller's own shape (WeChat Pay's `{"code":"FAIL",…}`).
pub fn json_response_raw(status: StatusCode, body: &serde_json::Value) -> Response {
    build(status, "application/json; charset=utf-8", body.to_string())
}

/// A `text/plain` response (GET verification echoes, `success`).
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response {
    build(status, "text/plain; charset=utf-8", text.into())
}

/// An XML response (passive replies and encrypted envelopes).
pub fn xml_response(text: impl Into<String>) -> Response {
    build(StatusCode::OK, "application/xml; charset=utf-8", text.into())
}

/// The callback's answer: `success` as text, a reply or an encrypted envelope in its format.
pub fn sealed_response(reply: SealedReply) -> Response {
    match reply {
        SealedReply::Success => text_response(StatusCode::OK, SUCCESS),
        SealedReply::Plain(xml) => xml_response(xml),
        SealedReply::Encrypted {
            body,
            format: BodyFormat::Xml,
        } => xml_response(body),
        SealedReply::Encrypted {
            body,
            format: BodyFormat::Json,
        } => build(StatusCode::OK, "application/json; charset=utf-8", body),
    }
}

fn build(status: StatusCode, content_type: &'static str, text: String) -> Response {
    let mut response = http::Response::new(Body::Text(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_has_the_four_unified_fields() {
        let body = ApiBody {
            code: "OK",
            message: "done".into(),
            data: Some(42),
            request_id: "r1".into(),
        };
        let response = json_response(StatusCode::OK, &body);
        let Body::Text(text) = response.body() else {
            panic!("text body expected")
        };
        let value: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"code":"OK","message":"done","data":42,"request_id":"r1"})
        );
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    }

    #[test]
    fn sealed_replies_answer_in_their_own_format() {
        let success = sealed_response(SealedReply::Success);
        assert_eq!(success.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert!(matches!(success.body(), Body::Text(t) if t == "success"));
        let json = sealed_response(SealedReply::Encrypted {
            body: "{}".into(),
            format: BodyFormat::Json,
        });
        assert_eq!(json.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
        let xml = sealed_response(SealedReply::Plain("<xml/>".into()));
        assert_eq!(xml.headers()[CONTENT_TYPE], "application/xml; charset=utf-8");
    }

    #[test]
    fn text_and_xml_responses_carry_their_content_type() {
        assert_eq!(
            text_response(StatusCode::OK, "hi").headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            xml_response("<xml/>").headers()[CONTENT_TYPE],
            "application/xml; charset=utf-8"
        );
    }
}
