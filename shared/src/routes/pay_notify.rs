//! `POST /pay/notify`: a WeChat Pay APIv3 notice — verified on the raw body (key by
//! `Wechatpay-Serial`), decrypted, processed exactly once, answered within 5 s.
//!
//! | the notice | answer |
//! |---|---|
//! | processed now, or a duplicate of one processed before | 204 |
//! | authentic but refused by the business (kept, alarmed) | 204 |
//! | missing header, probe, bad signature, stale timestamp, unknown serial, expired certificate | 401 `{"code":"FAIL"}` |
//! | not JSON, not a notice, a resource that does not decrypt | 400 `{"code":"FAIL"}` |
//! | body over the limit | 413 `{"code":"FAIL"}` |
//! | the hook failed, the store is down, another delivery still working | 500 / 503 `{"code":"FAIL"}`: WeChat Pay retries |
//!
//! Nothing is recorded for a refused notice. An unknown serial refreshes the platform
//! certificates once (at most once a minute per instance, under the `wechatpay.api` breaker)
//! when the merchant key is configured, then verifies again.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::deadline::Deadline;
use crate::deps::{CERTIFICATE_REFRESH_EVERY, PayDeps};
use crate::http::{Response, body_bytes, json_response_raw, respond};
use crate::pay::{KeyError, NoticeError, NoticeHeaders, ProcessError, decrypt, process, verify};
use crate::telemetry::metrics::{self, count, count_with};

/// Everything is answered by this long after arrival (WeChat Pay waits 5 s).
const ANSWER_WITHIN: Duration = Duration::from_millis(4_000);
/// A duplicate waits this long for the first delivery's result.
const DUPLICATE_WAIT: Duration = Duration::from_millis(3_000);

/// The pay-notify function's entry point.
pub async fn handle(deps: &PayDeps, req: lambda_http::Request) -> Response {
    respond("pay_notify", req, |req, request_id| async move {
        count(metrics::PAY_RECEIVED);
        let fail = |status: StatusCode, message: &str| {
            json_response_raw(status, &json!({"code": "FAIL", "message": message, "request_id": request_id.0}))
        };
        if req.method() != http::Method::POST {
            return Ok(fail(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        let Ok(body) = body_bytes(&req, deps.max_body_bytes) else {
            count_with(metrics::PAY_REJECTED, "reason", "too_large");
            return Ok(fail(StatusCode::PAYLOAD_TOO_LARGE, "notice too large"));
        };
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let headers = NoticeHeaders {
            serial: header("wechatpay-serial"),
            signature: header("wechatpay-signature"),
            timestamp: header("wechatpay-timestamp"),
            nonce: header("wechatpay-nonce"),
            signature_type: header("wechatpay-signature-type"),
        };
        let deadline = Deadline::after(ANSWER_WITHIN);
        let opened = match authentic(deps, &headers, body, deadline).await.and_then(|()| decrypt(deps.api_v3_key.expose().as_bytes(), body)) {
            Ok(opened) => opened,
            Err(error) => {
                count_with(metrics::PAY_REJECTED, "reason", error.reason());
                let probe = error.reason() == "probe";
                tracing::info!(target: "wechat_ha::pay", reason = error.reason(), signtest = probe, error = %error, "notice refused");
                let status = if error.is_unauthenticated() {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                return Ok(fail(status, "notice refused"));
            }
        };
        count(metrics::PAY_VERIFIED);
        let wait_until = tokio::time::Instant::now() + DUPLICATE_WAIT;
        match process(
            &deps.ledger,
            deps.hook.as_ref(),
            &deps.store,
            Some(&opened.id),
            &opened.event,
            deadline,
            wait_until,
        )
        .await
        {
            Ok(processed) => {
                tracing::info!(target: "wechat_ha::pay", notice_id = %opened.id, event_type = %opened.event_type, ?processed, "notice processed");
                Ok(http::Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(lambda_http::Body::Empty)
                    .unwrap_or_default())
            }
            Err(ProcessError::Hook(error)) => {
                count(metrics::PAY_HOOK_FAILURES);
                tracing::error!(target: "wechat_ha::pay", notice_id = %opened.id, reason = %error, "payment hook failed; WeChat Pay will retry");
                Ok(fail(StatusCode::INTERNAL_SERVER_ERROR, "processing failed; retry"))
            }
            Err(error) => {
                tracing::warn!(target: "wechat_ha::pay", notice_id = %opened.id, reason = %error, "notice not processed now; WeChat Pay will retry");
                Ok(fail(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; retry"))
            }
        }
    })
    .await
}

/// Verifies the notice, refreshing the certificates once when its serial is unknown.
async fn authentic(
    deps: &PayDeps,
    headers: &NoticeHeaders<'_>,
    body: &[u8],
    deadline: Deadline,
) -> Result<(), NoticeError> {
    let now = deps.clock.now_secs();
    match verify(&deps.keys, headers, body, now) {
        Err(NoticeError::Key(KeyError::Unknown(serial))) if refresh_certificates(deps, deadline).await => {
            tracing::info!(target: "wechat_ha::pay", serial = %serial, "unknown serial: certificates refreshed, verifying again");
            verify(&deps.keys, headers, body, now)
        }
        other => other,
    }
}

/// Downloads the platform certificates, at most once per [`CERTIFICATE_REFRESH_EVERY`] per
/// instance; `true` when it did (and may know the serial now).
async fn refresh_certificates(deps: &PayDeps, deadline: Deadline) -> bool {
    let Some(client) = &deps.client else { return false };
    let mut last = deps.last_refresh_ms.lock().await;
    let now = deps.clock.now_ms();
    if now.saturating_sub(*last) < i64::try_from(CERTIFICATE_REFRESH_EVERY.as_millis()).unwrap_or(i64::MAX) {
        return false;
    }
    *last = now;
    match client.refresh_certificates(deadline).await {
        Ok(count) => {
            tracing::info!(target: "wechat_ha::pay", certificates = count, "platform certificates refreshed");
            true
        }
        Err(error) => {
            tracing::warn!(target: "wechat_ha::pay", reason = %error, "platform certificate refresh failed");
            false
        }
    }
}
