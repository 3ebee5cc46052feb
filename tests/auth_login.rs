//! The `auth` function against the WeChat mock: both logins end to end (the browser going through
//! the mock's authorize page over HTTP), exactly-once code exchange under concurrency, every
//! refusal of the issue's list with nothing stored, WeChat down (503 within the budget while
//! existing sessions keep working), the store down (remembered sessions), the profile kept fresh
//! with the refresh token — and no session_key, user token or session id in any log line.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use shared::clock::{ManualClock, SharedClock};
use shared::config::{AuthConfig, Env};
use shared::deps::AuthDeps;
use shared::routes::auth;
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use testkit::store::{FlakyStore, Health};
use wechat_ha_tests::wechat::SECRET;
use wechat_ha_tests::{APPID, body_json};
use wechat_mock::{
    DEFAULT_MINIPROGRAM_APPID as MP_APPID, DEFAULT_MINIPROGRAM_SECRET as MP_SECRET, Fault, MockConfig, MockHandle,
    MockServer,
};

const REDIRECT_URI: &str = "https://login.example.com/oauth/callback";
const SESSION_COOKIE: &str = "__Host-wxha_session";
const LOGIN_COOKIE: &str = "__Host-wxha_login";
const OAUTH_TOKEN: &str = "/sns/oauth2/access_token";
const JSCODE: &str = "/sns/jscode2session";
const BUDGET_MS: u64 = 1500;

type Response = http::Response<Body>;

struct World {
    mock: MockHandle,
    clock: ManualClock,
    memory: Arc<MemoryStore>,
    flaky: Arc<FlakyStore>,
    deps: AuthDeps,
    /// Every response of the test, for the leak check.
    seen: Mutex<Vec<String>>,
}

impl World {
    async fn new() -> Self {
        let clock = ManualClock::new(1_800_000_000_000);
        let mock_clock = clock.clone();
        let mock = MockServer::new()
            .config(
                MockConfig::default()
                    .with_app(APPID, SECRET)
                    .with_time(move || shared::clock::Clock::now_ms(&mock_clock)),
            )
            .domain("api")
            .domain("api2")
            .start()
            .await
            .expect("mock starts");
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let memory = Arc::new(MemoryStore::new(shared_clock.clone()));
        let flaky = Arc::new(FlakyStore::new(memory.clone(), Duration::from_secs(5)));
        let store: SharedStore = flaky.clone();
        let budget = BUDGET_MS.to_string();
        let env = Env::from_pairs([
            ("OAUTH_REDIRECT_URI", REDIRECT_URI),
            ("WECHAT_APPID", APPID),
            ("WECHAT_APPSECRET", SECRET),
            (
                "WECHAT_API_BASE",
                &format!("{},{}", mock.base_url("api"), mock.base_url("api2")),
            ),
            (
                "OAUTH_AUTHORIZE_URL",
                &format!("{}/connect/oauth2/authorize", mock.base_url("api")),
            ),
            ("AUTH_RETURN_HOSTS", "shop.example.com"),
            ("MINIPROGRAM_APPID", MP_APPID),
            ("MINIPROGRAM_APPSECRET", MP_SECRET),
            ("AUTH_LOGIN_BUDGET_MS", &budget),
        ]);
        let config = AuthConfig::from_env(&env).expect("valid login config");
        let deps = AuthDeps::new(
            config,
            (Some(Secret::new(SECRET)), Some(Secret::new(MP_SECRET))),
            store,
            shared_clock,
        )
        .expect("deps");
        Self {
            mock,
            clock,
            memory,
            flaky,
            deps,
            seen: Mutex::new(Vec::new()),
        }
    }

    async fn send(&self, req: lambda_http::Request) -> Response {
        let response = auth::handle(&self.deps, req).await;
        let mut text = format!("{:?} {}", response.headers(), wechat_ha_tests::body_text(&response));
        text.push('\n');
        self.seen.lock().expect("lock").push(text);
        response
    }

