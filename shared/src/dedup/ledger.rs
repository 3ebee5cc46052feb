//! [`IdempotencyLedger`]: claim, complete, release and wait on idempotency records.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::DedupConfig;
use super::error::DedupError;
use super::record::{DONE, LEASE_UNTIL, OWNER, PENDING, REPLY, Record, STATUS};
use crate::clock::SharedClock;
use crate::store::{Attrs, AttrsExt, CmpOp, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Update};

/// Shortest interval between two polls of [`IdempotencyLedger::wait_for_reply`].
const MIN_POLL: Duration = Duration::from_millis(10);

/// The outcome of [`IdempotencyLedger::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This caller holds the record: process, then `complete` (or `release` on failure).
    Claimed(Claim),
    /// Already processed: answer with the stored reply.
    Completed {
        /// The reply stored by the holder that processed it.
        reply: String,
    },
    /// Another holder is processing it right now.
    InProgress {
        /// When that holder's lease runs out (epoch ms); after it the record can be taken over.
        lease_until_ms: i64,
    },
}

/// Proof of holding an idempotency record, needed to complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    key: Key,
    owner: String,
    lease_until_ms: i64,
}

impl Claim {
    /// The record's key in the store.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// This holder's random id, as stored in the record.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When the lease runs out (epoch ms): finish before it, or another delivery may take over.
    pub fn lease_until_ms(&self) -> i64 {
        self.lease_until_ms
    }
}

/// The outcome of [`IdempotencyLedger::wait_for_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The holder completed: answer with its reply.
    Completed {
        /// The stored reply.
        reply: String,
    },
    /// Nobody is processing any more (record released, expired, or its lease ran out): a new
    /// `begin` would claim it.
    Abandoned,
    /// Still in progress when the budget ran out.
    TimedOut,
}

/// Idempotency records on a [`SharedStore`], at partition key `{namespace}#{scope}`, sort key
/// `{key}`. State scope: per fleet (the records); the ledger itself holds only its settings.
pub struct IdempotencyLedger {
    store: SharedStore,
    clock: SharedClock,
    config: DedupConfig,
    owners: Mutex<StdRng>,
}

