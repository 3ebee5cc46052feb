//! Logging: `tracing` as JSON lines (what CloudWatch Logs Insights queries).

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber once per process with `filter` (`RUST_LOG` syntax, read by
/// the configuration module); later calls are no-ops. An invalid filter falls back to `info`.
///
/// Each line carries the span fields (route, request id), so every log line of a request can be
/// found by its request id. Secrets never reach here: they are [`crate::secret::Secret`]s, which print `***`.
pub fn init_logging(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .try_init();
}
