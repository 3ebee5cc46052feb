//! The payment functions' configuration: the merchant, its keys (by reference on Lambda), the
//! store, the events queue and the reconciliation's timing.
//!
//! Secrets on Lambda: `PAY_SECRET_ID` names a Secrets Manager secret holding JSON
//! `{"apiv3_key": "…32 bytes…", "public_key_id": "PUB_KEY_ID_…", "public_key_pem": "…",
//! "platform_certificates": ["-----BEGIN CERTIFICATE-----…"], "merchant_private_key_pem": "…",
//! "merchant_serial_no": "…"}` (a public key and/or certificates; the merchant key for the order
//! query and certificate downloads). Locally the same fields come from `PAY_APIV3_KEY`,
//! `PAY_PUBLIC_KEY_ID`, `PAY_PUBLIC_KEY_PEM`, `PAY_PLATFORM_CERTIFICATES_PEM` (PEMs one after the
//! other), `PAY_MERCHANT_PRIVATE_KEY_PEM`, `PAY_MERCHANT_SERIAL_NO`; each PEM also as a file,
//! `…_PEM_FILE`, and `\n` in a value reads as a line break.

use std::time::Duration;

use serde::Deserialize;

use super::env::{ConfigError, Env};
use super::store::{Queue, Store};
use crate::pay::DEFAULT_PAY_API_BASES;
use crate::secret::Secret;

/// The merchant's secret values (parsed, not yet checked as keys).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaySecrets {
    /// The APIv3 key (32 ASCII bytes).
    #[serde(default)]
    pub apiv3_key: Secret,
    /// The WeChat Pay public key's id, `PUB_KEY_ID_…`.
    #[serde(default)]
    pub public_key_id: Option<String>,
    /// The WeChat Pay public key (SPKI PEM).
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Platform certificates (PEM).
    #[serde(default)]
    pub platform_certificates: Vec<String>,
    /// The merchant API private key (PKCS#8 PEM).
    #[serde(default)]
    pub merchant_private_key_pem: Option<Secret>,
    /// The merchant API certificate's serial.
    #[serde(default)]
    pub merchant_serial_no: Option<String>,
}

/// Where the merchant's secrets come from.
#[derive(Debug, Clone)]
pub enum PaySecretsSource {
    /// Given as variables (local runs, tests).
    Ready(Box<PaySecrets>),
    /// A Secrets Manager secret (JSON), loaded at cold start.
    SecretsManager(String),
}

/// The payment notice and reconciliation functions.
#[derive(Debug, Clone)]
pub struct PayConfig {
    /// `PAY_MCHID`: the merchant id.
    pub mchid: String,
    /// The merchant's keys.
    pub secrets: PaySecretsSource,
    /// Where the exactly-once records and order states live.
    pub store: Store,
    /// `PAY_EVENTS_QUEUE_URL`: where the default hook publishes each event (none: not published).
    pub events_queue: Option<Queue>,
    /// `PAY_API_BASE`: WeChat Pay's API domains in failover order.
    pub api_bases: Vec<String>,
    /// `PAY_MAX_BODY_BYTES` (default 64 KiB): larger notices get 413.
    pub max_body_bytes: usize,
    /// `PAY_RECONCILE_AFTER_SECS` (default 900): a pending order older than this without a notice
    /// is looked up.
    pub reconcile_after: Duration,
    /// `PAY_PENDING_MAX_AGE_SECS` (default 172800, 2 days): after this a still-unpaid order stops
    /// being looked up (logged).
    pub give_up_after: Duration,
    /// The region whose `wechatpay.api` breaker this deployment keeps (multi-region).
    pub breaker_region: Option<String>,
}

impl PayConfig {
    /// Reads the payment functions' variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mchid = env.required("PAY_MCHID")?.to_owned();
        let secrets = match env.optional("PAY_SECRET_ID") {
            Some(id) => PaySecretsSource::SecretsManager(id.to_owned()),
            None => {
                for var in ["PAY_APIV3_KEY", "PAY_MERCHANT_PRIVATE_KEY_PEM"] {
                    env.no_plain_secret_on_lambda(var, "PAY_SECRET_ID")?;
                }
                let pem = |name: &'static str, file: &'static str| -> Result<Option<String>, ConfigError> {
                    match (env.optional(name), env.optional(file)) {
                        (Some(value), _) => Ok(Some(value.replace("\\n", "\n"))),
                        (None, Some(path)) => env.read_file(file, path).map(Some),
                        (None, None) => Ok(None),
                    }
                };
                PaySecretsSource::Ready(Box::new(PaySecrets {
                    apiv3_key: Secret::new(env.required("PAY_APIV3_KEY")?),
                    public_key_id: env.optional("PAY_PUBLIC_KEY_ID").map(str::to_owned),
                    public_key_pem: pem("PAY_PUBLIC_KEY_PEM", "PAY_PUBLIC_KEY_PEM_FILE")?,
                    platform_certificates: pem("PAY_PLATFORM_CERTIFICATES_PEM", "PAY_PLATFORM_CERTIFICATES_PEM_FILE")?
                        .map(|all| split_pems(&all))
                        .unwrap_or_default(),
                    merchant_private_key_pem: pem("PAY_MERCHANT_PRIVATE_KEY_PEM", "PAY_MERCHANT_PRIVATE_KEY_PEM_FILE")?
                        .map(Secret::new),
                    merchant_serial_no: env.optional("PAY_MERCHANT_SERIAL_NO").map(str::to_owned),
                }))
            }
        };
        let api_bases: Vec<String> = env
            .optional("PAY_API_BASE")
            .unwrap_or(DEFAULT_PAY_API_BASES)
            .split(',')
            .map(|b| b.trim().trim_end_matches('/').to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        if api_bases
            .iter()
            .any(|b| !b.starts_with("http://") && !b.starts_with("https://"))
        {
            return Err(ConfigError::new("PAY_API_BASE", "must be comma-separated http(s) URLs"));
        }
        Ok(Self {
            breaker_region: super::wechat::breaker_region(env)?,
            mchid,
            secrets,
            store: Store::from_env(env)?,
            events_queue: env
                .optional("PAY_EVENTS_QUEUE_URL")
                .map(|url| Queue::Sqs { url: url.to_owned() }),
            api_bases,
            max_body_bytes: usize::try_from(env.int_in("PAY_MAX_BODY_BYTES", 65_536, 1_024, 1_048_576)?)
                .unwrap_or(65_536),
            reconcile_after: env.secs_in("PAY_RECONCILE_AFTER_SECS", 900, 60, 7 * 86_400)?,
            give_up_after: env.secs_in("PAY_PENDING_MAX_AGE_SECS", 172_800, 3_600, 30 * 86_400)?,
        })
    }
}

/// The PEM blocks of `all`, in order.
pub fn split_pems(all: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in all.lines() {
        if line.starts_with("-----BEGIN") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}
