//! The ledger's store operations: claim, complete, release and wait on one record.
//!
//! [`Ledger::run_once`](super::Ledger::run_once) composes them; they stay public for the
//! contract tests that check each step against DynamoDB.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::LedgerConfig;
use super::error::LedgerError;
use super::record::{DONE, LEASE_UNTIL, OWNER, PENDING, RESULT, Record, STATUS, encode};
use crate::clock::{SharedClock, millis};
use crate::hex_text::lower_hex;
use crate::store::{
    AttrValue, Attrs, CmpOp, Condition, EXPIRES_AT, Key, SharedStore, StoreError, Unanswered, Update, bounded,
};

/// Shortest interval between two polls of [`Ledger::wait_for_result`].
const MIN_POLL: Duration = Duration::from_millis(10);

/// The outcome of [`Ledger::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin<R> {
    /// This caller holds the record: work, then `complete` (or `release` on failure).
    Claimed(Claim),
    /// Already done: answer with the stored result.
    Completed {
        /// The result stored by the holder that did the work.
        result: R,
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
    /// The claim `owner` holds on `key`, as recorded elsewhere (a completion handed to the queue);
    /// only `complete` and `release` use it, and both check the owner in the store.
    pub(crate) fn held(key: Key, owner: String) -> Self {
        Self {
            key,
            owner,
            lease_until_ms: 0,
        }
    }

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

/// The outcome of [`Ledger::wait_for_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome<R> {
    /// The holder completed: answer with its result.
    Completed {
        /// The stored result.
        result: R,
    },
    /// Nobody is processing any more (record released, expired, or its lease ran out): a new
    /// `begin` would claim it.
    Abandoned,
    /// Still in progress when the budget ran out.
    TimedOut,
}

/// Run-once records on a [`SharedStore`], at partition key `{namespace}#{scope}`, sort key
/// `{key}`. State scope: per fleet (the records); the ledger itself holds its settings and, for
/// the callback, an instance-local fallback ledger used only during a store outage.
pub struct Ledger {
    store: SharedStore,
    clock: SharedClock,
    config: LedgerConfig,
    owners: Mutex<StdRng>,
    pub(super) fallback: Option<Box<Ledger>>,
    pub(super) fallbacks: AtomicU64,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("store", &self.store)
            .field("config", &self.config)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// A ledger on `store`, judging leases and TTLs by `clock`.
    pub fn new(store: SharedStore, clock: SharedClock, config: LedgerConfig) -> Self {
        // Owner ids only need to be unique across instances; fall back to a time/pid seed in the
        // (practically impossible) case the OS has no randomness to give.
        let seed = || (clock.now_ms() as u64) ^ (u64::from(std::process::id()) << 32);
        let rng = StdRng::try_from_os_rng().unwrap_or_else(|_| StdRng::seed_from_u64(seed()));
        Self {
            store,
            clock,
            config,
            owners: Mutex::new(rng),
            fallback: None,
            fallbacks: AtomicU64::new(0),
        }
    }

    /// The same ledger, falling back to `local` (an instance-memory ledger) when — and only
    /// when — the fleet store is out: unreachable, timing out or throttling. A corrupt record or
    /// a refused request is an error, never a reason to decide locally.
    pub fn with_fallback(mut self, local: Ledger) -> Self {
        self.fallback = Some(Box::new(local));
        self
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// One store call under the ledger's store timeout (past it: an outage).
    async fn call<T>(&self, operation: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        bounded(self.config.store_timeout(), None, operation)
            .await
            .map_err(|unanswered| match unanswered {
                Unanswered::Store(error) => error,
                // No caller deadline is given here, so only the store timeout can end the wait.
                Unanswered::Deadline => StoreError::Unavailable("the store did not answer in time".into()),
            })
    }

    /// How many times this instance ran something on its fallback ledger (fleet store out).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The ledger's settings.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Where the record for `key` in `scope` is stored.
    pub fn record_key(&self, scope: &str, key: &str) -> Key {
        Key::new([self.config.namespace(), "#", scope].concat(), key)
    }

    fn new_owner(&self) -> String {
        let mut rng = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        lower_hex(&rng.random::<u128>().to_be_bytes())
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
    pub async fn begin<R: DeserializeOwned>(&self, scope: &str, key: &str) -> Result<Begin<R>, StoreError> {
        let record_key = self.record_key(scope, key);
        let mut last = StoreError::ConditionFailed { current: None };
        // A second round only when the record vanished (expired) between check and answer.
        for _ in 0..2 {
            let now = self.clock.now_ms();
            let owner = self.new_owner();
            let lease_until_ms = now.saturating_add(millis(self.config.lease()));
            // Room for the result that completes it (it then drops `lease_until`): one allocation.
            let mut record = Attrs::with_capacity(5);
            record.insert(STATUS.into(), AttrValue::constant(PENDING));
            record.insert(OWNER.into(), owner.clone().into());
            record.insert(LEASE_UNTIL.into(), lease_until_ms.into());
            record.insert(EXPIRES_AT.into(), self.expires_at(now).into());
            let abandoned = Condition::equals(STATUS, AttrValue::constant(PENDING)).and(Condition::compare(
                LEASE_UNTIL,
                CmpOp::Le,
                now,
            ));
            match self
                .call(self.store.put(&record_key, record, Condition::ItemAbsent.or(abandoned)))
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
                    return match Record::<R>::decode(&current)? {
                        Record::Done { result } => Ok(Begin::Completed { result }),
                        Record::Pending { lease_until_ms, .. } => Ok(Begin::InProgress { lease_until_ms }),
                    };
                }
                Err(absent @ StoreError::ConditionFailed { current: None }) => last = absent,
                Err(other) => return Err(other),
            }
        }
        Err(last)
    }

