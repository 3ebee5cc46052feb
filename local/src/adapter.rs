//! Serves `shared::routes` handlers over hyper: the same functions Lambda runs, no runtime needed.
//!
//! A hyper request becomes the `lambda_http::Request` API Gateway would have produced (body as
//! text or binary; a query that needs decoding parsed into the map, a plain one left in the URI
//! for the routes to read in place), and the handler's response goes back as is.

use std::collections::HashMap;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::{Body, RequestExt};
use shared::http::Response as RouteResponse;

use crate::deps::LocalDeps;

/// How much the local server buffers before handing a body to a route. Routes enforce their own,
/// smaller limits (and answer 413); this only bounds memory.
const BUFFER_LIMIT: usize = 8 * 1024 * 1024;

/// What the local server answers: hyper's response over a buffered body.
pub type HttpResponse = http::Response<Full<Bytes>>;

/// A hyper request → the request the Lambda handler sees; `Err` is the answer when the body
/// cannot be read (too large, or the connection broke).
pub async fn to_lambda_request<B>(req: http::Request<B>) -> Result<lambda_http::Request, HttpResponse>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, BUFFER_LIMIT)
        .collect()
        .await
        .map_err(|_| plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large or unreadable"))?
        .to_bytes();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(Vec::from(bytes)) {
            Ok(text) => Body::Text(text),
            Err(not_utf8) => Body::Binary(not_utf8.into_bytes()),
        }
    };
    let request = http::Request::from_parts(parts, body);
    // A plain query is read from the URI in place (`shared::http::query_param`); only one that
    // needs decoding gets the parsed map API Gateway would have built.
    let raw_query = request.uri().query().unwrap_or_default();
    if !shared::http::needs_decoding(raw_query) {
        return Ok(request);
    }
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        query.entry(name.into_owned()).or_default().push(value.into_owned());
    }
    Ok(request.with_query_string_parameters(query))
}

/// The handler's response → a hyper response (the body moves, it is not copied).
pub fn from_route_response(response: RouteResponse) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    http::Response::from_parts(parts, Full::new(body))
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut response = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// A route entry point over the local deps, boxed for the route table.
pub type RouteFn = for<'a> fn(
    &'a LocalDeps,
    lambda_http::Request,
) -> std::pin::Pin<Box<dyn Future<Output = RouteResponse> + Send + 'a>>;

/// Serves one route: convert, call, convert back.
pub async fn serve<B>(deps: &LocalDeps, route: RouteFn, req: http::Request<B>) -> HttpResponse
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match to_lambda_request(req).await {
        Ok(request) => from_route_response(route(deps, request).await),
        Err(rejection) => rejection,
    }
}
