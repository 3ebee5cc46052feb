//! Logging: `tracing` as JSON lines (what CloudWatch Logs Insights queries), level from `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber once per process; later calls are no-ops.
///
/// Each line carries the span fields (route, request id), so every log line of a request can be
/// found by its request id. Secrets never reach here: they are [`crate::secret::Secret`]s, which print `***`.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .try_init();
}
