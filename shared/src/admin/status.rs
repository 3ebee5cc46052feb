//! The status page's data (`GET /status.json` of the local server): every breaker's fleet state,
//! the access token's age and expiry (never its value) and the latest events.

use serde_json::{Value, json};

use super::events::RecentEvents;
use super::view::fleet_view;
use crate::resilience::Breaker;
use crate::store::SharedStore;
use crate::wechat::fleet_token_lifetime;

/// The status document.
///
/// # Errors
/// Text describing the store failure.
pub async fn status(
    breakers: &[std::sync::Arc<Breaker>],
    pinned: &[String],
    store: &SharedStore,
    store_description: &str,
    appid: &str,
    events: &RecentEvents,
    now_ms: i64,
) -> Result<Value, String> {
    let views = fleet_view(breakers, pinned).await.map_err(|e| e.to_string())?;
    let token = fleet_token_lifetime(store, appid)
        .await
        .map_err(|e| e.to_string())?
        .map(|(fetched_at, expires_at)| {
            json!({
                "appid": appid,
                "age_secs": (now_ms - fetched_at).max(0) / 1000,
                "expires_in_secs": (expires_at - now_ms).max(0) / 1000,
                "source": "fleet",
            })
        });
    Ok(json!({
        "generated_at_ms": now_ms,
        "store": store_description,
        "breakers": views,
        "token": token,
        "events": events.newest_first(),
    }))
}
