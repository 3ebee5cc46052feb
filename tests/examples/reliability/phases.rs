//! The run's two moving parts — the senders and the worker loop — and how a first answer is classed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use futures_util::{StreamExt, stream};
use shared::deps::{SendDeps, WorkerDeps};
use shared::queue::SharedQueue;
use shared::queue::poller::{PollerConfig, poll_once};
use shared::routes::send_worker;

use crate::backend::Backend;
use crate::traffic::{self, Answer, send_one};

/// One poller; messages are hidden only by the worker's backoff (see the module docs).
const ROUNDS: PollerConfig = PollerConfig {
    batch_size: 10,
    wait: Duration::ZERO,
    visibility: Duration::ZERO,
};

/// How often the worker reports progress on stderr (the tail waits out backoffs of minutes).
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// Worker rounds and receives.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerStats {
    pub rounds: usize,
    pub received: usize,
    pub timed_out: bool,
}

/// The two functions of the outbound path, over one store, queue and account.
#[derive(Debug)]
pub struct Functions {
    /// The send API.
    pub send: SendDeps,
    /// The worker.
    pub worker: WorkerDeps,
    /// The queue between them.
    pub queue: SharedQueue,
}

/// Polls until the sends are done and the queue is empty, or the time limit.
pub async fn drain(deps: Arc<Functions>, backend: Arc<Backend>, done: Arc<AtomicBool>, until: Instant) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut next_progress = Instant::now() + PROGRESS_EVERY;
    loop {
        if Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            let pending = backend.queue.pending().await.unwrap_or(0);
            eprintln!(
                "… worker: {} receives so far, {pending} messages still queued",
                stats.received
            );
        }
        let received = poll_once(&deps.queue, &ROUNDS, &|event: SqsEvent| {
            send_worker::handle(&deps.worker, event)
        })
        .await;
        stats.rounds += 1;
        stats.received += received;
        if received > 0 {
            continue;
        }
        if Instant::now() >= until {
            stats.timed_out = true;
            return stats;
        }
        if done.load(Ordering::SeqCst) && backend.queue.pending().await.unwrap_or(1) == 0 {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `indices` through the send route, `concurrency` at a time, each on its own task.
pub async fn send_all(
    deps: &Arc<Functions>,
    indices: Vec<usize>,
    twice: &Arc<HashSet<usize>>,
    concurrency: usize,
    issued: &Arc<AtomicUsize>,
) -> Vec<Answer> {
    let answers: Vec<Vec<Answer>> = stream::iter(indices)
        .map(|i| {
            let (deps, twice, issued) = (deps.clone(), twice.clone(), issued.clone());
            tokio::spawn(async move {
                issued.fetch_add(1, Ordering::SeqCst);
                if twice.contains(&i) {
                    let (a, b) = tokio::join!(send_one(&deps.send, i), send_one(&deps.send, i));
                    vec![a, b]
                } else {
                    vec![send_one(&deps.send, i).await]
                }
            })
        })
        .buffer_unordered(concurrency)
        .map(|joined| joined.unwrap_or_default())
        .collect()
        .await;
    answers.into_iter().flatten().collect()
}

/// Message id → the send API's first answer: `200 sent`, or `202 <reason class>`.
pub fn first_answers(answers: &[Answer]) -> HashMap<String, String> {
    let mut first = HashMap::new();
    for answer in answers.iter().filter(|a| a.status != 409) {
        let reason = answer.data["reason"].as_str().unwrap_or_default();
        let class = if reason.contains("circuit open") {
            "circuit open"
        } else if reason.contains("cannot connect") {
            "WeChat unreachable"
        } else if reason.contains("HTTP 503") {
            "HTTP 503"
        } else if reason.contains("network error") {
            "connection dropped"
        } else if reason.contains("errcode -1") || reason.contains("system error") {
            "errcode -1"
        } else if reason.contains("budget") {
            "retry budget"
        } else if reason.is_empty() {
            ""
        } else {
            "other"
        };
        first
            .entry(traffic::id(answer.index))
            .or_insert_with(|| format!("{} {class}", answer.status).trim().to_owned());
    }
    first
}
