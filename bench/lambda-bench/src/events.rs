//! The events Lambda would deliver, built fresh for every invocation: API Gateway HTTP API
//! (payload 2.0) requests, SQS batches and EventBridge schedules, shaped like the samples in
//! `events/` (`scripts/make_events.py`) but with the current time and ids of their own.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The account and API of the samples in `events/`.
const ACCOUNT_ID: &str = "123456789012";
const API_ID: &str = "abc123defg";
const REGION: &str = "us-east-1";

/// An API Gateway HTTP API request (payload format 2.0).
#[derive(Debug, Clone, Default)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// `/wechat`.
    pub path: &'a str,
    /// The query parameters, in order (values must not need percent-encoding).
    pub query: Vec<(&'a str, String)>,
    /// Headers besides the ones every request has (lower-case names).
    pub headers: Vec<(&'a str, String)>,
    /// The body, if any.
    pub body: Option<String>,
    /// `requestContext.requestId`.
    pub request_id: String,
    /// `requestContext.authorizer` (the IAM identity of a signed internal call).
    pub authorizer: Option<Value>,
}

/// The request as API Gateway hands it to the function, arriving now.
pub fn http_event(request: &HttpRequest<'_>) -> Value {
    let now = now_ms();
    let route_key = format!("{} {}", request.method, request.path);
    let raw_query: Vec<String> = request
        .query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let mut headers = Map::new();
    for (name, value) in [
        ("host", format!("{API_ID}.execute-api.{REGION}.amazonaws.com")),
        ("user-agent", "Mozilla/4.0".to_owned()),
        ("x-forwarded-for", "203.0.113.10".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
    ]
    .into_iter()
    .chain(request.headers.iter().map(|(name, value)| (*name, value.clone())))
    {
        headers.insert(name.to_owned(), Value::String(value));
    }
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": format!("{API_ID}.execute-api.{REGION}.amazonaws.com"),
        "domainPrefix": API_ID,
        "http": {"method": request.method, "path": request.path, "protocol": "HTTP/1.1",
                 "sourceIp": "203.0.113.10", "userAgent": "Mozilla/4.0"},
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": api_gateway_time(now / 1000),
        "timeEpoch": now,
    });
    if let Some(authorizer) = &request.authorizer {
        context["authorizer"] = authorizer.clone();
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": raw_query.join("&"),
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !request.query.is_empty() {
        let parameters: Map<String, Value> = request
            .query
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Value::String(value.clone())))
            .collect();
        event["queryStringParameters"] = Value::Object(parameters);
    }
    if let Some(body) = &request.body {
        event["body"] = Value::String(body.clone());
    }
    event
}

/// The IAM identity API Gateway's IAM authorizer adds to a signed call of an internal route.
pub fn iam_authorizer() -> Value {
    json!({"iam": {
        "accessKey": "AKIAIOSFODNN7EXAMPLE", "accountId": ACCOUNT_ID, "callerId": "AIDACKCEVSQ6C2EXAMPLE",
        "cognitoIdentity": null, "principalOrgId": null,
        "userArn": format!("arn:aws:iam::{ACCOUNT_ID}:user/backend"), "userId": "AIDACKCEVSQ6C2EXAMPLE"}})
}

/// An SQS event source batch of `(message id, body)` records, each received for the first time.
pub fn sqs_batch(records: &[(String, String)], queue_name: &str) -> Value {
    let sent = now_ms();
    let records: Vec<Value> = records
        .iter()
        .map(|(message_id, body)| {
            json!({
                "messageId": message_id,
                "receiptHandle": format!("AQEB{message_id}=="),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent.to_string(),
                               "SenderId": "AIDACKCEVSQ6C2EXAMPLE",
                               "ApproximateFirstReceiveTimestamp": (sent + 1).to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"),
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// An EventBridge "Scheduled Event" of rule `rule`, firing now.
pub fn scheduled_event(event_id: &str, rule: &str) -> Value {
    json!({
        "version": "0", "id": event_id, "detail-type": "Scheduled Event", "source": "aws.events",
        "account": ACCOUNT_ID, "time": iso8601(now_ms() / 1000), "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule}")], "detail": {},
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `14/Nov/2023:22:13:20 +0000`, API Gateway's `requestContext.time`.
fn api_gateway_time(epoch_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = civil_date(epoch_secs / 86_400);
    let (hour, minute, second) = clock_time(epoch_secs);
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!("{day:02}/{month}/{year}:{hour:02}:{minute:02}:{second:02} +0000")
}

/// `2023-11-14T22:15:00Z`, EventBridge's `time`.
fn iso8601(epoch_secs: u64) -> String {
    let (year, month, day) = civil_date(epoch_secs / 86_400);
    let (hour, minute, second) = clock_time(epoch_secs);
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

fn clock_time(epoch_secs: u64) -> (u64, u64, u64) {
    let of_day = epoch_secs % 86_400;
    (of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

/// The proleptic Gregorian date of day `days` since 1970-01-01 (H. Hinnant's `civil_from_days`,
/// for days on or after the epoch).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_as_api_gateway_and_eventbridge_write_them() {
        assert_eq!(api_gateway_time(1_700_000_000), "14/Nov/2023:22:13:20 +0000");
        assert_eq!(iso8601(1_700_000_100), "2023-11-14T22:15:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn an_http_event_carries_its_query_twice_and_arrives_now() {
        let event = http_event(&HttpRequest {
            method: "POST",
            path: "/wechat",
            query: vec![("nonce", "1".to_owned()), ("timestamp", "2".to_owned())],
            body: Some("<xml/>".to_owned()),
            request_id: "r".to_owned(),
            ..HttpRequest::default()
        });
        assert_eq!(event["rawQueryString"], "nonce=1&timestamp=2");
        assert_eq!(event["queryStringParameters"]["timestamp"], "2");
        assert_eq!(event["routeKey"], "POST /wechat");
        assert_eq!(event["body"], "<xml/>");
        let arrived = event["requestContext"]["timeEpoch"].as_u64().unwrap();
        assert!(now_ms().abs_diff(arrived) < 5_000);
    }
}
