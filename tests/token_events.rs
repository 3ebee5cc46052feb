//! The token functions' sample events: the EventBridge schedule (token-refresh) and
//! `GET /jssdk/config` (jssdk).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use shared::clock::SharedClock;
use shared::config::{JssdkConfig, TokenRefreshConfig};
use shared::deadline::Deadline;
use shared::deps::{JssdkDeps, TokenRefreshDeps};
use shared::protocol::jssdk_signature;
use shared::routes::{jssdk, token_refresh};
use shared::wechat::WechatClient;
use wechat_ha_tests::wechat::{client, start_mock};
use wechat_ha_tests::*;

/// The scheduled event as the function receives it: the sample must be a valid EventBridge event.
fn schedule() -> EventBridgeEvent<serde_json::Value> {
    serde_json::from_value(event_json("token-refresh-scheduled.json")).expect("an EventBridge Scheduled Event")
}

fn refresh_deps(client: WechatClient) -> TokenRefreshDeps {
    TokenRefreshDeps { client }
}

fn jssdk_deps(client: WechatClient, clock: SharedClock, extra: &[(&str, &str)]) -> JssdkDeps {
    let config = JssdkConfig::from_env(&env("compatible", extra)).expect("valid");
    JssdkDeps::new(config, client, clock)
}

#[tokio::test]
async fn the_scheduled_event_refreshes_both_tokens_once_for_the_fleet() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = refresh_deps(wechat);
    let _ = schedule();

    let report = token_refresh::handle(&deps).await.expect("refresh succeeds");
    assert_eq!(report.access_token, "ok");
    assert_eq!(report.jsapi_ticket, "ok");
    let fetched = mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket");
    assert_eq!(fetched, 2, "one access_token and one jsapi_ticket fetch");

    // Another instance's run a minute later finds both fresh in the store: nothing upstream.
    clock.advance(60_000);
    let (other, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let time = clock.clone();
    let other_deps = refresh_deps(other);
    token_refresh::handle(&other_deps).await.expect("refresh succeeds");
    assert_eq!(
        mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket"),
        2
    );

    // Inside the refresh margin (still valid, but due) the schedule renews both within the run.
    time.advance(7_200_000 - 200_000);
    token_refresh::handle(&other_deps).await.expect("refresh succeeds");
    assert_eq!(
        mock.calls("/cgi-bin/stable_token") + mock.calls("/cgi-bin/ticket/getticket"),
        4
    );
}

#[tokio::test]
async fn the_scheduled_function_fails_loudly_without_credentials() {
    let mut no_secret = env("compatible", &[]);
    no_secret.set("WECHAT_APPSECRET", "");
    let error = TokenRefreshConfig::from_env(&no_secret).unwrap_err();
    assert_eq!(
        error.var, "WECHAT_APPSECRET",
        "the cold start fails, naming the variable"
    );
}

#[tokio::test]
async fn a_failed_scheduled_refresh_fails_the_invocation() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store, Arc::new(clock));
    mock.inject(
        wechat_mock::Fault::status(503)
            .on_path("/cgi-bin/stable_token")
            .times(100),
    );
    let error = token_refresh::handle(&refresh_deps(wechat)).await.unwrap_err();
    assert_ne!(error.0.access_token, "ok", "{error}");
}

#[tokio::test]
async fn the_jssdk_event_gets_a_signature_over_the_fleet_ticket() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = jssdk_deps(wechat.clone(), Arc::new(clock), &[]);

    let response = jssdk::handle(&deps, event("jssdk-config-get.json")).await;
    assert_eq!(response.status(), 200, "{}", body_text(&response));
    let text = body_text(&response);
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
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
    assert!(!text.contains(ticket.expose()), "the ticket itself is never returned");
    assert_eq!(mock.calls("/cgi-bin/ticket/getticket"), 1);
}

#[tokio::test]
async fn the_jssdk_route_refuses_foreign_pages_and_bad_urls() {
    let (store, clock) = memory_store();
    let mock = start_mock().await;
    let (wechat, _) = client(&mock, store.clone(), Arc::new(clock.clone()));
    let deps = jssdk_deps(wechat, Arc::new(clock), &[("JSSDK_ALLOWED_HOSTS", "other.example.com")]);
    let response = jssdk::handle(&deps, event("jssdk-config-get.json")).await;
    assert_eq!(response.status(), 403);
    let mut bad = event_json("jssdk-config-get.json");
    bad["queryStringParameters"]["url"] = "javascript:alert(1)".into();
    bad["rawQueryString"] = "url=javascript%3Aalert(1)".into();
    let bad = lambda_http::request::from_str(&bad.to_string()).expect("an HTTP API event");
    assert_eq!(jssdk::handle(&deps, bad).await.status(), 400);
    assert_eq!(
        mock.calls("/cgi-bin/ticket/getticket"),
        0,
        "nothing fetched for refused pages"
    );
}
