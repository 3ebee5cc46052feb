//! Each invocation's event and the check of its result: every event is new (its own nonce,
//! MsgId, Idempotency-Key or job ids, the current time), so no answer comes from a ledger, and
//! every result is checked to be the one that event asks for.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use shared::protocol::{KeyRing, KeySlot, RANDOM_LEN, msg_signature, url_signature};

use crate::events::{self, HttpRequest};
use crate::scenario::{CALLBACK_AES_KEY, CALLBACK_APPID, CALLBACK_TOKEN, Workload};

/// The most invocations one run can number (they are the low digits of the ids).
pub const MAX_INVOCATIONS: u64 = 999_999;

/// The current epoch millisecond, or one more than the last tag handed out when runs start
/// within the same millisecond (their ids must differ).
fn unique_run_tag() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = events::now_ms();
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last + 1)))
        .unwrap_or(now);
    now.max(previous + 1)
}

/// The events and checks of one run of a workload.
#[derive(Debug)]
pub struct Generator {
    workload: Workload,
    /// The run's start in epoch milliseconds: makes its ids unlike any other run's (the DynamoDB
    /// table is shared by the runs).
    run: u64,
    keys: KeyRing,
}

impl Generator {
    /// A run of `workload` starting now.
    ///
    /// # Panics
    /// Never: the demo EncodingAESKey is valid.
    pub fn new(workload: Workload) -> Self {
        let keys = KeyRing::from_encoding_aes_keys(CALLBACK_APPID, CALLBACK_AES_KEY, None)
            .unwrap_or_else(|_| unreachable!("the demo EncodingAESKey is valid"));
        Self {
            workload,
            run: unique_run_tag(),
            keys,
        }
    }

    /// The Lambda request id of invocation `n`.
    pub fn request_id(&self, n: u64) -> String {
        format!("bench-{}-{n:06}", self.run)
    }

    /// Invocation `n`'s event, as JSON.
    pub fn event(&self, n: u64) -> Vec<u8> {
        let event = match self.workload {
            Workload::CallbackPlain => self.callback_event(n, false),
            Workload::CallbackSafe => self.callback_event(n, true),
            Workload::Send => self.send_event(n),
            Workload::SendWorker => self.worker_event(n),
            Workload::TokenRefresh => events::scheduled_event(&self.request_id(n), "wechat-ha-token-refresh"),
            Workload::Echo => json!({"invocation": n, "run": self.run}),
        };
        serde_json::to_vec(&event).unwrap_or_default()
    }

