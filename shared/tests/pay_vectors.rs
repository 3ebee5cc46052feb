//! WeChat Pay cryptography against the published and generated vectors (`testdata/pay/SOURCES.md`):
//! notices verify and decrypt, probes / stale / tampered ones are refused, requests are signed
//! byte for byte, and a certificate-signed and a public-key-signed notice are both accepted by
//! one deployment's keys.

use serde_json::Value;
use shared::pay::crypto::{decrypt_resource, encrypt_resource, signed_message};
use shared::pay::{
    DecryptError, KeyError, Merchant, NoticeError, NoticeHeaders, Outgoing, PayEvent, PayKeys, PaySigner,
    PlatformCertificate, SignatureError, authorization, decrypt, verify,
};

fn json(path: &str) -> Value {
    let full = format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))).expect("JSON")
}

fn vector(id: &str) -> Value {
    json("wechat_vectors.json")["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id}"))
}

fn generated(id: &str) -> Value {
    json("pay/generated_notify_vectors.json")
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("vector {id}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key}"))
}

fn headers(v: &Value) -> NoticeHeaders<'_> {
    let h = &v["headers"];
    NoticeHeaders {
        serial: h["Wechatpay-Serial"].as_str(),
        signature: h["Wechatpay-Signature"].as_str(),
        timestamp: h["Wechatpay-Timestamp"].as_str(),
        nonce: h["Wechatpay-Nonce"].as_str(),
        signature_type: h["Wechatpay-Signature-Type"].as_str(),
    }
}

/// The platform certificate of the Go SDK's notice vector (its key signs every vector here).
fn certificate() -> PlatformCertificate {
    PlatformCertificate::from_pem(text(&vector("wechatpay_go_notify_full"), "platform_certificate_pem"))
        .expect("certificate")
}

fn go_test_key() -> PaySigner {
    PaySigner::from_pkcs8_pem(text(&json("pay/signing_vectors.json"), "pkcs8_pem")).expect("the Go SDK test key")
}

const NOW: i64 = 1_624_523_846;

#[test]
fn the_go_sdks_notice_verifies_with_its_certificate_and_decrypts() {
    let v = vector("wechatpay_go_notify_full");
    let certificate = certificate();
    assert_eq!(
        certificate.serial,
        text(&v, "platform_cert_serial_hex"),
        "serial without the DER sign byte"
    );
    assert_eq!(
        certificate.not_after_secs, 1_934_873_723,
        "notAfter 2031-04-25T08:55:23Z"
    );
    let keys = PayKeys::new(None, vec![certificate]);
    let body = text(&v, "body").as_bytes();
    verify(&keys, &headers(&v), body, NOW).expect("authentic");
    // Its resource uses a 16-byte APIv3 key (AES-128-GCM), unlike production's 32 bytes.
    let opened = decrypt(text(&v, "api_v3_key").as_bytes(), body).expect("decrypts");
    let PayEvent::Other { event_type, resource } = opened.event else {
        panic!("a pay-score event")
    };
    assert_eq!(event_type, "PAYSCORE.USER_OPEN_SERVICE");
    let expected: Value = serde_json::from_str(text(&v, "expected_resource_plaintext")).expect("JSON");
    assert_eq!(resource, expected);
}

