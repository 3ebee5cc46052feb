//! The token function's sample events: the EventBridge schedule and `GET /jssdk/config`.

use std::sync::Arc;
use std::time::Duration;

use shared::protocol::jssdk_signature;
use shared::deadline::Deadline;
use shared::routes::token::{TokenFunctionError, handle_event};
use wechat_ha_tests::wechat::{client, start_mock};
use wechat_ha_tests::*;

#[tokio::test]
async fn the_scheduled_event_refreshes_both_tokens_once_for_the_fleet() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = deps_on(settings("compatible", &[]), store.clone(), clock.clone()).with_wechat(Some(wechat));

    let report = handle_event(&deps, event_json("token-scheduled-refresh.json"))
        .await
        .expect("refresh succeeds");
    assert_eq!(report["access_token"], "ok");
    assert_eq!(report["jsapi_ticket"], "ok");
    let fetched = mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket");
    assert_eq!(fetched, 2, "one access_token and one jsapi_ticket fetch");

    // Another instance's run a minute later finds both fresh in the store: nothing upstream.
    clock.advance(60_000);
    let (other, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let time = clock.clone();
    let other_deps = deps_on(settings("compatible", &[]), store, clock).with_wechat(Some(other));
    handle_event(&other_deps, event_json("token-scheduled-refresh.json"))
        .await
        .expect("refresh succeeds");
    assert_eq!(
        mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket"),
        2
    );

    // Inside the refresh margin (still valid, but due) the schedule renews both within the run.
    time.advance(7_200_000 - 200_000);
    handle_event(&other_deps, event_json("token-scheduled-refresh.json"))
        .await
        .expect("refresh succeeds");
    assert_eq!(
        mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket"),
        4
    );
}

#[tokio::test]
async fn the_scheduled_event_fails_loudly_without_credentials() {
    let (store, clock) = memory_store();
    let deps = deps_on(settings("compatible", &[]), store, clock);
    let error = handle_event(&deps, event_json("token-scheduled-refresh.json"))
        .await
        .unwrap_err();
    assert!(matches!(error, TokenFunctionError::Refresh(_)), "{error}");
}

#[tokio::test]
async fn the_jssdk_event_gets_a_signature_over_the_fleet_ticket() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = deps_on(settings("compatible", &[]), store, clock).with_wechat(Some(wechat.clone()));

    let response = handle_event(&deps, event_json("token-jssdk-config-get.json"))
        .await
        .expect("http response");
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let data = &body["data"];
    assert_eq!(data["appId"], APPID);
    assert_eq!(data["url"], "https://shop.example.com/orders/1001?from=menu");
    let ticket = wechat
        .jsapi_ticket(Deadline::after(Duration::from_secs(2)))
        .await
        .unwrap();
    let expected = jssdk_signature(
        ticket.expose(),
        data["nonceStr"].as_str().unwrap(),
        data["timestamp"].as_str().unwrap(),
        data["url"].as_str().unwrap(),
    );
    assert_eq!(data["signature"], expected);
    assert!(
        !response["body"].as_str().unwrap().contains(ticket.expose()),
        "the ticket itself is never returned"
    );
    assert_eq!(mock.calls("/cgi-bin/ticket/getticket"), 1);
}

#[tokio::test]
async fn the_jssdk_route_refuses_foreign_pages_and_bad_urls() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = deps_on(
        settings("compatible", &[("JSSDK_ALLOWED_HOSTS", "other.example.com")]),
        store,
        clock,
    )
    .with_wechat(Some(wechat));
    let response = handle_event(&deps, event_json("token-jssdk-config-get.json"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 403);
    let mut bad = event_json("token-jssdk-config-get.json");
    bad["queryStringParameters"]["url"] = "javascript:alert(1)".into();
    bad["rawQueryString"] = "url=javascript%3Aalert(1)".into();
    assert_eq!(handle_event(&deps, bad).await.unwrap()["statusCode"], 400);
    assert_eq!(
        mock.calls("/cgi-bin/ticket/getticket"),
        0,
        "nothing fetched for refused pages"
    );
}
