//! The one error type of every route, and its single mapping to an HTTP status and body.

use http::StatusCode;

use super::response::{ApiBody, Response, json_response};

/// What went wrong, as far as the client is concerned. Each kind has one status and one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Malformed input (400).
    BadRequest,
    /// Missing or wrong credentials (401).
    Unauthorized,
    /// A signature that does not verify (403).
    InvalidSignature,
    /// Authenticated, but not allowed (403).
    Forbidden,
    /// No such route (404).
    NotFound,
    /// The route exists, the method does not (405).
    MethodNotAllowed,
    /// The same request is being processed (409).
    Conflict,
    /// Body over the configured limit (413).
    PayloadTooLarge,
    /// Shed by a limit (429).
    TooManyRequests,
    /// A dependency is down and nothing could be queued (503).
    Unavailable,
    /// A bug or a panic (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidSignature | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// A route failure: a kind, a message that is safe to show the client, and — for the log only —
/// the underlying reason.
///
/// Never put secrets, tokens or upstream error text in `message`; they go in `detail`, which the
/// route wrapper logs and no response ever carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiError {
    /// The kind, which decides status and code.
    pub kind: ErrorKind,
    /// Client-safe message.
    pub message: String,
    /// Why, for the log (never sent).
    pub detail: Option<String>,
}

impl ApiError {
    /// An error of `kind` with a client-safe `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// The same error with `detail` for the log.
    pub fn with_detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 500 with a generic message (details belong in the log, not the body).
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "internal error")
    }

    /// The unified JSON response for this error.
    pub fn into_response(self, request_id: &str) -> Response {
        let body: ApiBody<()> = ApiBody {
            code: self.kind.code(),
            message: self.message,
            data: None,
            request_id: request_id.to_owned(),
        };
        json_response(self.kind.status(), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    #[test]
    fn every_kind_maps_to_its_status_and_code_in_one_place() {
        let cases = [
            (ErrorKind::BadRequest, 400, "BAD_REQUEST"),
            (ErrorKind::Unauthorized, 401, "UNAUTHORIZED"),
            (ErrorKind::InvalidSignature, 403, "INVALID_SIGNATURE"),
            (ErrorKind::Forbidden, 403, "FORBIDDEN"),
            (ErrorKind::NotFound, 404, "NOT_FOUND"),
            (ErrorKind::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
            (ErrorKind::Conflict, 409, "CONFLICT"),
            (ErrorKind::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (ErrorKind::TooManyRequests, 429, "TOO_MANY_REQUESTS"),
            (ErrorKind::Unavailable, 503, "UNAVAILABLE"),
            (ErrorKind::Internal, 500, "INTERNAL"),
        ];
        for (kind, status, code) in cases {
            assert_eq!(kind.status().as_u16(), status);
            assert_eq!(kind.code(), code);
        }
    }

    #[test]
    fn error_body_carries_code_message_and_request_id() {
        let response = ApiError::bad_request("malformed XML").into_response("req-9");
        assert_eq!(response.status(), 400);
        let Body::Text(text) = response.body() else {
            panic!("text body expected")
        };
        let value: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"code":"BAD_REQUEST","message":"malformed XML","data":null,"request_id":"req-9"})
        );
    }
}
