//! The fleet-wide token manager against the WeChat mock over real HTTP and a shared store: the
//! in-memory store always, DynamoDB (moto) when `AWS_ENDPOINT_URL_DYNAMODB` is set.
//!
//! Every "instance" is its own `WechatClient` (own HTTP pool, own token cache) sharing one store,
//! as Lambda instances share DynamoDB. Time is a `ManualClock` shared by the store, the clients and
//! the mock, so token lifetimes move only when a test says so.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::clock::{Clock, ManualClock, SharedClock, SystemClock};
use shared::deadline::Deadline;
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::wechat::{ClientSettings, TokenKind, TokenMode, WechatClient};
use testkit::emulator::emulator_store;
use wechat_mock::{DEFAULT_APPID, DEFAULT_SECRET, MockConfig, MockHandle, MockServer};

const STABLE: &str = "/cgi-bin/stable_token";
const CLASSIC: &str = "/cgi-bin/token";
const CUSTOM: &str = "/cgi-bin/message/custom/send";

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fleet {
    clock: ManualClock,
    store: SharedStore,
    mock: MockHandle,
}

async fn mock_on(clock: &ManualClock) -> MockHandle {
    let time = clock.clone();
    let config = MockConfig::default().with_time(move || time.now_ms());
    MockServer::new()
        .config(config)
        .domain("api")
        .domain("api2")
        .start()
        .await
        .expect("mock starts")
}

async fn memory() -> Option<Fleet> {
    let clock = ManualClock::new(SystemClock.now_ms());
    let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    Some(Fleet {
        mock: mock_on(&clock).await,
        clock,
        store,
    })
}

/// A DynamoDB-backed fleet on a fresh table; `None` (after saying so) without an emulator,
/// except under `CI=true`, where a missing emulator is a failure.
async fn dynamo() -> Option<Fleet> {
    let clock = ManualClock::new(SystemClock.now_ms());
    let store = emulator_store("tokens", Arc::new(clock.clone())).await?;
    Some(Fleet {
        mock: mock_on(&clock).await,
        clock,
        store: Arc::new(store),
    })
}

impl Fleet {
    fn settings(&self, mode: TokenMode) -> ClientSettings {
        let mut settings = ClientSettings::new(
            DEFAULT_APPID,
            vec![self.mock.base_url("api"), self.mock.base_url("api2")],
        );
        settings.token_mode = mode;
        settings.token.store_timeout = Duration::from_secs(10);
        settings.token.poll_interval = Duration::from_millis(20);
        settings
    }

    /// `n` instances, each with its own caches, sharing the store.
    fn instances(&self, n: usize, mode: TokenMode) -> Vec<WechatClient> {
        self.instances_with(n, &self.settings(mode))
    }

    fn instances_with(&self, n: usize, settings: &ClientSettings) -> Vec<WechatClient> {
        let clock: SharedClock = Arc::new(self.clock.clone());
        (0..n)
            .map(|_| {
                WechatClient::new(settings, Secret::new(DEFAULT_SECRET), self.store.clone(), clock.clone())
                    .expect("client")
            })
            .collect()
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

fn text(to: &str) -> serde_json::Value {
    json!({"touser": to, "msgtype": "text", "text": {"content": "hello"}})
}

/// Runs each case on the memory store and, when configured, on DynamoDB.
macro_rules! fleet_suite {
    ($($case:ident),+ $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fleet = super::memory().await.expect("memory fleet");
                    super::$case(fleet).await;
                }
            )+
        }
        mod dynamo_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(fleet) = super::dynamo().await else { return };
                    super::$case(fleet).await;
                }
            )+
        }
    };
}

fleet_suite!(
    sixteen_cold_instances_fetch_exactly_one_stable_token,
    sixteen_cold_instances_fetch_exactly_one_classic_token,
    token_invalidated_mid_flight_is_refreshed_once_and_every_call_succeeds,
    refresh_ahead_of_expiry_is_done_by_one_instance,
    a_lease_holder_that_did_not_see_the_rejection_refreshes_normally,
);

// ---------------------------------------------------------------------------------------------
// Cases

async fn cold_start(fleet: Fleet, mode: TokenMode, path: &str) {
    let instances = fleet.instances(16, mode);
    let calls = instances
        .into_iter()
        .map(|client| tokio::spawn(async move { client.access_token(deadline()).await }));
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.expect("joined").expect("token"));
    }
    assert_eq!(
        fleet.mock.calls(path),
        1,
        "exactly one upstream token fetch for 16 cold instances"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every instance got the same token"
    );
    assert_eq!(
        fleet.mock.current_token(DEFAULT_APPID).as_deref(),
        Some(tokens[0].expose())
    );
}

async fn sixteen_cold_instances_fetch_exactly_one_stable_token(fleet: Fleet) {
    cold_start(fleet, TokenMode::Stable, STABLE).await;
}

async fn sixteen_cold_instances_fetch_exactly_one_classic_token(fleet: Fleet) {
    cold_start(fleet, TokenMode::Classic, CLASSIC).await;
}

async fn token_invalidated_mid_flight_is_refreshed_once_and_every_call_succeeds(fleet: Fleet) {
    let instances = fleet.instances(8, TokenMode::Stable);
    for client in &instances {
        client
            .send_custom(&text("warm-up"), deadline())
            .await
            .expect("warm-up send");
    }
    assert_eq!(fleet.mock.calls(STABLE), 1);
    fleet.mock.invalidate_tokens(DEFAULT_APPID);
    let sends = instances.iter().cloned().enumerate().map(|(i, client)| {
        tokio::spawn(async move { client.send_custom(&text(&format!("user-{i}")), deadline()).await })
    });
    for send in sends {
        send.await.expect("joined").expect("send succeeds after one refresh");
    }
    assert_eq!(fleet.mock.calls(STABLE), 2, "one refresh for the whole fleet, no storm");
    let delivered = fleet.mock.messages();
    for i in 0..8 {
        let to = format!("user-{i}");
        assert_eq!(
            delivered.iter().filter(|m| m.body["touser"] == to.as_str()).count(),
            1,
            "{to} delivered exactly once"
        );
    }
    assert_eq!(fleet.mock.calls(CUSTOM), 8 + 8 + 8, "8 warm-ups, 8 rejected, 8 retried");
}

