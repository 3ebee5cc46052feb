//! Every sample event in `events/` for the callback, fed to the handler, with its expected answer.

use shared::protocol::{CallbackQuery, KeyRing, verify_msg_signature};
use shared::routes::callback;
use shared::store::StateStore;

/// Where the replay guard records the demo account's signed queries.
const SIGNATURE_USES: &str = "sig#wx0123456789abcdef";
use wechat_ha_tests::*;

#[tokio::test]
async fn verify_get_echoes_echostr_verbatim() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store, clock);
    let response = callback::handle(&deps, event("callback-verify-get.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_text(&response), "7130385893912361337");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn plain_text_post_is_echoed_back_as_a_passive_reply() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
    let response = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(response.status(), 200);
    let body = body_text(&response);
    assert!(body.contains("<ToUserName><![CDATA[oUser123]]></ToUserName>"), "{body}");
    assert!(
        body.contains("<FromUserName><![CDATA[gh_123456789abc]]></FromUserName>"),
        "{body}"
    );
    assert!(body.contains("<Content><![CDATA[hello]]></Content>"), "{body}");
    let records = |pk: &'static str| {
        let store = store.clone();
        async move { store.query(pk).await.expect("query").len() }
    };
    assert_eq!(records("msg#gh_123456789abc").await, 1, "one idempotency record");
    assert_eq!(records(SIGNATURE_USES).await, 1, "one signed-query use (replay guard)");
    assert_eq!(store.len(), 2, "nothing else");
}

#[tokio::test]
async fn subscribe_event_gets_the_welcome_text() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store, clock);
    let response = callback::handle(&deps, event("callback-subscribe-post.json")).await;
    assert_eq!(response.status(), 200);
    assert!(body_text(&response).contains("<Content><![CDATA[Welcome to wechat-ha!"));
}

#[tokio::test]
async fn bad_signature_is_403_and_stores_nothing() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
    let response = callback::handle(&deps, event("callback-bad-signature-post.json")).await;
    assert_eq!(response.status(), 403);
    let body = body_json(&response);
    assert_eq!(body["code"], "INVALID_SIGNATURE");
    assert_eq!(body["request_id"], "req-bad");
    assert!(store.is_empty(), "nothing stored for a forged request");
}

#[tokio::test]
async fn encrypted_post_gets_an_encrypted_reply_with_a_valid_msg_signature() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("safe", &[]), store, clock);
    let response = callback::handle(&deps, event("callback-encrypted-post.json")).await;
    assert_eq!(response.status(), 200);
    let body = body_text(&response);
    let field = |name: &str| -> String {
        let start = body.find(&format!("<{name}>")).expect(name) + name.len() + 2;
        let end = body.find(&format!("</{name}>")).expect(name);
        body[start..end]
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_owned()
    };
    let (encrypt, signature, timestamp, nonce) = (
        field("Encrypt"),
        field("MsgSignature"),
        field("TimeStamp"),
        field("Nonce"),
    );
    assert!(verify_msg_signature(TOKEN, &timestamp, &nonce, &encrypt, &signature));
    assert_eq!(timestamp, (NOW_MS / 1000).to_string(), "TimeStamp is in seconds");
    let keys = KeyRing::from_encoding_aes_keys(APPID, AES_KEY, None).unwrap();
    let (decrypted, _) = keys.decrypt(&encrypt).expect("reply decrypts with the account key");
    let reply = String::from_utf8(decrypted.message).unwrap();
    assert!(reply.contains("<Content><![CDATA[safe hello]]></Content>"), "{reply}");
}

#[tokio::test]
async fn every_event_file_is_replayed_by_a_test() {
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let tests_dir = env!("CARGO_MANIFEST_DIR");
    let sources: String = std::fs::read_dir(tests_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    for name in &names {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "events/{name} is not fed to its handler by any test"
        );
    }
    // The callback events parse as API Gateway requests and carry the query the handler reads.
    // (callback-ip-refresh-* is the IP refresh function's schedule, not a callback request.)
    for name in names
        .iter()
        .filter(|name| name.starts_with("callback-") && !name.starts_with("callback-ip-refresh"))
    {
        let request = event(name);
        let params = lambda_http::RequestExt::query_string_parameters_ref(&request).expect("query");
        let query = CallbackQuery::from_lookup(|k| params.first(k));
        assert!(
            query.signature.is_some() && query.timestamp.is_some() && query.nonce.is_some(),
            "{name}"
        );
        assert!(event_json(name)["requestContext"]["requestId"].is_string());
    }
}
