//! The bulkhead: a cap on concurrent calls to one dependency from one instance.
//!
//! Why: a slow dependency otherwise ties up every task of the instance (and its memory) waiting
//! on it, starving calls to healthy dependencies. Scope: per instance — a Lambda instance serves
//! one request at a time, but the local server and batch workers run many concurrently.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ConfigError, Rejection};
use crate::deadline::Deadline;

/// Bulkhead settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadConfig {
    max_concurrent: u32,
    max_wait: Duration,
}

impl BulkheadConfig {
    /// Default cap on concurrent calls per instance.
    pub const DEFAULT_MAX_CONCURRENT: u32 = 64;

    /// At most `max_concurrent` (1–100 000) calls at once; a caller waits up to `max_wait`
    /// (≤ 60 s, and never past its deadline) for a slot, zero meaning "reject at once".
    ///
    /// # Errors
    /// [`ConfigError`] naming `max_concurrent` or `max_wait_ms`.
    pub fn try_new(max_concurrent: u32, max_wait: Duration) -> Result<Self, ConfigError> {
        if !(1..=100_000).contains(&max_concurrent) {
            return Err(ConfigError::new(
                "max_concurrent",
                format!("must be between 1 and 100000, got {max_concurrent}"),
            ));
        }
        if max_wait > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "max_wait_ms",
                format!("must be at most 60000, got {}", max_wait.as_millis()),
            ));
        }
        Ok(Self {
            max_concurrent,
            max_wait,
        })
    }

    /// The concurrency cap.
    pub const fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }

    /// The longest wait for a slot.
    pub const fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            max_wait: Duration::ZERO,
        }
    }
}

/// A per-instance concurrency limiter.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    config: BulkheadConfig,
}

/// One occupied slot; dropping it frees the slot.
#[derive(Debug)]
#[must_use = "the slot is released when the permit is dropped"]
pub struct BulkheadPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl Bulkhead {
    /// A bulkhead with `config.max_concurrent` slots.
    pub fn new(config: BulkheadConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.max_concurrent as usize)),
            config,
        }
    }

    /// The configuration.
    pub const fn config(&self) -> BulkheadConfig {
        self.config
    }

    /// Free slots right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Takes a slot, waiting at most `max_wait` and never past `deadline`.
    ///
    /// # Errors
    /// [`Rejection::BulkheadFull`] when no slot frees up in time.
    pub async fn acquire(&self, deadline: &Deadline) -> Result<BulkheadPermit, Rejection> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(BulkheadPermit(permit));
        }
        let wait = self.config.max_wait.min(deadline.remaining());
        if wait.is_zero() {
            return Err(Rejection::BulkheadFull);
        }
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(BulkheadPermit(permit)),
            _ => Err(Rejection::BulkheadFull),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulkhead(max: u32, wait_ms: u64) -> Bulkhead {
        Bulkhead::new(BulkheadConfig::try_new(max, Duration::from_millis(wait_ms)).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn bulkhead_rejects_beyond_capacity_and_frees_on_drop() {
        let b = bulkhead(2, 0);
        let deadline = Deadline::after(Duration::from_secs(1));
        let first = b.acquire(&deadline).await.unwrap();
        let _second = b.acquire(&deadline).await.unwrap();
        assert_eq!(b.acquire(&deadline).await.unwrap_err(), Rejection::BulkheadFull);
        drop(first);
        assert!(b.acquire(&deadline).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn bulkhead_waits_up_to_max_wait_but_not_past_the_deadline() {
        let b = bulkhead(1, 500);
        let held = b.acquire(&Deadline::after(Duration::from_secs(5))).await.unwrap();
        let start = tokio::time::Instant::now();
        let short = Deadline::after(Duration::from_millis(100));
        assert!(b.acquire(&short).await.is_err());
        assert_eq!(start.elapsed(), Duration::from_millis(100), "stopped at the deadline");
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(&Deadline::after(Duration::from_secs(5))).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "a slot freed within max_wait is taken");
    }

    #[test]
    fn bulkhead_config_names_the_bad_field() {
        assert_eq!(
            BulkheadConfig::try_new(0, Duration::ZERO).unwrap_err().field,
            "max_concurrent"
        );
        assert_eq!(
            BulkheadConfig::try_new(1, Duration::from_secs(61)).unwrap_err().field,
            "max_wait_ms"
        );
    }
}
