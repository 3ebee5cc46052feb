//! The route wrapper: request id on the span, one access log line, errors and panics to responses.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use tracing::Instrument;

use super::error::{ApiError, ErrorKind};
use super::request_id::{RequestId, request_id_of};
use super::response::Response;

/// Answers `req` with `handler` under a span carrying the request id, and always returns a response.
///
/// - `Ok(response)` passes through;
/// - `Err(ApiError)` becomes the unified JSON error body (logged at `warn`, or `error` for 5xx);
/// - a panic becomes a 500 with the same body instead of a crashed invocation (this needs
///   `panic = "unwind"`, which the workspace release profile sets).
///
/// Every response gets an `x-request-id` header.
pub async fn respond<F, Fut>(route: &'static str, req: lambda_http::Request, handler: F) -> Response
where
    F: FnOnce(lambda_http::Request, RequestId) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let request_id = request_id_of(&req);
    let span = tracing::info_span!("request", route, request_id = %request_id.0, method = %req.method());
    let started = Instant::now();
    let outcome = AssertUnwindSafe(handler(req, request_id.clone()))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    let mut response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            let detail = error.detail.as_deref().unwrap_or_default();
            if error.kind.status().is_server_error() {
                tracing::error!(code = error.kind.code(), message = %error.message, detail, "request failed");
            } else {
                tracing::warn!(code = error.kind.code(), message = %error.message, detail, "request rejected");
            }
            error.into_response(&request_id.0)
        }
        Err(_panic) => {
            tracing::error!(code = ErrorKind::Internal.code(), "handler panicked; answered 500");
            ApiError::internal().into_response(&request_id.0)
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert("x-request-id", value);
    }
    tracing::info!(
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "done"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::text_response;
    use http::StatusCode;
    use lambda_http::Body;

    fn request() -> lambda_http::Request {
        http::Request::builder()
            .header("x-request-id", "rid-7")
            .body(Body::Empty)
            .unwrap()
    }

    #[tokio::test]
    async fn ok_response_passes_through_with_request_id_header() {
        let response = respond("test", request(), |_, _| async {
            Ok(text_response(StatusCode::OK, "fine"))
        })
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], "rid-7");
    }

    #[tokio::test]
    async fn error_becomes_unified_body_with_request_id() {
        let response = respond("test", request(), |_, _| async { Err(ApiError::bad_request("nope")) }).await;
        assert_eq!(response.status(), 400);
        let Body::Text(text) = response.body() else {
            panic!("text body expected")
        };
        assert!(text.contains(r#""request_id":"rid-7""#), "{text}");
    }

    #[tokio::test]
    async fn panic_becomes_500_with_unified_body() {
        let response = respond("test", request(), |_, _| async {
            if true {
                panic!("boom");
            }
            Ok(text_response(StatusCode::OK, "unreachable"))
        })
        .await;
        assert_eq!(response.status(), 500);
        let Body::Text(text) = response.body() else {
            panic!("text body expected")
        };
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["code"], "INTERNAL");
        assert_eq!(value["request_id"], "rid-7");
    }
}
