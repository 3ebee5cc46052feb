//! `open` / `verify_url`: every acceptance rule and every rejection with its status.

use super::*;
use crate::protocol::signature::{msg_signature, url_signature};

const TOKEN: &str = "tok";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PLAIN_BODY: &[u8] = b"<xml><ToUserName>a</ToUserName></xml>";

fn ring() -> KeyRing {
    KeyRing::from_encoding_aes_keys("wxapp", KEY, None).unwrap()
}

fn plain_query(signature: &str) -> CallbackQuery<'_> {
    CallbackQuery {
        signature: Some(signature),
        timestamp: Some("100"),
        nonce: Some("200"),
        ..Default::default()
    }
}

fn aes_query(msg_sig: &str) -> CallbackQuery<'_> {
    CallbackQuery {
        timestamp: Some("100"),
        nonce: Some("200"),
        encrypt_type: Some("aes"),
        msg_signature: Some(msg_sig),
        ..Default::default()
    }
}

/// An XML body with `Encrypt` and the matching msg_signature.
fn encrypted(ring: &KeyRing, message: &[u8]) -> (String, String) {
    let enc = ring.encrypt(KeySlot::Current, message, &[5; 16]).unwrap();
    let sig = msg_signature(TOKEN, "100", "200", &enc);
    (
        format!("<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"),
        sig,
    )
}

fn request<'a>(
    mode: EncryptMode,
    keys: Option<&'a KeyRing>,
    query: CallbackQuery<'a>,
    body: &'a [u8],
) -> CallbackRequest<'a> {
    CallbackRequest {
        mode,
        token: TOKEN,
        keys,
        query,
        body,
    }
}

#[test]
fn plain_post_with_valid_signature_opens_to_the_body_itself() {
    let sig = url_signature(TOKEN, "100", "200");
    for mode in [EncryptMode::Plain, EncryptMode::Compatible] {
        let opened = open(&request(mode, None, plain_query(&sig), PLAIN_BODY)).unwrap();
        assert_eq!(opened.message(), PLAIN_BODY);
        assert!(!opened.was_encrypted());
        assert_eq!(opened.key_slot(), None);
        assert!(matches!(opened.into_message(), Cow::Borrowed(_)));
    }
}

#[test]
fn missing_or_wrong_signature_is_forbidden() {
    let sig = url_signature(TOKEN, "100", "200");
    let wrong = url_signature(TOKEN, "100", "201");
    let cases = [
        (
            CallbackQuery {
                signature: None,
                ..plain_query(&sig)
            },
            OpenError::MissingSignature("signature"),
        ),
        (
            CallbackQuery {
                timestamp: None,
                ..plain_query(&sig)
            },
            OpenError::MissingSignature("timestamp"),
        ),
        (
            CallbackQuery {
                nonce: None,
                ..plain_query(&sig)
            },
            OpenError::MissingSignature("nonce"),
        ),
        (plain_query(&wrong), OpenError::BadSignature),
        (
            CallbackQuery {
                encrypt_type: Some("raw"),
                ..plain_query(&wrong)
            },
            OpenError::BadSignature,
        ),
    ];
    for (query, expected) in cases {
        let err = open(&request(EncryptMode::Plain, None, query, PLAIN_BODY)).unwrap_err();
        assert_eq!(err, expected);
        assert!(err.is_unauthenticated());
    }
}

#[test]
fn safe_mode_rejects_plaintext_post_even_with_a_valid_signature() {
    let sig = url_signature(TOKEN, "100", "200");
    let ring = ring();
    let err = open(&request(EncryptMode::Safe, Some(&ring), plain_query(&sig), PLAIN_BODY)).unwrap_err();
    assert_eq!(err, OpenError::PlaintextRejected);
    assert!(err.is_unauthenticated());
}

#[test]
fn encrypted_post_is_verified_and_decrypted_in_every_mode_with_keys() {
    let ring = ring();
    let (body, sig) = encrypted(&ring, b"<xml>secret</xml>");
    for mode in [EncryptMode::Plain, EncryptMode::Compatible, EncryptMode::Safe] {
        let opened = open(&request(mode, Some(&ring), aes_query(&sig), body.as_bytes())).unwrap();
        assert_eq!(opened.message(), b"<xml>secret</xml>");
        assert_eq!(opened.key_slot(), Some(KeySlot::Current));
        assert_eq!(opened.format(), BodyFormat::Xml);
    }
}

#[test]
fn encrypted_post_without_keys_is_a_bad_request() {
    let ring = ring();
    let (body, sig) = encrypted(&ring, b"<xml/>");
    let err = open(&request(EncryptMode::Plain, None, aes_query(&sig), body.as_bytes())).unwrap_err();
    assert_eq!((err.clone(), err.is_unauthenticated()), (OpenError::NoKeys, false));
}

#[test]
fn encrypted_post_with_missing_or_wrong_msg_signature_is_forbidden() {
    let ring = ring();
    let (body, sig) = encrypted(&ring, b"<xml/>");
    let url_sig = url_signature(TOKEN, "100", "200");
    let cases = [
        (
            CallbackQuery {
                msg_signature: None,
                signature: Some(&url_sig),
                ..aes_query(&sig)
            },
            OpenError::MissingSignature("msg_signature"),
        ),
        (aes_query(&url_sig), OpenError::BadSignature),
        (
            CallbackQuery {
                nonce: Some("201"),
                ..aes_query(&sig)
            },
            OpenError::BadSignature,
        ),
    ];
    for (query, expected) in cases {
        let err = open(&request(EncryptMode::Safe, Some(&ring), query, body.as_bytes())).unwrap_err();
        assert_eq!((err.clone(), err.is_unauthenticated()), (expected, true));
    }
}

