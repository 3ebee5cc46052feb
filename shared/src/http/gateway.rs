//! A response in API Gateway's HTTP API (payload 2.0) JSON form, for functions that take raw
//! payloads (the token function serves a schedule and a route) instead of `lambda_http::run`.

use lambda_http::Body;
use serde_json::{Map, Value, json};

use super::response::Response;

/// `response` as the JSON an HTTP API integration expects (`statusCode`, `headers`, `body`).
pub fn to_http_api_response(response: Response) -> Value {
    let (parts, body) = response.into_parts();
    let headers: Map<String, Value> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), Value::from(value.to_str().ok()?))))
        .collect();
    let (body, is_base64) = match body {
        Body::Text(text) => (text, false),
        Body::Binary(bytes) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(bytes), true)
        }
        _ => (String::new(), false),
    };
    json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": is_base64})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::text_response;

    #[test]
    fn text_response_becomes_http_api_json() {
        let value = to_http_api_response(text_response(http::StatusCode::CREATED, "hi"));
        assert_eq!(value["statusCode"], 201);
        assert_eq!(value["body"], "hi");
        assert_eq!(value["isBase64Encoded"], false);
        assert_eq!(value["headers"]["content-type"], "text/plain; charset=utf-8");
    }
}
