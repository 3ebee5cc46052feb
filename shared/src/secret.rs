//! A string that never prints: tokens, AppSecrets and API keys.

use std::fmt;

use subtle::ConstantTimeEq;

/// A secret value. `Debug` and `Display` print `***`, so it cannot leak through a log line.
/// It deserializes from a plain string (secrets read from a Secrets Manager JSON document) and
/// never serializes.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it (signing, an upstream call).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a candidate (bearer keys, tokens).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("s3cr3t-value");
        assert_eq!(format!("{secret}"), "***");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert_eq!(secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn matches_compares_whole_values() {
        let secret = Secret::new("abc");
        assert!(secret.matches("abc"));
        assert!(!secret.matches("ab"));
        assert!(!secret.matches("abcd"));
    }
}