    /// Whether `result` is what invocation `n`'s event asks for.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn verify(&self, n: u64, result: &[u8]) -> Result<(), String> {
        let result: Value =
            serde_json::from_slice(result).map_err(|e| format!("the result is not JSON ({e}): {}", lossy(result)))?;
        match self.workload {
            Workload::CallbackPlain => expect_text_reply(&http_answer(&result, 200)?, &self.text(n)),
            Workload::CallbackSafe => self.expect_sealed_reply(&http_answer(&result, 200)?, &self.text(n)),
            Workload::Send => expect_sent(&http_answer(&result, 200)?),
            Workload::SendWorker => expect_no_batch_failures(&result),
            Workload::TokenRefresh => expect_tokens_ok(&result),
            Workload::Echo => expect_equal(&result, &json!({"invocation": n, "run": self.run})),
        }
    }

    /// The text message of invocation `n` (the demo bot echoes it).
    fn text(&self, n: u64) -> String {
        format!("bench {} {n}", self.run)
    }

    /// A text message as WeChat posts it: signed, in safe mode also encrypted.
    fn callback_event(&self, n: u64, encrypted: bool) -> Value {
        let timestamp = (events::now_ms() / 1000).to_string();
        let nonce = format!("{}{n:06}", self.run % 1_000_000);
        let message = format!(
            "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[oUser123]]></FromUserName>\
             <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{}]]></Content><MsgId>{}</MsgId></xml>",
            self.text(n),
            self.run * 1_000_000 + n,
        );
        let mut query = vec![
            ("signature", url_signature(CALLBACK_TOKEN, &timestamp, &nonce)),
            ("timestamp", timestamp.clone()),
            ("nonce", nonce.clone()),
            ("openid", "oUser123".to_owned()),
        ];
        let body = if encrypted {
            let encrypt = self
                .keys
                .encrypt(KeySlot::Current, message.as_bytes(), &self.random(n))
                .unwrap_or_default();
            query.push(("encrypt_type", "aes".to_owned()));
            query.push((
                "msg_signature",
                msg_signature(CALLBACK_TOKEN, &timestamp, &nonce, &encrypt),
            ));
            format!(
                "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            )
        } else {
            message
        };
        events::http_event(&HttpRequest {
            method: "POST",
            path: "/wechat",
            query,
            headers: vec![("content-type", "text/xml".to_owned())],
            body: Some(body),
            request_id: self.request_id(n),
            authorizer: None,
        })
    }

    /// The 16 bytes an encrypted message starts with (WeChat's are random; any will do).
    fn random(&self, n: u64) -> [u8; RANDOM_LEN] {
        let mut random = [0u8; RANDOM_LEN];
        random[..8].copy_from_slice(&self.run.to_le_bytes());
        random[8..].copy_from_slice(&n.to_le_bytes());
        random
    }

    /// A custom message through the send API, signed by IAM at API Gateway.
    fn send_event(&self, n: u64) -> Value {
        let payload = json!({"touser": "oUser123", "msgtype": "text", "text": {"content": self.text(n)}});
        events::http_event(&HttpRequest {
            method: "POST",
            path: "/messages/custom",
            query: Vec::new(),
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("idempotency-key", self.request_id(n)),
            ],
            body: Some(payload.to_string()),
            request_id: self.request_id(n),
            authorizer: Some(events::iam_authorizer()),
        })
    }

    /// Two queued sends (a custom and a template message), as the queue delivers them.
    fn worker_event(&self, n: u64) -> Value {
        let id = self.request_id(n);
        let custom = json!({"type": "send", "id": format!("{id}-custom"), "kind": "custom",
            "payload": {"touser": "oUser123", "msgtype": "text", "text": {"content": self.text(n)}}});
        let template = json!({"type": "send", "id": format!("{id}-template"), "kind": "template",
            "payload": {"touser": "oUser123", "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
                        "url": "https://example.com/orders/1001",
                        "data": {"first": {"value": "Order shipped"}, "keyword1": {"value": self.text(n)}}}});
        events::sqs_batch(
            &[
                (format!("{id}-1"), custom.to_string()),
                (format!("{id}-2"), template.to_string()),
            ],
            "wechat-ha-send",
        )
    }

    /// The safe-mode envelope: its signature is the account's, and it decrypts to the echo.
    fn expect_sealed_reply(&self, body: &str, text: &str) -> Result<(), String> {
        let field = |tag: &str| xml_field(body, tag).ok_or_else(|| format!("no <{tag}> in the reply: {body}"));
        let (encrypt, signature) = (field("Encrypt")?, field("MsgSignature")?);
        let (timestamp, nonce) = (field("TimeStamp")?, field("Nonce")?);
        if msg_signature(CALLBACK_TOKEN, &timestamp, &nonce, &encrypt) != signature {
            return Err(format!("the reply's MsgSignature does not verify: {body}"));
        }
        let (decrypted, _) = self
            .keys
            .decrypt(&encrypt)
            .map_err(|e| format!("the reply does not decrypt ({e:?}): {body}"))?;
        expect_text_reply(&String::from_utf8_lossy(&decrypted.message), text)
    }
}

/// The body of an API Gateway response with status `want`.
fn http_answer(result: &Value, want: u64) -> Result<String, String> {
    let status = result["statusCode"].as_u64().unwrap_or_default();
    let body = result["body"].as_str().unwrap_or_default();
    if status != want {
        return Err(format!("status {status}, not {want}: {body}"));
    }
    if result["isBase64Encoded"].as_bool() == Some(true) {
        return Err(format!("a base64 body where text was expected: {body}"));
    }
    Ok(body.to_owned())
}

/// The demo bot's echo of `text`.
fn expect_text_reply(reply: &str, text: &str) -> Result<(), String> {
    let echoed =
        reply.contains("<MsgType><![CDATA[text]]></MsgType>") && reply.contains(&format!("<![CDATA[{text}]]>"));
    if echoed {
        Ok(())
    } else {
        Err(format!("the reply does not echo {text:?}: {reply}"))
    }
}

/// The send API's answer for a message WeChat accepted now (not queued, not replayed).
fn expect_sent(body: &str) -> Result<(), String> {
    let answer: Value = serde_json::from_str(body).map_err(|e| format!("the answer is not JSON ({e}): {body}"))?;
    if answer["data"]["status"] == "sent" {
        Ok(())
    } else {
        Err(format!("not sent: {body}"))
    }
}

/// Every job of the batch done: no item for SQS to redeliver.
fn expect_no_batch_failures(result: &Value) -> Result<(), String> {
    match result["batchItemFailures"].as_array() {
        Some(failures) if failures.is_empty() => Ok(()),
        _ => Err(format!("batch item failures: {result}")),
    }
}

/// Both tokens fresh.
fn expect_tokens_ok(result: &Value) -> Result<(), String> {
    if result["access_token"] == "ok" && result["jsapi_ticket"] == "ok" {
        Ok(())
    } else {
        Err(format!("refresh report: {result}"))
    }
}