impl fmt::Debug for IdempotencyLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLedger")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl IdempotencyLedger {
    /// A ledger on `store`, judging leases and TTLs by `clock`.
    pub fn new(store: SharedStore, clock: SharedClock, config: DedupConfig) -> Self {
        // Owner ids only need to be unique across instances; fall back to a time/pid seed in the
        // (practically impossible) case the OS has no randomness to give.
        let seed = || (clock.now_ms() as u64) ^ (u64::from(std::process::id()) << 32);
        let rng = StdRng::try_from_os_rng().unwrap_or_else(|_| StdRng::seed_from_u64(seed()));
        Self {
            store,
            clock,
            config,
            owners: Mutex::new(rng),
        }
    }

    /// The ledger's settings.
    pub fn config(&self) -> &DedupConfig {
        &self.config
    }

    /// Where the record for `key` in `scope` is stored.
    pub fn record_key(&self, scope: &str, key: &str) -> Key {
        Key::new(format!("{}#{scope}", self.config.namespace()), key)
    }

    fn new_owner(&self) -> String {
        let mut rng = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{:032x}", rng.random::<u128>())
    }

    fn expires_at(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(millis(self.config.record_ttl())).div_euclid(1000)
    }

    /// Claims `key` in `scope`, or reports that it is done or in progress.
    ///
    /// One conditional put: it succeeds when no live record exists, or when the existing one is
    /// `pending` with an expired lease (its holder died; this caller takes over). Otherwise the
    /// record returned with the failed condition decides between `Completed` and `InProgress`.
    ///
    /// # Errors
    /// [`StoreError`] from the store ([`StoreError::Corrupt`] for an undecodable record,
    /// [`StoreError::Invalid`] for an empty scope or key).
    pub async fn begin(&self, scope: &str, key: &str) -> Result<Begin, StoreError> {
        let record_key = self.record_key(scope, key);
        let mut last = StoreError::ConditionFailed { current: None };
        // A second round only when the record vanished (expired) between check and answer.
        for _ in 0..2 {
            let now = self.clock.now_ms();
            let owner = self.new_owner();
            let lease_until_ms = now.saturating_add(millis(self.config.lease()));
            let mut record = Attrs::new();
            record.insert(STATUS.to_owned(), PENDING.into());
            record.insert(OWNER.to_owned(), owner.clone().into());
            record.insert(LEASE_UNTIL.to_owned(), lease_until_ms.into());
            record.insert(EXPIRES_AT.to_owned(), self.expires_at(now).into());
            let abandoned = Condition::equals(STATUS, PENDING).and(Condition::compare(LEASE_UNTIL, CmpOp::Le, now));
            match self
                .store
                .put(&record_key, record, Condition::ItemAbsent.or(abandoned))
                .await
            {
                Ok(()) => {
                    return Ok(Begin::Claimed(Claim {
                        key: record_key,
                        owner,
                        lease_until_ms,
                    }));
                }
                // An SDK retry of our own put whose first attempt was applied but timed out.
                Err(StoreError::ConditionFailed { current: Some(current) })
                    if current.str_attr(OWNER) == Some(owner.as_str()) =>
                {
                    return Ok(Begin::Claimed(Claim {
                        key: record_key,
                        owner,
                        lease_until_ms,
                    }));
                }
                Err(StoreError::ConditionFailed { current: Some(current) }) => {
                    return match Record::decode(&current)? {
                        Record::Done { reply, .. } => Ok(Begin::Completed { reply }),
                        Record::Pending { lease_until_ms, .. } => Ok(Begin::InProgress { lease_until_ms }),
                    };
                }
                Err(absent @ StoreError::ConditionFailed { current: None }) => last = absent,
                Err(other) => return Err(other),
            }
        }
        Err(last)
    }

    /// Stores `reply` for the claimed record, so every retry gets it; renews the record's TTL.
    ///
    /// Conditional on the claim's owner: a holder whose record was taken over is refused. Calling
    /// it twice with the same claim is harmless (an SDK retry may do exactly that).
    ///
    /// # Errors
    /// [`DedupError::ClaimLost`] when another holder took over; [`DedupError::Store`] otherwise.
    pub async fn complete(&self, claim: &Claim, reply: &str) -> Result<(), DedupError> {
        let update = Update::new()
            .set(STATUS, DONE)
            .set(REPLY, reply)
            .set(EXPIRES_AT, self.expires_at(self.clock.now_ms()))
            .remove(LEASE_UNTIL)
            .when(Condition::equals(OWNER, claim.owner.as_str()));
        match self.store.update(&claim.key, update).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(DedupError::ClaimLost),
            Err(other) => Err(other.into()),
        }
    }

    /// Gives a claim up after a failure, so the next delivery claims the record at once instead of
    /// waiting for the lease to run out. Releasing a record that is gone or that this holder
    /// already completed is a no-op.
    ///
    /// # Errors
    /// [`DedupError::ClaimLost`] when another holder took over; [`DedupError::Store`] otherwise.
    pub async fn release(&self, claim: &Claim) -> Result<(), DedupError> {
        let mine = Condition::equals(OWNER, claim.owner.as_str()).and(Condition::equals(STATUS, PENDING));
        match self.store.delete(&claim.key, mine).await {
            Ok(()) | Err(StoreError::ConditionFailed { current: None }) => Ok(()),
            Err(StoreError::ConditionFailed { current: Some(current) })
                if current.str_attr(OWNER) == Some(claim.owner.as_str()) =>
            {
                Ok(())
            }
            Err(StoreError::ConditionFailed { .. }) => Err(DedupError::ClaimLost),
            Err(other) => Err(other.into()),
        }
    }

    /// Polls the record every `poll` (at least 10 ms) until it is completed, abandoned, or the
    /// clock reaches `until_ms` (epoch ms). The budget is converted once into a tokio deadline, so
    /// the waiting follows tokio time (`tokio::time::pause` in tests).
    ///
    /// # Errors
    /// [`StoreError`] from a failed read; the caller answers without the reply.
    pub async fn wait_for_reply(
        &self,
        scope: &str,
        key: &str,
        until_ms: i64,
        poll: Duration,
    ) -> Result<WaitOutcome, StoreError> {
        let record_key = self.record_key(scope, key);
        let budget = u64::try_from(until_ms.saturating_sub(self.clock.now_ms())).unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(budget);
        let poll = poll.max(MIN_POLL);
        loop {
            match self.store.get(&record_key).await? {
                None => return Ok(WaitOutcome::Abandoned),
                Some(attrs) => match Record::decode(&attrs)? {
                    Record::Done { reply, .. } => return Ok(WaitOutcome::Completed { reply }),
                    Record::Pending { lease_until_ms, .. } if lease_until_ms <= self.clock.now_ms() => {
                        return Ok(WaitOutcome::Abandoned);
                    }
                    Record::Pending { .. } => {}
                },
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(WaitOutcome::TimedOut);
            }
            tokio::time::sleep(poll.min(deadline - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    const START_MS: i64 = 1_700_000_000_000;

    struct Fixture {
        ledger: Arc<IdempotencyLedger>,
        store: SharedStore,
        clock: ManualClock,
    }

    fn fixture() -> Fixture {
        let clock = ManualClock::new(START_MS);
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let store: SharedStore = Arc::new(MemoryStore::new(shared_clock.clone()));
        let ledger = Arc::new(IdempotencyLedger::new(
            store.clone(),
            shared_clock,
            DedupConfig::default(),
        ));
        Fixture { ledger, store, clock }
    }

    async fn claim(ledger: &IdempotencyLedger, key: &str) -> Claim {
        match ledger.begin("wx1", key).await {
            Ok(Begin::Claimed(claim)) => claim,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn first_delivery_claims_a_pending_record() {
        let f = fixture();
        let claim = claim(&f.ledger, "m1").await;
        assert_eq!(claim.key(), &Key::new("msg#wx1", "m1"));
        assert_eq!(claim.lease_until_ms(), START_MS + 5_000);
        let stored = f.store.get(claim.key()).await.ok().flatten().unwrap_or_default();
        assert_eq!(stored.str_attr(STATUS), Some(PENDING));
        assert_eq!(stored.str_attr(OWNER), Some(claim.owner()));
        assert_eq!(stored.num_attr(EXPIRES_AT), Some(START_MS / 1000 + 86_400));
    }

    #[tokio::test]
    async fn retry_after_completion_gets_the_stored_reply() {
        let f = fixture();
        let claim = claim(&f.ledger, "m1").await;
        f.ledger.complete(&claim, "<xml>hi</xml>").await.expect("complete");
        f.clock.advance(10_000); // well past the lease: a completed record is never taken over
        let retry = f.ledger.begin("wx1", "m1").await.expect("begin");
        assert_eq!(
            retry,
            Begin::Completed {
                reply: "<xml>hi</xml>".into()
            }
        );
    }

    #[tokio::test]
    async fn retry_during_processing_is_in_progress() {
        let f = fixture();
        let claim = claim(&f.ledger, "m1").await;
        f.clock.advance(4_999);
        let retry = f.ledger.begin("wx1", "m1").await.expect("begin");
        assert_eq!(
            retry,
            Begin::InProgress {
                lease_until_ms: claim.lease_until_ms()
            }
        );
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over_and_the_stale_holder_cannot_complete() {
        let f = fixture();
        let stale = claim(&f.ledger, "m1").await;
        f.clock.advance(5_000);
        let fresh = claim(&f.ledger, "m1").await;
        assert_ne!(fresh.owner(), stale.owner());
        assert!(matches!(
            f.ledger.complete(&stale, "stale").await,
            Err(DedupError::ClaimLost)
        ));
        assert!(matches!(f.ledger.release(&stale).await, Err(DedupError::ClaimLost)));
        f.ledger.complete(&fresh, "fresh").await.expect("complete");
        let retry = f.ledger.begin("wx1", "m1").await.expect("begin");
        assert_eq!(retry, Begin::Completed { reply: "fresh".into() });
    }

    #[tokio::test]
    async fn completing_twice_is_harmless() {
        let f = fixture();
        let claim = claim(&f.ledger, "m1").await;
        f.ledger.complete(&claim, "r").await.expect("complete");
        f.ledger.complete(&claim, "r").await.expect("again");
        f.ledger
            .release(&claim)
            .await
            .expect("release after completion is a no-op");
        assert_eq!(
            f.ledger.begin("wx1", "m1").await.ok(),
            Some(Begin::Completed { reply: "r".into() })
        );
    }

    #[tokio::test]
    async fn released_claim_is_claimed_by_the_next_delivery_at_once() {
        let f = fixture();
        let first = claim(&f.ledger, "m1").await;
        f.ledger.release(&first).await.expect("release");
        f.ledger
            .release(&first)
            .await
            .expect("releasing a gone record is a no-op");
        let second = claim(&f.ledger, "m1").await;
        assert_ne!(second.owner(), first.owner());
    }

    #[tokio::test]
    async fn records_expire_after_their_ttl() {
        let f = fixture();
        let first = claim(&f.ledger, "m1").await;
        f.ledger.complete(&first, "old").await.expect("complete");
        f.clock.advance(86_400_000 - 1_000);
        assert_eq!(
            f.ledger.begin("wx1", "m1").await.ok(),
            Some(Begin::Completed { reply: "old".into() })
        );
        f.clock.advance(1_000);
        claim(&f.ledger, "m1").await;
    }

    #[tokio::test]
    async fn scopes_and_namespaces_keep_records_apart() {
        let f = fixture();
        claim(&f.ledger, "m1").await;
        assert!(matches!(f.ledger.begin("wx2", "m1").await, Ok(Begin::Claimed(_))));
        let config = DedupConfig::default().with_namespace("out").expect("namespace");
        let outbound = IdempotencyLedger::new(f.store.clone(), Arc::new(f.clock.clone()), config);
        let Ok(Begin::Claimed(out)) = outbound.begin("wx1", "m1").await else {
            panic!("separate namespace")
        };
        assert_eq!(out.key().pk, "out#wx1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn three_concurrent_deliveries_have_exactly_one_claim() {
        let f = fixture();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let ledger = f.ledger.clone();
            tasks.spawn(async move { ledger.begin("wx1", "m1").await });
        }
        let outcomes: Vec<Begin> = tasks.join_all().await.into_iter().map(|r| r.expect("begin")).collect();
        let claimed = outcomes.iter().filter(|o| matches!(o, Begin::Claimed(_))).count();
        let in_progress = outcomes
            .iter()
            .filter(|o| matches!(o, Begin::InProgress { .. }))
            .count();
        assert_eq!((claimed, in_progress), (1, 2), "{outcomes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_returns_the_reply_once_the_holder_completes() {
        let f = fixture();
        let claim = claim(&f.ledger, "m1").await;
        let holder = f.ledger.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            holder.complete(&claim, "done").await
        });
        let started = tokio::time::Instant::now();
        let waited = f
            .ledger
            .wait_for_reply("wx1", "m1", START_MS + 3_000, Duration::from_millis(100))
            .await;
        assert_eq!(waited.ok(), Some(WaitOutcome::Completed { reply: "done".into() }));
        assert!(
            started.elapsed() < Duration::from_millis(1_400),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_times_out_exactly_at_the_budget() {
        let f = fixture();
        claim(&f.ledger, "m1").await;
        let started = tokio::time::Instant::now();
        let waited = f
            .ledger
            .wait_for_reply("wx1", "m1", START_MS + 2_500, Duration::from_millis(400))
            .await;
        assert_eq!(waited.ok(), Some(WaitOutcome::TimedOut));
        assert_eq!(started.elapsed(), Duration::from_millis(2_500));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_on_an_abandoned_record_returns_at_once() {
        let f = fixture();
        let nothing = f
            .ledger
            .wait_for_reply("wx1", "none", START_MS + 2_000, Duration::from_millis(100))
            .await;
        assert_eq!(nothing.ok(), Some(WaitOutcome::Abandoned));
        claim(&f.ledger, "m1").await;
        f.clock.advance(5_000);
        let started = tokio::time::Instant::now();
        let dead = f
            .ledger
            .wait_for_reply("wx1", "m1", START_MS + 9_000, Duration::from_millis(100))
            .await;
        assert_eq!(dead.ok(), Some(WaitOutcome::Abandoned));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn corrupt_records_and_empty_keys_are_errors() {
        let f = fixture();
        let key = f.ledger.record_key("wx1", "bad");
        let mut junk = Attrs::new();
        junk.insert(STATUS.to_owned(), "weird".into());
        f.store.put(&key, junk, Condition::Always).await.expect("put");
        assert!(matches!(
            f.ledger.begin("wx1", "bad").await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(f.ledger.begin("wx1", "").await, Err(StoreError::Invalid(_))));
    }
}