#[test]
fn unusable_encrypted_bodies_are_bad_requests() {
    let ring = ring();
    let sig = msg_signature(TOKEN, "100", "200", "x");
    let bodies: [&[u8]; 6] = [
        b"<xml><ToUserName>a</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt>x</Encrypt>",
        b"<!DOCTYPE x [<!ENTITY e \"x\">]><xml><Encrypt>&e;</Encrypt></xml>",
        b"<xml><Encrypt>\xff</Encrypt></xml>",
        b"{\"Encrypt\": 5",
    ];
    for body in bodies {
        let err = open(&request(EncryptMode::Safe, Some(&ring), aes_query(&sig), body)).unwrap_err();
        assert!(matches!(err, OpenError::MalformedBody(_)), "{err:?}");
        assert!(!err.is_unauthenticated());
    }
}

#[test]
fn every_decryption_failure_after_a_valid_signature_is_one_uniform_error() {
    let ring = ring();
    let other_app = KeyRing::from_encoding_aes_keys("wxother", KEY, None).unwrap();
    let foreign = other_app.encrypt(KeySlot::Current, b"<xml/>", &[1; 16]).unwrap();
    for encrypt in [
        "%%%not-base64%%%",
        "AAAA",
        foreign.as_str(),
        &foreign[..foreign.len() - 8],
    ] {
        let sig = msg_signature(TOKEN, "100", "200", encrypt);
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let err = open(&request(
            EncryptMode::Safe,
            Some(&ring),
            aes_query(&sig),
            body.as_bytes(),
        ))
        .unwrap_err();
        assert_eq!(err, OpenError::Decrypt);
        assert_eq!(err.to_string().as_str(), "decryption failed");
    }
}

#[test]
fn get_verification_returns_echostr_verbatim_after_the_signature() {
    let sig = url_signature(TOKEN, "100", "200");
    let query = CallbackQuery {
        echostr: Some("4375120948345356249"),
        ..plain_query(&sig)
    };
    assert_eq!(verify_url(TOKEN, &query), Ok("4375120948345356249"));
    assert_eq!(verify_url(TOKEN, &plain_query(&sig)), Err(OpenError::MissingEchostr));
    assert!(!OpenError::MissingEchostr.is_unauthenticated());
    let forged = CallbackQuery {
        echostr: Some("1"),
        ..plain_query("0000000000000000000000000000000000000000")
    };
    assert_eq!(verify_url(TOKEN, &forged), Err(OpenError::BadSignature));
}

#[test]
fn encrypted_echostr_is_checked_and_decrypted() {
    let ring = ring();
    let echostr = ring
        .encrypt(KeySlot::Current, b"1616140317555161061", &[2; 16])
        .unwrap();
    let sig = msg_signature(TOKEN, "100", "200", &echostr);
    let query = CallbackQuery {
        echostr: Some(&echostr),
        ..aes_query(&sig)
    };
    assert_eq!(
        verify_url_encrypted(TOKEN, &ring, &query).unwrap(),
        b"1616140317555161061"
    );
    let tampered = CallbackQuery {
        echostr: Some("AAAA"),
        ..aes_query(&sig)
    };
    assert_eq!(
        verify_url_encrypted(TOKEN, &ring, &tampered),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn query_is_read_through_a_lookup_and_debug_hides_the_token() {
    let pairs = [("signature", "s"), ("encrypt_type", "AES"), ("msg_signature", "m")];
    let query = CallbackQuery::from_lookup(|k| pairs.iter().find(|(name, _)| *name == k).map(|(_, v)| *v));
    assert_eq!(
        (query.signature, query.msg_signature, query.nonce),
        (Some("s"), Some("m"), None)
    );
    assert!(query.is_encrypted());
    let secret = CallbackRequest {
        token: "s3cr3t-value",
        ..request(EncryptMode::Plain, None, query, b"body")
    };
    let debug = format!("{secret:?}");
    assert!(!debug.contains("s3cr3t-value") && debug.contains("<redacted>"));
}

#[test]
fn from_pairs_reads_the_callback_parameters_and_keeps_the_first_value() {
    let pairs = [
        ("signature", "s1"),
        ("openid", "o"),
        ("timestamp", "1700000000"),
        ("signature", "s2"),
        ("nonce", "7"),
        ("encrypt_type", "aes"),
        ("msg_signature", "m"),
        ("echostr", "e"),
    ];
    let query = CallbackQuery::from_pairs(pairs.into_iter());
    assert_eq!(
        query,
        CallbackQuery {
            signature: Some("s1"),
            timestamp: Some("1700000000"),
            nonce: Some("7"),
            echostr: Some("e"),
            encrypt_type: Some("aes"),
            msg_signature: Some("m"),
        }
    );
    assert!(query.is_encrypted());
    assert_eq!(CallbackQuery::from_pairs(std::iter::empty()), CallbackQuery::default());
}
