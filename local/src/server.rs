//! The local server: every function's routes on one port, same paths as API Gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use shared::http::{ApiError, ErrorKind};
use shared::queue::poller::{PollerConfig, run_poller};
use shared::routes;

use crate::adapter::{HttpResponse, RouteFn, serve};
use crate::deps::LocalDeps;

/// How often the local server renews the tokens (the template's schedule rate).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(300);
/// The follower sync's tick (the template ticks every minute; locally sooner, so `POST
/// /admin/sync` shows results quickly).
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// How long one local sync run may work.
const SYNC_RUN: std::time::Duration = std::time::Duration::from_secs(50);
/// How often the local server runs the payment reconciliation (the template's schedule rate).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

type RouteFuture<'a> = std::pin::Pin<Box<dyn Future<Output = shared::http::Response> + Send + 'a>>;

fn callback_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(routes::callback::handle(&deps.callback, req))
}

fn send_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.api {
        Some(api) if api.send.internal_api_key.is_none() => no_key(req),
        Some(api) => Box::pin(routes::send::handle(&api.send, req)),
        None => not_configured(req),
    }
}

/// Real credentials and no `INTERNAL_API_KEY`: nothing would stand between this port and the
/// account (on AWS, IAM does), so the local server refuses and says why.
fn no_key<'a>(req: lambda_http::Request) -> RouteFuture<'a> {
    Box::pin(shared::http::respond("no_key", req, |_, _| async {
        Err(ApiError::new(
            ErrorKind::Forbidden,
            "wechat-local serves /messages/* with real credentials only when INTERNAL_API_KEY is set",
        ))
    }))
}

fn jssdk_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.api {
        Some(api) => Box::pin(routes::jssdk::handle(&api.jssdk, req)),
        None => not_configured(req),
    }
}

/// Without an AppSecret the API routes do not exist here (on AWS: their functions are not
/// deployed); the answer says how to enable them.
fn not_configured<'a>(req: lambda_http::Request) -> RouteFuture<'a> {
    Box::pin(shared::http::respond("not_configured", req, |_, _| async {
        Err(ApiError::new(
            ErrorKind::NotFound,
            "this route needs the WeChat API: set WECHAT_APPSECRET (or run with --mock-wechat)",
        ))
    }))
}

fn admin_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.api {
        Some(api) if api.admin.internal_api_key.is_none() => no_key(req),
        Some(api) => Box::pin(routes::admin::handle(&api.admin, req)),
        None => not_configured(req),
    }
}

fn health_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.api {
        Some(api) => Box::pin(routes::health::handle(&api.health, req)),
        // The callback alone: alive, and ready as far as this server knows.
        None => Box::pin(shared::http::respond("health", req, |_, request_id| async move {
            let body = shared::http::ApiBody {
                code: "OK",
                message: "ok".into(),
                data: Some(serde_json::json!({"status": "ok"})),
                request_id: request_id.0,
            };
            Ok(shared::http::json_response(http::StatusCode::OK, &body))
        })),
    }
}

/// `GET /metrics`: every metric in Prometheus text format.
fn metrics_route(deps: &LocalDeps, _req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(async move {
        let text = deps
            .prometheus
            .as_ref()
            .map(|handle| handle.render())
            .unwrap_or_default();
        let mut response = shared::http::text_response(http::StatusCode::OK, text);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    })
}

/// `GET /status`: the status page (it polls `/status.json`).
fn status_page_route(_deps: &LocalDeps, _req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(async move {
        let mut response = shared::http::text_response(http::StatusCode::OK, STATUS_PAGE);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    })
}

/// The status page: one self-contained HTML file.
const STATUS_PAGE: &str = include_str!("status.html");

/// `GET /status.json`: breakers, token and events, for the status page.
fn status_data_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(shared::http::respond("status", req, move |_, _| async move {
        let Some(api) = &deps.api else {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                "the status page needs the WeChat API: set WECHAT_APPSECRET (or run with --mock-wechat)",
            ));
        };
        let pinned = api.admin.pins.list().await.unwrap_or_default();
        let now = shared::clock::Clock::now_ms(&shared::clock::SystemClock);
        let data = shared::admin::status(
            &api.admin.breakers,
            &pinned,
            &deps.store,
            &deps.store_description,
            &api.appid,
            &api.events,
            now,
        )
        .await
        .map_err(|reason| ApiError::new(ErrorKind::Unavailable, "state store unavailable").with_detail(reason))?;
        let mut response = shared::http::text_response(http::StatusCode::OK, data.to_string());
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }))
}

