//! Replay-proof callbacks: the freshness window, one signed query per body, WeChat's own retries.

use std::collections::HashMap;

use lambda_http::{Body, RequestExt};
use shared::protocol::url_signature;
use shared::routes::callback;
use shared::store::StateStore;
use wechat_ha_tests::*;

/// The text sample event with its query replaced by `params`.
fn with_query(name: &str, params: &[(&str, &str)]) -> lambda_http::Request {
    let query: HashMap<String, String> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    event(name).with_query_string_parameters(query)
}

/// A correctly signed query for `timestamp` / `nonce`.
fn signed(timestamp: &str, nonce: &str) -> Vec<(&'static str, String)> {
    vec![
        ("signature", url_signature(TOKEN, timestamp, nonce)),
        ("timestamp", timestamp.to_owned()),
        ("nonce", nonce.to_owned()),
    ]
}

fn params<'a>(query: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    query.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn an_old_or_future_timestamp_is_403_and_nothing_is_stored() {
    for (what, shift_ms) in [("five minutes old", 300_000), ("five minutes ahead", -300_000)] {
        let (store, clock) = memory_store();
        clock.advance(shift_ms);
        let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
        let response = callback::handle(&deps, event("callback-text-post.json")).await;
        assert_eq!(response.status(), 403, "{what}");
        assert_eq!(body_json(&response)["code"], "INVALID_SIGNATURE", "{what}");
        assert!(store.is_empty(), "{what}: nothing stored");
        let verify = callback::handle(&deps, event("callback-verify-get.json")).await;
        assert_eq!(verify.status(), 403, "{what}: the verification URL expires too");
    }
}

#[tokio::test]
async fn a_timestamp_inside_the_window_is_accepted_either_way() {
    for shift_ms in [299_000, -299_000] {
        let (store, clock) = memory_store();
        clock.advance(shift_ms);
        let deps = deps_on(settings("compatible", &[]), store, clock);
        let response = callback::handle(&deps, event("callback-text-post.json")).await;
        assert_eq!(response.status(), 200, "{shift_ms}");
    }
}

#[tokio::test]
async fn a_reused_signature_with_a_changed_body_is_403_and_stores_nothing_new() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
    let first = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!(first.status(), 200);
    let stored = store.len();
    let forged = "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[oVictim]]></FromUserName>\
                  <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[pay me]]></Content>\
                  <MsgId>999</MsgId></xml>";
    let replay = callback::handle(&deps, with_body("callback-text-post.json", Body::Text(forged.into()))).await;
    assert_eq!(replay.status(), 403);
    assert_eq!(body_json(&replay)["code"], "INVALID_SIGNATURE");
    assert_eq!(store.len(), stored, "nothing stored for the rejected request");
    assert!(
        store.query("msg#gh_123456789abc").await.unwrap().len() == 1,
        "the forged MsgId was not claimed"
    );
}

#[tokio::test]
async fn wechats_retry_of_the_same_message_gets_the_stored_reply() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store, clock);
    let first = callback::handle(&deps, event("callback-text-post.json")).await;
    let retry = callback::handle(&deps, event("callback-text-post.json")).await;
    assert_eq!((first.status().as_u16(), retry.status().as_u16()), (200, 200));
    assert_eq!(body_text(&first), body_text(&retry), "the stored reply");
    // WeChat may also retry with a fresh timestamp and nonce: the same message, the same reply.
    let fresh = signed("1700000003", "777");
    let again = callback::handle(&deps, with_query("callback-text-post.json", &params(&fresh))).await;
    assert_eq!(body_text(&again), body_text(&first));
}

#[tokio::test]
async fn a_captured_verification_url_cannot_reflect_another_echostr() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock);
    let mut query = signed("1700000000", "55555");
    query.push(("echostr", "first-echo".to_owned()));
    let first = callback::handle(&deps, with_query("callback-verify-get.json", &params(&query))).await;
    assert_eq!(
        (first.status().as_u16(), body_text(&first)),
        (200, "first-echo".to_owned())
    );
    let again = callback::handle(&deps, with_query("callback-verify-get.json", &params(&query))).await;
    assert_eq!(again.status(), 200, "WeChat repeating its own verification");
    query.pop();
    query.push(("echostr", "<script>alert(1)</script>".to_owned()));
    let stored = store.len();
    let reflected = callback::handle(&deps, with_query("callback-verify-get.json", &params(&query))).await;
    assert_eq!(reflected.status(), 403);
    assert_eq!(store.len(), stored);
}

#[tokio::test]
async fn encrypted_requests_need_no_replay_record_their_body_is_signed() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("safe", &[]), store.clone(), clock);
    let response = callback::handle(&deps, event("callback-encrypted-post.json")).await;
    assert_eq!(response.status(), 200);
    assert!(
        store.query("sig#wx0123456789abcdef").await.unwrap().is_empty(),
        "msg_signature covers the body: no guard record"
    );
}
