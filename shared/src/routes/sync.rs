//! The sync function: EventBridge ticks continue the follower sync; the nightly schedule (input
//! `{"action": "start"}`) asks for a full pass first. `POST /admin/sync` asks for one too.
//!
//! Why ticks rather than chained invocations or a queue of page jobs: a run resumes from the
//! fleet's checkpoint whoever runs it, so the trigger only needs to come again — a schedule
//! every minute does, with no self-invoke permission, no job that can be lost or doubled, and a
//! paused run (45009, an open breaker) resumes by itself on the first tick after the cause is
//! gone. An idle tick costs one conditional write.

use std::time::Duration;

use serde_json::Value;

use crate::deadline::Deadline;
use crate::deps::SyncDeps;
use crate::sync::RunReport;
use crate::sync::state::request_pass;

/// The longest a run works when the invocation names no deadline (local runs).
const DEFAULT_RUN: Duration = Duration::from_secs(240);

/// What a trigger asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Continue whatever is under way (the every-minute schedule).
    Tick,
    /// Begin a full pass unless one is under way (the nightly schedule).
    Start,
}

impl Trigger {
    /// From the invocation's payload: `{"action": "start"}` starts; anything else (an
    /// EventBridge "Scheduled Event") ticks.
    pub fn of(payload: &Value) -> Self {
        match payload.get("action").and_then(Value::as_str) {
            Some("start") => Self::Start,
            _ => Self::Tick,
        }
    }
}

/// One invocation: at most until `lambda_deadline` minus the configured margin.
#[tracing::instrument(name = "sync", skip_all)]
pub async fn handle(deps: &SyncDeps, trigger: Trigger, lambda_deadline: Option<Deadline>) -> RunReport {
    let syncer = &deps.syncer;
    if trigger == Trigger::Start
        && let Err(error) = request_pass(&syncer.store, syncer.clock.now_ms()).await
    {
        tracing::warn!(target: "wechat_ha::sync", reason = %error, "full pass not requested; the next start retries");
    }
    let deadline = lambda_deadline.map_or_else(
        || Deadline::after(DEFAULT_RUN),
        |d| Deadline::at(d.instant() - deps.run_margin.min(d.remaining())),
    );
    let owner = format!("run-{:016x}", rand::random::<u64>());
    syncer.run(&owner, deadline).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_an_explicit_start_starts() {
        assert_eq!(Trigger::of(&json!({"action": "start"})), Trigger::Start);
        assert_eq!(
            Trigger::of(&json!({"detail-type": "Scheduled Event", "detail": {}})),
            Trigger::Tick
        );
        assert_eq!(Trigger::of(&json!(null)), Trigger::Tick);
    }
}
