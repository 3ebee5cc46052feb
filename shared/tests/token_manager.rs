//! Token manager behaviour on the in-memory store with a scripted token source and a manual clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use shared::clock::{Clock, ManualClock};
use shared::deadline::Deadline;
use shared::secret::Secret;
use shared::store::memory::MemoryStore;
use shared::store::{Attrs, Condition, Key, SharedStore, StateStore, StoreError, Update};
use shared::wechat::errcode::Errcode;
use shared::wechat::error::WechatError;
use shared::wechat::next_daily_reset_ms;
use shared::wechat::token::*;
use testkit::{FlakyStore, Health};

const START: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

#[derive(Debug, Default)]
struct FakeSource {
    normal: AtomicU64,
    forced: AtomicU64,
    tickets: AtomicU64,
    errors: Mutex<VecDeque<WechatError>>,
    /// When set, normal fetches keep returning this value.
    stuck: Mutex<Option<String>>,
    /// How long every access token fetch takes (tokio time).
    hang: Mutex<Duration>,
    /// A clock moved forward by this much during every fetch (a slow answer on the wall clock).
    lag: Mutex<Option<(ManualClock, i64)>>,
}

impl FakeSource {
    fn fail_next(&self, err: WechatError) {
        self.errors.lock().expect("lock").push_back(err);
    }
    fn next_error(&self) -> Option<WechatError> {
        self.errors.lock().expect("lock").pop_front()
    }
    fn normal(&self) -> u64 {
        self.normal.load(Ordering::SeqCst)
    }
    fn forced(&self) -> u64 {
        self.forced.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenSource for FakeSource {
    async fn access_token(&self, force: bool, _deadline: Deadline) -> Result<Fetched, WechatError> {
        tokio::task::yield_now().await;
        let hang = *self.hang.lock().expect("lock");
        tokio::time::sleep(hang).await;
        if let Some((clock, ms)) = self.lag.lock().expect("lock").as_ref() {
            clock.advance(*ms);
        }
        if let Some(err) = self.next_error() {
            return Err(err);
        }
        let n = if force {
            self.forced.fetch_add(1, Ordering::SeqCst) + 100
        } else {
            self.normal.fetch_add(1, Ordering::SeqCst)
        };
        let stuck = self.stuck.lock().expect("lock").clone();
        let value = match stuck {
            Some(value) if !force => value,
            _ => format!("tok-{n}"),
        };
        Ok(Fetched {
            value: Secret::new(value),
            expires_in_secs: 7200,
        })
    }

    async fn jsapi_ticket(&self, access_token: &Secret, _deadline: Deadline) -> Result<Fetched, WechatError> {
        if let Some(err) = self.next_error() {
            return Err(err);
        }
        let n = self.tickets.fetch_add(1, Ordering::SeqCst);
        Ok(Fetched {
            value: Secret::new(format!("ticket-{n}-for-{}", access_token.expose())),
            expires_in_secs: 7200,
        })
    }
}

struct Fleet {
    clock: ManualClock,
    store: SharedStore,
    source: Arc<FakeSource>,
}

impl Fleet {
    fn new() -> Self {
        let clock = ManualClock::new(START);
        let store: SharedStore = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
        Self {
            clock,
            store,
            source: Arc::new(FakeSource::default()),
        }
    }
    fn instance(&self, name: &str) -> TokenManager {
        self.instance_on(name, self.store.clone())
    }
    fn instance_on(&self, name: &str, store: SharedStore) -> TokenManager {
        let config = TokenConfig {
            poll_interval: Duration::from_millis(20),
            ..TokenConfig::default()
        };
        TokenManager::new(
            "wx1",
            TokenMode::Stable,
            self.source.clone(),
            store,
            Arc::new(self.clock.clone()),
            config,
        )
        .with_owner(name)
    }
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(3))
}

/// Lets background refresh tasks run to completion (paused time advances when all are idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn api(errcode: i64) -> WechatError {
    WechatError::Api(Errcode {
        errcode,
        errmsg: "scripted".into(),
    })
}

