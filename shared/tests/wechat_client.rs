//! The resilient WeChat client against the mock over real HTTP: sends, retries by errcode,
//! domain failover, the token endpoint down, deadlines, and secrets kept out of the logs.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;
use shared::clock::{Clock, ManualClock, SharedClock, SystemClock};
use shared::config::SecretRef;
use shared::deadline::Deadline;
use shared::deps::Aws;
use shared::resilience::{BreakerConfig, Registry, State};
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::wechat::next_daily_reset_ms;
use shared::wechat::{Api, ClientSettings, WechatClient, WechatError, register};
use testkit::emulator::emulator_configured;
use wechat_mock::{BlackHole, DEFAULT_APPID, DEFAULT_SECRET, Fault, MockConfig, MockHandle, MockServer};

const STABLE: &str = "/cgi-bin/stable_token";
const CUSTOM: &str = "/cgi-bin/message/custom/send";
const TICKET: &str = "/cgi-bin/ticket/getticket";
const TEMPLATE: &str = "/cgi-bin/message/template/send";

struct World {
    clock: ManualClock,
    store: SharedStore,
    mock: MockHandle,
}

impl World {
    async fn new() -> Self {
        logs();
        let clock = ManualClock::new(SystemClock.now_ms());
        let time = clock.clone();
        let config = MockConfig::default().with_time(move || time.now_ms());
        let mock = MockServer::new()
            .config(config)
            .domain("api")
            .domain("api2")
            .start()
            .await
            .expect("mock starts");
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
        Self { clock, store, mock }
    }

    fn settings(&self) -> ClientSettings {
        let mut settings = ClientSettings::new(
            DEFAULT_APPID,
            vec![self.mock.base_url("api"), self.mock.base_url("api2")],
        );
        for api in Api::ALL {
            let mut policy = settings.policies.get(api);
            policy.base_delay = Duration::from_millis(5);
            policy.max_delay = Duration::from_millis(20);
            settings.policies.set(api, policy);
        }
        settings
    }

    fn client_with(&self, settings: &ClientSettings) -> WechatClient {
        let clock: SharedClock = Arc::new(self.clock.clone());
        WechatClient::new(settings, Secret::new(DEFAULT_SECRET), self.store.clone(), clock).expect("client")
    }

    fn client(&self) -> WechatClient {
        self.client_with(&self.settings())
    }

    /// A client over a registry the test can inspect (breaker states and windows).
    fn client_and_registry(&self, settings: &ClientSettings) -> (WechatClient, Registry) {
        let clock: SharedClock = Arc::new(self.clock.clone());
        let registry = register(settings, Registry::builder(self.store.clone(), clock.clone()))
            .expect("valid settings")
            .build()
            .expect("registry");
        let client = WechatClient::with_registry(
            settings,
            Secret::new(DEFAULT_SECRET),
            &registry,
            self.store.clone(),
            clock,
        )
        .expect("client");
        (client, registry)
    }
}

