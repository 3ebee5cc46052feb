//! The fleet-wide token manager: one access token and one jsapi ticket per account for the whole
//! fleet, refreshed ahead of expiry by a single lease holder (see [`TokenManager`]).

mod blocks;
mod config;
mod fleet;
mod fresh;
mod inflight;
mod limits;
mod lookup;
mod manager;
mod record;
mod refresh;
mod source;
mod stats;

pub use blocks::config_fix;
pub use config::TokenConfig;
pub use manager::TokenManager;
pub use record::TokenKind;
pub use source::{Fetched, TokenMode, TokenSource};
pub use stats::TokenStats;

/// When the fleet's access token for `appid` was fetched and when it expires (epoch ms), as the
/// store holds it — never its value (status pages, health). `None` before the first fetch.
///
/// # Errors
/// [`crate::store::StoreError`] when the store cannot be read.
pub async fn fleet_token_lifetime(
    store: &crate::store::SharedStore,
    appid: &str,
) -> Result<Option<(i64, i64)>, crate::store::StoreError> {
    let item = store.get(&record::key(appid, TokenKind::AccessToken)).await?;
    Ok(record::Record::from_item(item.as_ref())
        .token
        .map(|token| (token.fetched_at_ms, token.expires_at_ms)))
}