#[tokio::test(start_paused = true)]
async fn concurrent_cold_instances_fetch_exactly_once() {
    let fleet = Fleet::new();
    let instances: Vec<_> = (0..16).map(|i| Arc::new(fleet.instance(&format!("i{i}")))).collect();
    let calls = instances
        .iter()
        .cloned()
        .map(|m| tokio::spawn(async move { m.access_token(deadline()).await }));
    let mut values = Vec::new();
    for call in calls {
        values.push(call.await.expect("joined").expect("token").expose().to_owned());
    }
    assert_eq!(fleet.source.normal(), 1);
    assert!(values.iter().all(|v| v == "tok-0"));
}

#[tokio::test(start_paused = true)]
async fn a_fresh_token_is_served_from_the_local_cache_without_the_store() {
    let fleet = Fleet::new();
    let manager = fleet.instance("a");
    manager.access_token(deadline()).await.expect("token");
    manager.access_token(deadline()).await.expect("token");
    assert_eq!(manager.stats().cache_hits, 1);
}

#[tokio::test(start_paused = true)]
async fn refresh_ahead_of_expiry_happens_once_while_others_keep_the_valid_token() {
    let fleet = Fleet::new();
    let (a, b) = (fleet.instance("a"), fleet.instance("b"));
    a.access_token(deadline()).await.expect("token");
    fleet.clock.advance(7_200_000 - 200_000); // inside the 5-minute margin
    // b holds the lease (as if refreshing right now): a keeps the still-valid token.
    let key = Key::new("token#wx1", "access_token");
    let lease = Update::new()
        .set("lease_owner", "b")
        .set("lease_until", fleet.clock.now_ms() + 10_000);
    fleet
        .store
        .update(&key, lease.when(Condition::Always))
        .await
        .expect("lease");
    assert_eq!(a.access_token(deadline()).await.expect("token").expose(), "tok-0");
    assert_eq!(fleet.source.normal(), 1);
    // b (no token of its own: it waits) refreshes: exactly one new fetch. a is served its valid
    // token at once while its background refresh picks the new one up from the store.
    assert_eq!(b.access_token(deadline()).await.expect("token").expose(), "tok-1");
    assert_eq!(a.access_token(deadline()).await.expect("token").expose(), "tok-0");
    settle().await;
    assert_eq!(a.access_token(deadline()).await.expect("token").expose(), "tok-1");
    assert_eq!(fleet.source.normal(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dead_lease_holder_is_taken_over_after_its_lease_expires() {
    let fleet = Fleet::new();
    let key = Key::new("token#wx1", "access_token");
    let lease = Update::new()
        .set("lease_owner", "dead")
        .set("lease_until", START + 10_000);
    fleet.store.update(&key, lease).await.expect("lease");
    let manager = Arc::new(fleet.instance("alive"));
    let waiting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token(Deadline::after(Duration::from_secs(5))).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fleet.source.normal(), 0, "waits while the lease is live");
    fleet.clock.advance(10_000);
    assert_eq!(waiting.await.expect("joined").expect("token").expose(), "tok-0");
    assert!(manager.stats().polls > 0);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_another_instance_respects_the_deadline() {
    let fleet = Fleet::new();
    let key = Key::new("token#wx1", "access_token");
    fleet
        .store
        .update(
            &key,
            Update::new()
                .set("lease_owner", "other")
                .set("lease_until", START + 60_000),
        )
        .await
        .expect("lease");
    let manager = fleet.instance("me");
    let started = tokio::time::Instant::now();
    let result = manager.access_token(Deadline::after(Duration::from_millis(300))).await;
    assert_eq!(result, Err(WechatError::DeadlineExceeded));
    assert!(started.elapsed() <= Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_stale_instance_never_wipes_a_fresh_token() {
    let fleet = Fleet::new();
    let (a, b) = (fleet.instance("a"), fleet.instance("b"));
    let old = a.access_token(deadline()).await.expect("token");
    b.invalidate(TokenKind::AccessToken, &old, deadline()).await;
    let fresh = b.access_token(deadline()).await.expect("token");
    assert_ne!(fresh, old);
    // a still reports the old value as bad: the store keeps b's fresh token.
    a.invalidate(TokenKind::AccessToken, &old, deadline()).await;
    assert_eq!(a.access_token(deadline()).await.expect("token"), fresh);
    assert_eq!(fleet.source.normal(), 2);
}

#[tokio::test(start_paused = true)]
async fn rejected_token_handed_back_again_triggers_one_limited_forced_refresh() {
    let fleet = Fleet::new();
    let manager = fleet.instance("a");
    *fleet.source.stuck.lock().expect("lock") = Some("stuck".into());
    let stuck = manager.access_token(deadline()).await.expect("token");
    manager.invalidate(TokenKind::AccessToken, &stuck, deadline()).await;
    assert_eq!(
        manager.access_token(deadline()).await.expect("token").expose(),
        "tok-100"
    );
    assert_eq!(manager.stats().forced_refreshes, 1);
    // Again within 30 s: the fleet-wide spacing refuses a second forced refresh.
    let other = fleet.instance("b");
    other
        .invalidate(TokenKind::AccessToken, &Secret::new("tok-100"), deadline())
        .await;
    other.invalidate(TokenKind::AccessToken, &stuck, deadline()).await;
    let refused = other.access_token(deadline()).await;
    assert!(
        matches!(refused, Err(WechatError::ForceRefreshLimited(_))),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn daily_quota_blocks_refreshes_fleet_wide_until_midnight_beijing() {
    let fleet = Fleet::new();
    fleet.source.fail_next(api(45009));
    let a = fleet.instance("a");
    let first = a.access_token(deadline()).await;
    let until = next_daily_reset_ms(START);
    assert_eq!(first, Err(WechatError::QuotaExhausted { until_ms: until }));
    let b = fleet.instance("b");
    assert_eq!(
        b.access_token(deadline()).await,
        Err(WechatError::QuotaExhausted { until_ms: until })
    );
    assert_eq!(fleet.source.normal(), 0, "no call while blocked");
    fleet.clock.set(until);
    assert!(b.access_token(deadline()).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn configuration_errors_are_answered_fleet_wide_without_calling_wechat_for_a_while() {
    let fleet = Fleet::new();
    fleet.source.fail_next(api(40164));
    let result = fleet.instance("a").access_token(deadline()).await;
    assert_eq!(result.map_err(|e| e.errcode()), Err(Some(40164)));
    // Another instance, and the same one again: the error, and no call (the next one would succeed).
    for name in ["b", "a"] {
        let again = fleet.instance(name).access_token(deadline()).await;
        assert_eq!(again.map_err(|e| e.errcode()), Err(Some(40164)), "{name}");
    }
    assert_eq!(fleet.source.normal(), 0);
    fleet.clock.advance(60_000);
    assert!(fleet.instance("b").access_token(deadline()).await.is_ok());
    assert_eq!(fleet.source.normal(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_token_endpoint_never_delays_callers_holding_a_valid_token() {
    let fleet = Fleet::new();
    let manager = Arc::new(fleet.instance("a"));
    let valid = manager.access_token(deadline()).await.expect("token");
    fleet.clock.advance(7_200_000 - 200_000); // inside the margin, still valid
    *fleet.source.hang.lock().expect("lock") = Duration::from_secs(8);
    let started = tokio::time::Instant::now();
    let callers = (0..8).map(|_| {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token(Deadline::after(Duration::from_millis(100))).await })
    });
    for caller in callers {
        assert_eq!(caller.await.expect("joined").expect("the cached token"), valid);
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "nobody waited for the refresh");
    tokio::time::sleep(Duration::from_secs(9)).await; // the one refresh completes in the background
    assert_eq!(fleet.source.normal(), 2, "exactly one refresh");
    assert_eq!(manager.access_token(deadline()).await.expect("token").expose(), "tok-1");
    let stored = fleet
        .store
        .get(&Key::new("token#wx1", "access_token"))
        .await
        .expect("store")
        .expect("item");
    assert_eq!(stored.str_attr("value"), Some("tok-1"), "published for the fleet");
}

#[tokio::test(start_paused = true)]
async fn a_tokens_lifetime_counts_from_before_a_slow_fetch() {
    let fleet = Fleet::new();
    *fleet.source.lag.lock().expect("lock") = Some((fleet.clock.clone(), 30_000));
    fleet.instance("a").access_token(deadline()).await.expect("token");
    let stored = fleet
        .store
        .get(&Key::new("token#wx1", "access_token"))
        .await
        .expect("store")
        .expect("item");
    assert_eq!(stored.num_attr("expires_at_ms"), Some(START + 7_200_000));
    assert_eq!(stored.num_attr("fetched_at_ms"), Some(START));
}

#[tokio::test(start_paused = true)]
async fn a_lease_holder_that_did_not_see_the_rejection_refreshes_normally() {
    let fleet = Fleet::new();
    let (a, b) = (fleet.instance("a"), fleet.instance("b"));
    *fleet.source.stuck.lock().expect("lock") = Some("stuck".into());
    let token = a.access_token(deadline()).await.expect("token");
    a.invalidate(TokenKind::AccessToken, &token, deadline()).await;
    // b did not see WeChat's rejection: its refresh is a normal call, never a forced one.
    assert_eq!(b.access_token(deadline()).await.expect("token"), token);
    assert_eq!((fleet.source.normal(), fleet.source.forced()), (2, 0));
    assert_eq!(b.stats().forced_refreshes, 0);
}

#[tokio::test(start_paused = true)]
async fn invalidating_against_a_stalled_store_ends_by_the_callers_deadline_without_an_outage() {
    let fleet = Fleet::new();
    let flaky = Arc::new(FlakyStore::new(fleet.store.clone(), Duration::from_secs(60)));
    let manager = TokenManager::new(
        "wx1",
        TokenMode::Stable,
        fleet.source.clone(),
        flaky.clone(),
        Arc::new(fleet.clock.clone()),
        TokenConfig {
            store_timeout: Duration::from_secs(10),
            ..TokenConfig::default()
        },
    );
    let token = manager.access_token(deadline()).await.expect("token");
    flaky.set(Health::Stalled);
    let started = tokio::time::Instant::now();
    manager
        .invalidate(
            TokenKind::AccessToken,
            &token,
            Deadline::after(Duration::from_millis(200)),
        )
        .await;
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert_eq!(manager.stats().store_fallbacks, 0, "the deadline is not a store outage");
}

#[tokio::test(start_paused = true)]
async fn endpoint_down_serves_the_cached_token_until_its_real_expiry() {
    let fleet = Fleet::new();
    let manager = fleet.instance("a");
    let token = manager.access_token(deadline()).await.expect("token");
    fleet.clock.advance(7_200_000 - 100_000);
    for _ in 0..3 {
        fleet
            .source
            .fail_next(WechatError::CircuitOpen("token endpoint".into()));
    }
    assert_eq!(manager.access_token(deadline()).await.expect("stale"), token);
    settle().await; // the background refresh fails: the token is served stale, then backed off
    assert_eq!(manager.access_token(deadline()).await.expect("backing off"), token);
    assert_eq!(manager.stats().stale_served, 2);
    fleet.clock.advance(100_000);
    assert!(matches!(
        manager.access_token(deadline()).await,
        Err(WechatError::CircuitOpen(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn ticket_refetches_once_with_a_fresh_access_token_when_it_was_rejected() {
    let fleet = Fleet::new();
    let manager = fleet.instance("a");
    manager.access_token(deadline()).await.expect("token");
    fleet.source.fail_next(api(40001));
    let ticket = manager.jsapi_ticket(deadline()).await.expect("ticket");
    assert_eq!(ticket.expose(), "ticket-0-for-tok-1");
}

/// A store that is down.
#[derive(Debug)]
struct DownStore;

#[async_trait]
impl StateStore for DownStore {
    async fn get(&self, _: &Key) -> Result<Option<Attrs>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn put(&self, _: &Key, _: Attrs, _: Condition) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn update(&self, _: &Key, _: Update) -> Result<Attrs, StoreError> {
        Err(StoreError::Throttled("down".into()))
    }
    async fn delete(&self, _: &Key, _: Condition) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
    async fn query(&self, _: &str) -> Result<Vec<(String, Attrs)>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn store_outage_falls_back_to_the_local_cache_and_never_fails_the_call() {
    let fleet = Fleet::new();
    let manager = fleet.instance_on("a", Arc::new(DownStore));
    let token = manager.access_token(deadline()).await.expect("token despite the store");
    assert_eq!(manager.access_token(deadline()).await.expect("cached"), token);
    manager.invalidate(TokenKind::AccessToken, &token, deadline()).await;
    assert_ne!(
        manager.access_token(deadline()).await.expect("refreshed locally"),
        token
    );
    let stats = manager.stats();
    assert!(stats.store_fallbacks >= 1);
    assert_eq!(stats.upstream_fetches, 2);
}