fn pay_notify_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.pay {
        Some(pay) => Box::pin(routes::pay_notify::handle(pay, req)),
        None => Box::pin(shared::http::respond("pay_notify", req, |_, _| async {
            Err(ApiError::new(
                ErrorKind::NotFound,
                "payment notices need a merchant: set PAY_MCHID and its keys (or run with --mock-wechat-pay)",
            ))
        })),
    }
}

fn followers_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.api {
        Some(api) => Box::pin(routes::followers::handle(&api.followers, req)),
        None => Box::pin(shared::http::respond("followers", req, |_, _| async {
            Err(ApiError::new(
                ErrorKind::NotFound,
                "the follower sync needs the WeChat API: set WECHAT_APPSECRET (or run with --mock-wechat)",
            ))
        })),
    }
}

fn auth_route(deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    match &deps.auth {
        Some(auth) => Box::pin(routes::auth::handle(auth, req)),
        None => Box::pin(shared::http::respond("auth", req, |_, _| async {
            Err(ApiError::new(
                ErrorKind::NotFound,
                "logins need OAUTH_REDIRECT_URI (web) or MINIPROGRAM_APPID (mini-program), or run with --mock-wechat",
            ))
        })),
    }
}

/// Unknown paths get the unified 404 body, with a request id, like every other answer.
fn not_found_route(_deps: &LocalDeps, req: lambda_http::Request) -> RouteFuture<'_> {
    Box::pin(shared::http::respond("not_found", req, |_, _| async {
        Err(ApiError::new(ErrorKind::NotFound, "no such route"))
    }))
}

/// Which request paths a route serves.
#[derive(Debug, Clone, Copy)]
enum RoutePath {
    /// This path only.
    Exact(&'static str),
    /// Every path below this prefix (which ends with `/`), as API Gateway's `{proxy+}`.
    Below(&'static str),
}

impl RoutePath {
    fn matches(self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == exact,
            Self::Below(prefix) => path.len() > prefix.len() && path.starts_with(prefix),
        }
    }
}

/// The routes, as API Gateway maps them to functions.
const ROUTES: &[(RoutePath, RouteFn)] = &[
    (RoutePath::Exact("/wechat"), callback_route),
    (RoutePath::Exact("/messages/custom"), send_route),
    (RoutePath::Exact("/messages/template"), send_route),
    (RoutePath::Exact("/messages/subscribe"), send_route),
    (RoutePath::Exact("/jssdk/config"), jssdk_route),
    (RoutePath::Below("/admin/"), admin_route),
    (RoutePath::Exact("/health"), health_route),
    (RoutePath::Exact("/health/ready"), health_route),
    (RoutePath::Exact("/metrics"), metrics_route),
    (RoutePath::Exact("/status"), status_page_route),
    (RoutePath::Exact("/status.json"), status_data_route),
    (RoutePath::Exact("/pay/notify"), pay_notify_route),
    (RoutePath::Exact("/followers"), followers_route),
    (RoutePath::Below("/followers/"), followers_route),
    (RoutePath::Exact("/oauth/authorize"), auth_route),
    (RoutePath::Exact("/oauth/callback"), auth_route),
    (RoutePath::Exact("/miniprogram/login"), auth_route),
    (RoutePath::Exact("/miniprogram/decrypt"), auth_route),
    (RoutePath::Exact("/miniprogram/phone"), auth_route),
    (RoutePath::Exact("/me"), auth_route),
    (RoutePath::Exact("/logout"), auth_route),
];

/// The route serving `path` (the unified 404 when none does).
fn route_for(path: &str) -> RouteFn {
    ROUTES
        .iter()
        .find(|(route_path, _)| route_path.matches(path))
        .map_or(not_found_route as RouteFn, |(_, route)| *route)
}

/// Answers one request of a connection.
async fn answer(deps: &LocalDeps, req: http::Request<hyper::body::Incoming>) -> HttpResponse {
    let route = route_for(req.uri().path());
    serve(deps, route, req).await
}

/// Serves one accepted connection (HTTP/1.1, keep-alive) until the client closes it.
async fn serve_connection(deps: Arc<LocalDeps>, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(move |req| {
        let deps = deps.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&deps, req).await) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Accepts connections on `listener` until it fails.
async fn accept_loop(deps: Arc<LocalDeps>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: this connection is lost, the server is not.
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, "accept failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        tokio::spawn(serve_connection(deps.clone(), stream));
    }
}

/// Accept errors that concern one connection or a passing shortage, not the listener.
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted | ErrorKind::WouldBlock
    ) || error.raw_os_error().is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}

