//! The callback hot path, protocol part only (no I/O): targets plain < 10 µs, safe < 30 µs per request.
//!
//! (a) plain: verify `signature` → parse a text message → build the text reply XML → seal (pass-through).
//! (b) safe: verify `msg_signature` → decrypt → parse → build the reply → encrypt and sign the envelope
//!     (random bytes from the OS, as in production).
//!
//! Run: `cargo bench -p shared --bench callback_path -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shared::protocol::{
    CallbackQuery, CallbackRequest, EncryptMode, KeyRing, KeySlot, Reply, SealedReply, msg_signature, open,
    parse_message, seal, url_signature,
};

const TOKEN: &str = "spamtest";
const TIMESTAMP: &str = "1409735669";
const NONCE: &str = "1320562132";
const TEXT_MESSAGE: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n\
    <FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n\
    <MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";

/// One request through the protocol layer; returns the response body length.
fn handle(request: &CallbackRequest<'_>) -> usize {
    let Ok(opened) = open(request) else { return 0 };
    let Ok(message) = parse_message(opened.message()) else {
        return 0;
    };
    let Ok(reply) = Reply::text("收到").render(&message.header, 1_409_735_670) else {
        return 0;
    };
    let random: [u8; 16] = rand::random();
    match seal(reply, &opened, TOKEN, 1_409_735_670, NONCE, &random) {
        Ok(SealedReply::Plain(body) | SealedReply::Encrypted { body, .. }) => body.len(),
        Ok(SealedReply::Success) | Err(_) => 0,
    }
}

fn callback_path(c: &mut Criterion) {
    let signature = url_signature(TOKEN, TIMESTAMP, NONCE);
    let plain = CallbackRequest {
        mode: EncryptMode::Plain,
        token: TOKEN,
        keys: None,
        query: CallbackQuery {
            signature: Some(&signature),
            timestamp: Some(TIMESTAMP),
            nonce: Some(NONCE),
            ..CallbackQuery::default()
        },
        body: TEXT_MESSAGE.as_bytes(),
    };
    assert!(handle(&plain) > 0, "plain request must succeed");
    c.bench_function("callback_plain", |b| b.iter(|| handle(black_box(&plain))));

    let ring = KeyRing::from_encoding_aes_keys(
        "wx2c2769f8efd9abc2",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        None,
    )
    .expect("valid sample key");
    let encrypt = ring
        .encrypt(KeySlot::Current, TEXT_MESSAGE.as_bytes(), b"89465c840c5f116f")
        .expect("encrypt");
    let msg_sig = msg_signature(TOKEN, TIMESTAMP, NONCE, &encrypt);
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    let safe = CallbackRequest {
        mode: EncryptMode::Safe,
        token: TOKEN,
        keys: Some(&ring),
        query: CallbackQuery {
            signature: Some(&signature),
            timestamp: Some(TIMESTAMP),
            nonce: Some(NONCE),
            encrypt_type: Some("aes"),
            msg_signature: Some(&msg_sig),
            echostr: None,
        },
        body: body.as_bytes(),
    };
    assert!(handle(&safe) > 0, "safe request must succeed");
    c.bench_function("callback_safe", |b| b.iter(|| handle(black_box(&safe))));
}

criterion_group!(benches, callback_path);
criterion_main!(benches);
