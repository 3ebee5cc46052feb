//! Authentication of internal routes (`/messages/*`, `/admin/*`).
//!
//! On AWS these routes use IAM authorization at API Gateway, which only lets signed requests
//! through and puts the caller's identity in the request context; locally (and wherever
//! `INTERNAL_API_KEY` is set) a bearer key is required instead, compared in constant time.

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use super::error::{ApiError, ErrorKind};
use crate::secret::Secret;

/// Admits the request if it carries the bearer `key` (when one is configured) or an IAM identity
/// from API Gateway (when none is); everything else is 401.
pub fn require_internal(req: &lambda_http::Request, key: Option<&Secret>) -> Result<(), ApiError> {
    let denied = || ApiError::new(ErrorKind::Unauthorized, "internal route: credentials required");
    match key {
        Some(key) => {
            let bearer = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(denied)?;
            if key.matches(bearer.trim()) {
                Ok(())
            } else {
                Err(denied())
            }
        }
        None => match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) if ctx.authorizer.as_ref().is_some_and(|a| a.iam.is_some()) => {
                Ok(())
            }
            _ => Err(denied()),
        },
    }
}

/// Who made an admitted internal request, for the audit trail: the IAM principal API Gateway
/// verified, or `key:<fingerprint>` (the first 8 hex digits of the key's SHA-256) for a bearer
/// key — never the key itself.
pub fn caller(req: &lambda_http::Request, key: Option<&Secret>) -> String {
    if let Some(key) = key {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.expose().as_bytes());
        return format!("key:{}", hex::encode(&digest[..4]));
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone().or_else(|| iam.caller_id.clone()))
            .unwrap_or_else(|| "iam:unknown".to_owned()),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn request(authorization: Option<&str>) -> lambda_http::Request {
        let mut builder = http::Request::builder();
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn the_configured_bearer_key_is_required() {
        let key = Secret::new("k-123");
        assert!(require_internal(&request(Some("Bearer k-123")), Some(&key)).is_ok());
        for bad in [None, Some("Bearer k-12"), Some("k-123"), Some("Basic k-123")] {
            let error = require_internal(&request(bad), Some(&key)).unwrap_err();
            assert_eq!(error.kind.status(), 401, "{bad:?}");
        }
    }

    #[test]
    fn without_a_key_only_an_iam_identity_from_api_gateway_is_admitted() {
        assert_eq!(
            require_internal(&request(Some("Bearer x")), None)
                .unwrap_err()
                .kind
                .status(),
            401
        );
        let json = include_str!("../../../events/send-custom-post.json");
        let signed = lambda_http::request::from_str(json).expect("sample event");
        assert!(require_internal(&signed, None).is_ok());
        assert_eq!(caller(&signed, None), "arn:aws:iam::123456789012:user/backend");
    }

    #[test]
    fn a_bearer_caller_is_named_by_a_fingerprint_never_the_key() {
        let key = Secret::new("k-123");
        let named = caller(&request(Some("Bearer k-123")), Some(&key));
        assert!(
            named.starts_with("key:") && named.len() == 12 && !named.contains("k-123"),
            "{named}"
        );
    }
}
