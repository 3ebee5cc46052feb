//! The route wrapper: request id on the span, one access log line, errors and panics to responses.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use super::error::{ApiError, ErrorKind};
use super::request_id::{RequestId, X_REQUEST_ID, request_id_of};
use super::response::Response;

/// Answers `req` with `handler` under a span carrying the request id, and always returns a response.
///
/// - `Ok(response)` passes through;
/// - `Err(ApiError)` becomes the unified JSON error body (logged at `warn`, or `error` for 5xx);
/// - a panic becomes a 500 with the same body instead of a crashed invocation (this needs
///   `panic = "unwind"`, which the workspace release profile sets).
///
/// `handler` is called at once, to build its future (route handlers are closures returning an
/// `async` block, which does nothing until polled); a panic is caught where its work runs, in
/// the polls of the returned future.
///
/// Every response gets an `x-request-id` header. The request's one span is `request`, with the
/// route as its `route` field (filter with `request{route=callback}`): the route functions carry
/// no span of their own, whose wrapper would move their futures once more per request.
pub fn respond<F, Fut>(route: &'static str, req: lambda_http::Request, handler: F) -> impl Future<Output = Response>
where
    F: FnOnce(lambda_http::Request, RequestId) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let request_id = request_id_of(&req);
    let span = tracing::info_span!("request", route, request_id = %request_id.0, method = %req.method());
    // Timed only for the access log line: where it is filtered out, no clock is read for it.
    // Asked inside the span and with the line's fields, so span and field filters decide as
    // they do for the line itself.
    let started = span
        .in_scope(|| tracing::enabled!(tracing::Level::INFO, status, latency_us))
        .then(Instant::now);
    Responding {
        handler: handler(req, request_id.clone()),
        span,
        request_id,
        started,
    }
}

pin_project! {
    /// [`respond`]'s future: the handler's future, polled in place under the span, each poll
    /// behind `catch_unwind`. A struct rather than an `async fn`, whose state would keep the
    /// request a second time (an async fn's arguments outlive their move) and move the handler's
    /// future — the largest state of a request — into `CatchUnwind` and `Instrumented` wrappers,
    /// a copy of all of it each time.
    struct Responding<Fut> {
        #[pin]
        handler: Fut,
        span: tracing::Span,
        request_id: RequestId,
        started: Option<Instant>,
    }
}

impl<Fut> Future for Responding<Fut>
where
    Fut: Future<Output = Result<Response, ApiError>>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut handler = this.handler;
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => Some(result),
            Err(_panic) => None,
        };
        Poll::Ready(finish(outcome, this.request_id, *this.started))
    }
}

/// The response for the handler's `outcome` (`None`: it panicked), logged, with the request id.
fn finish(outcome: Option<Result<Response, ApiError>>, request_id: &RequestId, started: Option<Instant>) -> Response {
    let mut response = match outcome {
        Some(Ok(response)) => response,
        Some(Err(error)) => {
            let detail = error.detail.as_deref().unwrap_or_default();
            if error.kind.status().is_server_error() {
                tracing::error!(code = error.kind.code(), message = %error.message, detail, "request failed");
            } else {
                tracing::warn!(code = error.kind.code(), message = %error.message, detail, "request rejected");
            }
            error.into_response(&request_id.0)
        }
        None => {
            tracing::error!(code = ErrorKind::Internal.code(), "handler panicked; answered 500");
            ApiError::internal().into_response(&request_id.0)
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    if let Some(started) = started {
        tracing::info!(
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            "done"
        );
    }
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

    /// The lines `respond` logs for one OK request under the log filter `filter`.
    async fn access_log_under(filter: &str) -> String {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // This thread only (a current-thread test runtime polls here).
        let _default = tracing::subscriber::set_default(subscriber);
        respond("probe", request(), |_, _| async {
            Ok(text_response(StatusCode::OK, "fine"))
        })
        .await;
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[tokio::test]
    async fn the_access_line_follows_level_and_span_filters() {
        let line = access_log_under("info").await;
        assert!(line.contains("done") && line.contains("latency_us="), "{line}");
        assert!(
            line.contains("route=\"probe\"") || line.contains("route=probe"),
            "{line}"
        );
        assert_eq!(access_log_under("warn").await, "");
        let by_span = access_log_under("warn,[request{route=probe}]=info").await;
        assert!(by_span.contains("done") && by_span.contains("latency_us="), "{by_span}");
        assert_eq!(access_log_under("warn,[request{route=other}]=info").await, "");
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
