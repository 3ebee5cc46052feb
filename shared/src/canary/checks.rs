//! The checks: each an API Gateway event signed now and a test of its answer.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::Invoke;
use crate::config::CallbackAccount;
use crate::protocol::{EncryptMode, KeySlot, RANDOM_LEN, msg_signature, url_signature};

/// The function a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/wechat`.
    Callback,
    /// `/messages/*`.
    Send,
    /// `/jssdk/config`.
    Jssdk,
}

/// One check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What it proves.
    pub name: &'static str,
    /// Which function.
    pub target: Target,
    /// The request.
    pub event: Value,
    expect: Expect,
}

#[derive(Debug, Clone)]
enum Expect {
    /// 200 with exactly this body.
    Echo(String),
    /// 200 with `success` or a reply to `openid` (sealed and signed in encrypted modes).
    Reply { openid: String, sealed: bool },
    /// 200, unified body, `data.status` = this.
    Status(&'static str),
    /// 200, unified body, `data.signature` of 40 hex digits.
    Signature,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    /// The check.
    pub name: &'static str,
    /// Whether the answer was right.
    pub passed: bool,
    /// What was wrong (or `ok`).
    pub detail: String,
}

/// The release's checks for `account`, signed at `now_secs`: callback verification and a text
/// message from `test_openid`, a dry-run custom message to `test_openid`, and a JS-SDK config for
/// `page_url`.
pub fn standard_checks(account: &CallbackAccount, test_openid: &str, page_url: &str, now_secs: i64) -> Vec<Check> {
    let token = account.token.expose();
    let timestamp = now_secs.to_string();
    // One signed query per request: the replay guard refuses a query reused with other content.
    let nonce = format!("{:016x}", rand::random::<u64>());
    let signature = url_signature(token, &timestamp, &nonce);
    let message_nonce = format!("{:016x}", rand::random::<u64>());
    let message_signature = url_signature(token, &timestamp, &message_nonce);
    let echostr = format!("canary-{:016x}", rand::random::<u64>());
    let verify = event(
        "GET",
        "/wechat",
        &[
            ("signature", signature.as_str()),
            ("timestamp", &timestamp),
            ("nonce", &nonce),
            ("echostr", &echostr),
        ],
        None,
        &[],
    );
    let msg_id = rand::random::<u32>();
    let text = format!(
        "<xml><ToUserName><![CDATA[gh_canary]]></ToUserName><FromUserName><![CDATA[{test_openid}]]></FromUserName>\
         <CreateTime>{now_secs}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[canary]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>"
    );
    let sealed = account.mode != EncryptMode::Plain && account.keys.is_some();
    let message = match (sealed, account.keys.as_ref()) {
        (true, Some(keys)) => {
            let random: [u8; RANDOM_LEN] = rand::random();
            match keys.encrypt(KeySlot::Current, text.as_bytes(), &random) {
                Ok(encrypt) => {
                    let msg_signature = msg_signature(token, &timestamp, &message_nonce, &encrypt);
                    let body = format!(
                        "<xml><ToUserName><![CDATA[gh_canary]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
                    );
                    event(
                        "POST",
                        "/wechat",
                        &[
                            ("signature", message_signature.as_str()),
                            ("timestamp", &timestamp),
                            ("nonce", &message_nonce),
                            ("encrypt_type", "aes"),
                            ("msg_signature", &msg_signature),
                        ],
                        Some(&body),
                        &[("content-type", "text/xml")],
                    )
                }
                Err(error) => json!({ "unbuildable": error.to_string() }),
            }
        }
        _ => event(
            "POST",
            "/wechat",
            &[
                ("signature", message_signature.as_str()),
                ("timestamp", &timestamp),
                ("nonce", &message_nonce),
            ],
            Some(&text),
            &[("content-type", "text/xml")],
        ),
    };
    let send_body = json!({"touser": test_openid, "msgtype": "text", "text": {"content": "canary"}}).to_string();
    let mut send = event(
        "POST",
        "/messages/custom",
        &[],
        Some(&send_body),
        &[("content-type", "application/json"), ("x-dry-run", "true")],
    );
    // The IAM identity API Gateway puts on a signed request (the route is IAM-authorised).
    send["requestContext"]["authorizer"] = json!({"iam": {"accountId": "canary", "callerId": "pre-traffic-hook",
        "userArn": "pre-traffic-hook", "userId": "pre-traffic-hook", "accessKey": "canary"}});
    let jssdk = event("GET", "/jssdk/config", &[("url", page_url)], None, &[]);
    vec![
        Check {
            name: "callback: URL verification echoes echostr",
            target: Target::Callback,
            event: verify,
            expect: Expect::Echo(echostr),
        },
        Check {
            name: "callback: a text message is answered",
            target: Target::Callback,
            event: message,
            expect: Expect::Reply {
                openid: test_openid.to_owned(),
                sealed,
            },
        },
        Check {
            name: "send: a dry-run custom message is valid and authenticated",
            target: Target::Send,
            event: send,
            expect: Expect::Status("dry_run"),
        },
        Check {
            name: "jssdk: a config is signed",
            target: Target::Jssdk,
            event: jssdk,
            expect: Expect::Signature,
        },
    ]
}

/// An API Gateway HTTP API (payload 2.0) event.
fn event(method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>, headers: &[(&str, &str)]) -> Value {
    let raw_query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().copied())
        .finish();
    let params: serde_json::Map<String, Value> =
        query.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), "pre-traffic-hook.invalid".into());
    for (name, value) in headers {
        header_map.insert((*name).to_owned(), Value::from(*value));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "pre-traffic-hook"},
            "requestId": format!("canary-{:016x}", rand::random::<u64>()),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": false,
    });
    if !params.is_empty() {
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(body) = body {
        event["body"] = body.into();
    }
    event
}

