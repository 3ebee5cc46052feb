//! Typed, validated reads of environment variables, each failure naming its variable.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A configuration variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var} {problem}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// The rule it breaks, e.g. "must be 43 characters of [A-Za-z0-9]".
    pub problem: String,
}

impl ConfigError {
    /// `var` breaks `problem`.
    pub fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// Where variables come from: the process environment, or a map in tests.
#[derive(Clone, Default)]
pub struct Env(HashMap<String, String>);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: list names only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Env {
    /// A snapshot of the process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment made of the given pairs (tests, the local server's overrides).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// Sets one variable (used by the local server for `--mock-wechat`).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), value.into());
    }

    /// Every variable as `(name, value)` pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone()))
    }

    /// Whether this process is a Lambda instance (`AWS_LAMBDA_FUNCTION_NAME` is set by the runtime).
    pub fn on_lambda(&self) -> bool {
        self.optional("AWS_LAMBDA_FUNCTION_NAME").is_some()
    }

    /// On Lambda, refuses a secret given as a plain variable (`var`): anyone allowed
    /// `lambda:GetFunctionConfiguration` could read it. `instead` names the variable that refers
    /// to it in Secrets Manager. Off Lambda (local runs, tests) plain values are fine, and so they
    /// are with `ALLOW_PLAIN_SECRETS=true`, meant for emulated runs (`cargo lambda watch`), which
    /// look like Lambda from inside (warned about at every cold start).
    ///
    /// # Errors
    /// [`ConfigError`] naming `var` when it is set on Lambda.
    pub fn no_plain_secret_on_lambda(&self, var: &'static str, instead: &'static str) -> Result<(), ConfigError> {
        if !self.on_lambda() || self.optional(var).is_none() {
            return Ok(());
        }
        if self.optional("ALLOW_PLAIN_SECRETS") == Some("true") {
            tracing::warn!(
                variable = var,
                "ALLOW_PLAIN_SECRETS=true: a secret is read from a plain variable"
            );
            return Ok(());
        }
        Err(ConfigError::new(
            var,
            format!(
                "is a plain environment variable on Lambda, readable with lambda:GetFunctionConfiguration: \
                 put it in Secrets Manager and set {instead} instead (or ALLOW_PLAIN_SECRETS=true in an emulator)"
            ),
        ))
    }

    /// A file's text, the error naming the variable that named the file.
    pub fn read_file(&self, var: &'static str, path: &str) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| ConfigError::new(var, format!("cannot read {path:?}: {e}")))
    }

    /// A duration in milliseconds within `[min, max]`, or `default` when unset.
    pub fn millis_in(&self, name: &'static str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.int_in(name, default, min, max).map(Duration::from_millis)
    }

    /// A duration in seconds within `[min, max]`, or `default` when unset.
    pub fn secs_in(&self, name: &'static str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.int_in(name, default, min, max).map(Duration::from_secs)
    }

    /// The variable's value, `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The variable's value, or an error naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// A `true` / `false` switch, `false` when unset.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable when it is set to anything else.
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        self.parsed_or(name, false, "true or false")
    }

    /// The variable parsed as `T`, or `default` when unset.
    pub fn parsed_or<T: FromStr>(&self, name: &'static str, default: T, expect: &str) -> Result<T, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError::new(name, format!("must be {expect}, got {raw:?}"))),
        }
    }

    /// An integer within `[min, max]`, or `default` when unset.
    pub fn int_in(&self, name: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value = self.parsed_or(name, default, "a whole number")?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::new(
                name,
                format!("must be between {min} and {max}, got {value}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.optional("A"), None);
        assert_eq!(env.required("A").unwrap_err().var, "A");
    }

    #[test]
    fn int_in_names_the_variable_and_the_range() {
        let env = Env::from_pairs([("N", "9"), ("BAD", "x")]);
        assert_eq!(env.int_in("N", 1, 1, 10).unwrap(), 9);
        let err = env.int_in("N", 1, 1, 5).unwrap_err();
        assert_eq!(err.to_string(), "configuration error: N must be between 1 and 5, got 9");
        assert!(env.int_in("BAD", 1, 1, 5).unwrap_err().problem.contains("whole number"));
        assert_eq!(env.int_in("UNSET", 3, 1, 5).unwrap(), 3);
    }

    #[test]
    fn debug_lists_names_but_never_values() {
        let env = Env::from_pairs([("WECHAT_APPSECRET", "topsecret")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("WECHAT_APPSECRET") && !shown.contains("topsecret"));
    }
}