/// A breaker that opens after `minimum_calls` failures for 10 s and closes after one good probe;
/// every outcome is written at once.
fn fast_breaker(minimum_calls: u32) -> BreakerConfig {
    BreakerConfig::builder()
        .minimum_calls(minimum_calls)
        .failure_rate_threshold(50.0)
        .open_duration(Duration::from_secs(10))
        .half_open_probes(1)
        .half_open_successes(1)
        .flush_interval(Duration::ZERO)
        .build()
        .expect("valid breaker config")
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

fn text(to: &str) -> serde_json::Value {
    json!({"touser": to, "msgtype": "text", "text": {"content": "hello"}})
}

#[tokio::test]
async fn sends_reach_wechat_once_and_template_returns_its_msgid() {
    let world = World::new().await;
    let client = world.client();
    client.send_custom(&text("o1"), deadline()).await.expect("custom");
    let template = json!({"touser": "o1", "template_id": "tpl", "data": {}});
    let receipt = client.send_template(&template, deadline()).await.expect("template");
    assert!(receipt.msgid.is_some());
    client.send_subscribe(&template, deadline()).await.expect("subscribe");
    let kinds: Vec<_> = world.mock.messages().into_iter().map(|m| m.kind).collect();
    assert_eq!(kinds, ["custom", "template", "subscribe"]);
    assert_eq!(world.mock.calls(STABLE), 1);
}

#[tokio::test]
async fn wechat_parameter_errors_are_typed_and_not_retried() {
    let world = World::new().await;
    let client = world.client();
    let err = client
        .send_custom(&json!({"msgtype": "text"}), deadline())
        .await
        .expect_err("no touser");
    assert_eq!(err.errcode(), Some(40003));
    assert_eq!(world.mock.calls(CUSTOM), 1);
}

#[tokio::test]
async fn daily_quota_errcode_is_not_retried() {
    let world = World::new().await;
    let client = world.client();
    world.mock.inject(Fault::errcode(45009).on_path(CUSTOM).times(5));
    let err = client.send_custom(&text("o1"), deadline()).await.expect_err("quota");
    assert_eq!(err.errcode(), Some(45009));
    assert_eq!(world.mock.calls(CUSTOM), 1, "45009 is never retried");
    assert!(world.mock.messages().is_empty());
}

#[tokio::test]
async fn a_spent_template_quota_blocks_template_sends_until_the_daily_reset_and_nothing_else() {
    let world = World::new().await;
    let client = world.client();
    let template = json!({"touser": "o1", "template_id": "tpl", "data": {}});
    world.mock.inject(Fault::errcode(45009).on_path(TEMPLATE).times(1));
    let until = next_daily_reset_ms(world.clock.now_ms());
    for _ in 0..3 {
        let err = client.send_template(&template, deadline()).await.expect_err("quota");
        assert_eq!(err, WechatError::QuotaExhausted { until_ms: until });
    }
    assert_eq!(world.mock.calls(TEMPLATE), 1, "blocked without calling WeChat");
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("custom has its own quota");
    client
        .send_subscribe(&template, deadline())
        .await
        .expect("subscribe too");
    let cold = world.client();
    assert_eq!(
        cold.send_template(&template, deadline()).await.expect_err("fleet-wide"),
        WechatError::QuotaExhausted { until_ms: until }
    );
    assert_eq!(world.mock.calls(TEMPLATE), 1, "a cold instance knows from the store");
    world.clock.set(until);
    client.send_template(&template, deadline()).await.expect("a new day");
    assert_eq!(world.mock.calls(TEMPLATE), 2);
}

#[tokio::test]
async fn system_busy_is_retried_within_the_policy() {
    let world = World::new().await;
    let client = world.client();
    world.mock.inject(Fault::errcode(-1).on_path(CUSTOM).times(2));
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("third attempt succeeds");
    assert_eq!(world.mock.calls(CUSTOM), 3);
    world.mock.inject(Fault::errcode(-1).on_path(CUSTOM).times(3));
    let err = client
        .send_custom(&text("o2"), deadline())
        .await
        .expect_err("max_attempts = 3");
    assert_eq!(err.errcode(), Some(-1));
    assert_eq!(world.mock.calls(CUSTOM), 6);
    assert_eq!(world.mock.messages().len(), 1);
}

#[tokio::test]
async fn ip_whitelist_error_on_the_token_endpoint_is_reported_and_not_retried() {
    let world = World::new().await;
    world.mock.inject(Fault::errcode(40164).on_path(STABLE).times(10));
    let err = world
        .client()
        .send_custom(&text("o1"), deadline())
        .await
        .expect_err("not whitelisted");
    assert_eq!(err.errcode(), Some(40164));
    assert_eq!(world.mock.calls(STABLE), 1);
    assert_eq!(world.mock.calls(CUSTOM), 0);
}

#[tokio::test]
async fn a_configuration_error_is_answered_fleet_wide_without_calling_wechat_for_a_minute() {
    let world = World::new().await;
    world.mock.inject(Fault::errcode(40164).on_path(STABLE).times(10));
    let (a, b) = (world.client(), world.client());
    for client in [&a, &b, &a] {
        let err = client
            .send_custom(&text("o1"), deadline())
            .await
            .expect_err("not whitelisted");
        assert_eq!(err.errcode(), Some(40164));
    }
    assert_eq!(world.mock.calls(STABLE), 1, "one token request for the whole fleet");
    let logs = String::from_utf8(logs().0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("CONFIGURATION ERROR") && logs.contains("fixed egress IP"),
        "{logs}"
    );
    world.clock.advance(60_001);
    let err = b
        .send_custom(&text("o2"), deadline())
        .await
        .expect_err("still not whitelisted");
    assert_eq!(err.errcode(), Some(40164));
    assert_eq!(world.mock.calls(STABLE), 2, "asked again once the block ended");
    assert_eq!(world.mock.calls(CUSTOM), 0);
}

#[tokio::test]
async fn primary_refusing_connections_fails_over_to_the_second_domain() {
    let world = World::new().await;
    let client = world.client();
    world.mock.set_domain_down("api", true).await.expect("down");
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("sent via api2");
    client.jsapi_ticket(deadline()).await.expect("ticket via api2");
    assert_eq!(world.mock.domain_calls("api"), 0);
    assert_eq!(world.mock.calls_on("api2", STABLE), 1);
    assert_eq!(world.mock.calls_on("api2", CUSTOM), 1);
    assert_eq!(world.mock.calls_on("api2", TICKET), 1);
    assert_eq!(world.mock.messages()[0].domain, "api2");
}

#[tokio::test]
async fn a_black_holed_primary_times_out_connecting_and_the_send_fails_over() {
    let world = World::new().await;
    let hole = BlackHole::bind().await.expect("black hole");
    let mut settings = world.settings();
    settings.api_bases = vec![hole.base_url(), world.mock.base_url("api2")];
    settings.connect_timeout = Duration::from_millis(100);
    let client = world.client_with(&settings);
    let started = Instant::now();
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("a connect timeout means nothing was sent: on to api2");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(world.mock.calls_on("api2", STABLE), 1);
    assert_eq!(world.mock.calls_on("api2", CUSTOM), 1);
    assert_eq!(world.mock.messages().len(), 1);
}

#[tokio::test]
async fn primary_answering_5xx_moves_idempotent_retries_to_the_second_domain() {
    let world = World::new().await;
    let client = world.client();
    world.mock.inject(Fault::status(503).on_domain("api").times(u32::MAX));
    client.access_token(deadline()).await.expect("token via api2");
    client.jsapi_ticket(deadline()).await.expect("ticket via api2");
    assert_eq!(world.mock.calls_on("api", STABLE), 1);
    assert_eq!(world.mock.calls_on("api2", STABLE), 1);
    assert_eq!(world.mock.calls_on("api2", TICKET), 1);
}

#[tokio::test]
async fn a_send_answered_503_by_the_primary_is_delivered_once_via_the_second_domain() {
    let world = World::new().await;
    let client = world.client();
    assert!(!world.settings().policies.get(Api::CustomSend).idempotent);
    client.access_token(deadline()).await.expect("token");
    world
        .mock
        .inject(Fault::status(503).on_domain("api").on_path(CUSTOM).times(u32::MAX));
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("503 means not processed: retried on api2");
    assert_eq!(world.mock.calls_on("api", CUSTOM), 1);
    assert_eq!(world.mock.calls_on("api2", CUSTOM), 1);
    let delivered = world.mock.messages();
    assert_eq!((delivered.len(), delivered[0].domain.as_str()), (1, "api2"));
}

#[tokio::test]
async fn calls_refused_by_every_domain_breaker_are_not_failures_of_the_message_breaker() {
    let world = World::new().await;
    let mut settings = world.settings();
    settings.domain_breaker = fast_breaker(2);
    settings.api_breaker = fast_breaker(20);
    let (client, registry) = world.client_and_registry(&settings);
    client.access_token(deadline()).await.expect("token");
    world.mock.set_domain_down("api", true).await.expect("down");
    world.mock.set_domain_down("api2", true).await.expect("down");
    // The outage: connections reset or refused until both domain breakers open.
    let mut outage = Ok(Default::default());
    for i in 0..10 {
        outage = client.send_custom(&text(&format!("o{i}")), deadline()).await;
        if matches!(outage, Err(WechatError::CircuitOpen(_))) {
            break;
        }
    }
    assert!(matches!(outage, Err(WechatError::CircuitOpen(_))), "{outage:?}");
    let message = registry.breaker("wechat.message");
    let failures = message.snapshot().window.failures;
    for i in 0..20 {
        let refused = client.send_custom(&text(&format!("r{i}")), deadline()).await;
        assert!(matches!(refused, Err(WechatError::CircuitOpen(_))), "{refused:?}");
    }
    assert_eq!(
        message.snapshot().window.failures,
        failures,
        "refusals by the domain breakers are not the API's failures"
    );
    assert_eq!(message.state(), State::Closed);

    world.mock.set_domain_down("api", false).await.expect("up");
    world.mock.set_domain_down("api2", false).await.expect("up");
    world.clock.advance(10_001); // the domains' open period is over
    client
        .send_custom(&text("back"), deadline())
        .await
        .expect("the message breaker never opened: the send goes through");
    assert_eq!(world.mock.messages().len(), 1);
}

#[tokio::test]
async fn a_slow_token_endpoint_is_not_charged_to_the_message_api() {
    let world = World::new().await;
    let mut settings = world.settings();
    let mut custom = settings.policies.get(Api::CustomSend);
    custom.timeout = Duration::from_millis(300);
    settings.policies.set(Api::CustomSend, custom);
    let (client, registry) = world.client_and_registry(&settings);
    world.mock.inject(Fault::delay_ms(700).on_path(STABLE).times(1));
    client
        .send_custom(&text("o1"), deadline())
        .await
        .expect("the token takes longer than a send attempt may, but is fetched before it");
    let message = registry.breaker("wechat.message").snapshot();
    assert_eq!(message.window.failures, 0, "{message:?}");
    assert_eq!(world.mock.calls(CUSTOM), 1);
}

#[tokio::test]
async fn a_token_rejected_by_getticket_costs_two_ticket_calls_not_three() {
    let world = World::new().await;
    let client = world.client();
    client.access_token(deadline()).await.expect("token");
    world.mock.invalidate_tokens(DEFAULT_APPID);
    client
        .jsapi_ticket(deadline())
        .await
        .expect("ticket with a refreshed token");
    assert_eq!(
        world.mock.calls(TICKET),
        2,
        "rejected once, then asked once with the fresh token"
    );
    assert_eq!(world.mock.calls(STABLE), 2);
}

#[tokio::test]
async fn once_the_primary_breaker_opens_no_call_reaches_it_and_an_idempotent_call_probes_it() {
    let world = World::new().await;
    let mut settings = world.settings();
    settings.domain_breaker = shared::resilience::BreakerConfig::builder()
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .open_duration(Duration::from_secs(10))
        .half_open_probes(1)
        .half_open_successes(1)
        .flush_interval(Duration::ZERO)
        .build()
        .expect("valid breaker config");
    // Custom sends keep their default (not idempotent): a 503 was not processed, so it is retried
    // on the next domain anyway.
    let client = world.client_with(&settings);
    client.access_token(deadline()).await.expect("token");

    world.mock.inject(Fault::status(503).on_domain("api").times(u32::MAX));
    for i in 0..6 {
        client
            .send_custom(&text(&format!("a{i}")), deadline())
            .await
            .expect("succeeds via api2");
    }
    let primary = world.mock.calls_on("api", CUSTOM);
    assert!(
        (3..6).contains(&primary),
        "the breaker opened after a few failures, got {primary}"
    );
    for i in 0..5 {
        client
            .send_custom(&text(&format!("b{i}")), deadline())
            .await
            .expect("succeeds via api2");
    }
    assert_eq!(
        world.mock.calls_on("api", CUSTOM),
        primary,
        "no call reaches an open primary"
    );
    assert_eq!(world.mock.calls_on("api2", CUSTOM), 11);

    world.mock.clear_faults();
    world.clock.advance(10_001); // open period over: the primary may be probed
    client
        .send_custom(&text("while-recovering"), deadline())
        .await
        .expect("via the healthy domain");
    assert_eq!(
        world.mock.calls_on("api", CUSTOM),
        primary,
        "a send prefers the domain that is healthy now over a probe"
    );
    client.jsapi_ticket(deadline()).await.expect("ticket");
    assert_eq!(
        world.mock.calls_on("api", TICKET),
        1,
        "an idempotent call (it fails over on anything) probed the primary"
    );
    client
        .send_custom(&text("closed"), deadline())
        .await
        .expect("primary again");
    assert_eq!(
        world.mock.calls_on("api", CUSTOM),
        primary + 1,
        "closed again: the primary is used"
    );
    assert_eq!(world.mock.messages().len(), 13, "every message delivered exactly once");
}

#[tokio::test]
async fn a_store_outage_never_fails_a_send() {
    use testkit::{FlakyStore, Health};
    let world = World::new().await;
    let flaky = Arc::new(FlakyStore::new(world.store.clone(), Duration::from_secs(30)));
    let store: SharedStore = flaky.clone();
    let clock: SharedClock = Arc::new(world.clock.clone());
    let client = WechatClient::new(&world.settings(), Secret::new(DEFAULT_SECRET), store, clock).expect("client");
    client.send_custom(&text("o1"), deadline()).await.expect("store up");
    flaky.set(Health::Down);
    world.mock.invalidate_tokens(DEFAULT_APPID); // forces a refresh while the store is down
    client
        .send_custom(&text("o2"), deadline())
        .await
        .expect("store down: local token cache and breakers");
    flaky.set(Health::Stalled);
    client
        .send_custom(&text("o3"), deadline())
        .await
        .expect("store stalled: still served");
    assert_eq!(world.mock.messages().len(), 3);
    assert!(client.token_stats().store_fallbacks >= 1);
}

#[tokio::test]
async fn a_5xx_on_a_send_is_not_repeated_because_the_message_may_have_been_delivered() {
    let world = World::new().await;
    let client = world.client();
    client.access_token(deadline()).await.expect("token");
    for status in [500, 504] {
        let before = world.mock.calls(CUSTOM);
        world.mock.inject(Fault::status(status).on_path(CUSTOM).times(1));
        let err = client
            .send_custom(&text("o1"), deadline())
            .await
            .expect_err("ambiguous failure");
        assert!(
            matches!(&err, WechatError::InDoubt { cause, others_untried: true }
                if matches!(**cause, WechatError::Http { status: s, .. } if s == status)),
            "{err:?}"
        );
        assert!(err.may_have_been_processed());
        assert_eq!(
            world.mock.calls(CUSTOM),
            before + 1,
            "HTTP {status}: not repeated anywhere"
        );
    }
}

#[tokio::test]
async fn a_send_answered_502_by_the_primary_is_delivered_once_via_the_second_domain() {
    let world = World::new().await;
    let client = world.client();
    client.access_token(deadline()).await.expect("token");
    world
        .mock
        .inject(Fault::status(502).on_domain("api").on_path(CUSTOM).times(u32::MAX));
    for i in 0..3 {
        client
            .send_custom(&text(&format!("o{i}")), deadline())
            .await
            .expect("502: no backend took it, so the send moves on to api2");
    }
    assert_eq!(world.mock.calls_on("api2", CUSTOM), 3);
    let delivered = world.mock.messages();
    assert!(delivered.iter().all(|m| m.domain == "api2") && delivered.len() == 3);
}

#[tokio::test]
async fn token_endpoint_down_keeps_calls_working_with_the_cached_token() {
    let world = World::new().await;
    let client = world.client();
    client.send_custom(&text("o1"), deadline()).await.expect("warm");
    world.mock.inject(Fault::status(503).on_path(STABLE).times(u32::MAX));
    world.clock.advance(7_200_000 - 120_000); // due for refresh, still valid for 2 minutes
    for i in 0..3 {
        client
            .send_custom(&text(&format!("u{i}")), deadline())
            .await
            .expect("served with the cached token");
    }
    assert_eq!(world.mock.messages().len(), 4);
    eventually("the background refresh fails and the token is served stale", || {
        client.token_stats().stale_served >= 1
    })
    .await;
}

/// Waits (real time, at most 5 s) until `done` holds: for work a background refresh finishes.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(5), "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_hanging_token_endpoint_never_delays_sends_while_a_valid_token_is_cached() {
    let world = World::new().await;
    let client = world.client();
    client.send_custom(&text("warm"), deadline()).await.expect("warm");
    let old = client.access_token(deadline()).await.expect("token");
    world.clock.advance(7_200_000 - 200_000); // due for refresh, valid for 200 s more
    world.mock.inject(Fault::delay_ms(1_500).on_path(STABLE).times(1));
    let started = Instant::now();
    let sends = (0..5).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            let budget = Deadline::after(Duration::from_millis(1_000)); // shorter than the token hang
            client.send_custom(&text(&format!("u{i}")), budget).await
        })
    });
    for send in sends {
        send.await.expect("joined").expect("sent with the cached token");
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "sends waited for the refresh: {:?}",
        started.elapsed()
    );
    eventually("the one refresh lands", || client.token_stats().upstream_fetches == 2).await;
    assert_eq!(world.mock.calls(STABLE), 2, "exactly one refresh");
    let new = client.access_token(deadline()).await.expect("token");
    assert_ne!(new, old);
    assert_eq!(world.mock.current_token(DEFAULT_APPID).as_deref(), Some(new.expose()));
}

