//! The payment functions' dependencies: the merchant's keys (loaded once per cold start), the
//! exactly-once ledger, the hook, and the WeChat Pay client (certificate refresh, order query).

use std::sync::Arc;
use std::time::Duration;

use super::{Aws, StartupError};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{ConfigError, PayConfig, PaySecrets, PaySecretsSource};
use crate::ledger::{Ledger, LedgerConfig};
use crate::pay::{
    PayClient, PayCredentials, PayKeys, PaySigner, PayVerifier, PaymentHook, PlatformCertificate, RecordingHook,
};
use crate::queue::SharedQueue;
use crate::resilience::Registry;
use crate::secret::Secret;
use crate::store::SharedStore;

/// The exactly-once records outlive WeChat Pay's whole retry schedule (24 h 4 min) with margin.
pub const PAY_RECORD_TTL: Duration = Duration::from_secs(72 * 3600);
/// A processing claim's lease: past the 5 s answer, short enough for a retry 15 s later.
const PAY_LEASE: Duration = Duration::from_secs(10);
/// An unknown serial refreshes the certificates at most this often per instance.
pub const CERTIFICATE_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// The parts both payment functions share.
#[derive(Debug)]
pub struct PayDeps {
    /// The merchant.
    pub mchid: String,
    /// Verification keys (certificates refreshed in place).
    pub keys: Arc<PayKeys>,
    /// The APIv3 key.
    pub api_v3_key: Secret,
    /// Exactly-once records (namespace `payonce`).
    pub ledger: Ledger,
    /// The business hook.
    pub hook: Arc<dyn PaymentHook>,
    /// The fleet store (unacceptable events, order states).
    pub store: SharedStore,
    /// The WeChat Pay client, when the merchant key is configured.
    pub client: Option<PayClient>,
    /// When this instance last refreshed certificates (epoch ms), for the refresh's rate limit.
    pub last_refresh_ms: tokio::sync::Mutex<i64>,
    /// Larger notices get 413.
    pub max_body_bytes: usize,
    /// Wall clock.
    pub clock: SharedClock,
    /// Reconciliation: how old a pending order must be.
    pub reconcile_after: Duration,
    /// Reconciliation: when to give up on an unpaid order.
    pub give_up_after: Duration,
}

fn invalid(var: &'static str, why: impl Into<String>) -> StartupError {
    StartupError::Config(ConfigError::new(var, why))
}

impl PayDeps {
    /// The cold start: loads the secrets, checks the keys.
    ///
    /// # Errors
    /// [`StartupError`] naming what is missing or invalid.
    pub async fn from_config(config: PayConfig, aws: &Aws) -> Result<Self, StartupError> {
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.store, &clock).await;
        let events = match &config.events_queue {
            Some(queue) => Some(aws.queue(queue).await),
            None => None,
        };
        let secrets = match &config.secrets {
            PaySecretsSource::Ready(secrets) => (**secrets).clone(),
            PaySecretsSource::SecretsManager(id) => {
                let raw = aws.secret_string(id).await?;
                serde_json::from_str(raw.expose())
                    .map_err(|e| invalid("PAY_SECRET_ID", format!("secret {id} is not the payment JSON: {e}")))?
            }
        };
        Self::new(config, secrets, store, events, clock)
    }

    /// Assembles the deps from given parts (tests, the local server).
    ///
    /// # Errors
    /// [`StartupError`] naming what is missing or invalid.
    pub fn new(
        config: PayConfig,
        secrets: PaySecrets,
        store: SharedStore,
        events: Option<SharedQueue>,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        if secrets.apiv3_key.expose().len() != 32 {
            return Err(invalid("PAY_APIV3_KEY", "the APIv3 key must be 32 bytes"));
        }
        let public_key = match (&secrets.public_key_id, &secrets.public_key_pem) {
            (Some(id), Some(pem)) => {
                if !id.starts_with("PUB_KEY_ID_") {
                    return Err(invalid("PAY_PUBLIC_KEY_ID", "must start with PUB_KEY_ID_"));
                }
                Some((
                    id.clone(),
                    PayVerifier::from_public_key_pem(pem).map_err(|e| invalid("PAY_PUBLIC_KEY_PEM", e))?,
                ))
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "PAY_PUBLIC_KEY_ID",
                    "the public key needs both its id and its PEM",
                ));
            }
        };
        let certificates = secrets
            .platform_certificates
            .iter()
            .map(|pem| PlatformCertificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("PAY_PLATFORM_CERTIFICATES_PEM", e))?;
        if public_key.is_none() && certificates.is_empty() {
            return Err(invalid(
                "PAY_PUBLIC_KEY_PEM",
                "configure the WeChat Pay public key and/or platform certificates",
            ));
        }
        let keys = Arc::new(PayKeys::new(public_key, certificates));
        let client = match (&secrets.merchant_private_key_pem, &secrets.merchant_serial_no) {
            (Some(pem), Some(serial)) => {
                let signer =
                    PaySigner::from_pkcs8_pem(pem.expose()).map_err(|e| invalid("PAY_MERCHANT_PRIVATE_KEY_PEM", e))?;
                let registry = Registry::builder(store.clone(), clock.clone())
                    .region(config.breaker_region.clone())
                    .build()
                    .map_err(|e| invalid("RESILIENCE", e.to_string()))?;
                let credentials = PayCredentials {
                    mchid: config.mchid.clone(),
                    serial_no: serial.clone(),
                    signer,
                    api_v3_key: secrets.apiv3_key.clone(),
                };
                Some(
                    PayClient::new(
                        config.api_bases.clone(),
                        credentials,
                        keys.clone(),
                        registry.policy("wechatpay.api"),
                        clock.clone(),
                    )
                    .map_err(|e| invalid("PAY_API_BASE", e))?,
                )
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "PAY_MERCHANT_SERIAL_NO",
                    "the merchant key needs both its PEM and its serial",
                ));
            }
        };
        let settings = LedgerConfig::new(PAY_RECORD_TTL, PAY_LEASE)?.with_namespace("payonce")?;
        let ledger = Ledger::new(store.clone(), clock.clone(), settings);
        let hook: Arc<dyn PaymentHook> =
            Arc::new(RecordingHook::new(store.clone(), events, &config.mchid, clock.clone()));
        Ok(Self {
            mchid: config.mchid,
            keys,
            api_v3_key: secrets.apiv3_key,
            ledger,
            hook,
            store,
            client,
            last_refresh_ms: tokio::sync::Mutex::new(i64::MIN),
            max_body_bytes: config.max_body_bytes,
            clock,
            reconcile_after: config.reconcile_after,
            give_up_after: config.give_up_after,
        })
    }

    /// The same deps with another business hook.
    pub fn with_hook(mut self, hook: Arc<dyn PaymentHook>) -> Self {
        self.hook = hook;
        self
    }
}