    async fn get(&self, path_and_query: &str, cookies: &[(&str, &str)]) -> Response {
        self.send(request("GET", path_and_query, cookies, None, None)).await
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> Response {
        self.send(request("POST", path, &[], bearer, Some(body))).await
    }

    /// `/oauth/authorize` → (state, the browser's binding cookie).
    async fn authorize(&self, query: &str) -> (String, String, String) {
        let response = self.get(&format!("/oauth/authorize?{query}"), &[]).await;
        assert_eq!(response.status(), 302, "{}", wechat_ha_tests::body_text(&response));
        let location = header(&response, "location");
        let binding = set_cookies(&response).remove(LOGIN_COOKIE).expect("binding cookie");
        let state = query_of(&location).remove("state").expect("state");
        (location, state, binding)
    }

    /// The browser at WeChat's authorize page (the mock, over HTTP): where it is sent back to.
    async fn at_wechat(&self, authorize_url: &str, extra: &str) -> HashMap<String, String> {
        let url = authorize_url.split('#').next().expect("url").to_owned() + extra;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let answer = client.get(&url).send().await.expect("authorize page");
        assert_eq!(answer.status(), 302);
        let back = answer.headers()["location"].to_str().expect("location").to_owned();
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        query_of(&back)
    }

    /// A full web login: the session cookie's value.
    async fn web_login(&self, scope: &str) -> String {
        let (url, _, binding) = self
            .authorize(&format!("return_to=https://shop.example.com/cart&scope={scope}"))
            .await;
        let back = self.at_wechat(&url, "").await;
        let response = self.callback(&back["code"], &back["state"], &binding).await;
        assert_eq!(response.status(), 302, "{}", wechat_ha_tests::body_text(&response));
        assert_eq!(header(&response, "location"), "https://shop.example.com/cart");
        set_cookies(&response).remove(SESSION_COOKIE).expect("session cookie")
    }

    async fn callback(&self, code: &str, state: &str, binding: &str) -> Response {
        self.get(
            &format!("/oauth/callback?code={code}&state={state}"),
            &[(LOGIN_COOKIE, binding)],
        )
        .await
    }

    /// A full mini-program login of `user`: the bearer session.
    async fn miniprogram_login(&self, user: &str) -> String {
        let code = self.mock.mint_miniprogram_code(MP_APPID, user);
        let response = self.post("/miniprogram/login", json!({ "code": code }), None).await;
        assert_eq!(response.status(), 200, "{}", wechat_ha_tests::body_text(&response));
        body_json(&response)["data"]["session"]
            .as_str()
            .expect("session")
            .to_owned()
    }

    fn items(&self) -> usize {
        self.memory.len()
    }
}

fn request(
    method: &str,
    path_and_query: &str,
    cookies: &[(&str, &str)],
    bearer: Option<&str>,
    body: Option<Value>,
) -> lambda_http::Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    if !cookies.is_empty() {
        let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        builder = builder.header("cookie", line.join("; "));
    }
    if let Some(bearer) = bearer {
        builder = builder.header("authorization", format!("Bearer {bearer}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Body::Text(body.to_string())
        }
        None => Body::Empty,
    };
    let _ = path;
    let params: HashMap<String, Vec<String>> = query_pairs(query).into_iter().map(|(k, v)| (k, vec![v])).collect();
    builder
        .body(body)
        .expect("request")
        .with_query_string_parameters(params)
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .expect("query")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url
        .split('#')
        .next()
        .unwrap_or(url)
        .split_once('?')
        .map_or("", |(_, q)| q);
    query_pairs(query).into_iter().collect()
}

fn header(response: &Response, name: &str) -> String {
    response.headers()[name].to_str().expect("header").to_owned()
}

fn set_cookies(response: &Response) -> HashMap<String, String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| line.split(';').next()?.split_once('='))
        .filter(|(_, value)| !value.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A session id of the right shape that no login issued.
fn well_formed_unknown_session() -> String {
    use base64::Engine as _;
    format!(
        "wxs_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32])
    )
}

fn code_of(response: &Response) -> String {
    body_json(response)["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_web_login_sets_a_strict_cookie_and_me_answers_the_profile_until_logout() {
    let world = World::new().await;
    let (url, state, binding) = world
        .authorize("return_to=https://shop.example.com/cart&scope=snsapi_userinfo")
        .await;
    assert!(url.ends_with("#wechat_redirect"), "{url}");
    let params = query_of(&url);
    assert_eq!(params["appid"], APPID);
    assert_eq!(params["redirect_uri"], REDIRECT_URI);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], "snsapi_userinfo");
    let back = world.at_wechat(&url, "").await;
    assert_eq!(back["state"], state);
    let response = world.callback(&back["code"], &state, &binding).await;
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let cookie_line = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|l| l.starts_with(SESSION_COOKIE))
        .expect("session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    let session = set_cookies(&response).remove(SESSION_COOKIE).unwrap();
    assert!(session.starts_with("wxs_"), "{session}");

    let me = world.get("/me", &[(SESSION_COOKIE, &session)]).await;
    assert_eq!(me.status(), 200);
    let data = body_json(&me)["data"].clone();
    assert_eq!(data["kind"], "web");
    assert_eq!(data["openid"], wechat_mock::openid(APPID, "alice"));
    assert_eq!(data["unionid"], wechat_mock::unionid("alice"));
    assert_eq!(data["profile"]["nickname"], "Mock alice");
    assert_eq!(data["profile_state"], "fresh");

    let out = world
        .send(request("POST", "/logout", &[(SESSION_COOKIE, &session)], None, None))
        .await;
    assert_eq!(out.status(), 200);
    assert!(
        out.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with(&format!("{SESSION_COOKIE}=;")))
    );
    let after = world.get("/me", &[(SESSION_COOKIE, &session)]).await;
    assert_eq!(after.status(), 401);
    assert_eq!(code_of(&after), "UNAUTHORIZED");
}