#[tokio::test]
async fn a_token_rejected_by_wechat_is_refreshed_once_and_the_call_retried() {
    let world = World::new().await;
    let client = world.client();
    client.send_custom(&text("o1"), deadline()).await.expect("warm");
    world.mock.invalidate_tokens(DEFAULT_APPID);
    client
        .send_custom(&text("o2"), deadline())
        .await
        .expect("retried with a fresh token");
    assert_eq!(world.mock.calls(STABLE), 2);
    assert_eq!(world.mock.calls(CUSTOM), 3);
    assert_eq!(world.mock.messages().len(), 2);
}

#[tokio::test]
async fn the_deadline_bounds_slow_answers_and_retries() {
    let world = World::new().await;
    let client = world.client();
    client.access_token(deadline()).await.expect("token");
    world.mock.inject(Fault::delay_ms(1_000).on_path(CUSTOM).times(10));
    let started = Instant::now();
    let err = client
        .send_custom(&text("o1"), Deadline::after(Duration::from_millis(200)))
        .await
        .expect_err("too slow");
    // The resilience core never waits past the deadline (not even on its store): the deadline
    // plus scheduling slack.
    assert!(
        started.elapsed() <= Duration::from_millis(250),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            WechatError::Timeout { .. } | WechatError::DeadlineExceeded | WechatError::InDoubt { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn policy_overrides_change_behaviour_without_a_rebuild() {
    let world = World::new().await;
    let env = shared::config::Env::from_pairs([
        ("WECHAT_APPID", DEFAULT_APPID),
        ("WECHAT_APPSECRET", DEFAULT_SECRET),
        ("WECHAT_POLICY_CUSTOM_SEND", "max_attempts=1"),
    ]);
    let mut settings = world.settings();
    settings.policies = shared::config::WechatConfig::from_env(&env)
        .expect("valid")
        .client
        .policies;
    let client = world.client_with(&settings);
    world.mock.inject(Fault::errcode(-1).on_path(CUSTOM).times(1));
    assert_eq!(
        client
            .send_custom(&text("o1"), deadline())
            .await
            .map_err(|e| e.errcode()),
        Err(Some(-1))
    );
    assert_eq!(world.mock.calls(CUSTOM), 1);
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

/// Every log line of this test binary, at TRACE, from every test: installed globally before any
/// test runs a client (a per-test scoped subscriber misses events when tests run in parallel,
/// because callsite interest is cached process-wide).
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
        tracing::subscriber::set_global_default(subscriber).expect("first and only global subscriber");
        captured
    })
}

#[tokio::test]
async fn logs_of_a_full_flow_contain_neither_the_secret_nor_any_token() {
    let world = World::new().await;
    let client = world.client();
    client.send_custom(&text("o1"), deadline()).await.expect("send");
    client.jsapi_ticket(deadline()).await.expect("ticket");
    world.mock.invalidate_tokens(DEFAULT_APPID);
    client
        .send_custom(&text("o2"), deadline())
        .await
        .expect("send after refresh");
    world.mock.inject(Fault::status(503).on_path(STABLE).times(u32::MAX));
    world.mock.inject(Fault::drop_connection().on_path(CUSTOM).times(1));
    let _ = client.send_custom(&text("o3"), deadline()).await;
    world.clock.advance(7_200_000);
    let _ = client.send_custom(&text("o4"), deadline()).await;
    tracing::info!(secret = ?Secret::new(DEFAULT_SECRET), "debug output of a secret");

    let logs = String::from_utf8(logs().0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains("token refresh failed"), "the flow did log: {logs}");
    assert!(logs.contains("invalidated rejected token"), "the flow did log: {logs}");
    assert!(!logs.contains(DEFAULT_SECRET), "AppSecret leaked into logs");
    assert!(
        !logs.contains("MOCKVALUE"),
        "a token or ticket value leaked into logs:\n{logs}"
    );
}

/// The AppSecret from Secrets Manager, on the moto emulator that serves DynamoDB in the tests
/// (moto answers every AWS service on one endpoint). Skipped without an emulator, except in CI.
#[tokio::test]
async fn app_secret_loads_from_secrets_manager_as_a_string_or_json() {
    if !emulator_configured() {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let admin = aws_sdk_secretsmanager::Client::new(&sdk);
    let suffix = format!("{}-{}", std::process::id(), SystemClock.now_ms());
    let plain = format!("wechat/plain-{suffix}");
    let json = format!("wechat/json-{suffix}");
    admin
        .create_secret()
        .name(&plain)
        .secret_string("s3cret-plain")
        .send()
        .await
        .expect("create plain secret");
    admin
        .create_secret()
        .name(&json)
        .secret_string(r#"{"appsecret":"s3cret-json"}"#)
        .send()
        .await
        .expect("create json");
    let aws = Aws::with_config(sdk);
    let source = |id: String| SecretRef::SecretsManager { id, field: "appsecret" };
    let loaded = aws.secret(&source(plain)).await.expect("plain secret");
    assert_eq!(loaded.expose(), "s3cret-plain");
    let loaded = aws.secret(&source(json)).await.expect("json secret");
    assert_eq!(loaded.expose(), "s3cret-json");
    let missing = aws.secret(&source(format!("wechat/missing-{suffix}"))).await;
    assert!(missing.is_err());
}
