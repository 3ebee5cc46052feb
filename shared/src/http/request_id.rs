//! The request id: API Gateway's, else the caller's `x-request-id`, else a fresh one made here.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use crate::hex_text::push_lower_hex;

/// The prefix of an id made here (none came with the request).
const LOCAL_PREFIX: &str = "local-";

/// The header a caller's id comes in and every response's id goes out in.
pub static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request id, carried on the tracing span and in every error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The id of `req`: the API Gateway request id when there is one (it is what CloudWatch and the
/// access log show), else an `x-request-id` header (local server, tests), else a fresh id.
pub fn request_id_of(req: &lambda_http::Request) -> RequestId {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(id) = ctx.request_id.as_deref().filter(|id| !id.is_empty())
    {
        return RequestId(id.to_owned());
    }
    if let Some(id) = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
    {
        return RequestId(id.to_owned());
    }
    RequestId(fresh_id())
}

/// `local-` and 16 hex digits: a random start, drawn once per process, plus a count of the ids
/// made so far. Unique within the process (for 2^64 ids) and, thanks to the start, unrelated
/// across processes; one atomic add per id instead of a draw from the thread's RNG.
fn fresh_id() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static MADE: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(rand::random::<u64>);
    let value = start.wrapping_add(MADE.fetch_add(1, Ordering::Relaxed));
    let mut id = String::with_capacity(LOCAL_PREFIX.len() + 16);
    id.push_str(LOCAL_PREFIX);
    push_lower_hex(&mut id, &value.to_be_bytes());
    id
}

/// A caller-supplied id is echoed into logs, so keep it short and printable.
fn valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_id_is_used_when_there_is_no_gateway_context() {
        let req = http::Request::builder()
            .header("x-request-id", "abc-1")
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert_eq!(request_id_of(&req).0, "abc-1");
    }

    #[test]
    fn unprintable_header_id_is_replaced_by_a_fresh_one() {
        let req = http::Request::builder()
            .header("x-request-id", "a b")
            .body(lambda_http::Body::Empty)
            .unwrap();
        assert!(request_id_of(&req).0.starts_with("local-"));
    }

    #[test]
    fn fresh_ids_are_distinct_and_printable() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| fresh_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 22 && valid(id)));
    }
}