#[tokio::test]
async fn the_mini_program_logs_in_decrypts_its_data_and_reads_the_phone_number() {
    let world = World::new().await;
    let session = world.miniprogram_login("bob").await;
    let me = world.post("/me", json!({}), Some(&session)).await;
    assert_eq!(me.status(), 405, "GET only");
    let me = world.send(request("GET", "/me", &[], Some(&session), None)).await;
    assert_eq!(me.status(), 200);
    assert_eq!(body_json(&me)["data"]["kind"], "miniprogram");
    assert_eq!(body_json(&me)["data"]["openid"], wechat_mock::openid(MP_APPID, "bob"));

    let (encrypted, iv) = world
        .mock
        .encrypt_user_data(MP_APPID, "bob", None)
        .expect("bob logged in");
    let opened = world
        .post(
            "/miniprogram/decrypt",
            json!({ "encryptedData": encrypted, "iv": iv }),
            Some(&session),
        )
        .await;
    assert_eq!(opened.status(), 200, "{}", wechat_ha_tests::body_text(&opened));
    let data = body_json(&opened)["data"].clone();
    assert_eq!(data["openId"], wechat_mock::openid(MP_APPID, "bob"));
    assert_eq!(data["watermark"]["appid"], MP_APPID);

    let code = world.mock.mint_phone_code(MP_APPID, "+8613912345678");
    let phone = world
        .post("/miniprogram/phone", json!({ "code": code }), Some(&session))
        .await;
    assert_eq!(phone.status(), 200, "{}", wechat_ha_tests::body_text(&phone));
    let number = body_json(&phone)["data"].clone();
    assert_eq!(number["phoneNumber"], "+8613912345678");
    assert_eq!(number["purePhoneNumber"], "13912345678");
    assert_eq!(number["countryCode"], "86");
    world.clock.advance(1000);
    let again = world
        .post("/miniprogram/phone", json!({ "code": code }), Some(&session))
        .await;
    assert_eq!(again.status(), 400, "a phone code is good once");
}

