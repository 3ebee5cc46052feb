//! Breaker decisions as store updates: one atomic `UpdateItem` each, under a tight timeout.
//!
//! - the outcome write: `ADD` the call (and any coalesced or outage-time counts) to its bucket,
//!   `REMOVE` buckets that fell out of the window, unconditional, `ALL_NEW` returns state + window;
//! - a probe's success: the same, plus `ADD probe_ok 1`, conditional on the round's `version`;
//! - a transition: `SET` the state fields and `version + 1`, conditional on the expected `version`;
//! - a probe permit: `ADD probes_left -1`, conditional on the round, a permit left and not expired.
//!
//! Every update also refreshes the item's TTL, so breakers that stop being used disappear.

use std::collections::{BTreeMap, BTreeSet};

use super::config::BreakerConfig;
use super::decision::Transition;
use super::record::{GRANTED_UNTIL, OPEN_UNTIL, OWNER, PROBE_OK, PROBES_LEFT, STATE, TRIPS, VERSION, WINDOW_FROM};
#[cfg(doc)]
use super::window::Window;
use super::window::{Counts, attr_name, bucket_start, window_start};
use crate::store::{CmpOp, Condition, EXPIRES_AT, Update};

/// How long an unused breaker item lives (seconds).
pub const ITEM_TTL_SECS: i64 = 7 * 86_400;

/// Most bucket attributes one update removes (keeps the expression small; the rest go later).
const MAX_REMOVES: usize = 64;

/// Outcome counts waiting to reach the fleet window, by bucket start.
pub type Pending = BTreeMap<i64, Counts>;

/// `version = expected`, where an absent `version` means 0.
pub fn version_is(expected: i64) -> Condition {
    let equal = Condition::equals(VERSION, expected);
    if expected == 0 {
        Condition::AttrAbsent(VERSION.into()).or(equal)
    } else {
        equal
    }
}

fn with_ttl(update: Update, now_ms: i64) -> Update {
    update.set(EXPIRES_AT, now_ms.div_euclid(1000) + ITEM_TTL_SECS)
}

/// The outcome write: `counts` (by bucket) added, `stale` bucket attributes (from the cached
/// record, see [`Window::stale_names`]) removed along with the bucket that just left the window.
/// Buckets of `counts` already outside the window are dropped (they no longer matter to anyone).
pub fn record_update(counts: &Pending, stale: &[String], config: &BreakerConfig, now_ms: i64) -> Update {
    let oldest = window_start(now_ms, config);
    let mut adds: BTreeMap<String, i64> = BTreeMap::new();
    for (start, bucket) in counts.range(oldest..) {
        for (prefix, n) in bucket.by_prefix() {
            if n != 0 {
                *adds.entry(attr_name(prefix, *start)).or_default() += n;
            }
        }
    }
    let mut removes: BTreeSet<String> = stale.iter().take(MAX_REMOVES).cloned().collect();
    let just_left = oldest - config.bucket_ms();
    removes.extend(
        Counts::default()
            .by_prefix()
            .map(|(prefix, _)| attr_name(prefix, just_left)),
    );
    let mut update = Update::new();
    for (name, n) in adds.into_iter().filter(|(_, n)| *n != 0) {
        update = update.add(name, n);
    }
    for name in removes {
        update = update.remove(name);
    }
    with_ttl(update, now_ms)
}

/// A probe's success in round `version`: its call added to the window and `probe_ok + 1`.
pub fn probe_success_update(version: i64, stale: &[String], config: &BreakerConfig, now_ms: i64) -> Update {
    let mut counts = Pending::new();
    counts.insert(bucket_start(now_ms, config), Counts::call(false, false));
    record_update(&counts, stale, config, now_ms)
        .add(PROBE_OK, 1)
        .when(version_is(version))
}

/// A probe permit of round `version`: one taken, if any is left and the round has not expired.
pub fn take_probe_update(version: i64, now_ms: i64) -> Update {
    let condition = version_is(version)
        .and(Condition::compare(PROBES_LEFT, CmpOp::Gt, 0))
        .and(Condition::compare(GRANTED_UNTIL, CmpOp::Gt, now_ms));
    with_ttl(Update::new().add(PROBES_LEFT, -1).when(condition), now_ms)
}

/// A probe permit of round `version` handed back unused, if the round is still live.
pub fn return_probe_update(version: i64, now_ms: i64) -> Update {
    let condition = version_is(version).and(Condition::compare(GRANTED_UNTIL, CmpOp::Gt, now_ms));
    with_ttl(Update::new().add(PROBES_LEFT, 1).when(condition), now_ms)
}

/// A transition, conditional on `version`, tagged with its writer's `tag`. Closing also drops the
/// `known` bucket attributes (of the cached record, see [`Window::names`]) and the current
/// bucket's, and starts the window afresh at `at_ms`.
pub fn transition_update(transition: &Transition, known: &[String], config: &BreakerConfig, tag: &str) -> Update {
    let t = transition;
    let mut update = Update::new()
        .set(OWNER, tag)
        .set(STATE, t.to.as_str())
        .set(VERSION, t.new_version())
        .set(OPEN_UNTIL, t.open_until)
        .set(TRIPS, i64::from(t.trips))
        .set(PROBES_LEFT, t.probes_left)
        .set(PROBE_OK, 0)
        .set(GRANTED_UNTIL, t.granted_until);
    if t.reset_window {
        update = update.set(WINDOW_FROM, t.at_ms);
        let current = bucket_start(t.at_ms, config);
        let mut names: BTreeSet<String> = Counts::default().by_prefix().map(|(p, _)| attr_name(p, current)).into();
        names.extend(known.iter().cloned());
        for name in names.into_iter().take(MAX_REMOVES) {
            update = update.remove(name);
        }
    }
    with_ttl(update.when(version_is(t.expected_version)), t.at_ms)
}

