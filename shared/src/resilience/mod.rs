//! Resilience: deadline-aware retry with jitter and a fleet-wide budget, and a shared circuit breaker.