/// Binds `addr` and serves until the process ends, with the send worker polling the queue
/// in-process (the role of Lambda's SQS event source mapping) and the token refresh on a timer
/// (the role of the EventBridge schedule).
pub async fn run(deps: Arc<LocalDeps>, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The Prometheus recorder drains its histograms only when asked.
    let upkeep = deps.prometheus.clone().map(|handle| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        })
    });
    let background = deps.api.is_some().then(|| {
        let worker_deps = deps.clone();
        let worker = tokio::spawn(async move {
            let Some(api) = worker_deps.api.as_ref() else { return };
            run_poller(worker_deps.queue.clone(), PollerConfig::default(), |event| {
                routes::send_worker::handle(&api.worker, event)
            })
            .await;
        });
        let refresh_deps = deps.clone();
        let refresher = tokio::spawn(async move {
            let Some(api) = refresh_deps.api.as_ref() else { return };
            let mut every = tokio::time::interval(REFRESH_EVERY);
            loop {
                every.tick().await;
                let _ = routes::token_refresh::handle(&api.refresh).await;
            }
        });
        // The follower sync's ticks (the template's every-minute schedule).
        let sync_deps = deps.clone();
        let syncer = tokio::spawn(async move {
            let Some(api) = sync_deps.api.as_ref() else { return };
            let mut every = tokio::time::interval(SYNC_EVERY);
            loop {
                every.tick().await;
                // A Lambda invocation's five minutes, less: the margin is taken off inside.
                let deadline = shared::deadline::Deadline::after(SYNC_RUN + api.sync.run_margin);
                let _ = routes::sync::handle(&api.sync, routes::sync::Trigger::Tick, Some(deadline)).await;
            }
        });
        (worker, refresher, syncer)
    });
    // The payment reconciliation (the template's schedule), on a timer here.
    let reconcile = deps.pay.is_some().then(|| {
        let pay_deps = deps.clone();
        tokio::spawn(async move {
            let Some(pay) = pay_deps.pay.as_ref() else { return };
            let mut every = tokio::time::interval(RECONCILE_EVERY);
            loop {
                every.tick().await;
                if pay.client.is_some() {
                    let _ = routes::pay_reconcile::handle(pay).await;
                }
            }
        })
    });
    let served = accept_loop(deps, listener).await;
    if let Some((worker, refresher, syncer)) = background {
        worker.abort();
        refresher.abort();
        syncer.abort();
    }
    if let Some(upkeep) = upkeep {
        upkeep.abort();
    }
    if let Some(reconcile) = reconcile {
        reconcile.abort();
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths_match_as_api_gateway_routes_them() {
        assert!(RoutePath::Exact("/wechat").matches("/wechat"));
        assert!(!RoutePath::Exact("/wechat").matches("/wechat/"));
        assert!(!RoutePath::Exact("/wechat").matches("/wechatx"));
        let below = RoutePath::Below("/admin/");
        assert!(below.matches("/admin/breakers"));
        assert!(below.matches("/admin/breakers/token-endpoint/force"));
        assert!(!below.matches("/admin/"), "{{proxy+}} needs a segment");
        assert!(!below.matches("/admin"));
        assert!(!below.matches("/administrator"));
    }

    #[test]
    fn known_paths_have_a_route_and_others_fall_to_the_404() {
        for path in [
            "/wechat",
            "/messages/custom",
            "/admin/breakers",
            "/followers",
            "/followers/o1",
            "/me",
        ] {
            assert!(ROUTES.iter().any(|(route_path, _)| route_path.matches(path)), "{path}");
        }
        for path in ["/", "/nope", "/admin", "/wechat/extra"] {
            assert!(
                !ROUTES.iter().any(|(route_path, _)| route_path.matches(path)),
                "{path} falls to the 404 route"
            );
        }
    }
}
