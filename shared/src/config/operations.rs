//! The operators' functions: the admin API, the health checks and the breaker tuner. None of
//! them needs a WeChat secret: they know the breakers by the client's settings.

use std::time::Duration;

use super::env::{ConfigError, Env};
use super::store::Store;
use super::wechat::client_settings;
use crate::secret::Secret;
use crate::wechat::ClientSettings;

/// The admin function (`/admin/*`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The breakers' names and configurations (the WeChat client's settings, no secret).
    pub client: ClientSettings,
    /// Where the fleet state lives.
    pub store: Store,
    /// `INTERNAL_API_KEY`: bearer key; unset: only IAM-signed requests (as `/messages/*`).
    pub internal_api_key: Option<Secret>,
}

impl AdminConfig {
    /// Reads the admin function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            client: client_settings(env)?,
            store: Store::from_env(env)?,
            internal_api_key: env.optional("INTERNAL_API_KEY").map(Secret::new),
        })
    }
}

/// The health function (`GET /health`, `GET /health/ready`).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// The WeChat breakers to report (no secret); `None` in a callback-only deployment (no
    /// `WECHAT_APPID`): readiness is then the store and the secrets.
    pub client: Option<ClientSettings>,
    /// The store to check.
    pub store: Store,
    /// `HEALTH_SECRET_IDS`: Secrets Manager ids whose existence readiness checks (comma-separated;
    /// described, never read), e.g. the callback secret and the AppSecret.
    pub secret_ids: Vec<String>,
    /// `HEALTH_STORE_TIMEOUT_MS` (default 500): the readiness check's store timeout.
    pub store_timeout: Duration,
}

impl HealthConfig {
    /// Reads the health function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let client = match env.optional("WECHAT_APPID") {
            Some(_) => Some(client_settings(env)?),
            None => None,
        };
        Ok(Self {
            client,
            store: Store::from_env(env)?,
            secret_ids: env
                .optional("HEALTH_SECRET_IDS")
                .map(|ids| {
                    ids.split(',')
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            store_timeout: env.millis_in("HEALTH_STORE_TIMEOUT_MS", 500, 50, 3_000)?,
        })
    }
}

/// The breaker tuner (a schedule).
#[derive(Debug, Clone)]
pub struct TunerConfig {
    /// The breakers to tune (no secret).
    pub client: ClientSettings,
    /// Where the fleet state lives.
    pub store: Store,
    /// `TUNER_FAILURE_RATE_FLOOR` / `_CEILING` (default 20 / 80, percent): the failure-rate
    /// threshold stays within these.
    pub failure_rate_bounds: (f64, f64),
    /// `TUNER_SLOW_CALL_MIN_MS` / `_MAX_MS` (default 500 / 10000): the slow-call duration stays within these.
    pub slow_call_bounds: (Duration, Duration),
}

impl TunerConfig {
    /// Reads the tuner's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let percent = |name: &'static str, default: u64| env.int_in(name, default, 1, 100);
        let (floor, ceiling) = (
            percent("TUNER_FAILURE_RATE_FLOOR", 20)?,
            percent("TUNER_FAILURE_RATE_CEILING", 80)?,
        );
        if floor > ceiling {
            return Err(ConfigError::new(
                "TUNER_FAILURE_RATE_CEILING",
                "must not be below TUNER_FAILURE_RATE_FLOOR",
            ));
        }
        let slow_min = env.millis_in("TUNER_SLOW_CALL_MIN_MS", 500, 10, 60_000)?;
        let slow_max = env.millis_in("TUNER_SLOW_CALL_MAX_MS", 10_000, 10, 600_000)?;
        if slow_min > slow_max {
            return Err(ConfigError::new(
                "TUNER_SLOW_CALL_MAX_MS",
                "must not be below TUNER_SLOW_CALL_MIN_MS",
            ));
        }
        #[allow(clippy::cast_precision_loss)] // 1..=100
        Ok(Self {
            client: client_settings(env)?,
            store: Store::from_env(env)?,
            failure_rate_bounds: (floor as f64, ceiling as f64),
            slow_call_bounds: (slow_min, slow_max),
        })
    }
}
