//! The run's traffic: send API requests with unique Idempotency-Keys, their answers, and the
//! deliberately poisoned queue messages.

use std::time::{Duration, Instant};

use lambda_http::Body;
use serde_json::{Value, json};
use shared::delivery::Job;
use shared::deps::SendDeps;
use shared::routes::send;

/// The internal API key the run configures and sends.
pub const API_KEY: &str = "reliability-run-key";

/// Message `i`'s id: its Idempotency-Key, and the `rel_id` marker in the body WeChat receives.
pub fn id(i: usize) -> String {
    format!("rel-{i:06}")
}

/// Message `i`'s API: 80 % custom, 10 % template, 10 % subscribe.
pub fn kind(i: usize) -> &'static str {
    match i % 10 {
        8 => "template",
        9 => "subscribe",
        _ => "custom",
    }
}

/// WeChat's JSON for message `i`, marked with its id.
pub fn body(i: usize) -> Value {
    let touser = format!("oRel{:04}", i % 1000);
    match kind(i) {
        "custom" => {
            json!({"touser": touser, "msgtype": "text", "text": {"content": format!("message {i}")}, "rel_id": id(i)})
        }
        "template" => {
            json!({"touser": touser, "template_id": "tpl-reliability", "data": {"n": {"value": i}}, "rel_id": id(i)})
        }
        _ => json!({"touser": touser, "template_id": "sub-reliability", "data": {"n": {"value": i}}, "rel_id": id(i)}),
    }
}

/// The send request for message `i`, as API Gateway would deliver it.
pub fn request(i: usize) -> Result<lambda_http::Request, http::Error> {
    http::Request::builder()
        .method("POST")
        .uri(format!("/messages/{}", kind(i)))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("idempotency-key", id(i))
        .header("content-type", "application/json")
        .body(Body::Text(body(i).to_string()))
}

/// One answer of the send API.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Message index.
    pub index: usize,
    /// HTTP status.
    pub status: u16,
    /// The `data` of the unified body.
    pub data: Value,
    /// Time in `send::handle`.
    pub latency: Duration,
}

/// Sends message `i` through the send route.
pub async fn send_one(deps: &SendDeps, i: usize) -> Answer {
    let started = Instant::now();
    let response = match request(i) {
        Ok(request) => send::handle(deps, request).await,
        Err(_) => {
            return Answer {
                index: i,
                status: 0,
                data: Value::Null,
                latency: Duration::ZERO,
            };
        }
    };
    let latency = started.elapsed();
    let text = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    };
    let data = serde_json::from_str::<Value>(&text)
        .map(|body| body["data"].clone())
        .unwrap_or(Value::Null);
    Answer {
        index: i,
        status: response.status().as_u16(),
        data,
        latency,
    }
}

/// Poisoned queue message `k`: not JSON, a job missing its fields, or a callback reply whose
/// message cannot be parsed. None can ever succeed; each must end in the dead-letter queue.
pub fn poison(k: usize) -> String {
    match k % 3 {
        0 => format!("poison-{k}: not a job at all"),
        1 => json!({"type": "send", "id": format!("poison-{k}")}).to_string(),
        _ => Job::CallbackReply {
            id: format!("poison-{k}"),
            message: format!("<xml><poison>{k}</unclosed>"),
        }
        .to_body(),
    }
}

/// Percentile `p` (0–100) of sorted `values`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