#[test]
fn one_changed_byte_a_probe_or_a_stale_timestamp_is_refused() {
    let v = vector("wechatpay_go_notify_full");
    let keys = PayKeys::new(None, vec![certificate()]);
    let body = text(&v, "body");
    let mut tampered = body.to_owned();
    tampered.push(' ');
    assert_eq!(
        verify(&keys, &headers(&v), tampered.as_bytes(), NOW),
        Err(NoticeError::Signature(SignatureError::Mismatch))
    );
    let probe = NoticeHeaders {
        signature: Some("WECHATPAY/SIGNTEST/not-a-signature"),
        ..headers(&v)
    };
    let refused = verify(&keys, &probe, body.as_bytes(), NOW).unwrap_err();
    assert_eq!(refused.reason(), "probe");
    for (now, ok) in [
        (NOW + 299, true),
        (NOW + 300, false),
        (NOW - 299, true),
        (NOW - 300, false),
    ] {
        assert_eq!(
            verify(&keys, &headers(&v), body.as_bytes(), now).is_ok(),
            ok,
            "now {now}"
        );
    }
    let unknown = NoticeHeaders {
        serial: Some("0123456789ABCDEF"),
        ..headers(&v)
    };
    assert!(matches!(
        verify(&keys, &unknown, body.as_bytes(), NOW),
        Err(NoticeError::Key(KeyError::Unknown(_)))
    ));
    let missing = NoticeHeaders {
        nonce: None,
        ..headers(&v)
    };
    assert_eq!(
        verify(&keys, &missing, body.as_bytes(), NOW).unwrap_err().reason(),
        "missing_header"
    );
    // An expired certificate is refused, not used.
    assert!(matches!(
        verify(&keys, &headers(&v), body.as_bytes(), 1_934_873_723 + 1),
        Err(NoticeError::Stale | NoticeError::Key(KeyError::Expired(_)))
    ));
    let keys_later = PayKeys::new(None, vec![certificate()]);
    let selected = keys_later.select("D7CE59D1F522D701", 1_934_873_724);
    assert_eq!(selected.unwrap_err(), KeyError::Expired("D7CE59D1F522D701".into()));
}

#[test]
fn aes_gcm_vectors_reproduce_and_tampering_is_detected() {
    let v = vector("wechatpay_go_aes_gcm");
    let plain = decrypt_resource(
        text(&v, "api_v3_key").as_bytes(),
        text(&v, "nonce"),
        text(&v, "associated_data"),
        text(&v, "ciphertext_b64"),
    )
    .expect("decrypts");
    assert_eq!(plain, text(&v, "expected_plaintext").as_bytes());
    assert_eq!(
        decrypt_resource(
            b"testAPIv3Key1111",
            text(&v, "nonce"),
            text(&v, "associated_data"),
            text(&v, "ciphertext_b64")
        ),
        Err(DecryptError::Tampered)
    );
    let v = vector("generated_local_aes256gcm");
    let key = text(&v, "api_v3_key").as_bytes();
    let plain = decrypt_resource(
        key,
        text(&v, "nonce"),
        text(&v, "associated_data"),
        text(&v, "ciphertext_b64"),
    )
    .expect("AES-256");
    assert_eq!(plain, text(&v, "expected_plaintext").as_bytes());
    for (nonce, aad) in [
        ("abcdefghijkm", "transaction"),
        ("abcdefghijkl", "transactioN"),
        ("abcdefghijkl", ""),
    ] {
        assert_eq!(
            decrypt_resource(key, nonce, aad, text(&v, "ciphertext_b64")),
            Err(DecryptError::Tampered),
            "{nonce} {aad}"
        );
    }
    assert!(matches!(
        decrypt_resource(key, "short", "", text(&v, "ciphertext_b64")),
        Err(DecryptError::Malformed(_))
    ));
    let sealed = encrypt_resource(key, "abcdefghijkl", "transaction", b"round trip").expect("encrypt");
    assert_eq!(
        decrypt_resource(key, "abcdefghijkl", "transaction", &sealed).expect("decrypt"),
        b"round trip"
    );
}

