//! WeChat Pay notice cost per notice, CPU only (no I/O): the signature verification
//! (SHA256withRSA-2048 over the raw body, key chosen by serial) and the AEAD_AES_256_GCM
//! decryption and typing of the resource — what `/pay/notify` spends before the ledger.
//!
//! Run: `cargo bench -p shared --bench pay_notice -- --warm-up-time 1 --measurement-time 3`.
//! Besides criterion's estimate it prints p50 / p99 / max over 10,000 timed notices.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use shared::pay::{NoticeHeaders, PayKeys, PlatformCertificate, decrypt, verify};

fn fixture() -> (PayKeys, Value, Vec<u8>) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
    let vectors: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/wechat_vectors.json")).expect("vectors"))
            .expect("JSON");
    let pem = vectors["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .find(|v| v["id"] == "wechatpay_go_notify_full")
        .and_then(|v| v["platform_certificate_pem"].as_str())
        .expect("certificate")
        .to_owned();
    let notices: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/pay/generated_notify_vectors.json")).expect("notices"),
    )
    .expect("JSON");
    let notice = notices
        .as_array()
        .expect("notices")
        .iter()
        .find(|v| v["id"] == "generated_local_notify_transaction_success")
        .cloned()
        .expect("notice");
    let body = notice["body"].as_str().expect("body").as_bytes().to_vec();
    let keys = PayKeys::new(None, vec![PlatformCertificate::from_pem(&pem).expect("certificate")]);
    (keys, notice, body)
}

const NOW: i64 = 1_624_523_846;
const API_V3_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn one(keys: &PayKeys, notice: &Value, body: &[u8]) -> bool {
    let h = &notice["headers"];
    let headers = NoticeHeaders {
        serial: h["Wechatpay-Serial"].as_str(),
        signature: h["Wechatpay-Signature"].as_str(),
        timestamp: h["Wechatpay-Timestamp"].as_str(),
        nonce: h["Wechatpay-Nonce"].as_str(),
        signature_type: h["Wechatpay-Signature-Type"].as_str(),
    };
    verify(keys, &headers, body, NOW).is_ok() && decrypt(API_V3_KEY, body).is_ok()
}

fn pay_notice(c: &mut Criterion) {
    let (keys, notice, body) = fixture();
    assert!(one(&keys, &notice, &body), "the fixture verifies and decrypts");
    c.bench_function("pay_notice/verify_and_decrypt", |b| {
        b.iter(|| black_box(one(black_box(&keys), &notice, black_box(&body))));
    });
    let mut times: Vec<u128> = (0..10_000)
        .map(|_| {
            let started = Instant::now();
            black_box(one(&keys, &notice, &body));
            started.elapsed().as_nanos()
        })
        .collect();
    times.sort_unstable();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    #[allow(
        clippy::print_stderr,
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let report = |at: &dyn Fn(f64) -> u128| {
        eprintln!(
            "pay_notice over {} notices: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            times.len(),
            at(0.50) as f64 / 1000.0,
            at(0.99) as f64 / 1000.0,
            *times.last().unwrap_or(&0) as f64 / 1000.0
        );
    };
    report(&at);
}

criterion_group!(benches, pay_notice);
criterion_main!(benches);
