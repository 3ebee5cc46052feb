//! `GET /jssdk/config?url=…`: the signed configuration a web page passes to `wx.config`.
//!
//! The signature is sha1 over the fleet's jsapi_ticket, a fresh nonce, the current timestamp and
//! the page URL without its fragment. The answer holds no ticket. `JSSDK_ALLOWED_HOSTS` limits
//! the pages that can be signed (and the CORS origin echoed back), so the route is no signing
//! oracle for other sites.

use http::StatusCode;
use serde_json::json;

use crate::deadline::Deadline;
use crate::deps::JssdkDeps;
use crate::http::{ApiBody, ApiError, ErrorKind, Response, json_response, query_param, respond};
use crate::protocol::jssdk_signature;

/// How long the route waits for a ticket (cached almost always; a refresh when due).
const TICKET_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// The route's entry point.
pub async fn handle(deps: &JssdkDeps, req: lambda_http::Request) -> Response {
    respond("jssdk", req, |req, request_id| async move {
        if req.method() != http::Method::GET {
            return Err(ApiError::new(ErrorKind::MethodNotAllowed, "use GET"));
        }
        let url = query_param(&req, "url").ok_or_else(|| ApiError::bad_request("query parameter url is required"))?;
        let page = page_url(url, &deps.allowed_hosts)?;
        let client = &deps.client;
        let ticket = client.jsapi_ticket(Deadline::after(TICKET_BUDGET)).await?;
        let timestamp = deps.clock.now_secs().to_string();
        let nonce = format!("{:016x}", rand::random::<u64>());
        let signature = jssdk_signature(ticket.expose(), &nonce, &timestamp, &page.url);
        let data = json!({
            "appId": client.tokens().appid(),
            "timestamp": timestamp,
            "nonceStr": nonce,
            "signature": signature,
            "url": page.url,
        });
        let body = ApiBody {
            code: "OK",
            message: "ok".into(),
            data: Some(data),
            request_id: request_id.0,
        };
        let mut response = json_response(StatusCode::OK, &body);
        if let Some(origin) = page.origin.and_then(|o| http::HeaderValue::from_str(&o).ok()) {
            response
                .headers_mut()
                .insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        Ok(response)
    })
    .await
}

/// A page URL accepted for signing, and the origin to allow (when hosts are restricted).
#[derive(Debug, PartialEq, Eq)]
struct Page {
    url: String,
    origin: Option<String>,
}

fn page_url(raw: &str, allowed_hosts: &[String]) -> Result<Page, ApiError> {
    let bad = || ApiError::bad_request("url must be an http(s) URL with a host, at most 2048 characters");
    let url = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(bad)?
        .to_ascii_lowercase();
    if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2048 {
        return Err(bad());
    }
    if allowed_hosts.is_empty() {
        return Ok(Page {
            url: url.to_owned(),
            origin: None,
        });
    }
    if !allowed_hosts.contains(&host) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "this page's host is not allowed to use the JS-SDK here",
        ));
    }
    // The signature covers the URL exactly as the page sends it; only the origin is normalized.
    Ok(Page {
        url: url.to_owned(),
        origin: Some(parsed.origin().ascii_serialization()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_dropped_and_any_host_is_signed_when_unrestricted() {
        let page = page_url("https://shop.example.com/a?b=1#top", &[]).unwrap();
        assert_eq!(
            page,
            Page {
                url: "https://shop.example.com/a?b=1".into(),
                origin: None
            }
        );
    }

    #[test]
    fn restricted_hosts_are_enforced_and_their_origin_is_allowed() {
        let allowed = vec!["shop.example.com".to_owned()];
        let page = page_url("https://shop.example.com:8443/x", &allowed).unwrap();
        assert_eq!(page.origin.as_deref(), Some("https://shop.example.com:8443"));
        let denied = page_url("https://evil.example.net/", &allowed).unwrap_err();
        assert_eq!(denied.kind.status(), 403);
    }

    #[test]
    fn non_http_urls_are_400() {
        for bad in ["javascript:alert(1)", "ftp://x/", "https://", ""] {
            assert_eq!(page_url(bad, &[]).unwrap_err().kind.status(), 400, "{bad}");
        }
    }
}
