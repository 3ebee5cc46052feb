//! The floor of the callback benchmark: what a GET verify costs with nothing around it — hyper's
//! HTTP/1 server on a current-thread runtime, the query split, SHA-1 over the sorted token,
//! timestamp and nonce, and the echo. No router, no logs, no metrics, no replay guard.
//!
//! `PORT=8080 WECHAT_TOKEN=… bare-hyper` (scripts/load.sh runs it).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

fn verify(token: &str, query: &str) -> Option<String> {
    let (mut signature, mut timestamp, mut nonce, mut echostr) = ("", "", "", "");
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("signature", v)) => signature = v,
            Some(("timestamp", v)) => timestamp = v,
            Some(("nonce", v)) => nonce = v,
            Some(("echostr", v)) => echostr = v,
            _ => {}
        }
    }
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    (hex::encode(hasher.finalize()) == signature).then(|| echostr.to_owned())
}

fn main() -> std::io::Result<()> {
    let token: &'static str = Box::leak(std::env::var("WECHAT_TOKEN").unwrap_or_default().into_boxed_str());
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let (stream, _) = listener.accept().await?;
                    tokio::task::spawn_local(async move {
                        let service = service_fn(move |req: Request<Incoming>| async move {
                            let answer = verify(token, req.uri().query().unwrap_or_default());
                            let (status, body) = match answer {
                                Some(echo) => (StatusCode::OK, echo),
                                None => (StatusCode::FORBIDDEN, "invalid signature".to_owned()),
                            };
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
            .await
    })
}
