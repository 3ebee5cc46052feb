//! One sync run: take the lease, resume the checkpoint, work until the invocation's deadline,
//! checkpoint after every batch, and stop cleanly on anything that says "not now".
//!
//! A pass: `tags/get` → `user/get` pages (10,000 openids) → per page, `user/info/batchget`
//! batches of 100 (at most `SYNC_CONCURRENCY` in flight, at most `SYNC_CALLS_PER_MINUTE` calls,
//! stored in order) → the sweep (followers the pass did not see, and nothing newer touched,
//! marked unsubscribed) → done. Ideal upstream cost: 1/10,000 list call + 1/100 batch call per
//! follower, plus one tags call and one empty last page per pass.
//!
//! | stop | what happens |
//! |---|---|
//! | the deadline (Lambda's remaining time minus a margin) | checkpoint saved, lease freed: the next tick resumes |
//! | 45009 | paused until WeChat's daily reset (Beijing midnight); resumed by the first tick after it |
//! | breaker open, WeChat failing, retry budget spent | checkpoint as of the last stored batch: the next tick resumes |
//! | the store failing | nothing saved past the last checkpoint; the next tick resumes there |
//! | another run holds the lease | nothing done (`busy`) |

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::follower::{self, Follower, SHARDS, Written, shard_pk};
use super::state::{Checkpoint, Finished, Pass, PassCounts, Phase, SyncState};
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::store::{SharedStore, StoreError};
use crate::telemetry::metrics::{self, count_with};
use crate::wechat::{PROFILE_BATCH, WechatClient, WechatError};

/// Followers read per sweep step.
const SWEEP_PAGE: usize = 500;
/// Stores in flight while a batch's followers are written.
const WRITES_IN_FLIGHT: usize = 16;
/// A step is begun only with this much time left (a list page may take 5 s).
const STEP_RESERVE: Duration = Duration::from_secs(6);

/// How a run may use WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Politeness {
    /// Upstream calls per minute, at most (`SYNC_CALLS_PER_MINUTE`).
    pub calls_per_minute: u32,
    /// Profile batches in flight, at most (`SYNC_CONCURRENCY`).
    pub concurrency: usize,
}

/// What a run needs.
#[derive(Debug, Clone)]
pub struct Syncer {
    /// The account's client (its token manager, breakers, retry budget).
    pub client: WechatClient,
    /// The fleet's table.
    pub store: SharedStore,
    /// Wall clock.
    pub clock: SharedClock,
    /// Rate and concurrency caps.
    pub politeness: Politeness,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No pass asked for and none under way.
    Idle,
    /// Another run holds the lease.
    Busy,
    /// The pass finished in this run.
    Finished,
    /// The deadline came first: the next run resumes.
    Yielded,
    /// WeChat's daily quota is spent: paused until its reset.
    Paused,
    /// WeChat or the store failed: the next run resumes at the checkpoint.
    Interrupted,
}