fn expect_equal(result: &Value, want: &Value) -> Result<(), String> {
    if result == want {
        Ok(())
    } else {
        Err(format!("{result} is not {want}"))
    }
}

/// The text of `<tag>` in a flat XML document, CDATA or not.
fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let inner = &xml[start..end];
    let inner = inner
        .strip_prefix("<![CDATA[")
        .and_then(|rest| rest.strip_suffix("]]>"))
        .unwrap_or(inner);
    Some(inner.to_owned())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use shared::protocol::{CallbackQuery, CallbackRequest, EncryptMode, open};

    use super::*;

    fn event_of(generator: &Generator, n: u64) -> Value {
        serde_json::from_slice(&generator.event(n)).unwrap()
    }

    fn query_of(event: &Value) -> CallbackQuery<'_> {
        CallbackQuery::from_lookup(move |name| event["queryStringParameters"][name].as_str())
    }

    #[test]
    fn a_plain_message_is_signed_and_new_every_time() {
        let generator = Generator::new(Workload::CallbackPlain);
        let (first, second) = (event_of(&generator, 1), event_of(&generator, 2));
        assert_ne!(
            first["queryStringParameters"]["nonce"],
            second["queryStringParameters"]["nonce"]
        );
        let query = query_of(&first);
        let body = first["body"].as_str().unwrap();
        assert!(body.contains(&generator.text(1)));
        let request = CallbackRequest {
            token: CALLBACK_TOKEN,
            keys: None,
            mode: EncryptMode::Plain,
            query,
            body: body.as_bytes(),
        };
        let opened = open(&request).expect("a validly signed plain message");
        assert!(String::from_utf8_lossy(opened.message()).contains("<MsgId>"));
    }

    #[test]
    fn a_safe_message_opens_with_the_accounts_key() {
        let generator = Generator::new(Workload::CallbackSafe);
        let event = event_of(&generator, 7);
        let query = query_of(&event);
        let body = event["body"].as_str().unwrap();
        let request = CallbackRequest {
            token: CALLBACK_TOKEN,
            keys: Some(&generator.keys),
            mode: EncryptMode::Safe,
            query,
            body: body.as_bytes(),
        };
        let opened = open(&request).expect("a validly encrypted message");
        assert!(String::from_utf8_lossy(opened.message()).contains(&generator.text(7)));
    }

    #[test]
    fn a_sealed_echo_is_accepted_and_a_wrong_one_refused() {
        let generator = Generator::new(Workload::CallbackSafe);
        let reply = format!(
            "<xml><ToUserName><![CDATA[oUser123]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{}]]></Content></xml>",
            generator.text(3)
        );
        let encrypt = generator
            .keys
            .encrypt(KeySlot::Current, reply.as_bytes(), &[1; 16])
            .unwrap();
        let signature = msg_signature(CALLBACK_TOKEN, "1700000000", "42", &encrypt);
        let envelope = format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature><TimeStamp>1700000000</TimeStamp><Nonce><![CDATA[42]]></Nonce></xml>"
        );
        let result = |body: &str| json!({"statusCode": 200, "body": body, "isBase64Encoded": false}).to_string();
        assert_eq!(generator.verify(3, result(&envelope).as_bytes()), Ok(()));
        assert!(
            generator.verify(4, result(&envelope).as_bytes()).is_err(),
            "another invocation's echo"
        );
        let forged = envelope.replace(&signature, &"0".repeat(40));
        assert!(generator.verify(3, result(&forged).as_bytes()).is_err());
    }

    #[test]
    fn only_a_sent_answer_passes_the_send_check() {
        let generator = Generator::new(Workload::Send);
        let answer = |status: u64, state: &str| {
            let body = json!({"code": "OK", "data": {"status": state}}).to_string();
            json!({"statusCode": status, "body": body}).to_string()
        };
        assert_eq!(generator.verify(0, answer(200, "sent").as_bytes()), Ok(()));
        assert!(generator.verify(0, answer(202, "queued").as_bytes()).is_err());
        assert!(generator.verify(0, b"not json").is_err());
    }

    #[test]
    fn runs_started_together_get_distinct_ids() {
        let (first, second) = (Generator::new(Workload::Send), Generator::new(Workload::Send));
        assert_ne!(first.request_id(0), second.request_id(0));
    }

    #[test]
    fn worker_batches_hold_two_distinct_jobs() {
        let generator = Generator::new(Workload::SendWorker);
        let event = event_of(&generator, 5);
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert_ne!(records[0]["messageId"], records[1]["messageId"]);
        assert_eq!(generator.verify(5, br#"{"batchItemFailures":[]}"#), Ok(()));
        assert!(
            generator
                .verify(5, br#"{"batchItemFailures":[{"itemIdentifier":"x"}]}"#)
                .is_err()
        );
    }
}
