//! The operators' functions' dependencies: the breakers known by the WeChat client's settings
//! (no secret, no WeChat client), the fleet store, the audit trail and the pins.

use std::sync::Arc;

use super::{Aws, StartupError};
use crate::admin::{AuditLog, Pins};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{AdminConfig, HealthConfig, TunerConfig};
use crate::resilience::{Breaker, Registry};
use crate::secret::Secret;
use crate::store::SharedStore;
use crate::wechat::{ClientSettings, breaker_names, register};

/// A registry holding exactly the breakers of a client with `settings`, in order.
fn breakers(
    settings: &ClientSettings,
    store: &SharedStore,
    clock: &SharedClock,
) -> Result<(Registry, Vec<Arc<Breaker>>), StartupError> {
    let builder = Registry::builder(store.clone(), clock.clone());
    let registry = register(settings, builder)
        .and_then(crate::resilience::RegistryBuilder::build)
        .map_err(|error| StartupError::Config(crate::config::ConfigError::new("RESILIENCE", error.to_string())))?;
    let breakers = breaker_names(settings)
        .iter()
        .map(|name| registry.breaker(name))
        .collect();
    Ok((registry, breakers))
}

/// Everything `routes::admin` needs.
#[derive(Debug)]
pub struct AdminDeps {
    /// The breakers' registry (configurations, for validation and window math).
    pub registry: Registry,
    /// Every breaker, in the client's order.
    pub breakers: Vec<Arc<Breaker>>,
    /// The fleet store (runtime override items).
    pub store: SharedStore,
    /// The audit trail.
    pub audit: AuditLog,
    /// Pinned breakers.
    pub pins: Pins,
    /// Bearer key (`None`: IAM only).
    pub internal_api_key: Option<Secret>,
}

impl AdminDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub async fn from_config(config: AdminConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        Self::new(config, store, clock)
    }

    /// Assembles the deps from given parts (tests, the local server).
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub fn new(config: AdminConfig, store: SharedStore, clock: SharedClock) -> Result<Self, StartupError> {
        let (registry, breakers) = breakers(&config.client, &store, &clock)?;
        Ok(Self {
            registry,
            breakers,
            audit: AuditLog::new(store.clone(), clock),
            pins: Pins::new(store.clone()),
            store,
            internal_api_key: config.internal_api_key,
        })
    }

    /// The breaker named `name`, if the fleet has it.
    pub fn breaker(&self, name: &str) -> Option<&Arc<Breaker>> {
        self.breakers.iter().find(|breaker| breaker.name() == name)
    }
}

/// Everything `routes::health` needs.
#[derive(Debug)]
pub struct HealthDeps {
    /// The WeChat domains' breakers (and the API breakers), for the report.
    pub breakers: Vec<Arc<Breaker>>,
    /// The AWS clients (secret checks).
    pub aws: Option<Aws>,
    /// Secrets to check.
    pub secret_ids: Vec<String>,
    /// The store check's timeout.
    pub store_timeout: std::time::Duration,
    /// Wall clock.
    pub clock: SharedClock,
    /// The last secret check (`at ms`, result), reused for a minute: Secrets Manager is not
    /// asked every 10 s.
    pub secrets_checked: std::sync::Mutex<Option<(i64, Result<(), String>)>>,
}

impl HealthDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub async fn from_config(config: HealthConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let mut deps = Self::new(config, store, clock)?;
        deps.aws = Some(Aws::with_config(aws.sdk().await.clone()));
        Ok(deps)
    }

    /// Assembles the deps from given parts (tests, the local server: no secrets to check).
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub fn new(config: HealthConfig, store: SharedStore, clock: SharedClock) -> Result<Self, StartupError> {
        let breakers = match &config.client {
            Some(client) => breakers(client, &store, &clock)?.1,
            // Callback-only: the store is still checked, through a breaker item no one trips.
            None => vec![Arc::new(Breaker::new(
                "health.store",
                crate::resilience::BreakerConfig::default(),
                store.clone(),
                clock.clone(),
                Arc::new(()),
            ))],
        };
        Ok(Self {
            breakers,
            aws: None,
            secret_ids: config.secret_ids,
            store_timeout: config.store_timeout,
            clock,
            secrets_checked: std::sync::Mutex::new(None),
        })
    }
}

/// Everything `routes::tuner` needs.
#[derive(Debug)]
pub struct TunerDeps {
    /// The breakers' registry (deploy-time configurations).
    pub registry: Registry,
    /// Every breaker, in the client's order.
    pub breakers: Vec<Arc<Breaker>>,
    /// The fleet store (history, override items).
    pub store: SharedStore,
    /// Pinned breakers are left alone.
    pub pins: Pins,
    /// The audit trail (one entry per change).
    pub audit: AuditLog,
    /// Wall clock.
    pub clock: SharedClock,
    /// The bounds.
    pub config: TunerConfig,
}

impl TunerDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub async fn from_config(config: TunerConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        Self::new(config, store, clock)
    }

    /// Assembles the deps from given parts (tests).
    ///
    /// # Errors
    /// [`StartupError`] for an inconsistent resilience configuration.
    pub fn new(config: TunerConfig, store: SharedStore, clock: SharedClock) -> Result<Self, StartupError> {
        let (registry, breakers) = breakers(&config.client, &store, &clock)?;
        Ok(Self {
            registry,
            breakers,
            pins: Pins::new(store.clone()),
            audit: AuditLog::new(store.clone(), clock.clone()),
            store,
            clock,
            config,
        })
    }
}