#[test]
fn generated_transaction_and_refund_notices_verify_decrypt_and_type() {
    let keys = PayKeys::new(None, vec![certificate()]);
    let v = generated("generated_local_notify_transaction_success");
    let body = text(&v, "body").as_bytes();
    verify(&keys, &headers(&v), body, NOW).expect("authentic");
    let opened = decrypt(text(&v, "api_v3_key").as_bytes(), body).expect("decrypts");
    let PayEvent::Transaction(transaction) = &opened.event else {
        panic!("a transaction")
    };
    assert_eq!(
        (transaction.out_trade_no.as_str(), transaction.trade_state.as_str()),
        ("1217752501201407033233368018", "SUCCESS")
    );
    assert_eq!(transaction.amount.as_ref().map(|a| a.total), Some(100));
    assert_eq!(
        opened.event.order_key(&opened.id),
        "trade:1217752501201407033233368018:SUCCESS"
    );
    let v = generated("generated_local_notify_refund_success");
    let body = text(&v, "body").as_bytes();
    verify(&keys, &headers(&v), body, NOW).expect("authentic");
    let PayEvent::Refund(refund) = decrypt(text(&v, "api_v3_key").as_bytes(), body)
        .expect("decrypts")
        .event
    else {
        panic!("a refund")
    };
    assert_eq!(refund.refund_status, "SUCCESS");
    let v = generated("generated_local_certificates_response");
    let answer: Value = serde_json::from_str(text(&v, "body")).expect("JSON");
    let encrypted = &answer["data"][0]["encrypt_certificate"];
    let pem = decrypt_resource(
        text(&v, "api_v3_key").as_bytes(),
        text(encrypted, "nonce"),
        text(encrypted, "associated_data"),
        text(encrypted, "ciphertext"),
    )
    .expect("the certificate decrypts");
    assert_eq!(
        String::from_utf8(pem).expect("PEM"),
        text(&v, "expected_certificate_pem")
    );
    verify(&keys, &headers(&v), text(&v, "body").as_bytes(), NOW).expect("the answer is signed too");
}

#[test]
fn a_certificate_signed_and_a_public_key_signed_notice_are_both_accepted_by_one_deployment() {
    let signer = go_test_key();
    let public_key_id = "PUB_KEY_ID_0000000000000024101100397200000006";
    // The deployment knows the public key (by id) and a platform certificate (by serial).
    let keys = PayKeys::new(Some((public_key_id.to_owned(), signer.verifier())), vec![certificate()]);
    let v = generated("generated_local_notify_transaction_success");
    let body = text(&v, "body").as_bytes();
    verify(&keys, &headers(&v), body, NOW).expect("certificate serial");
    let by_public_key = NoticeHeaders {
        serial: Some(public_key_id),
        ..headers(&v)
    };
    verify(&keys, &by_public_key, body, NOW).expect("public key id");
}

#[test]
fn requests_are_signed_byte_for_byte_as_the_sdks_and_the_official_guide_do() {
    let vectors = json("pay/signing_vectors.json");
    let signer = go_test_key();
    assert_eq!(signer.sign(b"source"), text(&vectors, "go_expected_sig_of_source"));
    for case in ["get", "post"] {
        let case = &vectors[case];
        assert_eq!(signer.sign(text(case, "message").as_bytes()), text(case, "signature"));
    }
    let get = &vectors["get"];
    let header = authorization(
        &signer,
        Merchant {
            mchid: "1230000109",
            serial_no: "D7CE59D1F522D701",
        },
        Outgoing {
            method: "GET",
            url: "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109",
            body: "",
        },
        "1624523846",
        "593BEC0C930BF1AFEB40B4A08C8FB242",
    );
    assert_eq!(header, text(get, "authorization"));
    let official = json("pay/official_doc_sign_vector.json");
    let signer = PaySigner::from_pkcs8_pem(text(&official, "pkcs8_pem")).expect("the guide's key");
    assert_eq!(
        signer.sign(text(&official, "message").as_bytes()),
        text(&official, "expected_signature")
    );
    // Answers are verified like notices.
    let response = &vectors["response"];
    let verifier = go_test_key().verifier();
    verifier
        .verify_message(
            text(response, "timestamp"),
            text(response, "nonce"),
            text(response, "body").as_bytes(),
            text(response, "signature"),
        )
        .expect("a signed answer");
    assert_eq!(signed_message("1", "n", b""), b"1\nn\n\n");
}
