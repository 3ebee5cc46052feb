//! Reproduces, byte for byte, every Official Account / Mini Program callback vector of
//! `testdata/wechat_vectors.json` (each carries its public source), plus the WeCom ones with the corpid as
//! receive id. Pay and mini-program `encryptedData` vectors belong to other modules and are skipped by kind.

use std::collections::BTreeSet;

use serde_json::Value;
use shared::protocol::{
    AesKey, BodyFormat, CallbackQuery, CallbackRequest, EncryptMode, Event, KeyRing, KeySlot, MessageKind, OpenError,
    PassiveReply, SealedReply, jssdk_signature, msg_signature, open, parse_message, seal, url_signature, verify_url,
    verify_url_encrypted, verify_url_signature,
};

const VECTORS: &str = include_str!("../testdata/wechat_vectors.json");

/// Kinds owned by other modules (pay notifications, mini-program `encryptedData`).
const NOT_OURS: [&str; 3] = [
    "miniprogram_encrypted_data_aes128cbc",
    "pay_v3_notification",
    "pay_v3_aead_decrypt",
];

fn vectors(kind: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let list: Vec<Value> = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == kind)
        .cloned()
        .collect();
    assert!(!list.is_empty(), "no vector of kind {kind}");
    list
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: missing string field {field}", v["id"]))
}

/// The receive id: `appid` (OA/MP) or `receive_id` (WeCom corpid).
fn receive_id(v: &Value) -> &str {
    v["appid"].as_str().or_else(|| v["receive_id"].as_str()).unwrap()
}

fn ring(v: &Value) -> KeyRing {
    KeyRing::from_encoding_aes_keys(receive_id(v), s(v, "encoding_aes_key"), None).unwrap()
}

fn random16(text: &str) -> [u8; 16] {
    text.as_bytes().try_into().unwrap()
}

#[test]
fn every_vector_kind_is_covered_or_explicitly_not_ours() {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let ours = [
        "get_signature",
        "post_signature_plain",
        "decrypt_request",
        "encrypt_reply",
        "encrypt_fixed_random",
        "wecom_verify_url",
        "jssdk_signature",
    ];
    let kinds: BTreeSet<&str> = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    for kind in kinds {
        assert!(
            ours.contains(&kind) || NOT_OURS.contains(&kind),
            "vector kind {kind} is not exercised"
        );
    }
}

#[test]
fn get_verification_vectors_return_echostr_verbatim() {
    for v in vectors("get_signature") {
        let (token, ts, nonce) = (s(&v, "token"), s(&v, "timestamp"), s(&v, "nonce"));
        let mut parts = [token, ts, nonce];
        parts.sort_unstable();
        assert_eq!(parts.concat(), s(&v, "sorted_concat"));
        assert_eq!(url_signature(token, ts, nonce), s(&v, "expected_signature"));
        let query = CallbackQuery {
            signature: Some(s(&v, "expected_signature")),
            timestamp: Some(ts),
            nonce: Some(nonce),
            echostr: Some(s(&v, "echostr")),
            ..Default::default()
        };
        assert_eq!(verify_url(token, &query), Ok(s(&v, "expected_response_body")));
    }
}

#[test]
fn plain_post_signature_vectors_verify_and_reject_their_negative_cases() {
    for v in vectors("post_signature_plain") {
        let (token, ts, nonce) = (s(&v, "token"), s(&v, "timestamp"), s(&v, "nonce"));
        let expected = s(&v, "expected_signature");
        assert_eq!(url_signature(token, ts, nonce), expected, "{}", v["id"]);
        if let Some(concat) = v["sorted_concat"].as_str() {
            let mut parts = [token, ts, nonce];
            parts.sort_unstable();
            assert_eq!(parts.concat(), concat);
        }
        let body = v["body"].as_str().unwrap_or("<xml/>").as_bytes();
        let query = CallbackQuery {
            signature: Some(expected),
            timestamp: Some(ts),
            nonce: Some(nonce),
            ..Default::default()
        };
        let request = CallbackRequest {
            mode: EncryptMode::Plain,
            token,
            keys: None,
            query,
            body,
        };
        let opened = open(&request).unwrap();
        assert_eq!(opened.message(), body);
        assert!(!opened.was_encrypted());
        if v["body"].is_string() {
            // The official example is a JSON push of an unknown event: parsed, kept as Unknown.
            let msg = parse_message(opened.message()).unwrap();
            assert_eq!(msg.header.create_time.to_string(), ts);
            assert!(matches!(msg.event(), Some(Event::Unknown { event, .. }) if event == "debug_demo"));
        }
        for negative in v["negative_cases"].as_array().into_iter().flatten() {
            let bad = negative["signature"].as_str().unwrap();
            assert!(!verify_url_signature(token, ts, nonce, bad));
            let query = CallbackQuery {
                signature: Some(bad),
                ..query
            };
            let request = CallbackRequest { query, ..request };
            assert_eq!(open(&request).unwrap_err(), OpenError::BadSignature);
        }
    }
}

