//! `bounded`: the one way to make a store call under a store timeout and a caller's deadline.
//!
//! Two different things can end the wait, and callers must tell them apart: the store's own
//! timeout firing (or the store failing) is an **outage** — the breaker, the token cache and the
//! ledger fall back to instance-local state — while the caller's deadline coming first says
//! nothing about the store, so nobody degrades because one request ran out of time.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::task::Unconstrained;
use tokio::time::Sleep;

use super::StoreError;
use crate::deadline::Deadline;

/// Why a bounded store call gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unanswered {
    /// The store failed or exceeded its own timeout: an outage (callers fall back).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller's deadline came first, or had already passed (then the call was not started).
    /// Not the store's fault; a started write may or may not have been applied.
    #[error("the caller's deadline passed before the store answered")]
    Deadline,
}

impl Unanswered {
    /// Whether the store itself is out (unreachable, throttled or too slow), as opposed to a
    /// caller out of time or a store answer such as a failed condition.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_outage())
    }
}

/// Runs `operation` under `timeout`, cut short by `deadline` when that comes first; never starts
/// it once `deadline` has passed. `None`: no caller deadline (operators' calls, background work).
///
/// # Errors
/// [`Unanswered::Store`] for a store error or the store timeout (as [`StoreError::Unavailable`]),
/// [`Unanswered::Deadline`] when the deadline ended the wait.
pub async fn bounded<T>(
    timeout: Duration,
    deadline: Option<&Deadline>,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, Unanswered> {
    let left = deadline.map_or(timeout, Deadline::remaining);
    if left.is_zero() {
        return Err(Unanswered::Deadline);
    }
    let deadline_first = left < timeout;
    match answer_within(left.min(timeout), operation).await {
        Some(answer) => answer.map_err(Unanswered::Store),
        None if deadline_first => Err(Unanswered::Deadline),
        None => Err(Unanswered::Store(StoreError::Unavailable(format!(
            "timed out after {} ms",
            timeout.as_millis()
        )))),
    }
}

/// `operation`'s answer, or `None` once `limit` has passed. The timer is armed only when the
/// operation's first poll leaves it pending: a store that answers at once (the in-memory one, so
/// every local call) reads no clock and registers no timer. Both are polled with the task's own
/// context, so an operation that yields (or runs out of tokio's budget) is woken as usual.
async fn answer_within<T>(limit: Duration, operation: impl Future<Output = T>) -> Option<T> {
    let mut operation = pin!(operation);
    let mut timer = pin!(None::<Unconstrained<Sleep>>);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(answer) = operation.as_mut().poll(cx) {
            return Poll::Ready(Some(answer));
        }
        if timer.is_none() {
            // Outside the task's budget, as tokio's own `timeout` polls its timer: an operation
            // that spends the budget on every poll must not keep the limit from firing.
            timer.set(Some(tokio::task::unconstrained(tokio::time::sleep(limit))));
        }
        match timer.as_mut().as_pin_mut() {
            Some(sleep) => sleep.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn slow(secs: u64) -> Result<(), StoreError> {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn store_calls_past_the_timeout_become_unavailable() {
        let err = bounded(Duration::from_millis(100), None, slow(5)).await.unwrap_err();
        assert!(err.is_outage(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_call_never_outlasts_the_callers_deadline_and_that_is_no_outage() {
        let started = tokio::time::Instant::now();
        let deadline = Deadline::after(Duration::from_millis(200));
        let cut = bounded(Duration::from_secs(10), Some(&deadline), slow(60)).await;
        assert!(matches!(cut, Err(Unanswered::Deadline)), "{cut:?}");
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        let later = Deadline::after(Duration::from_secs(30));
        let outage = bounded(Duration::from_secs(10), Some(&later), slow(60)).await;
        assert!(outage.as_ref().is_err_and(Unanswered::is_outage), "{outage:?}");
        assert_eq!(started.elapsed(), Duration::from_millis(10_200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_yields_is_woken_and_answers_within_its_limits() {
        let started = tokio::time::Instant::now();
        let yielding = async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            Ok::<_, StoreError>(7)
        };
        let answer = bounded(Duration::from_millis(100), None, yielding).await;
        assert!(matches!(answer, Ok(7)), "{answer:?}");
        let at_once = bounded(Duration::from_millis(100), None, async { Ok::<_, StoreError>(8) }).await;
        assert!(matches!(at_once, Ok(8)), "{at_once:?}");
        assert_eq!(started.elapsed(), Duration::ZERO, "no timer fired");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_starts_after_the_deadline() {
        let passed = Deadline::after(Duration::ZERO);
        let started = std::sync::atomic::AtomicBool::new(false);
        let op = async {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, StoreError>(())
        };
        assert!(matches!(
            bounded(Duration::from_secs(1), Some(&passed), op).await,
            Err(Unanswered::Deadline)
        ));
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
    }
}
