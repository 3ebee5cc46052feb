//! Token manager settings, with WeChat-sensible defaults.

use std::time::Duration;

/// How the token manager refreshes, leases, polls and falls back. Scope: per instance (every
/// instance of a fleet should run the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenConfig {
    /// Refresh once less than this is left before the real expiry (default 5 min; with
    /// stable_token keep it ≤ 5 min, the window in which WeChat hands out the next token).
    pub refresh_margin: Duration,
    /// Never refresh a token fetched more recently than this (default 60 s): stops a refresh
    /// storm if WeChat hands back a token that is already inside the margin.
    pub min_refresh_interval: Duration,
    /// How long the refresh lease lasts; a dead holder's lease is taken over after it (default 10 s).
    pub lease: Duration,
    /// How often an instance with no usable token re-reads the store while another refreshes (default 50 ms).
    pub poll_interval: Duration,
    /// Upper bound on one store call; past it the store counts as down (default 1 s).
    pub store_timeout: Duration,
    /// After a store outage, use the instance-local cache for this long before trying the store again (default 5 s).
    pub store_retry_after: Duration,
    /// After a failed refresh, keep serving a still-valid token this long before trying again (default 5 s).
    pub refresh_backoff: Duration,
    /// How long a caller that holds a still-valid token waits for the refresh it triggered before
    /// being served that token (default 0: at once; the refresh runs on as its own task).
    pub refresh_wait: Duration,
    /// After a configuration error (40164 IP whitelist, 40013 AppID, 40125 AppSecret), answer it
    /// without calling WeChat for this long, fleet-wide (default 60 s).
    pub config_error_backoff: Duration,
    /// Fleet-wide `force_refresh` allowance per Beijing day (WeChat: 20).
    pub force_per_day: u32,
    /// Minimum spacing of forced refreshes (WeChat: 30 s).
    pub force_spacing: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            refresh_margin: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(60),
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            store_timeout: Duration::from_secs(1),
            store_retry_after: Duration::from_secs(5),
            refresh_backoff: Duration::from_secs(5),
            refresh_wait: Duration::ZERO,
            config_error_backoff: Duration::from_secs(60),
            force_per_day: 20,
            force_spacing: Duration::from_secs(30),
        }
    }
}
