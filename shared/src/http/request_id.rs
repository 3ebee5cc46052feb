//! The request id: API Gateway's, else the caller's `x-request-id`, else a fresh random one.

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

/// The prefix of an id made here (none came with the request).
const LOCAL_PREFIX: &str = "local-";

/// A request id, carried on the tracing span and in every error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The id of `req`: the API Gateway request id when there is one (it is what CloudWatch and the
/// access log show), else an `x-request-id` header (local server, tests), else a random id.
pub fn request_id_of(req: &lambda_http::Request) -> RequestId {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref()
        && let Some(id) = ctx.request_id.as_deref().filter(|id| !id.is_empty())
    {
        return RequestId(id.to_owned());
    }
    if let Some(id) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid(v))
    {
        return RequestId(id.to_owned());
    }
    let mut hex = [0u8; 16];
    // 16 hex digits fit the buffer exactly, so encoding cannot fail.
    let _ = hex::encode_to_slice(rand::random::<[u8; 8]>(), &mut hex);
    let mut id = String::with_capacity(LOCAL_PREFIX.len() + hex.len());
    id.push_str(LOCAL_PREFIX);
    id.extend(hex.iter().map(|&digit| char::from(digit)));
    RequestId(id)
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
}
