//! Bad input to the callback: each gets a clear status, nothing is stored, nothing panics.

use lambda_http::Body;
use shared::protocol::{KeyRing, msg_signature, url_signature};
use shared::routes::callback;
use shared::store::StateStore;
use wechat_ha_tests::*;

/// A plaintext POST signed correctly, carrying `body`.
fn signed_plain(body: Body) -> lambda_http::Request {
    with_body("callback-text-post.json", body)
}

/// An encrypted POST whose `Encrypt` is `encrypt`, with a correct msg_signature over it.
fn signed_encrypted(encrypt: &str) -> lambda_http::Request {
    let (timestamp, nonce) = ("1700000200", "67890");
    let query = format!(
        "signature={}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={}",
        url_signature(TOKEN, timestamp, nonce),
        msg_signature(TOKEN, timestamp, nonce, encrypt)
    );
    let params: std::collections::HashMap<String, String> = query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let body = format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
    let request = with_body("callback-encrypted-post.json", Body::Text(body));
    lambda_http::RequestExt::with_query_string_parameters(request, params)
}

async fn status_and_code(mode: &str, request: lambda_http::Request) -> (u16, String, usize) {
    let (store, clock) = memory_store();
    let deps = deps_on(settings(mode, &[]), store.clone(), clock);
    let response = callback::handle(&deps, request).await;
    let code = if response.status() == 200 {
        String::new()
    } else {
        body_json(&response)["code"].to_string()
    };
    (response.status().as_u16(), code, store.len())
}

#[tokio::test]
async fn missing_signature_is_403() {
    // The signed event with its query taken away: no map and no query in the URI, as
    // lambda_http builds a request that arrived without one.
    let mut json = event_json("callback-text-post.json");
    let fields = json.as_object_mut().unwrap();
    fields.remove("queryStringParameters");
    fields.insert("rawQueryString".into(), "".into());
    let request = lambda_http::request::from_str(&json.to_string()).unwrap();
    assert_eq!(request.uri().query(), None);
    assert!(lambda_http::RequestExt::query_string_parameters_ref(&request).is_none());
    assert_eq!(
        status_and_code("compatible", request).await,
        (403, "\"INVALID_SIGNATURE\"".into(), 0)
    );
}

#[tokio::test]
async fn plaintext_post_in_safe_mode_is_403() {
    assert_eq!(status_and_code("safe", event("callback-text-post.json")).await.0, 403);
}

#[tokio::test]
async fn malformed_xml_doctype_entity_non_utf8_and_repeated_json_fields_are_400() {
    let bodies = [
        Body::Text("<xml><ToUserName>".into()),
        Body::Text("not xml at all".into()),
        Body::Text(r#"<!DOCTYPE xml [<!ENTITY x "boom">]><xml><ToUserName>&x;</ToUserName></xml>"#.into()),
        Body::Text("<?xml version=\"1.0\"?><!DOCTYPE xml SYSTEM \"file:///etc/passwd\"><xml/>".into()),
        Body::Binary(vec![
            0x3c, 0x78, 0x6d, 0x6c, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x78, 0x6d, 0x6c, 0x3e,
        ]),
        Body::Text("<xml><MsgType>text</MsgType></xml>".into()),
        // JSON pushes: a field named twice, under one key or an alias's two spellings.
        Body::Text(
            r#"{"ToUserName":"gh_1","FromUserName":"u","CreateTime":1700000200,"MsgType":"text","Content":"hi","Content":"forged","MsgId":1}"#
                .into(),
        ),
        Body::Text(
            r#"{"ToUserName":"gh_1","FromUserName":"u","CreateTime":1700000200,"MsgType":"text","Content":"hi","MsgId":1,"MsgID":2}"#
                .into(),
        ),
    ];
    for body in bodies {
        let shown = format!("{body:?}");
        assert_eq!(
            status_and_code("compatible", signed_plain(body)).await,
            (400, "\"BAD_REQUEST\"".into(), 0),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let big = format!("<xml><Content>{}</Content></xml>", "a".repeat(64 * 1024));
    let (status, code, stored) = status_and_code("compatible", signed_plain(Body::Text(big))).await;
    assert_eq!((status, code.as_str(), stored), (413, "\"PAYLOAD_TOO_LARGE\"", 0));
}

#[tokio::test]
async fn every_decryption_failure_is_the_same_400() {
    let keys = KeyRing::from_encoding_aes_keys(APPID, AES_KEY, None).unwrap();
    let valid = keys
        .encrypt(shared::protocol::KeySlot::Current, b"<xml/>", &[7; 16])
        .unwrap();
    let other_app = KeyRing::from_encoding_aes_keys("wxffffffffffffffff", AES_KEY, None)
        .unwrap()
        .encrypt(shared::protocol::KeySlot::Current, b"<xml/>", &[7; 16])
        .unwrap();
    let cases = [
        ("bad base64", "!!!not-base64!!!".to_owned()),
        ("truncated", valid[..valid.len() - 24].to_owned() + "===="),
        ("one block short", {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(&valid).unwrap();
            base64::engine::general_purpose::STANDARD.encode(&raw[..raw.len() - 16])
        }),
        ("wrong appid", other_app),
    ];
    let mut bodies = Vec::new();
    for (what, encrypt) in cases {
        let (store, clock) = memory_store();
        let deps = deps_on(settings("safe", &[]), store.clone(), clock);
        let response = callback::handle(&deps, signed_encrypted(&encrypt)).await;
        assert_eq!(response.status(), 400, "{what}");
        assert!(store.is_empty(), "{what}: nothing stored");
        let mut body = body_json(&response);
        body["request_id"] = serde_json::Value::Null;
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "uniform answer: {bodies:?}"
    );
}

#[tokio::test]
async fn unknown_msg_type_is_answered_success_and_recorded() {
    let body = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
                <CreateTime>1700000000</CreateTime><MsgType><![CDATA[hologram]]></MsgType><MsgId>77</MsgId></xml>";
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
    let response = callback::handle(&deps, signed_plain(Body::Text(body.into()))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_text(&response), "success");
    let records = store.query("msg#gh_1").await.expect("query");
    assert_eq!(records.len(), 1, "the unknown message is recorded in the ledger");
    assert_eq!(store.len(), 2, "and its signed query in the replay guard, nothing else");
}

#[tokio::test]
async fn wrong_method_is_405_with_the_unified_body() {
    let (parts, body) = event("callback-text-post.json").into_parts();
    let mut request = http::Request::from_parts(parts, body);
    *request.method_mut() = http::Method::DELETE;
    assert_eq!(status_and_code("compatible", request).await.0, 405);
}
