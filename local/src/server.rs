//! The local server: every function's routes on one port, same paths as API Gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use shared::deps::Deps;
use shared::http::{ApiError, ErrorKind};
use shared::queue::poller::{PollerConfig, run_poller};
use shared::routes;

use crate::adapter::{RouteFn, serve};

/// How often the local server renews the tokens (the template's schedule rate).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

type RouteFuture<'a> = std::pin::Pin<Box<dyn Future<Output = shared::http::Response> + Send + 'a>>;

fn callback_route(deps: &Deps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(routes::callback::handle(deps, req))
}

fn send_route(deps: &Deps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(routes::send::handle(deps, req))
}

/// Unknown paths get the unified 404 body, with a request id, like every other answer.
fn not_found_route(_deps: &Deps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(shared::http::guard("not_found", req, |_, _| async {
        Err(ApiError::new(ErrorKind::NotFound, "no such route"))
    }))
}

fn jssdk_route(deps: &Deps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(routes::jssdk::handle(deps, req))
}

/// The routes, as API Gateway maps them to functions.
pub fn route_table() -> Vec<(&'static str, RouteFn)> {
    vec![
        ("/wechat", callback_route),
        ("/messages/custom", send_route),
        ("/messages/template", send_route),
        ("/messages/subscribe", send_route),
        ("/jssdk/config", jssdk_route),
    ]
}

/// The axum app over `deps`.
pub fn app(deps: Arc<Deps>) -> Router {
    let mut router = Router::new();
    for (path, route) in route_table() {
        let deps = deps.clone();
        router = router.route(
            path,
            any(move |req: axum::extract::Request| serve(deps.clone(), route, req)),
        );
    }
    router.fallback(move |req: axum::extract::Request| serve(deps.clone(), not_found_route, req))
}

/// Binds `addr` and serves until the process ends, with the send worker polling the queue
/// in-process (the role of Lambda's SQS event source mapping).
pub async fn run(deps: Arc<Deps>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let worker_deps = deps.clone();
    let worker = tokio::spawn(async move {
        let queue = worker_deps.queue.clone();
        let deps = &worker_deps;
        run_poller(queue, PollerConfig::default(), |event| {
            routes::send_worker::handle(deps, event)
        })
        .await;
    });
    let refresher = deps.wechat.is_some().then(|| {
        let deps = deps.clone();
        tokio::spawn(async move {
            // The role of the EventBridge schedule in template.yaml.
            let mut every = tokio::time::interval(REFRESH_EVERY);
            loop {
                every.tick().await;
                let _ = routes::token::refresh(&deps).await;
            }
        })
    });
    let served = axum::serve(listener, app(deps)).await;
    worker.abort();
    if let Some(refresher) = refresher {
        refresher.abort();
    }
    served
}
