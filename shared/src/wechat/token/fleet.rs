//! The token items' store operations: read, take the refresh lease, publish, invalidate by
//! compare-and-set. Each runs under `min(store timeout, time left before the caller's deadline)`;
//! the store timeout firing counts as an outage, the caller's deadline does not.

use std::time::Duration;

use super::record::{
    EXPIRES_AT_MS, FETCHED_AT_MS, LEASE_OWNER, LEASE_UNTIL, Record, Token, TokenKind, VALUE, VERSION, key,
};
use crate::deadline::Deadline;
use crate::store::{Attrs, CmpOp, Condition, Key, SharedStore, StoreError, Unanswered, Update, bounded};

/// Outcome of trying to take the refresh lease.
#[derive(Debug)]
pub(crate) enum Lease {
    /// We hold it; the item as it is now.
    Won(Record),
    /// Someone else holds an unexpired lease; the item as it is now.
    Lost(Record),
}

/// Store access for one account's token items.
#[derive(Debug, Clone)]
pub(crate) struct FleetTokens {
    store: SharedStore,
    appid: String,
    timeout: Duration,
}

impl FleetTokens {
    pub fn new(store: SharedStore, appid: &str, timeout: Duration) -> Self {
        Self {
            store,
            appid: appid.to_owned(),
            timeout,
        }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Runs a store call under the store timeout, cut short by the caller's deadline.
    pub async fn bounded<T>(
        &self,
        deadline: Deadline,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Unanswered> {
        bounded(self.timeout, Some(&deadline), call).await
    }

    fn key(&self, kind: TokenKind) -> Key {
        key(&self.appid, kind)
    }

    pub async fn read(&self, kind: TokenKind, deadline: Deadline) -> Result<Record, Unanswered> {
        let item = self.bounded(deadline, self.store.get(&self.key(kind))).await?;
        Ok(Record::from_item(item.as_ref()))
    }

    /// Takes the lease unless another owner holds an unexpired one.
    pub async fn try_lease(
        &self,
        kind: TokenKind,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        deadline: Deadline,
    ) -> Result<Lease, Unanswered> {
        let free = Condition::AttrAbsent(LEASE_UNTIL.into())
            .or(Condition::compare(LEASE_UNTIL, CmpOp::Le, now_ms))
            .or(Condition::equals(LEASE_OWNER, owner));
        let update = Update::new()
            .set(LEASE_OWNER, owner)
            .set(LEASE_UNTIL, now_ms + lease_ms)
            .when(free);
        match self.bounded(deadline, self.store.update(&self.key(kind), update)).await {
            Ok(item) => Ok(Lease::Won(Record::from_attrs(&item))),
            Err(Unanswered::Store(StoreError::ConditionFailed { current })) => {
                Ok(Lease::Lost(Record::from_item(current.as_ref())))
            }
            Err(err) => Err(err),
        }
    }

    /// Publishes a fresh token and releases the lease, if we still hold it.
    /// `Ok(false)` when the lease was taken over meanwhile (nothing written).
    pub async fn publish(
        &self,
        kind: TokenKind,
        owner: &str,
        token: &Token,
        deadline: Deadline,
    ) -> Result<bool, Unanswered> {
        let update = Update::new()
            .set(VALUE, token.value.expose())
            .set(EXPIRES_AT_MS, token.expires_at_ms)
            .set(FETCHED_AT_MS, token.fetched_at_ms)
            .add(VERSION, 1)
            .remove(LEASE_OWNER)
            .remove(LEASE_UNTIL)
            .when(Condition::equals(LEASE_OWNER, owner));
        Self::applied(self.bounded(deadline, self.store.update(&self.key(kind), update)).await)
    }

    /// Writes a token without a lease (recovery after a store outage): only when the stored
    /// one expires earlier, so a stale instance never replaces a newer token.
    pub async fn publish_if_newer(
        &self,
        kind: TokenKind,
        token: &Token,
        deadline: Deadline,
    ) -> Result<bool, Unanswered> {
        let older = Condition::AttrAbsent(EXPIRES_AT_MS.into()).or(Condition::compare(
            EXPIRES_AT_MS,
            CmpOp::Lt,
            token.expires_at_ms,
        ));
        let update = Update::new()
            .set(VALUE, token.value.expose())
            .set(EXPIRES_AT_MS, token.expires_at_ms)
            .set(FETCHED_AT_MS, token.fetched_at_ms)
            .add(VERSION, 1)
            .when(older);
        Self::applied(self.bounded(deadline, self.store.update(&self.key(kind), update)).await)
    }

    /// Gives the lease back (the refresh failed or was not needed).
    pub async fn release(&self, kind: TokenKind, owner: &str, deadline: Deadline) -> Result<bool, Unanswered> {
        let update = Update::new()
            .remove(LEASE_OWNER)
            .remove(LEASE_UNTIL)
            .when(Condition::equals(LEASE_OWNER, owner));
        Self::applied(self.bounded(deadline, self.store.update(&self.key(kind), update)).await)
    }

    /// Marks `bad` as expired — only if it is still the stored value, so an instance holding a
    /// stale token never wipes a fresh one. `Ok(false)` when the value had already changed.
    pub async fn invalidate(&self, kind: TokenKind, bad: &str, deadline: Deadline) -> Result<bool, Unanswered> {
        let update = Update::new()
            .set(EXPIRES_AT_MS, 0_i64)
            .add(VERSION, 1)
            .when(Condition::equals(VALUE, bad));
        Self::applied(self.bounded(deadline, self.store.update(&self.key(kind), update)).await)
    }

    fn applied(result: Result<Attrs, Unanswered>) -> Result<bool, Unanswered> {
        match result {
            Ok(_) => Ok(true),
            Err(Unanswered::Store(StoreError::ConditionFailed { .. })) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;

    fn fleet() -> FleetTokens {
        FleetTokens::new(
            Arc::new(MemoryStore::new(Arc::new(ManualClock::new(0)))),
            "wx1",
            Duration::from_secs(1),
        )
    }

    fn dl() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn token(value: &str, expires_at_ms: i64) -> Token {
        Token {
            value: Secret::new(value),
            expires_at_ms,
            fetched_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn only_one_owner_holds_the_lease_until_it_expires() {
        let fleet = fleet();
        let kind = TokenKind::AccessToken;
        assert!(matches!(
            fleet.try_lease(kind, "a", 0, 1_000, dl()).await,
            Ok(Lease::Won(_))
        ));
        assert!(matches!(
            fleet.try_lease(kind, "b", 500, 1_000, dl()).await,
            Ok(Lease::Lost(_))
        ));
        assert!(
            matches!(fleet.try_lease(kind, "b", 1_000, 1_000, dl()).await, Ok(Lease::Won(_))),
            "expired lease is taken over"
        );
        assert_eq!(
            fleet.publish(kind, "a", &token("x", 9), dl()).await.ok(),
            Some(false),
            "lost lease publishes nothing"
        );
        assert_eq!(fleet.publish(kind, "b", &token("y", 9), dl()).await.ok(), Some(true));
        let record = fleet.read(kind, dl()).await.expect("read");
        assert_eq!((record.version, record.lease_owner), (1, None));
    }

    #[tokio::test]
    async fn invalidation_is_a_compare_and_set_on_the_value() {
        let fleet = fleet();
        let kind = TokenKind::AccessToken;
        assert!(matches!(
            fleet.try_lease(kind, "a", 0, 1_000, dl()).await,
            Ok(Lease::Won(_))
        ));
        fleet
            .publish(kind, "a", &token("fresh", 9_000), dl())
            .await
            .expect("publish");
        assert_eq!(fleet.invalidate(kind, "stale", dl()).await.ok(), Some(false));
        assert_eq!(
            fleet
                .read(kind, dl())
                .await
                .expect("read")
                .usable(1)
                .map(|t| t.value.expose().to_owned()),
            Some("fresh".into())
        );
        assert_eq!(fleet.invalidate(kind, "fresh", dl()).await.ok(), Some(true));
        assert!(fleet.read(kind, dl()).await.expect("read").usable(1).is_none());
    }

    #[tokio::test]
    async fn publish_if_newer_never_replaces_a_later_token() {
        let fleet = fleet();
        let kind = TokenKind::JsapiTicket;
        assert_eq!(
            fleet.publish_if_newer(kind, &token("late", 9_000), dl()).await.ok(),
            Some(true)
        );
        assert_eq!(
            fleet.publish_if_newer(kind, &token("early", 5_000), dl()).await.ok(),
            Some(false)
        );
    }
}
