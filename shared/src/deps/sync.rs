//! The sync function's and the follower read API's dependencies.

use std::sync::Arc;
use std::time::Duration;

use super::tokens::wechat_client;
use super::{Aws, StartupError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{FollowersConfig, SyncConfig};
use crate::secret::Secret;
use crate::store::SharedStore;
use crate::sync::Syncer;

/// Everything `routes::sync` needs.
#[derive(Debug)]
pub struct SyncDeps {
    /// The run's parts.
    pub syncer: Syncer,
    /// A run stops this long before the invocation's deadline.
    pub run_margin: Duration,
}

impl SyncDeps {
    /// The cold start.
    ///
    /// # Errors
    /// [`StartupError`] when the AppSecret cannot be loaded or a policy is out of range.
    pub async fn from_config(config: SyncConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let client = wechat_client(&config.wechat, store.clone(), clock.clone(), aws).await?;
        Ok(Self {
            syncer: Syncer {
                client,
                store,
                clock,
                politeness: config.politeness,
            },
            run_margin: config.run_margin,
        })
    }
}

/// Everything `routes::followers` needs.
#[derive(Debug)]
pub struct FollowersDeps {
    /// The fleet's table.
    pub store: SharedStore,
    /// The bearer key (unset: IAM-signed requests only).
    pub internal_api_key: Option<Secret>,
}

impl FollowersDeps {
    /// The cold start.
    pub async fn from_config(config: FollowersConfig, aws: &Aws) -> Self {
        let clock: SharedClock = Arc::new(SystemClock);
        Self {
            store: aws.store(&config.store, &clock).await,
            internal_api_key: config.internal_api_key,
        }
    }
}
