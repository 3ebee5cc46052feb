//! Fleet-wide limits around the token endpoint: the forced-refresh allowance (WeChat allows 20
//! `force_refresh` calls a day, 30 s apart) and the configuration-error block (40164, 40013,
//! 40125: answered without calling WeChat for a while). The 45009 daily quota block is the
//! account's [`DailyQuota`](crate::wechat::daily_quota::DailyQuota), like every other API's.
//!
//! Both live in the account's token partition (`token#{appid}` / `force_refresh` and
//! `blocked#{kind}`), so every instance sees them; each also has an instance-local twin used while
//! the store is down. The configuration block is read once per fetch attempt.

use super::fleet::FleetTokens;
use super::record::{TokenKind, partition};
use crate::deadline::Deadline;
use crate::store::{CmpOp, Condition, Key, StoreError, Unanswered, Update};
use crate::wechat::daily_quota::beijing_day;
use crate::wechat::errcode::Errcode;

const DAY: &str = "day";
const COUNT: &str = "count";
const LAST_MS: &str = "last_ms";
const CONFIG_ERRCODE: &str = "config_errcode";
const CONFIG_ERRMSG: &str = "config_errmsg";
const CONFIG_UNTIL_MS: &str = "config_until_ms";

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
    config: [Option<(Errcode, i64)>; 2],
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

    pub fn block_config(&mut self, kind: TokenKind, error: Errcode, until_ms: i64) {
        self.config[kind.index()] = Some((error, until_ms));
    }

    /// The configuration error to answer with instead of calling WeChat, while its block lasts.
    pub fn config_error(&self, kind: TokenKind, now_ms: i64) -> Option<(Errcode, i64)> {
        self.config[kind.index()].clone().filter(|(_, until)| *until > now_ms)
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
    deadline: Deadline,
) -> Result<Result<(), String>, Unanswered> {
    let key = Key::new(partition(fleet.appid()), "force_refresh");
    let day = beijing_day(now_ms);
    let spaced =
        Condition::AttrAbsent(LAST_MS.into()).or(Condition::compare(LAST_MS, CmpOp::Le, now_ms - limit.spacing_ms));
    let same_day = Update::new().add(COUNT, 1).set(LAST_MS, now_ms).when(
        Condition::equals(DAY, day)
            .and(Condition::compare(COUNT, CmpOp::Lt, i64::from(limit.per_day)))
            .and(spaced.clone()),
    );
    let current = match fleet.bounded(deadline, fleet.store().update(&key, same_day)).await {
        Ok(_) => return Ok(Ok(())),
        Err(Unanswered::Store(StoreError::ConditionFailed { current })) => current,
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
    match fleet.bounded(deadline, fleet.store().update(&key, start)).await {
        Ok(_) => Ok(Ok(())),
        Err(Unanswered::Store(StoreError::ConditionFailed { .. })) => {
            Ok(Err("forced refreshes too close together".to_owned()))
        }
        Err(err) => Err(err),
    }
}

/// The configuration block item of one endpoint (`blocked#access_token`, `blocked#jsapi_ticket`).
fn blocked_key(fleet: &FleetTokens, kind: TokenKind) -> Key {
    Key::new(partition(fleet.appid()), format!("blocked#{}", kind.as_str()))
}

/// The configuration error the fleet recorded against one endpoint, and until when (epoch ms),
/// if it is still in force at `now_ms` (one read).
pub(crate) async fn read_config_block(
    fleet: &FleetTokens,
    kind: TokenKind,
    now_ms: i64,
    deadline: Deadline,
) -> Result<Option<(Errcode, i64)>, Unanswered> {
    let key = blocked_key(fleet, kind);
    let Some(item) = fleet.bounded(deadline, fleet.store().get(&key)).await? else {
        return Ok(None);
    };
    Ok(match (item.num_attr(CONFIG_ERRCODE), item.num_attr(CONFIG_UNTIL_MS)) {
        (Some(errcode), Some(until)) if until > now_ms => {
            let errmsg = item.str_attr(CONFIG_ERRMSG).unwrap_or_default().to_owned();
            Some((Errcode { errcode, errmsg }, until))
        }
        _ => None,
    })
}

/// Makes the fleet answer `error` instead of calling the endpoint until `until_ms`.
pub(crate) async fn block_config(
    fleet: &FleetTokens,
    kind: TokenKind,
    error: &Errcode,
    until_ms: i64,
    deadline: Deadline,
) -> Result<(), Unanswered> {
    let update = Update::new()
        .set(CONFIG_ERRCODE, error.errcode)
        .set(CONFIG_ERRMSG, error.errmsg.as_str())
        .set(CONFIG_UNTIL_MS, until_ms);
    let key = blocked_key(fleet, kind);
    fleet
        .bounded(deadline, fleet.store().update(&key, update))
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
    use crate::wechat::daily_quota::next_daily_reset_ms;

    const DAY_MS: i64 = 86_400_000;

    const LIMIT: ForceLimit = ForceLimit {
        per_day: 2,
        spacing_ms: 30_000,
    };

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn fleet() -> FleetTokens {
        FleetTokens::new(
            Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0)))),
            "wx1",
            Duration::from_secs(1),
        )
    }

    #[tokio::test]
    async fn forced_refreshes_are_spaced_and_counted_per_day_fleet_wide() {
        let fleet = fleet();
        let day_start = next_daily_reset_ms(0);
        assert_eq!(take_force(&fleet, day_start, LIMIT, dl()).await.expect("store"), Ok(()));
        assert!(
            take_force(&fleet, day_start + 10_000, LIMIT, dl())
                .await
                .expect("store")
                .is_err(),
            "too soon"
        );
        assert_eq!(
            take_force(&fleet, day_start + 30_000, LIMIT, dl())
                .await
                .expect("store"),
            Ok(())
        );
        assert!(
            take_force(&fleet, day_start + 90_000, LIMIT, dl())
                .await
                .expect("store")
                .is_err(),
            "daily limit"
        );
        assert_eq!(
            take_force(&fleet, day_start + DAY_MS, LIMIT, dl())
                .await
                .expect("store"),
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
        let bad_secret = Errcode {
            errcode: 40125,
            errmsg: "invalid appsecret".into(),
        };
        local.block_config(TokenKind::AccessToken, bad_secret.clone(), 200);
        assert_eq!(local.config_error(TokenKind::AccessToken, 199), Some((bad_secret, 200)));
        assert_eq!(local.config_error(TokenKind::AccessToken, 200), None);
    }

    #[tokio::test]
    async fn blocks_are_seen_by_the_fleet_until_they_pass() {
        let fleet = fleet();
        let kind = TokenKind::AccessToken;
        let whitelist = Errcode {
            errcode: 40164,
            errmsg: "invalid ip".into(),
        };
        block_config(&fleet, kind, &whitelist, 3_000, dl())
            .await
            .expect("store");
        let seen = read_config_block(&fleet, kind, 2_999, dl()).await.expect("store");
        assert_eq!(seen, Some((whitelist, 3_000)));
        assert_eq!(read_config_block(&fleet, kind, 3_000, dl()).await.expect("store"), None);
        assert_eq!(
            read_config_block(&fleet, TokenKind::JsapiTicket, 0, dl())
                .await
                .expect("store"),
            None
        );
    }
}
