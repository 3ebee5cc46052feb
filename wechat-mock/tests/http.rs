//! The mock over real HTTP: token semantics, faults, domains and the control API.

use serde_json::{Value, json};
use wechat_mock::{DEFAULT_APPID, DEFAULT_SECRET, Fault, MockConfig, MockHandle, MockServer};

async fn two_domains(config: MockConfig) -> MockHandle {
    MockServer::new()
        .config(config)
        .domain("api")
        .domain("api2")
        .start()
        .await
        .expect("mock starts")
}

async fn stable(http: &reqwest::Client, base: &str, force: bool) -> Value {
    let body =
        json!({"grant_type":"client_credential","appid":DEFAULT_APPID,"secret":DEFAULT_SECRET,"force_refresh":force});
    http.post(format!("{base}/cgi-bin/stable_token"))
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

async fn custom(http: &reqwest::Client, base: &str, token: &str) -> Value {
    let body = json!({"touser":"openid-1","msgtype":"text","text":{"content":"hi"}});
    let url = format!("{base}/cgi-bin/message/custom/send?access_token={token}");
    http.post(url)
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn stable_token_is_shared_by_domains_and_validates_message_sends() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let first = stable(&http, &mock.base_url("api"), false).await;
    let second = stable(&http, &mock.base_url("api2"), false).await;
    assert_eq!(first["access_token"], second["access_token"]);
    assert_eq!(first["expires_in"], 7200);
    let token = first["access_token"].as_str().expect("token");
    assert_eq!(
        custom(&http, &mock.base_url("api2"), token).await,
        json!({"errcode":0,"errmsg":"ok"})
    );
    assert_eq!(custom(&http, &mock.base_url("api"), "bogus").await["errcode"], 40001);
    assert_eq!(mock.messages().len(), 1);
    assert_eq!(mock.messages()[0].domain, "api2");
    assert_eq!(mock.calls("/cgi-bin/stable_token"), 2);
    assert_eq!(mock.calls_on("api", "/cgi-bin/message/custom/send"), 1);
}

#[tokio::test]
async fn bad_credentials_and_expired_tokens_get_wechat_errcodes() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let url = |appid: &str, secret: &str| {
        format!("{base}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}")
    };
    let bad_app: Value = http
        .get(url("wx_nope", DEFAULT_SECRET))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(bad_app["errcode"], 40013);
    let bad_secret: Value = http
        .get(url(DEFAULT_APPID, "wrong"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(bad_secret["errcode"], 40125);
    let ok: Value = http
        .get(url(DEFAULT_APPID, DEFAULT_SECRET))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let token = ok["access_token"].as_str().expect("token").to_owned();
    mock.advance_time(7_200_000);
    assert_eq!(custom(&http, &base, &token).await["errcode"], 42001);
}

#[tokio::test]
async fn invalidated_token_answers_40001_and_next_stable_call_issues_a_new_one() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let old = stable(&http, &base, false).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    mock.invalidate_tokens(DEFAULT_APPID);
    let answer = custom(&http, &base, &old).await;
    assert_eq!(answer["errcode"], 40001);
    assert!(answer["errmsg"].as_str().expect("msg").contains("not latest"));
    let new = stable(&http, &base, false).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(mock.current_token(DEFAULT_APPID).as_deref(), Some(new.as_str()));
    assert_eq!(mock.forced_refreshes(), 0, "normal calls only");
    stable(&http, &base, true).await;
    assert_eq!(mock.forced_refreshes(), 1);
}

#[tokio::test]
async fn faults_fire_per_domain_for_the_given_number_of_calls() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    mock.inject(
        Fault::status(503)
            .on_domain("api")
            .on_path("/cgi-bin/stable_token")
            .times(2),
    );
    mock.inject(Fault::errcode(-1).on_domain("api2"));
    let status = |r: reqwest::Response| r.status().as_u16();
    let body = json!({"grant_type":"client_credential","appid":DEFAULT_APPID,"secret":DEFAULT_SECRET});
    let primary = format!("{}/cgi-bin/stable_token", mock.base_url("api"));
    assert_eq!(status(http.post(&primary).json(&body).send().await.expect("sent")), 503);
    assert_eq!(status(http.post(&primary).json(&body).send().await.expect("sent")), 503);
    assert!(stable(&http, &mock.base_url("api"), false).await["access_token"].is_string());
    assert_eq!(stable(&http, &mock.base_url("api2"), false).await["errcode"], -1);
    assert!(stable(&http, &mock.base_url("api2"), false).await["access_token"].is_string());
    assert_eq!(mock.domain_calls("api"), 3);
    assert_eq!(mock.domain_calls("api2"), 2);
}

#[tokio::test]
async fn dropped_connection_gets_no_answer_and_drop_after_processing_still_records() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let token = stable(&http, &base, false).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    mock.inject(Fault::drop_connection().on_path("/cgi-bin/message/custom/send"));
    let url = format!("{base}/cgi-bin/message/custom/send?access_token={token}");
    let body = json!({"touser":"o1","msgtype":"text","text":{"content":"x"}});
    let err = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect_err("connection dropped");
    assert!(!err.is_timeout(), "{err}");
    assert!(mock.messages().is_empty());
    mock.inject(Fault::new(wechat_mock::FaultKind::DropAfterProcessing).on_path("/cgi-bin/message/custom/send"));
    http.post(&url)
        .json(&body)
        .send()
        .await
        .expect_err("connection dropped after processing");
    assert_eq!(mock.messages().len(), 1);
}

#[tokio::test]
async fn domain_down_refuses_connections_and_comes_back_on_the_same_port() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    mock.set_domain_down("api", true).await.expect("down");
    let err = http
        .get(format!("{base}/cgi-bin/token"))
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_connect(), "{err}");
    mock.set_domain_down("api", false).await.expect("up");
    assert!(stable(&http, &base, false).await["access_token"].is_string());
}

#[tokio::test]
async fn control_api_over_http_injects_faults_reads_counters_and_resets() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    let base = mock.base_url("api");
    let fault = json!({"kind":{"errcode":{"errcode":45009,"errmsg":""}},"path":"/cgi-bin/stable_token"});
    http.post(format!("{base}/__mock/faults"))
        .json(&fault)
        .send()
        .await
        .expect("sent");
    assert_eq!(stable(&http, &base, false).await["errcode"], 45009);
    let counters: Value = http
        .get(format!("{base}/__mock/counters"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["calls"][0]["count"], 1);
    let time: Value = http
        .post(format!("{base}/__mock/time"))
        .json(&json!({"advance_ms": 1000}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(time["now_ms"].as_i64().is_some());
    http.post(format!("{base}/__mock/reset")).send().await.expect("sent");
    assert_eq!(mock.calls("/cgi-bin/stable_token"), 0);
}

#[tokio::test]
async fn delay_fault_delays_then_answers_normally() {
    let mock = two_domains(MockConfig::default()).await;
    let http = reqwest::Client::new();
    mock.inject(Fault::delay_ms(150));
    let started = std::time::Instant::now();
    assert!(stable(&http, &mock.base_url("api"), false).await["access_token"].is_string());
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
}
