//! Request input helpers: body bytes (413 over the limit) and the API Gateway arrival time.

use lambda_http::{Body, RequestExt};

use super::error::{ApiError, ErrorKind};

/// The request body as bytes, or 413 when it is larger than `max_bytes`.
///
/// API Gateway has already buffered the body, so the check protects parsing and storage, not memory.
pub fn body_bytes(req: &lambda_http::Request, max_bytes: usize) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > max_bytes {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("body larger than {max_bytes} bytes"),
        ));
    }
    Ok(bytes)
}

/// When API Gateway received the request (epoch ms), from the HTTP API's request context
/// (none off Lambda: the caller uses its clock).
pub fn arrival_ms(req: &lambda_http::Request) -> Option<i64> {
    match req.request_context_ref()? {
        lambda_http::request::RequestContext::ApiGatewayV2(ctx) => Some(ctx.time_epoch).filter(|t| *t > 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_over_the_limit_is_413() {
        let req = http::Request::builder().body(Body::Text("x".repeat(11))).unwrap();
        let err = body_bytes(&req, 10).unwrap_err();
        assert_eq!(err.kind.status(), 413);
        assert_eq!(body_bytes(&req, 11).unwrap().len(), 11);
    }
}
