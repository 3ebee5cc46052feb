//! Metrics on Lambda: CloudWatch Embedded Metric Format, one JSON line per label set on stdout,
//! written once per invocation (CloudWatch Logs turns the lines into metrics; no API call, no
//! agent). The recorder is global: install it once per cold start with the function's stable
//! name (a `Function` dimension on every metric), then [`flush`] after each invocation.

use std::sync::OnceLock;

use metrics_cloudwatch_embedded::{Builder, Collector};

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the EMF recorder for `function` (`callback`, `send`, …) in CloudWatch `namespace`.
/// `false` when another recorder was installed first (then nothing is exported through EMF).
pub fn install(namespace: &str, function: &'static str) -> bool {
    COLLECTOR
        .get_or_init(|| {
            let built = Builder::new()
                .cloudwatch_namespace(namespace.to_owned())
                .with_dimension("Function", function)
                .init();
            match built {
                Ok(collector) => {
                    super::metrics::describe_all();
                    Some(collector)
                }
                Err(error) => {
                    tracing::warn!(%error, "a metrics recorder was installed before; EMF is off");
                    None
                }
            }
        })
        .is_some()
}

/// Writes what was recorded since the last flush as EMF lines to `writer` (one buffer, one
/// write: a log line from another task cannot land inside a metric document).
///
/// # Errors
/// The writer's error.
pub fn flush_to(writer: &mut impl std::io::Write) -> std::io::Result<()> {
    let Some(Some(collector)) = COLLECTOR.get() else {
        return Ok(());
    };
    let mut lines = Vec::with_capacity(4096);
    collector.flush(&mut lines)?;
    if !lines.is_empty() {
        writer.write_all(&lines)?;
    }
    Ok(())
}

/// [`flush_to`] stdout; call it after every invocation (Lambda may freeze the instance next).
pub fn flush() {
    if let Err(error) = flush_to(&mut std::io::stdout().lock()) {
        tracing::warn!(%error, "could not write the metrics");
    }
}
