//! Fleet-wide limits around the token endpoint: the forced-refresh allowance (WeChat allows 20
//! `force_refresh` calls a day, 30 s apart) and the 45009 quota block until the daily reset.
//!
//! Both live in the account's token partition (`token#{appid}` / `force_refresh` and `quota`), so
//! every instance sees them; each also has an instance-local twin used while the store is down.

use super::fleet::FleetTokens;
use super::record::{TokenKind, partition};
use crate::store::{AttrsExt, CmpOp, Condition, Key, StoreError, Update};

const DAY: &str = "day";
const COUNT: &str = "count";
const LAST_MS: &str = "last_ms";
const BLOCKED_UNTIL_MS: &str = "blocked_until_ms";

const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The Beijing (UTC+8) calendar day number of `now_ms`: WeChat's daily quotas reset at its midnight.
pub fn beijing_day(now_ms: i64) -> i64 {
    (now_ms + BEIJING_OFFSET_MS).div_euclid(DAY_MS)
}

/// The next midnight in Beijing after `now_ms`, epoch ms.
pub fn next_daily_reset_ms(now_ms: i64) -> i64 {
    (beijing_day(now_ms) + 1) * DAY_MS - BEIJING_OFFSET_MS
}

/// The forced-refresh allowance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForceLimit {
    pub per_day: u32,
    pub spacing_ms: i64,
}

/// Instance-local copy of the limits (used only while the store is unreachable).
#[derive(Debug, Default)]
pub(crate) struct LocalLimits {
    force: Option<(i64, u32, i64)>,
    blocked_until_ms: [i64; 2],
}

impl LocalLimits {
    pub fn take_force(&mut self, now_ms: i64, limit: ForceLimit) -> Result<(), String> {
        let day = beijing_day(now_ms);
        let (count, last) = match self.force {
            Some((d, count, last)) if d == day => (count, Some(last)),
            Some((_, _, last)) => (0, Some(last)),
            None => (0, None),
        };
        check_force(count, last, now_ms, limit)?;
        self.force = Some((day, count + 1, now_ms));
        Ok(())
    }

    pub fn block(&mut self, kind: TokenKind, until_ms: i64) {
        let slot = &mut self.blocked_until_ms[kind.index()];
        *slot = (*slot).max(until_ms);
    }

    pub fn blocked_until(&self, kind: TokenKind, now_ms: i64) -> Option<i64> {
        let until = self.blocked_until_ms[kind.index()];
        (until > now_ms).then_some(until)
    }
}

fn check_force(count: u32, last: Option<i64>, now_ms: i64, limit: ForceLimit) -> Result<(), String> {
    if count >= limit.per_day {
        return Err(format!("{count} forced refreshes today (limit {})", limit.per_day));
    }
    if let Some(last) = last
        && now_ms - last < limit.spacing_ms
    {
        return Err(format!(
            "last forced refresh {} ms ago (minimum {})",
            now_ms - last,
            limit.spacing_ms
        ));
    }
    Ok(())
}

/// Takes one forced refresh from the fleet-wide allowance. `Ok(Err(reason))` when refused.
pub(crate) async fn take_force(
    fleet: &FleetTokens,
    now_ms: i64,
    limit: ForceLimit,
) -> Result<Result<(), String>, StoreError> {
    let key = Key::new(partition(fleet.appid()), "force_refresh");
    let day = beijing_day(now_ms);
    let spaced =
        Condition::AttrAbsent(LAST_MS.into()).or(Condition::compare(LAST_MS, CmpOp::Le, now_ms - limit.spacing_ms));
    let same_day = Update::new().add(COUNT, 1).set(LAST_MS, now_ms).when(
        Condition::equals(DAY, day)
            .and(Condition::compare(COUNT, CmpOp::Lt, i64::from(limit.per_day)))
            .and(spaced.clone()),
    );
    let current = match fleet.bounded(fleet.store().update(&key, same_day)).await {
        Ok(_) => return Ok(Ok(())),
        Err(StoreError::ConditionFailed { current }) => current,
        Err(err) => return Err(err),
    };
    let stored_day = current.as_ref().and_then(|c| c.num_attr(DAY));
    if stored_day == Some(day) {
        let count = current.as_ref().and_then(|c| c.num_attr(COUNT)).unwrap_or(0);
        let last = current.as_ref().and_then(|c| c.num_attr(LAST_MS));
        let refused = check_force(u32::try_from(count).unwrap_or(u32::MAX), last, now_ms, limit);
        return Ok(Err(refused
            .err()
            .unwrap_or_else(|| "lost a race for the last forced refresh".to_owned())));
    }
    // First forced refresh of a new day: start the count, still respecting the spacing.
    let new_day = Condition::AttrAbsent(DAY.into()).or(Condition::compare(DAY, CmpOp::Lt, day));
    let start = Update::new()
        .set(DAY, day)
        .set(COUNT, 1_i64)
        .set(LAST_MS, now_ms)
        .when(new_day.and(spaced));
    match fleet.bounded(fleet.store().update(&key, start)).await {
        Ok(_) => Ok(Ok(())),
        Err(StoreError::ConditionFailed { .. }) => Ok(Err("forced refreshes too close together".to_owned())),
        Err(err) => Err(err),
    }
}