    /// Stores `result` for the claimed record, so every later attempt gets it; renews the TTL.
    ///
    /// Conditional on the claim's owner: a holder whose record was taken over is refused. Calling
    /// it twice with the same claim is harmless (an SDK retry may do exactly that).
    ///
    /// # Errors
    /// [`LedgerError::ClaimLost`] when another holder took over; [`LedgerError::Store`] otherwise.
    pub async fn complete<R: Serialize + ?Sized>(&self, claim: &Claim, result: &R) -> Result<(), LedgerError> {
        let update = Update::new()
            .set(STATUS, AttrValue::constant(DONE))
            .set(RESULT, encode(result)?)
            .set(EXPIRES_AT, self.expires_at(self.clock.now_ms()))
            .remove(LEASE_UNTIL)
            .when(Condition::equals(OWNER, claim.owner.as_str()));
        match self.call(self.store.apply(&claim.key, update)).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(LedgerError::ClaimLost),
            Err(other) => Err(other.into()),
        }
    }

    /// Gives a claim up after a failure, so the next delivery claims the record at once instead of
    /// waiting for the lease to run out. Releasing a record that is gone or that this holder
    /// already completed is a no-op.
    ///
    /// # Errors
    /// [`LedgerError::ClaimLost`] when another holder took over; [`LedgerError::Store`] otherwise.
    pub async fn release(&self, claim: &Claim) -> Result<(), LedgerError> {
        let mine =
            Condition::equals(OWNER, claim.owner.as_str()).and(Condition::equals(STATUS, AttrValue::constant(PENDING)));
        match self.call(self.store.delete(&claim.key, mine)).await {
            Ok(()) | Err(StoreError::ConditionFailed { current: None }) => Ok(()),
            Err(StoreError::ConditionFailed { current: Some(current) })
                if current.str_attr(OWNER) == Some(claim.owner.as_str()) =>
            {
                Ok(())
            }
            Err(StoreError::ConditionFailed { .. }) => Err(LedgerError::ClaimLost),
            Err(other) => Err(other.into()),
        }
    }

    /// Polls the record every `poll` (at least 10 ms) until it is completed, abandoned, or the
    /// clock reaches `until_ms` (epoch ms). The budget is converted once into a tokio deadline, so
    /// the waiting follows tokio time (`tokio::time::pause` in tests).
    ///
    /// # Errors
    /// [`StoreError`] from a failed read; the caller answers without the result.
    pub async fn wait_for_result<R: DeserializeOwned>(
        &self,
        scope: &str,
        key: &str,
        until_ms: i64,
        poll: Duration,
    ) -> Result<WaitOutcome<R>, StoreError> {
        let record_key = self.record_key(scope, key);
        let budget = u64::try_from(until_ms.saturating_sub(self.clock.now_ms())).unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(budget);
        let poll = poll.max(MIN_POLL);
        loop {
            match self.call(self.store.get(&record_key)).await? {
                None => return Ok(WaitOutcome::Abandoned),
                Some(attrs) => match Record::<R>::decode(&attrs)? {
                    Record::Done { result } => return Ok(WaitOutcome::Completed { result }),
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
#[path = "store_ops_tests.rs"]
mod tests;
