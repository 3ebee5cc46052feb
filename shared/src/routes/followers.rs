//! The follower read API (internal: IAM-signed, or the bearer key, like `/messages/*`).
//!
//! | route | answers |
//! |---|---|
//! | `GET /followers/{openid}` | one follower (with WeChat's whole record under `profile`) |
//! | `GET /followers?tag=101&subscribed=true&limit=100&cursor=…` | a page of followers and `next_cursor` (`null` at the end) |
//! | `GET /followers/export?cursor=…` | up to 5,000 followers as JSON lines (`application/x-ndjson`), `x-next-cursor` naming the next part |
//!
//! Pages read at most 2,000 items each: a rare tag may answer fewer than `limit` with a cursor
//! to go on. An export is split because a Lambda answer is at most 6 MB.

use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::deps::FollowersDeps;
use crate::http::{ApiBody, ApiError, ErrorKind, Response, json_response, query_param, require_internal, respond};
use crate::store::StoreError;
use crate::sync::follower::load;
use crate::sync::read::{Cursor, Filter, page};

/// Followers a page answers by default / at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Followers one export part holds.
const EXPORT_PART: usize = 5000;

/// The read API's entry point.
pub async fn handle(deps: &FollowersDeps, req: lambda_http::Request) -> Response {
    respond("followers", req, |req, request_id| async move {
        require_internal(&req, deps.internal_api_key.as_ref())?;
        if req.method() != http::Method::GET {
            return Err(ApiError::new(ErrorKind::MethodNotAllowed, "use GET"));
        }
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let ok = |data| {
            json_response(
                StatusCode::OK,
                &ApiBody {
                    code: "OK",
                    message: "ok".into(),
                    data: Some(data),
                    request_id: request_id.0.clone(),
                },
            )
        };
        match segments.as_slice() {
            ["followers"] => {
                let filter = filter(&req)?;
                let limit = limit(&req)?;
                let (followers, next) = page(&deps.store, filter, cursor(&req)?, limit)
                    .await
                    .map_err(store_error)?;
                let items: Vec<_> = followers.iter().map(|f| f.to_json(false)).collect();
                Ok(ok(
                    json!({ "followers": items, "next_cursor": next.map(|c| c.encode()) }),
                ))
            }
            ["followers", "export"] => export(deps, &req).await,
            ["followers", openid] => {
                let follower = load(&deps.store, openid).await.map_err(store_error)?;
                let follower = follower.ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such follower"))?;
                Ok(ok(follower.to_json(true)))
            }
            _ => Err(ApiError::new(ErrorKind::NotFound, "no such route")),
        }
    })
    .await
}

async fn export(deps: &FollowersDeps, req: &lambda_http::Request) -> Result<Response, ApiError> {
    let mut lines = String::new();
    let mut at = Some(cursor(req)?);
    let mut written = 0;
    // Unfiltered pages read exactly what they answer: a part is a few pages.
    while let Some(from) = at.take() {
        let (followers, next) = page(&deps.store, Filter::default(), from, EXPORT_PART - written)
            .await
            .map_err(store_error)?;
        for follower in &followers {
            lines.push_str(&follower.to_json(true).to_string());
            lines.push('\n');
        }
        written += followers.len();
        at = next;
        if written >= EXPORT_PART {
            break;
        }
    }
    let mut response = http::Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(lambda_http::Body::Text(lines))
        .map_err(|e| ApiError::internal().with_detail(e))?;
    if let Some(next) = at.and_then(|c| HeaderValue::from_str(&c.encode()).ok()) {
        response.headers_mut().insert("x-next-cursor", next);
    }
    Ok(response)
}

fn filter(req: &lambda_http::Request) -> Result<Filter, ApiError> {
    let tag = match query_param(req, "tag") {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| ApiError::bad_request("tag must be a tag id"))?,
        ),
    };
    let subscribed = match query_param(req, "subscribed") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::bad_request("subscribed must be true or false")),
    };
    Ok(Filter { tag, subscribed })
}

fn limit(req: &lambda_http::Request) -> Result<usize, ApiError> {
    match query_param(req, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request("limit must be a whole number from 1 to 1000")),
    }
}

fn cursor(req: &lambda_http::Request) -> Result<Cursor, ApiError> {
    match query_param(req, "cursor") {
        None | Some("") => Ok(Cursor::start()),
        Some(raw) => Cursor::parse(raw).ok_or_else(|| ApiError::bad_request("cursor is not one this API gave")),
    }
}

fn store_error(error: StoreError) -> ApiError {
    ApiError::new(ErrorKind::Unavailable, "state store unavailable; retry later").with_detail(error)
}
