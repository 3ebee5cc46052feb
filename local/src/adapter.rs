//! Serves `shared::routes` handlers from axum: the same functions Lambda runs, no runtime needed.
//!
//! An axum request becomes the `lambda_http::Request` API Gateway would have produced (body as
//! text or binary, query string parameters extracted), and the handler's response goes back as is.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body as AxumBody;
use axum::response::IntoResponse;
use http::StatusCode;
use lambda_http::{Body, RequestExt};
use shared::http::Response as RouteResponse;

use crate::deps::LocalDeps;

/// How much the local server buffers before handing a body to a route. Routes enforce their own,
/// smaller limits (and answer 413); this only bounds memory.
const BUFFER_LIMIT: usize = 8 * 1024 * 1024;

/// An axum request → the request the Lambda handler sees.
pub async fn to_lambda_request(req: axum::extract::Request) -> Result<lambda_http::Request, axum::response::Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BUFFER_LIMIT)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response())?;
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(not_utf8) => Body::Binary(not_utf8.into_bytes()),
        }
    };
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        query.entry(name.into_owned()).or_default().push(value.into_owned());
    }
    Ok(http::Request::from_parts(parts, body).with_query_string_parameters(query))
}

/// The handler's response → an axum response.
fn from_route_response(response: RouteResponse) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    axum::response::Response::from_parts(parts, body)
}

/// A route entry point over the local deps, boxed for the router.
pub type RouteFn = for<'a> fn(
    &'a LocalDeps,
    lambda_http::Request,
) -> std::pin::Pin<Box<dyn Future<Output = RouteResponse> + Send + 'a>>;

/// Serves one route: convert, call, convert back.
pub async fn serve(deps: Arc<LocalDeps>, route: RouteFn, req: axum::extract::Request) -> axum::response::Response {
    match to_lambda_request(req).await {
        Ok(request) => from_route_response(route(&deps, request).await),
        Err(rejection) => rejection,
    }
}