#[tokio::test]
async fn one_code_exchanged_twice_at_once_ends_in_one_session_in_both_flows() {
    let world = World::new().await;
    // WeChat is slow: the second request arrives while the first is exchanging.
    world.mock.inject(Fault::delay_ms(300).on_path(OAUTH_TOKEN).times(1));
    let (url, state, binding) = world.authorize("scope=snsapi_base").await;
    let back = world.at_wechat(&url, "").await;
    let (first, second) = tokio::join!(
        world.callback(&back["code"], &state, &binding),
        world.callback(&back["code"], &state, &binding)
    );
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (302, 302));
    let (a, b) = (
        set_cookies(&first).remove(SESSION_COOKIE),
        set_cookies(&second).remove(SESSION_COOKIE),
    );
    assert!(a.is_some());
    assert_eq!(a, b, "both requests end in the same session");
    assert_eq!(world.mock.calls(OAUTH_TOKEN), 1, "one WeChat exchange");

    world.mock.inject(Fault::delay_ms(300).on_path(JSCODE).times(1));
    let code = world.mock.mint_miniprogram_code(MP_APPID, "carol");
    let (first, second) = tokio::join!(
        world.post("/miniprogram/login", json!({ "code": code }), None),
        world.post("/miniprogram/login", json!({ "code": code }), None)
    );
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    assert_eq!(
        body_json(&first)["data"]["session"],
        body_json(&second)["data"]["session"]
    );
    assert_eq!(world.mock.calls(JSCODE), 1);
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_nothing_is_stored() {
    let world = World::new().await;
    let code = world.mock.mint_miniprogram_code(MP_APPID, "dave");
    let first = world.post("/miniprogram/login", json!({ "code": code }), None).await;
    assert_eq!(first.status(), 200);
    world.clock.advance(1000);
    let items = world.items();
    let replay = world.post("/miniprogram/login", json!({ "code": code }), None).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(code_of(&replay), "BAD_REQUEST");
    assert_eq!(world.items(), items, "nothing stored");
    assert_eq!(world.mock.calls(JSCODE), 1, "WeChat not asked again");

    // The web: the same code through the same state, after the login finished.
    let (url, state, binding) = world.authorize("scope=snsapi_base").await;
    let back = world.at_wechat(&url, "").await;
    assert_eq!(world.callback(&back["code"], &state, &binding).await.status(), 302);
    world.clock.advance(1000);
    let items = world.items();
    let replay = world.callback(&back["code"], &state, &binding).await;
    assert_eq!(replay.status(), 400);
    assert!(!set_cookies(&replay).contains_key(SESSION_COOKIE));
    assert_eq!(world.items(), items);

    // A code WeChat does not know (forged) or one already used elsewhere: WeChat's refusal, 400.
    let forged = world
        .post("/miniprogram/login", json!({ "code": "not-a-real-code" }), None)
        .await;
    assert_eq!(forged.status(), 400);
    let missing = world.post("/miniprogram/login", json!({}), None).await;
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn missing_forged_and_foreign_states_are_refused_without_calling_wechat() {
    let world = World::new().await;
    let (url, state, binding) = world.authorize("scope=snsapi_base").await;
    let back = world.at_wechat(&url, "").await;
    let code = &back["code"];
    let items = world.items();

    let no_state = world
        .get(&format!("/oauth/callback?code={code}"), &[(LOGIN_COOKIE, &binding)])
        .await;
    assert_eq!(no_state.status(), 400);
    let forged = world.callback(code, &"ab".repeat(32), &binding).await;
    assert_eq!(forged.status(), 403);
    let garbage = world.callback(code, "%3Cscript%3E", &binding).await;
    assert_eq!(garbage.status(), 403);
    let other_browser = world.callback(code, &state, &"cd".repeat(32)).await;
    assert_eq!(other_browser.status(), 403);
    let no_cookie = world
        .get(&format!("/oauth/callback?code={code}&state={state}"), &[])
        .await;
    assert_eq!(no_cookie.status(), 403);
    for refused in [&forged, &other_browser, &no_cookie] {
        assert_eq!(code_of(refused), "FORBIDDEN");
        assert!(!set_cookies(refused).contains_key(SESSION_COOKIE));
    }
    assert_eq!(world.mock.calls(OAUTH_TOKEN), 0, "WeChat never asked");
    assert_eq!(world.items(), items, "nothing stored");

    // The state taken by one code refuses another; an expired state is unknown.
    assert_eq!(world.callback(code, &state, &binding).await.status(), 302);
    let other_code = world.mock.mint_oauth_code(APPID, "alice", "snsapi_base");
    assert_eq!(world.callback(&other_code, &state, &binding).await.status(), 403);
    let (url, state, binding) = world.authorize("scope=snsapi_base").await;
    let back = world.at_wechat(&url, "").await;
    world.clock.advance(11 * 60 * 1000);
    assert_eq!(world.callback(&back["code"], &state, &binding).await.status(), 403);
}

#[tokio::test]
async fn open_redirects_are_refused_and_a_declined_login_goes_back_marked() {
    let world = World::new().await;
    let items = world.items();
    for target in [
        "https://evil.example.net/",
        "//evil.example.net/x",
        "https://shop.example.com.evil.net/",
        "https://shop.example.com@evil.example.net/",
        "javascript:alert(1)",
        "http://shop.example.com/",
    ] {
        let encoded: String = url_encode(target);
        let response = world.get(&format!("/oauth/authorize?return_to={encoded}"), &[]).await;
        assert_eq!(response.status(), 400, "{target}");
        assert!(response.headers().get("location").is_none());
    }
    assert_eq!(world.items(), items, "no state stored");
    let bad_scope = world.get("/oauth/authorize?scope=snsapi_login", &[]).await;
    assert_eq!(bad_scope.status(), 400);

    let (url, _, binding) = world.authorize("return_to=/shop").await;
    let back = world.at_wechat(&url, "&mock_decline=1").await;
    assert!(!back.contains_key("code"));
    let response = world
        .get(
            &format!("/oauth/callback?state={}", back["state"]),
            &[(LOGIN_COOKIE, &binding)],
        )
        .await;
    assert_eq!(response.status(), 302);
    assert_eq!(header(&response, "location"), "/shop?wxha_login=declined");
}

fn url_encode(text: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", [("v", text)])
        .expect("url")
        .query()
        .expect("query")
        .trim_start_matches("v=")
        .to_owned()
}

#[tokio::test]
async fn user_data_that_does_not_verify_or_is_not_ours_is_refused() {
    let world = World::new().await;
    let session = world.miniprogram_login("erin").await;
    let (encrypted, iv) = world.mock.encrypt_user_data(MP_APPID, "erin", None).unwrap();
    let decrypt = |body: Value, bearer: Option<String>| {
        let world = &world;
        async move { world.post("/miniprogram/decrypt", body, bearer.as_deref()).await }
    };
    let s = || Some(session.clone());

    let wrong_iv = decrypt(
        json!({"encryptedData": encrypted, "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        s(),
    )
    .await;
    assert_eq!(wrong_iv.status(), 400);
    let mut bytes: Vec<char> = encrypted.chars().collect();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = bytes.into_iter().collect();
    let tampered = decrypt(json!({"encryptedData": tampered, "iv": iv}), s()).await;
    assert_eq!(tampered.status(), 400);
    assert_eq!(
        body_json(&wrong_iv)["message"],
        body_json(&tampered)["message"],
        "one message: no oracle"
    );

    let (foreign, foreign_iv) = world
        .mock
        .encrypt_user_data(
            MP_APPID,
            "erin",
            Some(&json!({"watermark": {"appid": "wx_someone_else", "timestamp": 1}})),
        )
        .unwrap();
    let foreign = decrypt(json!({"encryptedData": foreign, "iv": foreign_iv}), s()).await;
    assert_eq!(foreign.status(), 403);
    let (other, other_iv) = world
        .mock
        .encrypt_user_data(MP_APPID, "erin", Some(&json!({"openId": "o_someone_else"})))
        .unwrap();
    let other = decrypt(json!({"encryptedData": other, "iv": other_iv}), s()).await;
    assert_eq!(other.status(), 403);
    let unsigned = decrypt(
        json!({"encryptedData": encrypted, "iv": iv, "rawData": "{}", "signature": "0000"}),
        s(),
    )
    .await;
    assert_eq!(unsigned.status(), 400);

    let nobody = decrypt(json!({"encryptedData": encrypted, "iv": iv}), None).await;
    assert_eq!(nobody.status(), 401);
    let unknown = decrypt(
        json!({"encryptedData": encrypted, "iv": iv}),
        Some(well_formed_unknown_session()),
    )
    .await;
    assert_eq!(unknown.status(), 401);
    let web = world.web_login("snsapi_base").await;
    let web_session = decrypt(json!({"encryptedData": encrypted, "iv": iv}), Some(web)).await;
    assert_eq!(web_session.status(), 403, "a web session holds no session_key");

    // The session's key still opens the genuine data, until the session expires.
    assert_eq!(
        decrypt(json!({"encryptedData": encrypted, "iv": iv}), s())
            .await
            .status(),
        200
    );
    world.clock.advance(8 * 86_400 * 1000);
    let expired = decrypt(json!({"encryptedData": encrypted, "iv": iv}), s()).await;
    assert_eq!(expired.status(), 401);
}

#[tokio::test]
async fn wechat_down_is_a_quick_503_and_existing_sessions_keep_working() {
    let world = World::new().await;
    let web = world.web_login("snsapi_userinfo").await;
    let mini = world.miniprogram_login("frank").await;
    // Both WeChat domains black-holed: connections hang.
    world
        .mock
        .inject(Fault::delay_ms(30_000).on_path(OAUTH_TOKEN).times(u32::MAX));
    world
        .mock
        .inject(Fault::delay_ms(30_000).on_path(JSCODE).times(u32::MAX));
    let budget = Duration::from_millis(BUDGET_MS);
    for _ in 0..3 {
        let (url, state, binding) = world.authorize("scope=snsapi_base").await;
        let back = world.at_wechat(&url, "").await;
        let started = Instant::now();
        let response = world.callback(&back["code"], &state, &binding).await;
        assert_eq!(response.status(), 503, "{}", wechat_ha_tests::body_text(&response));
        assert_eq!(code_of(&response), "UNAVAILABLE");
        assert!(
            started.elapsed() < budget + Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );

        let code = world.mock.mint_miniprogram_code(MP_APPID, "grace");
        let started = Instant::now();
        let response = world.post("/miniprogram/login", json!({ "code": code }), None).await;
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < budget + Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }
    let me = world.get("/me", &[(SESSION_COOKIE, &web)]).await;
    assert_eq!(me.status(), 200);
    assert_eq!(body_json(&me)["data"]["profile_state"], "fresh");
    let me = world.send(request("GET", "/me", &[], Some(&mini), None)).await;
    assert_eq!(me.status(), 200);
    let (encrypted, iv) = world.mock.encrypt_user_data(MP_APPID, "frank", None).unwrap();
    let opened = world
        .post(
            "/miniprogram/decrypt",
            json!({"encryptedData": encrypted, "iv": iv}),
            Some(&mini),
        )
        .await;
    assert_eq!(opened.status(), 200, "decrypting needs no WeChat");
}

#[tokio::test]
async fn with_the_store_down_sessions_this_instance_saw_keep_working() {
    let world = World::new().await;
    let session = world.miniprogram_login("heidi").await;
    assert_eq!(
        world
            .send(request("GET", "/me", &[], Some(&session), None))
            .await
            .status(),
        200
    );
    world.flaky.set(Health::Down);
    let remembered = world.send(request("GET", "/me", &[], Some(&session), None)).await;
    assert_eq!(remembered.status(), 200);
    let stranger = world
        .send(request("GET", "/me", &[], Some(&well_formed_unknown_session()), None))
        .await;
    assert_eq!(stranger.status(), 503, "unknown here and the store cannot say");
    let code = world.mock.mint_miniprogram_code(MP_APPID, "ivan");
    let login = world.post("/miniprogram/login", json!({ "code": code }), None).await;
    assert_eq!(login.status(), 503);
    world.flaky.set(Health::Up);
}

#[tokio::test]
async fn an_old_profile_is_refreshed_with_the_users_refresh_token() {
    let world = World::new().await;
    let session = world.web_login("snsapi_userinfo").await;
    // A day later: the profile is stale and the user's access token (2 h) expired.
    world.clock.advance(86_400 * 1000 + 1000);
    let me = world.get("/me", &[(SESSION_COOKIE, &session)]).await;
    assert_eq!(me.status(), 200);
    assert_eq!(body_json(&me)["data"]["profile_state"], "refreshed");
    assert_eq!(world.mock.calls("/sns/oauth2/refresh_token"), 1);
    let again = world.get("/me", &[(SESSION_COOKIE, &session)]).await;
    assert_eq!(
        body_json(&again)["data"]["profile_state"],
        "fresh",
        "stored for the fleet"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary at TRACE, installed once (callsite interest is cached
/// process-wide, so a scoped subscriber would miss events of parallel tests).
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

#[tokio::test]
async fn no_session_key_user_token_or_session_id_reaches_a_log_line_or_a_response() {
    let logs = logs();
    let world = World::new().await;
    let web = world.web_login("snsapi_userinfo").await;
    world.clock.advance(86_400 * 1000 + 1000);
    assert_eq!(world.get("/me", &[(SESSION_COOKIE, &web)]).await.status(), 200);
    let mini = world.miniprogram_login("judy").await;
    let (encrypted, iv) = world.mock.encrypt_user_data(MP_APPID, "judy", None).unwrap();
    world
        .post(
            "/miniprogram/decrypt",
            json!({"encryptedData": encrypted, "iv": iv}),
            Some(&mini),
        )
        .await;
    world
        .post(
            "/miniprogram/decrypt",
            json!({"encryptedData": encrypted, "iv": "AAAAAAAAAAAAAAAAAAAAAA=="}),
            Some(&mini),
        )
        .await;
    let code = world.mock.mint_phone_code(MP_APPID, "+8613800000000");
    world
        .post("/miniprogram/phone", json!({ "code": code }), Some(&mini))
        .await;
    world.mock.inject(Fault::status(503).on_path(JSCODE).times(u32::MAX));
    let code = world.mock.mint_miniprogram_code(MP_APPID, "judy");
    world.post("/miniprogram/login", json!({ "code": code }), None).await;
    world
        .send(request("POST", "/logout", &[(SESSION_COOKIE, &web)], None, None))
        .await;

    let session_key = world.mock.session_key(MP_APPID, "judy").expect("judy logged in");
    let user_tokens = world.mock.user_tokens();
    assert!(
        user_tokens.len() >= 3,
        "access, refresh and a renewed access token: {user_tokens:?}"
    );
    let logged = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logged.contains("web login"), "the flow did log");
    let answered = world.seen.lock().expect("lock").join("");
    for (what, secret) in [
        ("session_key", session_key.as_str()),
        ("AppSecret", SECRET),
        ("AppSecret", MP_SECRET),
    ]
    .into_iter()
    .chain(user_tokens.iter().map(|t| ("user token", t.as_str())))
    {
        assert!(!logged.contains(secret), "{what} in the logs");
        assert!(!answered.contains(secret), "{what} in a response");
    }
    for session in [&web, &mini] {
        assert!(!logged.contains(session.as_str()), "a session id in the logs");
    }
}

#[tokio::test]
async fn the_sample_events_are_answered_as_api_gateway_delivers_them() {
    use shared::store::{AttrValue, Attrs, Condition, Key};
    let world = World::new().await;
    let authorize = world.send(wechat_ha_tests::event("auth-authorize-get.json")).await;
    assert_eq!(authorize.status(), 302);
    let location = header(&authorize, "location");
    assert_eq!(query_of(&location)["scope"], "snsapi_userinfo");
    assert!(set_cookies(&authorize).contains_key(LOGIN_COOKIE));

    // The callback event's state, as `/oauth/authorize` stores it for the event's binding cookie
    // (API Gateway delivers that cookie in the event's `cookies`, not in a header).
    let state = "5a".repeat(32);
    let mut attrs = Attrs::new();
    attrs.insert("browser".into(), shared::auth::login::digest(&"b1".repeat(32)).into());
    attrs.insert("return_to".into(), "/welcome".into());
    attrs.insert("scope".into(), "snsapi_userinfo".into());
    attrs.insert(
        shared::store::EXPIRES_AT.into(),
        AttrValue::N(shared::clock::Clock::now_ms(&world.clock) / 1000 + 600),
    );
    shared::store::StateStore::put(
        world.memory.as_ref(),
        &Key::new(format!("auth#state#{state}"), "state"),
        attrs,
        Condition::Always,
    )
    .await
    .expect("seed the state");
    world
        .mock
        .issue_oauth_code("SAMPLE_OAUTH_CODE_0001", APPID, "sample", "snsapi_userinfo");
    let callback = world.send(wechat_ha_tests::event("auth-callback-get.json")).await;
    assert_eq!(callback.status(), 302, "{}", wechat_ha_tests::body_text(&callback));
    assert_eq!(header(&callback, "location"), "/welcome");
    assert!(set_cookies(&callback).contains_key(SESSION_COOKIE));

    world
        .mock
        .issue_miniprogram_code("SAMPLE_WXA_CODE_0001", MP_APPID, "sample");
    let login = world
        .send(wechat_ha_tests::event("auth-miniprogram-login-post.json"))
        .await;
    assert_eq!(login.status(), 200, "{}", wechat_ha_tests::body_text(&login));
    assert_eq!(
        body_json(&login)["data"]["openid"],
        wechat_mock::openid(MP_APPID, "sample")
    );
}
