//! A keep-alive front for moto: the functions' SDK clients talk to it over connections it keeps
//! open, and it forwards each request to moto.
//!
//! moto's server (Werkzeug) answers every request with `Connection: close`, so without this front
//! the SDK's pool opens a TCP connection for every DynamoDB, SQS or Secrets Manager call — a
//! connect, socket setup and shutdown that AWS's endpoints, which keep connections open, never
//! cost a deployed function (three quarters of the callback's CPU per invocation on DynamoDB,
//! docs/benchmarks.md §25).
//! The front runs in the harness's process, on the harness's core: what it costs is not the
//! function's.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shared::error_chain::error_chain;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, hyper::Error>;

/// Serves on a free local port, forwarding to `upstream` (`http://host:port`), and answers the
/// front's URL. It serves until the caller's runtime ends (the harness's whole run).
///
/// # Errors
/// When `upstream` is not a plain `http://` URL, or the port cannot be bound.
pub async fn start(upstream: &str) -> Result<String, String> {
    let upstream: Uri = upstream
        .parse()
        .map_err(|e| format!("--aws-endpoint {upstream:?}: {e}"))?;
    let authority = match (upstream.scheme_str(), upstream.authority()) {
        (Some("http"), Some(authority)) => authority.clone(),
        _ => {
            return Err(format!(
                "--aws-endpoint {upstream}: the keep-alive front forwards plain http:// only"
            ));
        }
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| format!("keep-alive front: cannot bind: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("keep-alive front: no local address: {e}"))?;
    // No Nagle on either side: a request's head and body leave in separate writes, and moto (like
    // the SDK) delays its ACKs — each call would wait out the 40 ms delayed-ACK timer.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: said once here, where it happens, not as every later
                // call's failure; the listener stays open for the next connection.
                Err(e) => {
                    eprintln!("lambda-bench: keep-alive front: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            let authority = authority.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(client.clone(), authority.clone(), req));
                // A connection the function drops (its instance ending) is no error of the run.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{address}"))
}

/// One request to moto, its answer back as it came (moto's `Connection: close` is the front's
/// connection to moto's business, not the function's).
async fn forward(
    client: Client<HttpConnector, Incoming>,
    authority: hyper::http::uri::Authority,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
    {
        Ok(uri) => uri,
        Err(e) => return Ok(failure(&format!("bad request target: {e}"))),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(answer) => {
            let (mut parts, body) = answer.into_parts();
            parts.headers.remove(hyper::header::CONNECTION);
            parts.headers.remove("keep-alive");
            // An HTTP/1.0 answer would tell the caller to close, as `Connection: close` does.
            parts.version = Version::HTTP_11;
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(e) => Ok(failure(&format!("moto did not answer: {}", error_chain(&e)))),
    }
}

fn failure(reason: &str) -> Response<Body> {
    let body = http_body_util::Full::new(Bytes::from(reason.to_owned()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::client::conn::http1 as client_http1;
    use tokio::net::TcpStream;

    /// An upstream that behaves as moto's Werkzeug does: it answers each request with its method,
    /// path and body, and `Connection: close`.
    async fn closing_upstream() -> String {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(|req: Request<Incoming>| async move {
                        let head = format!("{} {} ", req.method(), req.uri());
                        let body = req.into_body().collect().await?.to_bytes();
                        let mut answer = Response::new(Full::new(Bytes::from([head.as_bytes(), &body].concat())));
                        answer.headers_mut().insert(
                            hyper::header::CONNECTION,
                            hyper::header::HeaderValue::from_static("close"),
                        );
                        Ok::<_, hyper::Error>(answer)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://{address}")
    }

    async fn send(
        sender: &mut client_http1::SendRequest<Full<Bytes>>,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, bool, String) {
        let req = Request::post(path)
            .header("host", "front")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let answer = sender
            .send_request(req)
            .await
            .expect("the front answers on the same connection");
        let status = answer.status();
        let closes = answer.headers().contains_key(hyper::header::CONNECTION);
        let text = answer.into_body().collect().await.unwrap().to_bytes();
        (status, closes, String::from_utf8(text.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn keeps_the_callers_connection_open_across_an_upstream_that_closes_every_one() {
        let front = start(&closing_upstream().await).await.unwrap();
        let stream = TcpStream::connect(front.trim_start_matches("http://")).await.unwrap();
        let (mut sender, connection) = client_http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        for (path, body) in [("/first?x=1", "one"), ("/second", "two"), ("/", "")] {
            let (status, closes, text) = send(&mut sender, path, body).await;
            assert_eq!(status, StatusCode::OK);
            assert!(!closes, "the upstream's Connection: close must not reach the caller");
            assert_eq!(text, format!("POST {path} {body}"));
        }
    }

    #[tokio::test]
    async fn answers_502_when_the_upstream_is_gone_and_refuses_anything_but_plain_http() {
        let gone = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        let front = start(&format!("http://{address}")).await.unwrap();
        let stream = TcpStream::connect(front.trim_start_matches("http://")).await.unwrap();
        let (mut sender, connection) = client_http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let (status, _, text) = send(&mut sender, "/", "x").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(text.starts_with("moto did not answer"), "{text}");

        for refused in ["https://localhost:4566", "localhost:4566", "not a url"] {
            let problem = start(refused).await.unwrap_err();
            assert!(problem.contains("--aws-endpoint"), "{problem}");
        }
    }
}
