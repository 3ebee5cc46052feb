//! The retry budget: retries are allowed only while they stay a small share of calls.
//!
//! Why budgets and not only max attempts: with 3 attempts per call an outage triples the load on
//! a dependency that is already failing (a retry storm). A budget (gRPC retry throttling, Finagle
//! `RetryBudget`, tower's `TpsBudget`) caps retries at `percent` of the calls in the breaker's
//! sliding window plus a small `floor`, so low-traffic callers can still retry at all.
//!
//! Scope: per fleet. The counts come from the breaker's window item, where every attempt's
//! outcome write already adds `calls` and — when the caller wants to retry — reserves the retry
//! (`retries + 1`) in the same atomic update. The returned item orders all reservations, so a
//! reservation is granted only if fewer than `percent × calls + floor` came before it: granted
//! retries never exceed the budget, however many instances race. A refused reservation is handed
//! back (`retries - 1`) with the instance's next write. When the store is down, the same rule runs
//! on the instance's local window (per-instance budget).

use super::error::ConfigError;

/// A retry budget: share of calls (percent) plus a floor, per sliding window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    percent: f64,
    floor: u32,
}

impl RetryBudget {
    /// Default share of calls that may be retries: 10 %.
    pub const DEFAULT_PERCENT: f64 = 10.0;
    /// Default floor of retries per window, fleet-wide.
    pub const DEFAULT_FLOOR: u32 = 10;

    /// A budget of `percent` (0–100) of calls plus `floor` (0–100 000) retries per window.
    ///
    /// # Errors
    /// [`ConfigError`] naming `budget_percent` or `budget_floor` when out of range.
    pub fn try_new(percent: f64, floor: u32) -> Result<Self, ConfigError> {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ConfigError::new(
                "budget_percent",
                format!("must be between 0 and 100, got {percent}"),
            ));
        }
        if floor > 100_000 {
            return Err(ConfigError::new(
                "budget_floor",
                format!("must be at most 100000, got {floor}"),
            ));
        }
        Ok(Self { percent, floor })
    }

    /// A budget that never refuses a retry (max attempts alone then limit retries).
    pub const fn unlimited() -> Self {
        Self {
            percent: 100.0,
            floor: u32::MAX,
        }
    }

    /// Share of calls, in percent.
    pub const fn percent(&self) -> f64 {
        self.percent
    }

    /// Retries always allowed per window.
    pub const fn floor(&self) -> u32 {
        self.floor
    }

    /// How many retries `calls` calls in the window pay for.
    pub fn limit(&self, calls: i64) -> f64 {
        self.percent / 100.0 * calls.max(0) as f64 + f64::from(self.floor)
    }

    /// Whether a retry may go ahead when `retries_before` retries (granted or still reserved) are
    /// already counted in a window of `calls` calls: only if, with this one, retries stay within
    /// `percent × calls + floor` — so granted retries never exceed the limit, not even by one.
    pub fn allows(&self, calls: i64, retries_before: i64) -> bool {
        (retries_before.max(0) as f64 + 1.0) <= self.limit(calls)
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            percent: Self::DEFAULT_PERCENT,
            floor: Self::DEFAULT_FLOOR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_floor_then_share_of_calls() {
        let budget = RetryBudget::try_new(10.0, 2).unwrap();
        assert!(budget.allows(0, 0));
        assert!(budget.allows(0, 1));
        assert!(!budget.allows(0, 2), "floor reached");
        assert!(budget.allows(100, 11), "10 % of 100 plus 2");
        assert!(!budget.allows(100, 12));
    }

    #[test]
    fn budget_rejects_out_of_range_values_naming_the_field() {
        assert_eq!(RetryBudget::try_new(101.0, 0).unwrap_err().field, "budget_percent");
        assert_eq!(RetryBudget::try_new(f64::NAN, 0).unwrap_err().field, "budget_percent");
        assert_eq!(RetryBudget::try_new(10.0, 200_000).unwrap_err().field, "budget_floor");
    }

    #[test]
    fn zero_budget_refuses_every_retry_and_unlimited_refuses_none() {
        let none = RetryBudget::try_new(0.0, 0).unwrap();
        assert!(!none.allows(1_000_000, 0));
        assert!(RetryBudget::unlimited().allows(0, 1_000_000));
    }
}