/// The encrypted request body of a decrypt vector: its XML/JSON body, or an XML envelope around `encrypt`.
fn request_body(v: &Value) -> String {
    match &v["body"] {
        Value::String(body) => body.clone(),
        Value::Object(_) => serde_json::to_string(&v["body"]).unwrap(),
        _ => format!("<xml><Encrypt><![CDATA[{}]]></Encrypt></xml>", s(v, "encrypt")),
    }
}

fn encrypt_value(v: &Value) -> String {
    match &v["body"] {
        Value::Object(body) => body["Encrypt"].as_str().unwrap().to_owned(),
        Value::String(body) if body.starts_with('<') => {
            let start = body.find("<Encrypt><![CDATA[").unwrap() + "<Encrypt><![CDATA[".len();
            let end = body[start..].find("]]>").unwrap() + start;
            body[start..end].to_owned()
        }
        _ => s(v, "encrypt").to_owned(),
    }
}

#[test]
fn decrypt_request_vectors_open_to_the_expected_message() {
    for v in vectors("decrypt_request") {
        let id = v["id"].as_str().unwrap();
        let ring = ring(&v);
        let token = s(&v, "token");
        let (ts, nonce) = match v["query"].as_object() {
            Some(q) => (q["timestamp"].as_str().unwrap(), q["nonce"].as_str().unwrap()),
            None => (s(&v, "timestamp"), s(&v, "nonce")),
        };
        let expected_sig = s(&v, "expected_msg_signature");
        let encrypt = encrypt_value(&v);
        assert_eq!(msg_signature(token, ts, nonce, &encrypt), expected_sig, "{id}");

        let body = request_body(&v);
        let query = CallbackQuery {
            timestamp: Some(ts),
            nonce: Some(nonce),
            encrypt_type: Some("aes"),
            msg_signature: Some(expected_sig),
            signature: v["query"]["signature"].as_str(),
            echostr: None,
        };
        let mode = if id.contains("compat") {
            EncryptMode::Compatible
        } else {
            EncryptMode::Safe
        };
        let request = CallbackRequest {
            mode,
            token,
            keys: Some(&ring),
            query,
            body: body.as_bytes(),
        };
        let opened = open(&request).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(opened.message(), s(&v, "expected_msg").as_bytes(), "{id}");
        assert_eq!(opened.key_slot(), Some(KeySlot::Current));
        let expected_format = if v["body"].is_object() {
            BodyFormat::Json
        } else {
            BodyFormat::Xml
        };
        assert_eq!(opened.format(), expected_format, "{id}");

        // The decrypted payload layout: random prefix and receive id as the vector states.
        let decrypted = AesKey::from_encoding_aes_key(s(&v, "encoding_aes_key"))
            .unwrap()
            .decrypt(s(&v, "expected_receive_id"), &encrypt)
            .unwrap();
        assert_eq!(&decrypted.random, s(&v, "expected_decrypted_random").as_bytes(), "{id}");
        if let Some(len) = v["expected_msg_len"].as_u64() {
            assert_eq!(decrypted.message.len() as u64, len);
        }
        // Every decrypted XML message parses; the text ones are typed.
        if opened.format() == BodyFormat::Xml {
            let msg = parse_message(opened.message()).unwrap();
            assert!(matches!(msg.kind, MessageKind::Text { .. }), "{id}");
        }
        // A wrong receive id is the same uniform failure.
        let stranger = KeyRing::from_encoding_aes_keys("wx_not_this_app", s(&v, "encoding_aes_key"), None).unwrap();
        let request = CallbackRequest {
            keys: Some(&stranger),
            ..request
        };
        assert_eq!(open(&request).unwrap_err(), OpenError::Decrypt, "{id}");
    }
}

#[test]
fn safe_mode_request_also_carries_a_valid_url_signature() {
    let v = vectors("decrypt_request")
        .into_iter()
        .find(|v| v["id"] == "official_push_safe_mode_request")
        .unwrap();
    let q = &v["query"];
    let sig = q["signature"].as_str().unwrap();
    assert!(verify_url_signature(
        s(&v, "token"),
        q["timestamp"].as_str().unwrap(),
        q["nonce"].as_str().unwrap(),
        sig
    ));
}

#[test]
fn compatible_mode_body_opens_as_plaintext_with_the_plain_signature() {
    let v = vectors("decrypt_request")
        .into_iter()
        .find(|v| v["id"] == "official_oa_sample_compat_mode_decrypt")
        .unwrap();
    let (token, ts, nonce) = (s(&v, "token"), s(&v, "timestamp"), s(&v, "nonce"));
    let sig = s(&v, "computed_plain_signature");
    let query = CallbackQuery {
        signature: Some(sig),
        timestamp: Some(ts),
        nonce: Some(nonce),
        ..Default::default()
    };
    let body = s(&v, "body").as_bytes();
    let opened = open(&CallbackRequest {
        mode: EncryptMode::Compatible,
        token,
        keys: None,
        query,
        body,
    })
    .unwrap();
    let msg = parse_message(opened.message()).unwrap();
    assert_eq!(
        msg.kind,
        MessageKind::Text {
            content: "abcdteT".into()
        }
    );
    assert_eq!(
        msg.dedup_key(),
        "6054768590064713728:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1409735668"
    );
    let safe = open(&CallbackRequest {
        mode: EncryptMode::Safe,
        token,
        keys: None,
        query,
        body,
    });
    assert_eq!(safe.unwrap_err(), OpenError::PlaintextRejected);
}