/// Adds `counts` into `pending` at bucket `start`.
pub fn add_pending(pending: &mut Pending, start: i64, counts: Counts) {
    let bucket = pending.entry(start).or_default();
    bucket.add(counts);
    if bucket.is_zero() {
        pending.remove(&start);
    }
}

/// `counts` without `part` (a subset of it).
pub fn without(counts: &Pending, part: &Pending) -> Pending {
    let mut rest = counts.clone();
    for (start, c) in part {
        let negated = Counts {
            calls: -c.calls,
            failures: -c.failures,
            slow: -c.slow,
            retries: -c.retries,
            latency: c.latency.map(|n| -n),
        };
        add_pending(&mut rest, *start, negated);
    }
    rest
}

/// Merges `other` into `pending`.
pub fn merge_pending(pending: &mut Pending, other: Pending) {
    for (start, counts) in other {
        add_pending(pending, start, counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::resilience::breaker::record::BreakerRecord;
    use crate::resilience::breaker::state::State;
    use crate::resilience::breaker::window::Window;
    use crate::store::memory::MemoryStore;
    use crate::store::{Key, StateStore, StoreError};
    use std::sync::Arc;

    fn config() -> BreakerConfig {
        BreakerConfig::builder().build().unwrap() // 10 buckets of 1 s
    }

    #[test]
    fn record_update_adds_in_window_buckets_and_removes_the_one_that_just_left() {
        let mut counts = Pending::new();
        add_pending(&mut counts, 20_000, Counts::call(true, false));
        add_pending(&mut counts, 5_000, Counts::call(false, false)); // out of the window: dropped
        let mut cached = Window::default();
        cached.add(3_000, Counts::call(true, true));
        let update = record_update(&counts, &cached.stale_names(20_500, &config()), &config(), 20_500);
        assert_eq!(update.add, [("c_20000".into(), 1), ("f_20000".into(), 1)]);
        for stale in ["c_3000", "f_3000", "s_3000", "c_10000", "r_10000"] {
            assert!(update.remove.contains(&stale.into()), "{stale} in {:?}", update.remove);
        }
        assert!(update.set.iter().any(|(name, _)| name == EXPIRES_AT));
        assert_eq!(update.condition, Condition::Always, "outcome writes never conflict");
    }

    #[tokio::test]
    async fn transitions_are_conditional_on_version_and_closing_resets_the_window() {
        let clock = ManualClock::new(50_000);
        let store = MemoryStore::new(Arc::new(clock));
        let key = Key::new("breaker#t", "state");
        let mut counts = Pending::new();
        add_pending(&mut counts, 50_000, Counts::call(true, false));
        store
            .update(&key, record_update(&counts, &[], &config(), 50_000))
            .await
            .unwrap();
        let record = BreakerRecord::from_item(store.get(&key).await.unwrap().as_ref()).unwrap();
        let trip = Transition::operator(&record, State::ForcedOpen, 50_100).unwrap();
        let after = store
            .update(&key, transition_update(&trip, &record.window.names(), &config(), "i#1"))
            .await
            .unwrap();
        assert_eq!(after.str_attr(STATE), Some("forced_open"));
        assert_eq!(after.str_attr(OWNER), Some("i#1"), "tagged with its writer");
        let again = store
            .update(&key, transition_update(&trip, &record.window.names(), &config(), "i#1"))
            .await;
        assert!(
            matches!(again, Err(StoreError::ConditionFailed { current: Some(_) })),
            "version moved on"
        );
        let forced = BreakerRecord::from_item(Some(&after)).unwrap();
        let close = Transition::operator(&forced, State::Closed, 50_200).unwrap();
        let closed = store
            .update(
                &key,
                transition_update(&close, &forced.window.names(), &config(), "i#2"),
            )
            .await
            .unwrap();
        assert_eq!(closed.num_attr(VERSION), Some(2));
        assert_eq!(closed.num_attr("f_50000"), None, "window reset on close");
        assert_eq!(closed.num_attr(WINDOW_FROM), Some(50_200));
    }

    #[tokio::test]
    async fn probe_permits_run_out_and_expire() {
        let store = MemoryStore::new(Arc::new(ManualClock::new(0)));
        let key = Key::new("breaker#p", "state");
        let mut record = BreakerRecord::absent();
        record.state = State::HalfOpen;
        record.version = 3;
        record.probes_left = 1;
        record.granted_until = 10_000;
        store.put(&key, record.to_attrs(), Condition::Always).await.unwrap();
        assert!(store.update(&key, take_probe_update(3, 9_000)).await.is_ok());
        assert!(
            store.update(&key, take_probe_update(3, 9_000)).await.is_err(),
            "none left"
        );
        assert!(
            store.update(&key, take_probe_update(2, 9_000)).await.is_err(),
            "other round"
        );
        let mut fresh = record.clone();
        fresh.probes_left = 5;
        store.put(&key, fresh.to_attrs(), Condition::Always).await.unwrap();
        assert!(
            store.update(&key, take_probe_update(3, 10_000)).await.is_err(),
            "expired permits"
        );
    }
}