/// The quota block item of one endpoint (`quota#access_token`, `quota#jsapi_ticket`).
fn quota_key(fleet: &FleetTokens, kind: TokenKind) -> Key {
    Key::new(partition(fleet.appid()), format!("quota#{}", kind.as_str()))
}

/// The fleet-wide quota block, if one is in force at `now_ms`.
pub(crate) async fn quota_blocked_until(
    fleet: &FleetTokens,
    kind: TokenKind,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let key = quota_key(fleet, kind);
    let item = fleet.bounded(fleet.store().get(&key)).await?;
    Ok(item
        .and_then(|i| i.num_attr(BLOCKED_UNTIL_MS))
        .filter(|until| *until > now_ms))
}

/// Blocks the token endpoint fleet-wide until `until_ms` (45009 seen).
pub(crate) async fn block_quota(fleet: &FleetTokens, kind: TokenKind, until_ms: i64) -> Result<(), StoreError> {
    let key = quota_key(fleet, kind);
    fleet
        .bounded(
            fleet
                .store()
                .update(&key, Update::new().set(BLOCKED_UNTIL_MS, until_ms)),
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    const LIMIT: ForceLimit = ForceLimit {
        per_day: 2,
        spacing_ms: 30_000,
    };

    fn fleet() -> FleetTokens {
        FleetTokens::new(
            Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0)))),
            "wx1",
            Duration::from_secs(1),
        )
    }

    #[test]
    fn daily_reset_is_midnight_beijing_time() {
        // 2026-01-01T15:59:59Z is 23:59:59 in Beijing; the reset is 16:00:00Z.
        let almost = 1_767_283_199_000;
        assert_eq!(next_daily_reset_ms(almost), 1_767_283_200_000);
        assert_eq!(next_daily_reset_ms(1_767_283_200_000), 1_767_283_200_000 + DAY_MS);
    }

    #[tokio::test]
    async fn forced_refreshes_are_spaced_and_counted_per_day_fleet_wide() {
        let fleet = fleet();
        let day_start = next_daily_reset_ms(0);
        assert_eq!(take_force(&fleet, day_start, LIMIT).await.expect("store"), Ok(()));
        assert!(
            take_force(&fleet, day_start + 10_000, LIMIT)
                .await
                .expect("store")
                .is_err(),
            "too soon"
        );
        assert_eq!(
            take_force(&fleet, day_start + 30_000, LIMIT).await.expect("store"),
            Ok(())
        );
        assert!(
            take_force(&fleet, day_start + 90_000, LIMIT)
                .await
                .expect("store")
                .is_err(),
            "daily limit"
        );
        assert_eq!(
            take_force(&fleet, day_start + DAY_MS, LIMIT).await.expect("store"),
            Ok(()),
            "next day"
        );
    }

    #[test]
    fn local_limits_follow_the_same_rules() {
        let mut local = LocalLimits::default();
        assert!(local.take_force(0, LIMIT).is_ok());
        assert!(local.take_force(1, LIMIT).is_err());
        assert!(local.take_force(30_000, LIMIT).is_ok());
        assert!(local.take_force(60_000, LIMIT).is_err());
        local.block(TokenKind::AccessToken, 100);
        assert_eq!(local.blocked_until(TokenKind::AccessToken, 50), Some(100));
        assert_eq!(local.blocked_until(TokenKind::AccessToken, 100), None);
        assert_eq!(local.blocked_until(TokenKind::JsapiTicket, 50), None);
    }

    #[tokio::test]
    async fn quota_block_is_seen_by_the_fleet_until_it_passes() {
        let fleet = fleet();
        let kind = TokenKind::AccessToken;
        block_quota(&fleet, kind, 5_000).await.expect("store");
        assert_eq!(
            quota_blocked_until(&fleet, kind, 4_999).await.expect("store"),
            Some(5_000)
        );
        assert_eq!(quota_blocked_until(&fleet, kind, 5_000).await.expect("store"), None);
        assert_eq!(
            quota_blocked_until(&fleet, TokenKind::JsapiTicket, 0)
                .await
                .expect("store"),
            None
        );
    }
}