/// Runs every check whose function `invoker` has; the release is good when all passed.
pub async fn run(invoker: &dyn Invoke, checks: &[Check], account: &CallbackAccount) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for check in checks.iter().filter(|c| invoker.has(c.target)) {
        let verdict = match invoker.invoke(check.target, &check.event).await {
            Ok(answer) => judge(&check.expect, &answer, account),
            Err(error) => Err(format!("no answer: {error}")),
        };
        results.push(CheckResult {
            name: check.name,
            passed: verdict.is_ok(),
            detail: verdict.err().unwrap_or_else(|| "ok".to_owned()),
        });
    }
    results
}

fn body_of(answer: &Value) -> String {
    let body = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    if answer.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        STANDARD
            .decode(body)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    } else {
        body.to_owned()
    }
}

fn judge(expect: &Expect, answer: &Value, account: &CallbackAccount) -> Result<(), String> {
    let status = answer.get("statusCode").and_then(Value::as_u64).unwrap_or(0);
    let body = body_of(answer);
    let short: String = body.chars().take(200).collect();
    if status != 200 {
        return Err(format!("status {status}: {short}"));
    }
    match expect {
        Expect::Echo(echostr) if body == *echostr => Ok(()),
        Expect::Echo(_) => Err(format!("echoed {short:?} instead of the echostr")),
        Expect::Reply { .. } if body == "success" => Ok(()),
        Expect::Reply { openid, sealed } => {
            let plain = if *sealed {
                let encrypt =
                    between(&body, "<Encrypt><![CDATA[", "]]></Encrypt>").ok_or("a sealed reply without Encrypt")?;
                let keys = account.keys.as_ref().ok_or("no key to open the reply")?;
                let (opened, _) = keys
                    .decrypt(encrypt)
                    .map_err(|e| format!("the reply does not decrypt: {e}"))?;
                String::from_utf8_lossy(&opened.message).into_owned()
            } else {
                body.clone()
            };
            if plain.contains(&format!("<ToUserName><![CDATA[{openid}]]></ToUserName>")) {
                Ok(())
            } else {
                Err(format!("the reply is not addressed to the sender: {short}"))
            }
        }
        Expect::Status(wanted) => {
            let value: Value = serde_json::from_str(&body).map_err(|_| format!("not JSON: {short}"))?;
            match value.pointer("/data/status").and_then(Value::as_str) {
                Some(status) if status == *wanted => Ok(()),
                other => Err(format!("data.status {other:?}, wanted {wanted:?}")),
            }
        }
        Expect::Signature => {
            let value: Value = serde_json::from_str(&body).map_err(|_| format!("not JSON: {short}"))?;
            let signature = value
                .pointer("/data/signature")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if signature.len() == 40 && signature.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(format!("no signature in {short}"))
            }
        }
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}
