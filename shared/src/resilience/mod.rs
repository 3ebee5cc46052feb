//! Resilience: deadline-aware retry with jitter and a fleet-wide budget, and a shared circuit breaker.

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod bulkhead;
pub mod classify;
pub mod deadline;
pub mod error;
pub mod events;
pub mod testing;
