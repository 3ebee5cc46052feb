//! Where a secret comes from: a value given directly (local runs, tests) or a reference to AWS
//! Secrets Manager, loaded once per cold start by the function's dependencies — so on Lambda the
//! value never sits in a plain environment variable.

use super::env::{ConfigError, Env};
use crate::secret::Secret;

/// A secret's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Given directly (`WECHAT_APPSECRET`, local runs and tests).
    Value(Secret),
    /// A Secrets Manager secret id or ARN; `field` picks a key of a JSON `SecretString`.
    SecretsManager {
        /// The secret id or ARN.
        id: String,
        /// The JSON field holding the value (the whole string when the secret is not JSON).
        field: &'static str,
    },
}

impl SecretRef {
    /// `{id_var}` (a Secrets Manager id) when set, else `{value_var}`; `None` when neither is.
    pub fn optional(env: &Env, value_var: &'static str, id_var: &'static str, field: &'static str) -> Option<Self> {
        if let Some(id) = env.optional(id_var) {
            return Some(Self::SecretsManager {
                id: id.to_owned(),
                field,
            });
        }
        env.optional(value_var).map(|v| Self::Value(Secret::new(v)))
    }

    /// As [`optional`](Self::optional), but one of the two is required.
    ///
    /// # Errors
    /// [`ConfigError`] naming `value_var` when neither variable is set.
    pub fn required(
        env: &Env,
        value_var: &'static str,
        id_var: &'static str,
        field: &'static str,
    ) -> Result<Self, ConfigError> {
        Self::optional(env, value_var, id_var, field).ok_or_else(|| {
            ConfigError::new(
                value_var,
                format!("is required (or set {id_var} to read it from Secrets Manager)"),
            )
        })
    }

    /// Whether loading needs AWS (and so the SDK configuration).
    pub fn needs_aws(&self) -> bool {
        matches!(self, Self::SecretsManager { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_id_wins_over_a_plain_value_and_one_of_them_is_required() {
        let both = Env::from_pairs([
            ("WECHAT_APPSECRET", "plain"),
            ("WECHAT_APPSECRET_SECRET_ID", "wechat/app"),
        ]);
        let of = |env: &Env| SecretRef::required(env, "WECHAT_APPSECRET", "WECHAT_APPSECRET_SECRET_ID", "appsecret");
        assert_eq!(
            of(&both),
            Ok(SecretRef::SecretsManager {
                id: "wechat/app".into(),
                field: "appsecret"
            })
        );
        let plain = Env::from_pairs([("WECHAT_APPSECRET", "plain")]);
        assert_eq!(of(&plain), Ok(SecretRef::Value(Secret::new("plain"))));
        assert_eq!(of(&Env::default()).map_err(|e| e.var), Err("WECHAT_APPSECRET"));
    }

    #[test]
    fn debug_of_a_source_never_shows_the_value() {
        let shown = format!("{:?}", SecretRef::Value(Secret::new("topsecret")));
        assert!(!shown.contains("topsecret"));
    }
}
