//! One breaker as an operator sees it: the fleet record, with its window judged by the
//! breaker's configuration.

use serde::Serialize;

use crate::resilience::{Breaker, ForceError};

/// A breaker's fleet state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerView {
    /// Its name (`wechat.message`, `wechat.domain.api.weixin.qq.com`, …).
    pub name: String,
    /// `closed`, `open`, `half_open`, `forced_open` or `disabled`.
    pub state: &'static str,
    /// Calls in the current window.
    pub calls: i64,
    /// Failed calls in the window.
    pub failures: i64,
    /// Slow calls in the window.
    pub slow: i64,
    /// Failures per call in percent; `None` without calls.
    pub failure_rate: Option<f64>,
    /// End of the open period (epoch ms; 0 unless open).
    pub open_until_ms: i64,
    /// Probe permits left in a half-open round.
    pub probes_left: i64,
    /// Transition counter (every state change adds one).
    pub version: i64,
    /// Consecutive trips.
    pub trips: u32,
    /// Whether an operator pinned it (the tuner leaves it alone).
    pub pinned: bool,
}

/// Reads `breakers` from the fleet store, in order; `pinned` says which are pinned.
///
/// # Errors
/// [`ForceError::Store`] for the first breaker the store could not give.
pub async fn fleet_view(
    breakers: &[std::sync::Arc<Breaker>],
    pinned: &[String],
) -> Result<Vec<BreakerView>, ForceError> {
    let mut views = Vec::with_capacity(breakers.len());
    for breaker in breakers {
        let snapshot = breaker.fleet_snapshot().await?;
        let window = snapshot.window;
        #[allow(clippy::cast_precision_loss)] // window counts are far below 2^52
        let failure_rate = (window.calls > 0).then(|| window.failures as f64 * 100.0 / window.calls as f64);
        views.push(BreakerView {
            pinned: pinned.contains(&snapshot.name),
            name: snapshot.name,
            state: snapshot.state.as_str(),
            calls: window.calls,
            failures: window.failures,
            slow: window.slow,
            failure_rate,
            open_until_ms: snapshot.open_until_ms,
            probes_left: snapshot.probes_left,
            version: snapshot.version,
            trips: snapshot.trips,
        });
    }
    Ok(views)
}