async fn refresh_ahead_of_expiry_is_done_by_one_instance(fleet: Fleet) {
    let instances = fleet.instances(8, TokenMode::Stable);
    let first = instances[0].access_token(deadline()).await.expect("token");
    for client in &instances {
        assert_eq!(client.access_token(deadline()).await.expect("token"), first);
    }
    fleet.clock.advance(7_200_000 - 240_000); // inside the 5-minute refresh margin
    for client in &instances {
        // Served at once (the still-valid token, or the new one if it already landed).
        client
            .access_token(Deadline::after(Duration::from_millis(100)))
            .await
            .expect("token");
    }
    let mut seen = Vec::new();
    for client in &instances {
        seen.push(moved_on(client, &first).await);
    }
    assert_eq!(fleet.mock.calls(STABLE), 2, "one refresh ahead of expiry");
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "all instances moved to the same new token"
    );
}

async fn a_lease_holder_that_did_not_see_the_rejection_refreshes_normally(fleet: Fleet) {
    let seer = fleet.instances(1, TokenMode::Stable).remove(0);
    let old = seer.access_token(deadline()).await.expect("token");
    // WeChat rotated the token (a forced refresh elsewhere); `seer` got 40001 and invalidated it
    // in the store by compare-and-set, but another instance takes the refresh lease first.
    fleet.mock.invalidate_tokens(DEFAULT_APPID);
    seer.tokens().invalidate(TokenKind::AccessToken, &old, deadline()).await;
    let holder = fleet.instances(1, TokenMode::Stable).remove(0);
    let new = holder
        .access_token(deadline())
        .await
        .expect("refreshed by the lease holder");
    assert_ne!(new, old);
    assert_eq!(fleet.mock.calls(STABLE), 2);
    assert_eq!(
        fleet.mock.forced_refreshes(),
        0,
        "a normal call: WeChat already rotated"
    );
    assert_eq!(holder.token_stats().forced_refreshes, 0);
    // The instance that saw the rejection adopts the published token and sends with it.
    seer.send_custom(&text("after"), deadline()).await.expect("send");
    assert_eq!(seer.access_token(deadline()).await.expect("token"), new);
    assert_eq!((fleet.mock.calls(STABLE), fleet.mock.forced_refreshes()), (2, 0));
}

/// The token `client` is served once it is not `old` any more (a background refresh landed);
/// gives up after 5 s.
async fn moved_on(client: &WechatClient, old: &Secret) -> Secret {
    let started = std::time::Instant::now();
    loop {
        let token = client.access_token(deadline()).await.expect("token");
        if token != *old {
            return token;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still served the old token");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The figure: upstream token fetches per hour for a fleet of N instances.

/// Simulates 24 hours of a fleet of `n` instances in one-minute steps of manual time: every
/// instance asks for the token every minute, one instance sends a message every ten minutes, an
/// operator forces a refresh at 06:00 and 18:00, and WeChat itself rotates the token at 10:00.
/// Returns (normal stable_token calls, forced ones) seen by the mock.
async fn simulate_day(n: usize) -> (u64, u64) {
    let fleet = memory().await.expect("memory fleet");
    // The simulation jumps the clock a minute at a time: a caller waits for the refresh it
    // triggers, so no fetch straddles a jump (in real time a fetch takes milliseconds).
    let mut settings = fleet.settings(TokenMode::Stable);
    settings.token.refresh_wait = Duration::from_secs(5);
    let instances = fleet.instances_with(n, &settings);
    let mut forced = 0;
    for minute in 0..24 * 60 {
        for client in &instances {
            client.access_token(deadline()).await.expect("token");
        }
        if minute % 10 == 0 {
            let client = &instances[minute / 10 % n];
            client
                .send_custom(&text(&format!("m{minute}")), deadline())
                .await
                .expect("send");
        }
        if minute == 6 * 60 || minute == 18 * 60 {
            instances[minute % n]
                .tokens()
                .force_refresh(deadline())
                .await
                .expect("forced refresh");
            forced += 1;
        }
        if minute == 10 * 60 {
            fleet.mock.invalidate_tokens(DEFAULT_APPID);
        }
        fleet.clock.advance(60_000);
    }
    (fleet.mock.calls(STABLE) - forced, forced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_fetches_per_hour_do_not_depend_on_fleet_size() {
    let mut rows = Vec::new();
    for n in [1, 8, 64] {
        let (normal, forced) = simulate_day(n).await;
        rows.push((n, normal, forced));
    }
    eprintln!("fleet size | normal fetches/24h | forced/24h | upstream fetches/hour");
    for (n, normal, forced) in &rows {
        eprintln!(
            "{n:>10} | {normal:>18} | {forced:>10} | {:>21.3}",
            (normal + forced) as f64 / 24.0
        );
    }
    // One fetch per token lifetime (refreshed 5 min early: every 115 min → 13 in 24 h from a cold
    // start), plus the refresh after WeChat's own rotation, plus the two forced ones — for any N.
    assert!(
        rows.iter().all(|row| (row.1, row.2) == (rows[0].1, rows[0].2)),
        "independent of N: {rows:?}"
    );
    assert!(
        (13..=15).contains(&rows[0].1),
        "about one fetch per token lifetime: {rows:?}"
    );
}