#[test]
fn encrypt_reply_vector_reproduces_encrypt_signature_and_json_envelope() {
    for v in vectors("encrypt_reply") {
        let ring = ring(&v);
        let (token, ts, nonce) = (s(&v, "token"), s(&v, "timestamp"), s(&v, "nonce"));
        let random = random16(s(&v, "random"));
        let msg = s(&v, "msg");
        let encrypt = ring.encrypt(KeySlot::Current, msg.as_bytes(), &random).unwrap();
        assert_eq!(encrypt, s(&v, "expected_encrypt"));
        assert_eq!(
            msg_signature(token, ts, nonce, &encrypt),
            s(&v, "expected_msg_signature")
        );

        // Through the request path: a JSON safe-mode request with the same key is answered with the JSON envelope.
        let req_vector = vectors("decrypt_request")
            .into_iter()
            .find(|r| r["id"] == "official_push_safe_mode_request");
        let req_vector = req_vector.unwrap();
        assert_eq!(s(&req_vector, "encoding_aes_key"), s(&v, "encoding_aes_key"));
        let body = request_body(&req_vector);
        let q = &req_vector["query"];
        let query = CallbackQuery {
            timestamp: q["timestamp"].as_str(),
            nonce: q["nonce"].as_str(),
            encrypt_type: Some("aes"),
            msg_signature: q["msg_signature"].as_str(),
            ..Default::default()
        };
        let request = CallbackRequest {
            mode: EncryptMode::Safe,
            token,
            keys: Some(&ring),
            query,
            body: body.as_bytes(),
        };
        let opened = open(&request).unwrap();
        let sealed = seal(
            PassiveReply::Xml(msg.to_owned()),
            &opened,
            token,
            ts.parse().unwrap(),
            nonce,
            &random,
        )
        .unwrap();
        let SealedReply::Encrypted { body: sealed, .. } = sealed else {
            panic!("an encrypted request gets an envelope")
        };
        let sealed: Value = serde_json::from_str(&sealed).unwrap();
        assert_eq!(sealed, v["expected_reply_json"]);
    }
}

#[test]
fn encrypt_fixed_random_vector_counts_utf8_bytes() {
    for v in vectors("encrypt_fixed_random") {
        let ring = ring(&v);
        let msg = s(&v, "msg");
        let encrypt = ring
            .encrypt(KeySlot::Current, msg.as_bytes(), &random16(s(&v, "random")))
            .unwrap();
        assert_eq!(encrypt, s(&v, "expected_encrypt"));
        let (decrypted, _) = ring.decrypt(&encrypt).unwrap();
        assert_eq!(decrypted.message, msg.as_bytes());
    }
}

#[test]
fn wecom_encrypted_echostr_vectors_decrypt_with_the_corpid() {
    for v in vectors("wecom_verify_url") {
        let ring = ring(&v);
        let (token, ts, nonce, echostr) = (s(&v, "token"), s(&v, "timestamp"), s(&v, "nonce"), s(&v, "echostr"));
        assert_eq!(
            msg_signature(token, ts, nonce, echostr),
            s(&v, "expected_msg_signature")
        );
        let query = CallbackQuery {
            timestamp: Some(ts),
            nonce: Some(nonce),
            echostr: Some(echostr),
            msg_signature: Some(s(&v, "expected_msg_signature")),
            ..Default::default()
        };
        let plain = verify_url_encrypted(token, &ring, &query).unwrap();
        assert_eq!(plain, s(&v, "expected_echo_plaintext").as_bytes());
        for negative in v["negative_cases"].as_array().into_iter().flatten() {
            let query = CallbackQuery {
                nonce: negative["nonce"].as_str(),
                ..query
            };
            assert_eq!(verify_url_encrypted(token, &ring, &query), Err(OpenError::BadSignature));
        }
    }
}

#[test]
fn jssdk_signature_vector_reproduces() {
    for v in vectors("jssdk_signature") {
        let (ticket, noncestr, ts, url) = (
            s(&v, "jsapi_ticket"),
            s(&v, "noncestr"),
            s(&v, "timestamp"),
            s(&v, "url"),
        );
        assert_eq!(
            format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={ts}&url={url}"),
            s(&v, "string1")
        );
        assert_eq!(jssdk_signature(ticket, noncestr, ts, url), s(&v, "expected_signature"));
        assert_eq!(
            jssdk_signature(ticket, noncestr, ts, &format!("{url}#frag")),
            s(&v, "expected_signature")
        );
    }
}
