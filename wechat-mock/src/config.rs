//! Mock configuration: accounts, token lifetimes, quotas, the follower population and the time source.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The default account the mock knows: appid.
pub const DEFAULT_APPID: &str = "wx_mock_appid";
/// The default account the mock knows: AppSecret.
pub const DEFAULT_SECRET: &str = "mock_app_secret";

/// The default mini-program the mock knows: appid.
pub const DEFAULT_MINIPROGRAM_APPID: &str = "wx_mock_miniprogram";
/// The default mini-program the mock knows: AppSecret.
pub const DEFAULT_MINIPROGRAM_SECRET: &str = "mock_miniprogram_secret";

/// A source of epoch milliseconds, so tests can drive the mock with their own manual clock.
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How the mock behaves; every field has a WeChat-like default.
#[derive(Clone)]
pub struct MockConfig {
    /// Known accounts as `(appid, secret)`.
    pub apps: Vec<(String, String)>,
    /// `expires_in` of issued access tokens and tickets, seconds (WeChat: 7200).
    pub token_ttl_secs: i64,
    /// How long a classic token stays valid after the next classic call replaced it, ms.
    /// WeChat documents 5 minutes (the default); tests that want "replaced = dead at once" set 0.
    pub classic_grace_ms: i64,
    /// A stable token is rotated by a normal call once fewer than this many ms remain
    /// (WeChat: 5 minutes, so any returned stable token has `expires_in >= 300`).
    pub stable_rotate_before_ms: i64,
    /// `force_refresh=true` calls allowed per Beijing day (WeChat: 20).
    pub force_refresh_per_day: u32,
    /// Minimum spacing between two forced refreshes, ms (WeChat: 30 s).
    pub force_refresh_spacing_ms: i64,
    /// Classic `/cgi-bin/token` calls allowed per Beijing day before 45009 (WeChat: 2000).
    pub classic_daily_quota: u32,
    /// Followers generated for `/cgi-bin/user/get` and friends (at start and on reset), at most
    /// [`crate::MAX_FOLLOWERS`]; follower `i` is [`crate::follower_openid`]`(i)`. Default 0.
    pub followers: usize,
    /// Tags over the followers (ids `100..100+n`, names `tag-k`; at most 1 000). Default 0.
    pub follower_tags: usize,
    /// The mock's base time; the control API adds an offset on top.
    pub time: TimeSource,
}

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field(
                "apps",
                &self.apps.iter().map(|(appid, _)| appid.as_str()).collect::<Vec<_>>(),
            )
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("classic_grace_ms", &self.classic_grace_ms)
            .field("stable_rotate_before_ms", &self.stable_rotate_before_ms)
            .field("force_refresh_per_day", &self.force_refresh_per_day)
            .field("force_refresh_spacing_ms", &self.force_refresh_spacing_ms)
            .field("classic_daily_quota", &self.classic_daily_quota)
            .field("followers", &self.followers)
            .field("follower_tags", &self.follower_tags)
            .finish_non_exhaustive()
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            apps: vec![
                (DEFAULT_APPID.to_owned(), DEFAULT_SECRET.to_owned()),
                (
                    DEFAULT_MINIPROGRAM_APPID.to_owned(),
                    DEFAULT_MINIPROGRAM_SECRET.to_owned(),
                ),
            ],
            token_ttl_secs: 7200,
            classic_grace_ms: 5 * 60 * 1000,
            stable_rotate_before_ms: 5 * 60 * 1000,
            force_refresh_per_day: 20,
            force_refresh_spacing_ms: 30_000,
            classic_daily_quota: 2000,
            followers: 0,
            follower_tags: 0,
            time: Arc::new(system_now_ms),
        }
    }
}

impl MockConfig {
    /// Uses `time` (epoch ms) as the mock's clock, e.g. a test's `ManualClock`.
    pub fn with_time(mut self, time: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.time = Arc::new(time);
        self
    }

    /// Sets the grace period of a replaced classic token.
    pub fn with_classic_grace_ms(mut self, grace_ms: i64) -> Self {
        self.classic_grace_ms = grace_ms;
        self
    }

    /// Adds an account.
    pub fn with_app(mut self, appid: &str, secret: &str) -> Self {
        self.apps.push((appid.to_owned(), secret.to_owned()));
        self
    }

    /// Generates `count` followers (at most [`crate::MAX_FOLLOWERS`]) over `tags` tags.
    pub fn with_followers(mut self, count: usize, tags: usize) -> Self {
        self.followers = count;
        self.follower_tags = tags;
        self
    }
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The Beijing (UTC+8) calendar day of an epoch-ms instant: WeChat quotas reset at its midnight.
pub(crate) fn beijing_day(now_ms: i64) -> i64 {
    (now_ms + 8 * 3_600_000).div_euclid(86_400_000)
}
