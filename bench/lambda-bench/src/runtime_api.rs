//! A local Lambda Runtime API: the four routes a function's `lambda_runtime` client calls, served
//! with hyper's HTTP/1 server. Every call is forwarded to the benchmark driver over a channel with
//! the instant it arrived; `GET /next` waits until the driver hands out an event.
//!
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How far ahead of the hand-out each invocation's deadline lies (`Lambda-Runtime-Deadline-Ms`).
pub const INVOCATION_DEADLINE: Duration = Duration::from_secs(30);

const PREFIX: &str = "/2018-06-01/runtime/";

/// One event for the function.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Trace-Id` (an X-Ray trace header; see [`trace_header`]).
    pub trace_id: String,
    /// The event, as JSON.
    pub body: Bytes,
}

/// What the function did, with the instant the harness saw it.
#[derive(Debug)]
pub enum RuntimeCall {
    /// `GET /invocation/next`: the function is idle; `reply` hands it the next event.
    Next {
        /// When the request arrived.
        arrived: Instant,
        /// Where the driver sends the event.
        reply: oneshot::Sender<Invocation>,
    },
    /// The event's response was built and given to hyper to write (the wall clock starts here).
    HandedOut {
        /// The invocation.
        request_id: String,
        /// When.
        at: Instant,
    },
    /// `POST /invocation/{id}/response`.
    Response {
        /// The invocation.
        request_id: String,
        /// The function's result.
        body: Bytes,
        /// When the whole body had arrived.
        arrived: Instant,
    },
    /// `POST /invocation/{id}/error`.
    Error {
        /// The invocation.
        request_id: String,
        /// The error document.
        body: Bytes,
    },
    /// `POST /init/error`: the function could not start.
    InitError {
        /// The error document.
        body: Bytes,
    },
}

/// The running server: its address and the calls it receives.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: SocketAddr,
    /// Every call, in arrival order.
    pub calls: mpsc::UnboundedReceiver<RuntimeCall>,
    accept_loop: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Starts the Runtime API on a free loopback port, for a function whose ARN is `function_arn`.
///
/// # Errors
/// The port cannot be bound.
pub async fn serve(function_arn: &str) -> std::io::Result<RuntimeApi> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    let (sender, calls) = mpsc::unbounded_channel();
    let function_arn: Arc<str> = Arc::from(function_arn);
    let accept_loop = tokio::spawn(accept(listener, sender, function_arn));
    Ok(RuntimeApi {
        address,
        calls,
        accept_loop,
    })
}

async fn accept(listener: TcpListener, calls: mpsc::UnboundedSender<RuntimeCall>, function_arn: Arc<str>) {
    while let Ok((stream, _)) = listener.accept().await {
        // Small requests and answers: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let calls = calls.clone();
        let function_arn = function_arn.clone();
        let service = service_fn(move |request| route(request, calls.clone(), function_arn.clone()));
        tokio::spawn(async move {
            // A connection ends with an error when the function is killed: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

async fn route(
    request: Request<Incoming>,
    calls: mpsc::UnboundedSender<RuntimeCall>,
    function_arn: Arc<str>,
) -> Result<Answer, Infallible> {
    let path = request.uri().path().strip_prefix(PREFIX).unwrap_or_default().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let answer = match (request.method(), segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(&calls, &function_arn).await,
        (&Method::POST, ["invocation", id, "response"]) => {
            let request_id = (*id).to_owned();
            let body = read_body(request).await;
            let _ = calls.send(RuntimeCall::Response {
                request_id,
                body,
                arrived: Instant::now(),
            });
            accepted()
        }
        (&Method::POST, ["invocation", id, "error"]) => {
            let request_id = (*id).to_owned();
            let body = read_body(request).await;
            let _ = calls.send(RuntimeCall::Error { request_id, body });
            accepted()
        }
        (&Method::POST, ["init", "error"]) => {
            let body = read_body(request).await;
            let _ = calls.send(RuntimeCall::InitError { body });
            accepted()
        }
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(answer)
}

/// Waits for the driver's next event and hands it out.
async fn next(calls: &mpsc::UnboundedSender<RuntimeCall>, function_arn: &str) -> Answer {
    let (reply, event) = oneshot::channel();
    if calls
        .send(RuntimeCall::Next {
            arrived: Instant::now(),
            reply,
        })
        .is_err()
    {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    // The driver drops `reply` only once the benchmark is over (after stopping the function).
    let Ok(invocation) = event.await else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let answer = event_answer(&invocation, function_arn);
    let _ = calls.send(RuntimeCall::HandedOut {
        request_id: invocation.request_id,
        at: Instant::now(),
    });
    answer
}

fn event_answer(invocation: &Invocation, function_arn: &str) -> Answer {
    let mut answer = Response::new(Full::new(invocation.body.clone()));
    let deadline_ms = epoch_ms(SystemTime::now() + INVOCATION_DEADLINE);
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", function_arn);
    set("lambda-runtime-trace-id", &invocation.trace_id);
    answer
}

/// An X-Ray trace header as Lambda passes it for invocation `sequence`, not sampled (nothing is
/// sent to X-Ray).
pub fn trace_header(sequence: u64) -> String {
    let epoch_secs = epoch_ms(SystemTime::now()) / 1000;
    format!("Root=1-{epoch_secs:08x}-{sequence:024x};Parent={sequence:016x};Sampled=0")
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis())
}

async fn read_body(request: Request<Incoming>) -> Bytes {
    request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default()
}

fn accepted() -> Answer {
    let mut answer = status(StatusCode::ACCEPTED);
    *answer.body_mut() = Full::new(Bytes::from_static(br#"{"status":"OK"}"#));
    answer
}

fn status(code: StatusCode) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = code;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_header_has_the_x_ray_shape() {
        let header = trace_header(0x2a);
        let (root, rest) = header.split_once(';').unwrap();
        let parts: Vec<&str> = root.trim_start_matches("Root=").split('-').collect();
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2], format!("{:024x}", 0x2a));
        assert_eq!(rest, "Parent=000000000000002a;Sampled=0");
    }
}
