//! Request input helpers with limits: body bytes (413 over the limit) and query parameters.

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

/// The first value of query parameter `name`.
pub fn query_param<'a>(req: &'a lambda_http::Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|params| params.first(name))
}

/// All query parameters as `(name, first value)` pairs.
pub fn query_params(req: &lambda_http::Request) -> Vec<(String, String)> {
    req.query_string_parameters_ref()
        .map(|params| params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default()
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
    use std::collections::HashMap;

    #[test]
    fn body_over_the_limit_is_413() {
        let req = http::Request::builder().body(Body::Text("x".repeat(11))).unwrap();
        let err = body_bytes(&req, 10).unwrap_err();
        assert_eq!(err.kind.status(), 413);
        assert_eq!(body_bytes(&req, 11).unwrap().len(), 11);
    }

    #[test]
    fn query_param_reads_the_first_value() {
        let req = http::Request::builder()
            .body(Body::Empty)
            .unwrap()
            .with_query_string_parameters(HashMap::from([("nonce".to_owned(), "42".to_owned())]));
        assert_eq!(query_param(&req, "nonce"), Some("42"));
        assert_eq!(query_param(&req, "missing"), None);
    }
}
