//! The accept loop: hyper HTTP/1 connections over the axum router, one listener per mock domain.
//!
//! Why not `axum::serve`: a "dropped connection" fault must close the socket without an answer,
//! and "domain down" must refuse connections. Owning the accept loop lets a request ask its own
//! connection task to drop the connection (`ConnInfo::kill`), and lets the handle stop a listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::Service;

/// Per-connection context, inserted into every request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The mock domain this connection arrived on.
    pub domain: Arc<str>,
    /// Notified to drop the connection without answering.
    pub kill: Arc<Notify>,
}

/// A running listener; dropping `stop` (or sending `true`) closes it and its connections.
#[derive(Debug)]
pub(crate) struct Listener {
    pub addr: SocketAddr,
    pub stop: watch::Sender<bool>,
}

/// Binds `addr` and serves `router` on it, tagging requests with `domain`.
pub(crate) async fn spawn_listener(addr: SocketAddr, domain: &str, router: Router) -> std::io::Result<Listener> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let domain: Arc<str> = Arc::from(domain);
    tokio::spawn(accept_loop(listener, domain, router, stopped));
    Ok(Listener { addr, stop })
}

async fn accept_loop(listener: TcpListener, domain: Arc<str>, router: Router, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, domain.clone(), router.clone(), stopped.clone()));
                }
                Err(err) => tracing::warn!(%err, "mock accept failed"),
            },
            _ = stopped.changed() => break,
        }
    }
}

async fn serve_connection(stream: TcpStream, domain: Arc<str>, router: Router, mut stopped: watch::Receiver<bool>) {
    let info = ConnInfo {
        domain,
        kill: Arc::new(Notify::new()),
    };
    let kill = info.kill.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(info.clone());
        let mut router = router.clone();
        async move {
            Ok::<_, Infallible>(
                router
                    .call(req.map(Body::new))
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket: no answer reaches the client.
    tokio::select! {
        result = conn => if let Err(err) = result {
            tracing::debug!(%err, "mock connection ended with an error");
        },
        () = kill.notified() => {}
        _ = stopped.changed() => {}
    }
}
