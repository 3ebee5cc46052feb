//! Settings of a [`super::Ledger`]: how long records live, how long a claim lasts, where they live.

use std::time::Duration;

/// Why a [`LedgerConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerConfigError {
    /// `record_ttl` below [`LedgerConfig::MIN_RECORD_TTL`].
    #[error("ledger record ttl must be at least 60 s (WeChat retries for about 15 s)")]
    RecordTtlTooShort,
    /// `lease` is zero or not shorter than `record_ttl`.
    #[error("ledger lease must be > 0 and shorter than the record ttl")]
    Lease,
    /// The namespace is empty or contains `#` (the key separator).
    #[error("ledger namespace must be non-empty and must not contain '#'")]
    Namespace,
}

/// How long idempotency records live and how long a claim protects its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    record_ttl: Duration,
    lease: Duration,
    namespace: String,
    store_timeout: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            record_ttl: Self::DEFAULT_RECORD_TTL,
            lease: Self::DEFAULT_LEASE,
            namespace: Self::DEFAULT_NAMESPACE.to_owned(),
            store_timeout: Self::DEFAULT_STORE_TIMEOUT,
        }
    }
}

impl LedgerConfig {
    /// Default lifetime of a record (completed or not).
    pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
    /// Shortest accepted lifetime: WeChat retries a callback three times within about 15 s.
    pub const MIN_RECORD_TTL: Duration = Duration::from_secs(60);
    /// Default claim lease: longer than the 4 s handler deadline, so a live holder keeps its claim.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);
    /// Default namespace: records live at partition key `msg#{scope}`.
    pub const DEFAULT_NAMESPACE: &'static str = "msg";
    /// Default limit of one store call: past it the store counts as out (above the DynamoDB
    /// client's own operation timeout, so that one normally answers first).
    pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

    /// A validated configuration.
    ///
    /// - `record_ttl`: ≥ [`Self::MIN_RECORD_TTL`]; a completed record answers retries this long;
    /// - `lease`: > 0 and < `record_ttl`; after it a pending record counts as abandoned and the
    ///   next delivery takes it over.
    ///
    /// # Errors
    /// [`LedgerConfigError`] naming the broken rule.
    pub fn new(record_ttl: Duration, lease: Duration) -> Result<Self, LedgerConfigError> {
        if record_ttl < Self::MIN_RECORD_TTL {
            return Err(LedgerConfigError::RecordTtlTooShort);
        }
        if lease.is_zero() || lease >= record_ttl {
            return Err(LedgerConfigError::Lease);
        }
        Ok(Self {
            record_ttl,
            lease,
            namespace: Self::DEFAULT_NAMESPACE.to_owned(),
            store_timeout: Self::DEFAULT_STORE_TIMEOUT,
        })
    }

    /// The same settings with records under partition key `{namespace}#{scope}` (e.g. `out` for
    /// outbound message ids), so ledgers for different purposes never share records.
    ///
    /// # Errors
    /// [`LedgerConfigError::Namespace`] when `namespace` is empty or contains `#`.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self, LedgerConfigError> {
        if namespace.is_empty() || namespace.contains('#') {
            return Err(LedgerConfigError::Namespace);
        }
        self.namespace = namespace.to_owned();
        Ok(self)
    }

    /// The same settings with store calls limited to `timeout` (at least 1 ms).
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Limit of one store call.
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }

    /// Lifetime of a record.
    pub fn record_ttl(&self) -> Duration {
        self.record_ttl
    }

    /// Lease of a claim.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Partition-key namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_records_a_day_and_leases_five_seconds() {
        let config = LedgerConfig::default();
        assert_eq!(config.record_ttl(), Duration::from_secs(86_400));
        assert_eq!(config.lease(), Duration::from_secs(5));
        assert_eq!(config.namespace(), "msg");
    }

    #[test]
    fn short_ttls_and_bad_leases_are_rejected() {
        let s = Duration::from_secs;
        assert_eq!(
            LedgerConfig::new(s(59), s(5)),
            Err(LedgerConfigError::RecordTtlTooShort)
        );
        assert_eq!(LedgerConfig::new(s(60), s(0)), Err(LedgerConfigError::Lease));
        assert_eq!(LedgerConfig::new(s(60), s(60)), Err(LedgerConfigError::Lease));
        assert!(LedgerConfig::new(s(60), s(59)).is_ok());
    }

    #[test]
    fn namespaces_must_be_plain_words() {
        assert_eq!(
            LedgerConfig::default().with_namespace(""),
            Err(LedgerConfigError::Namespace)
        );
        assert_eq!(
            LedgerConfig::default().with_namespace("a#b"),
            Err(LedgerConfigError::Namespace)
        );
        assert_eq!(
            LedgerConfig::default()
                .with_namespace("out")
                .map(|c| c.namespace().to_owned()),
            Ok("out".into())
        );
    }
}
