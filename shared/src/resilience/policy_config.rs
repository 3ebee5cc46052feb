//! What is configurable about one name: its retry, breaker and bulkhead settings, as one value
//! that code defaults, override files, variables and runtime items all produce.

use super::breaker::config::BreakerConfig;
use super::bulkhead::BulkheadConfig;
use super::retry::RetryConfig;

/// Everything configurable about one name: retry, breaker and bulkhead settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyConfig {
    /// Retry settings (used by policies of this name).
    pub retry: RetryConfig,
    /// Breaker settings (used by the breaker of this name).
    pub breaker: BreakerConfig,
    /// Bulkhead settings (used with the breaker of this name).
    pub bulkhead: BulkheadConfig,
}
