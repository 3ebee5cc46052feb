//! Every metric the library records, named in one place (dashboards and alarms use these names).
//!
//! Recorded through the `metrics` facade: without an installed recorder (tests, tools) recording
//! is a no-op. Names are `snake_case` with the unit last; label-less, so an alarm on the metric
//! sees the whole fleet.

/// Sends recorded as in doubt: they may have reached WeChat without an answer.
pub const DELIVERY_IN_DOUBT: &str = "wechat_delivery_in_doubt_total";
/// Sends whose completion record could not be written in time and was handed to the queue.
pub const DELIVERY_COMPLETION_DEFERRED: &str = "wechat_delivery_completion_deferred_total";
/// Deferred completions written by the worker.
pub const DELIVERY_COMPLETION_WRITTEN: &str = "wechat_delivery_completion_written_total";
/// Sends made while the delivery ledger was down, kept once by instance memory only.
pub const DELIVERY_WITHOUT_LEDGER: &str = "wechat_delivery_without_ledger_total";
/// Jobs requeued because the delivery ledger did not answer (nothing was attempted).
pub const DELIVERY_LEDGER_WAIT: &str = "wechat_delivery_ledger_wait_total";

/// How long breaker store calls took when the store answered (histogram, milliseconds).
pub const BREAKER_STORE_LATENCY_MS: &str = "wechat_breaker_store_latency_ms";
/// Breaker store calls answered, but slower than the configured `store_timeout` (the adaptive
/// timeout waited for them): the store is slow.
pub const BREAKER_STORE_SLOW: &str = "wechat_breaker_store_slow_total";
/// Breaker store calls that failed or exceeded their timeout (the instance decides locally).
pub const BREAKER_STORE_OUTAGES: &str = "wechat_breaker_store_outages_total";
/// Times an instance's breaker began or extended deciding on local state (store out or slow).
pub const BREAKER_STORE_FALLBACKS: &str = "wechat_breaker_store_fallbacks_total";
/// Idempotency decisions made on instance memory because the fleet store was out.
pub const LEDGER_FALLBACKS: &str = "wechat_ledger_fallbacks_total";

/// Counts one `name` event.
pub fn count(name: &'static str) {
    ::metrics::counter!(name).increment(1);
}

/// Records `elapsed` in milliseconds in histogram `name`.
pub fn record_ms(name: &'static str, elapsed: std::time::Duration) {
    ::metrics::histogram!(name).record(elapsed.as_secs_f64() * 1000.0);
}