impl Outcome {
    /// The metric word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Finished => "finished",
            Self::Yielded => "yielded",
            Self::Paused => "paused",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What one run did (the invocation's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Why it ended.
    pub outcome: Outcome,
    /// The pass it worked on.
    pub pass_id: Option<String>,
    /// The pass's counts so far.
    pub counts: PassCounts,
    /// Why it stopped early, when it did.
    pub reason: Option<String>,
    /// Paused until (epoch ms).
    pub paused_until_ms: Option<i64>,
}

/// Why a step could not go on.
enum Stop {
    Quota(i64),
    Wechat(WechatError),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<WechatError> for Stop {
    fn from(error: WechatError) -> Self {
        match error {
            WechatError::QuotaExhausted { until_ms } => Self::Quota(until_ms),
            other => Self::Wechat(other),
        }
    }
}

/// Spaces upstream calls `60 s / calls_per_minute` apart (one run at a time fleet-wide, so this
/// instance's pace is the fleet's).
#[derive(Debug)]
struct Pacer {
    every: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(calls_per_minute: u32) -> Self {
        Self {
            every: Duration::from_secs(60) / calls_per_minute.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.every;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The report of a run that ended with `outcome` at `checkpoint`. (A function, not a closure:
/// a closure over `&Checkpoint` held across an await makes the run's future "not general
/// enough" to spawn.)
fn report(outcome: Outcome, checkpoint: &Checkpoint, reason: Option<String>) -> RunReport {
    RunReport {
        outcome,
        pass_id: checkpoint.pass.as_ref().map(|p| p.id.clone()),
        counts: checkpoint.pass.as_ref().map(|p| p.counts.clone()).unwrap_or_default(),
        reason,
        paused_until_ms: checkpoint.paused_until_ms,
    }
}

impl Syncer {
    /// One run within `deadline`, as run `owner` (random per invocation).
    pub async fn run(&self, owner: &str, deadline: Deadline) -> RunReport {
        let state = SyncState::new(self.store.clone(), owner);
        let now = self.clock.now_ms();
        let mut checkpoint = match state.acquire(now).await {
            Ok(Some(checkpoint)) => checkpoint,
            Ok(None) => return report(Outcome::Busy, &Checkpoint::default(), None),
            Err(error) => return report(Outcome::Interrupted, &Checkpoint::default(), Some(error.to_string())),
        };
        if checkpoint.paused_until_ms.is_some_and(|until| until > now) {
            let _ = state.release_only().await;
            return report(Outcome::Paused, &checkpoint, Some("daily quota spent".into()));
        }
        checkpoint.paused_until_ms = None;
        if checkpoint.pass.is_none() {
            let Some(requested) = checkpoint.requested_ms.take() else {
                let _ = state.release_only().await;
                return report(Outcome::Idle, &checkpoint, None);
            };
            tracing::info!(target: "wechat_ha::sync", requested_ms = requested, "full pass begins");
            checkpoint.pass = Some(Pass {
                id: format!("p{now}"),
                started_ms: now,
                phase: Phase::Tags,
                tags: Vec::new(),
                counts: PassCounts::default(),
            });
        }
        if let Some(pass) = checkpoint.pass.as_mut() {
            pass.counts.runs += 1;
        }
        let outcome = self.work(&state, &mut checkpoint, deadline).await;
        let (outcome, reason) = match outcome {
            Ok(outcome) => (outcome, None),
            Err(Stop::Quota(until_ms)) => {
                checkpoint.paused_until_ms = Some(until_ms);
                (
                    Outcome::Paused,
                    Some("WeChat's daily quota is spent (45009)".to_owned()),
                )
            }
            Err(Stop::Wechat(error)) => (Outcome::Interrupted, Some(error.to_string())),
            Err(Stop::Store(error)) => (Outcome::Interrupted, Some(error.to_string())),
        };
        checkpoint.last_stop = reason.clone();
        let snapshot = report(outcome, &checkpoint, reason.clone());
        if let Err(error) = state.release(&checkpoint).await {
            // The checkpoint of the last stored batch stands; the lease expires by itself.
            tracing::warn!(target: "wechat_ha::sync", reason = %error, "checkpoint not saved at the end of the run");
        }
        count_with(metrics::SYNC_RUNS, "outcome", outcome.as_str());
        tracing::info!(target: "wechat_ha::sync", outcome = outcome.as_str(), reason = reason.as_deref().unwrap_or(""), counts = ?snapshot.counts, "sync run ended");
        RunReport {
            counts: if outcome == Outcome::Finished {
                checkpoint.last_pass.map(|p| p.counts).unwrap_or_default()
            } else {
                snapshot.counts.clone()
            },
            ..snapshot
        }
    }

    async fn work(&self, state: &SyncState, checkpoint: &mut Checkpoint, deadline: Deadline) -> Result<Outcome, Stop> {
        let pacer = Pacer::new(self.politeness.calls_per_minute);
        loop {
            if !deadline.can_start(STEP_RESERVE) {
                return Ok(Outcome::Yielded);
            }
            let Some(pass) = checkpoint.pass.as_mut() else {
                return Ok(Outcome::Finished);
            };
            match pass.phase.clone() {
                Phase::Tags => {
                    pacer.wait().await;
                    pass.counts.tag_calls += 1;
                    let tags = self.client.tags(deadline).await?;
                    pass.tags = tags.into_iter().map(|t| (t.id, t.name)).collect();
                    pass.phase = Phase::List {
                        cursor: String::new(),
                        first: String::new(),
                        batches_done: 0,
                    };
                }
                Phase::List {
                    cursor,
                    first,
                    batches_done,
                } => {
                    self.list_page(state, checkpoint, (&cursor, &first, batches_done), &pacer, deadline)
                        .await?;
                }
                Phase::Sweep { shard, after } => {
                    self.sweep_step(pass, shard, after).await?;
                }
            }
            if let Some(pass) = checkpoint.pass.as_ref().filter(|p| {
                p.phase
                    == Phase::Sweep {
                        shard: SHARDS,
                        after: None,
                    }
            }) {
                checkpoint.last_pass = Some(Finished {
                    id: pass.id.clone(),
                    started_ms: pass.started_ms,
                    finished_ms: self.clock.now_ms(),
                    counts: pass.counts.clone(),
                });
                tracing::info!(target: "wechat_ha::sync", pass = %pass.id, counts = ?pass.counts, "full pass finished");
                checkpoint.pass = None;
            }
            state.save(checkpoint, self.clock.now_ms()).await?;
        }
    }

    /// One `user/get` page: fetched, its batches (from `batches_done`) fetched and stored in
    /// order, the checkpoint saved after each.
    async fn list_page(
        &self,
        state: &SyncState,
        checkpoint: &mut Checkpoint,
        (cursor, first, batches_done): (&str, &str, usize),
        pacer: &Pacer,
        deadline: Deadline,
    ) -> Result<(), Stop> {
        let Some(pass) = checkpoint.pass.as_mut() else {
            return Ok(());
        };
        pacer.wait().await;
        pass.counts.list_calls += 1;
        let page = self.client.follower_page(cursor, deadline).await?;
        pass.counts.total = page.total;
        let page_first = page.openids.first().cloned().unwrap_or_default();
        // The page moved (followers came or went before the cursor): redo it from its start.
        let skip = if page_first == first { batches_done } else { 0 };
        if page.is_last() {
            pass.phase = Phase::Sweep { shard: 0, after: None };
            return Ok(());
        }
        pass.phase = Phase::List {
            cursor: cursor.to_owned(),
            first: page_first.clone(),
            batches_done: skip,
        };
        let tags: Arc<Vec<(i64, String)>> = Arc::new(pass.tags.clone());
        let pass_id = pass.id.clone();
        let batches: Vec<Vec<String>> = page
            .openids
            .chunks(PROFILE_BATCH)
            .skip(skip)
            .map(<[String]>::to_vec)
            .collect();
        // Boxed: a `Send` future the compiler can check for one lifetime (the stream of
        // borrowing futures is otherwise "not general enough" for `tokio::spawn`).
        let fetches = futures_util::stream::iter(batches.into_iter().map(|batch| {
            async move {
                pacer.wait().await;
                let records = self.client.follower_profiles(&batch, deadline).await;
                (records, self.clock.now_ms())
            }
            .boxed()
        }))
        .buffered(self.politeness.concurrency.max(1));
        futures_util::pin_mut!(fetches);
        let mut done = skip;
        while let Some((records, fetched_ms)) = fetches.next().await {
            let Some(pass) = checkpoint.pass.as_mut() else {
                return Ok(());
            };
            pass.counts.profile_calls += 1;
            let records = records?;
            let written = self.store_batch(&records, &pass_id, fetched_ms, &tags).await?;
            pass.counts.stored += written.0;
            pass.counts.kept_newer += written.1;
            ::metrics::counter!(metrics::SYNC_FOLLOWERS, "outcome" => "stored").increment(written.0);
            ::metrics::counter!(metrics::SYNC_FOLLOWERS, "outcome" => "kept_newer").increment(written.1);
            done += 1;
            pass.phase = Phase::List {
                cursor: cursor.to_owned(),
                first: page_first.clone(),
                batches_done: done,
            };
            state.save(checkpoint, self.clock.now_ms()).await?;
            if !deadline.can_start(STEP_RESERVE) {
                // The batches in flight are dropped unstored; the checkpoint says where to go on.
                return Ok(());
            }
        }
        if let Some(pass) = checkpoint.pass.as_mut() {
            pass.phase = Phase::List {
                cursor: page.next_openid,
                first: String::new(),
                batches_done: 0,
            };
        }
        Ok(())
    }

    /// Stores a batch's followers (unless newer), `(stored, kept_newer)`.
    async fn store_batch(
        &self,
        records: &[serde_json::Value],
        pass_id: &str,
        fetched_ms: i64,
        tags: &[(i64, String)],
    ) -> Result<(u64, u64), StoreError> {
        let name = |id: i64| tags.iter().find(|(tag, _)| *tag == id).map(|(_, name)| name.clone());
        let followers: Vec<Follower> = records
            .iter()
            .filter_map(|record| Follower::from_record(record, pass_id, fetched_ms, name))
            .collect();
        // Each write owns its follower: a closure over `&Follower` would make the run's future
        // "not general enough" to spawn.
        let results: Vec<Result<Written, StoreError>> =
            futures_util::stream::iter(followers.into_iter().map(|follower| {
                let store = self.store.clone();
                async move { follower::store_from_page(&store, &follower).await }
            }))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        let mut counts = (0, 0);
        for result in results {
            match result? {
                Written::Stored => counts.0 += 1,
                Written::KeptNewer => counts.1 += 1,
            }
        }
        Ok(counts)
    }

    /// One sweep step: up to [`SWEEP_PAGE`] followers of `shard` after `after`; the ones the pass
    /// did not see are marked unsubscribed.
    async fn sweep_step(&self, pass: &mut Pass, shard: u32, after: Option<String>) -> Result<(), Stop> {
        if shard >= SHARDS {
            return Ok(());
        }
        let (items, more) = self
            .store
            .query_page(&shard_pk(shard), after.as_deref(), SWEEP_PAGE)
            .await?;
        let now = self.clock.now_ms();
        for (openid, attrs) in &items {
            let unseen = attrs.str_attr("seen_pass") != Some(pass.id.as_str());
            if unseen
                && attrs.num_attr("subscribe") == Some(1)
                && follower::mark_left(&self.store, openid, &pass.id, pass.started_ms, now).await? == Written::Stored
            {
                pass.counts.left += 1;
                count_with(metrics::SYNC_FOLLOWERS, "outcome", "left");
            }
        }
        pass.phase = match (more, items.last()) {
            (true, Some((last, _))) => Phase::Sweep {
                shard,
                after: Some(last.clone()),
            },
            _ => Phase::Sweep {
                shard: shard + 1,
                after: None,
            },
        };
        Ok(())
    }
}
