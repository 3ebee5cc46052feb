//! Each function's configuration: exactly what it uses, read and validated at cold start.
//!
//! | function | reads |
//! |---|---|
//! | callback | the account (token, AppID, EncodingAESKeys, mode), store, queue, limits, ledger, rules |
//! | send | the WeChat client (AppSecret), store, queue, send budget, internal API key |
//! | send-worker | the WeChat client, store, queue, worker budget and backoff, rules |
//! | token-refresh | the WeChat client, store |
//! | jssdk | the WeChat client, store, allowed page hosts |
//!
//! The callback never reads an AppSecret; the send functions never read the callback token.

use std::time::Duration;

use super::account::AccountSource;
use super::env::{ConfigError, Env};
use super::store::{Queue, Store};
use super::wechat::WechatConfig;
use crate::bot::Rules;
use crate::delivery::{DeliveryPolicy, InDoubt, LedgerDown, SendKind};
use crate::secret::Secret;

/// How long delivery records live: longer than SQS keeps a message (4 days in the template).
pub const DELIVERY_RECORD_TTL: Duration = Duration::from_secs(5 * 86_400);
/// How long a send request's answer is replayed for its `Idempotency-Key`.
pub const REQUEST_RECORD_TTL: Duration = Duration::from_secs(86_400);

/// The callback function (`GET/POST /wechat`).
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// The account, or where its secrets are loaded from.
    pub account: AccountSource,
    /// Where the idempotency records live.
    pub store: Store,
    /// Where a handler that overran WeChat's 5 s hands its work.
    pub queue: Queue,
    /// `MAX_BODY_BYTES` (default 64 KiB): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `CALLBACK_BUDGET_MS` (default 4000, at most 4000 of WeChat's 5000): the business handler's
    /// deadline, counted from the request's arrival at API Gateway; the rest is the reserve for
    /// handing work over and storing the reply (see `routes::callback`).
    pub budget: Duration,
    /// `CALLBACK_MAX_SKEW_SECS` (default 300, 30–3600): how far a request's `timestamp` may be
    /// from now, either way, before it is refused as a replay.
    pub max_skew_secs: u32,
    /// `DEDUP_TTL_SECS` (default 3600, at least 60): how long idempotency records live.
    pub dedup_ttl: Duration,
    /// `DEDUP_LEASE_MS` (default 5000): after this long an unfinished claim can be taken over.
    pub dedup_lease: Duration,
    /// The built-in bot's rules (`REPLY_RULES_FILE`, the demo rules when unset).
    pub rules: Rules,
}

impl CallbackConfig {
    /// Reads the callback's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            account: AccountSource::from_env(env)?,
            store: Store::from_env(env)?,
            queue: Queue::from_env(env)?,
            max_body_bytes: max_body_bytes(env)?,
            budget: env.millis_in("CALLBACK_BUDGET_MS", 4000, 100, 4000)?,
            max_skew_secs: u32::try_from(env.int_in("CALLBACK_MAX_SKEW_SECS", 300, 30, 3600)?).unwrap_or(300),
            dedup_ttl: env.secs_in("DEDUP_TTL_SECS", 3600, 60, 30 * 86400)?,
            dedup_lease: env.millis_in("DEDUP_LEASE_MS", 5000, 500, 60_000)?,
            rules: rules(env)?,
        })
    }
}

/// What the send API and the worker share: the client, the store, the queue, and the budgets
/// that size the delivery ledger's lease (both sides must agree on it).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// The WeChat client.
    pub wechat: WechatConfig,
    /// Where the delivery and request ledgers live.
    pub store: Store,
    /// The work queue.
    pub queue: Queue,
    /// `SEND_BUDGET_MS` (default 2500): how long the send API tries before queueing instead.
    pub send_budget: Duration,
    /// `WORKER_BUDGET_MS` (default 8000): the worker's deadline per message.
    pub worker_budget: Duration,
    /// `DELIVERY_IN_DOUBT` (`hold`, default, or `resend`) and `SEND_WHEN_LEDGER_DOWN` (`queue`,
    /// default, `send`, or per API: `custom=send,template=queue`).
    pub delivery: DeliveryPolicy,
}

impl OutboundConfig {
    /// Reads the shared outbound variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            wechat: WechatConfig::from_env(env)?,
            store: Store::from_env(env)?,
            queue: Queue::from_env(env)?,
            send_budget: env.millis_in("SEND_BUDGET_MS", 2500, 100, 25_000)?,
            worker_budget: env.millis_in("WORKER_BUDGET_MS", 8000, 500, 60_000)?,
            delivery: delivery_policy(env)?,
        })
    }

    /// A delivery claim must outlive the longest send, or a redelivery could take over mid-send.
    pub fn delivery_lease(&self) -> Duration {
        self.send_budget.max(self.worker_budget) + Duration::from_secs(5)
    }
}

/// `DELIVERY_IN_DOUBT` and `SEND_WHEN_LEDGER_DOWN`.
fn delivery_policy(env: &Env) -> Result<DeliveryPolicy, ConfigError> {
    let mut policy = DeliveryPolicy {
        in_doubt: env.parsed_or("DELIVERY_IN_DOUBT", InDoubt::Hold, "hold or resend")?,
        ..DeliveryPolicy::default()
    };
    const VAR: &str = "SEND_WHEN_LEDGER_DOWN";
    let choice = |text: &str| match text.trim() {
        "queue" => Ok(LedgerDown::Queue),
        "send" => Ok(LedgerDown::Send),
        other => Err(ConfigError::new(VAR, format!("{other:?} is not queue or send"))),
    };
    let kinds = [SendKind::Custom, SendKind::Template, SendKind::Subscribe];
    match env.optional(VAR) {
        None => {}
        Some(value) if !value.contains('=') => {
            let all = choice(value)?;
            for kind in kinds {
                policy.set_ledger_down(kind, all);
            }
        }
        Some(value) => {
            for part in value.split(',') {
                let (name, text) = part
                    .split_once('=')
                    .ok_or_else(|| ConfigError::new(VAR, format!("{part:?} is not api=queue|send")))?;
                let kind = SendKind::from_segment(name.trim())
                    .ok_or_else(|| ConfigError::new(VAR, format!("{name:?} is not custom, template or subscribe")))?;
                policy.set_ledger_down(kind, choice(text)?);
            }
        }
    }
    Ok(policy)
}

/// The send function (`POST /messages/*`).
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Client, store, queue, budgets.
    pub outbound: OutboundConfig,
    /// `INTERNAL_API_KEY`: bearer key for internal routes; unset: only IAM-signed requests.
    pub internal_api_key: Option<Secret>,
    /// `MAX_BODY_BYTES` (default 64 KiB).
    pub max_body_bytes: usize,
}

impl SendConfig {
    /// Reads the send function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            outbound: OutboundConfig::from_env(env)?,
            internal_api_key: env.optional("INTERNAL_API_KEY").map(Secret::new),
            max_body_bytes: max_body_bytes(env)?,
        })
    }
}

/// The send worker (SQS event source).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Client, store, queue, budgets.
    pub outbound: OutboundConfig,
    /// `WORKER_RETRY_BASE_SECS` (default 10): first redelivery delay; doubles per receive.
    pub retry_base: Duration,
    /// `WORKER_RETRY_MAX_SECS` (default 900): the longest redelivery delay.
    pub retry_max: Duration,
    /// The bot's rules, for callbacks whose handler overran (`REPLY_RULES_FILE`).
    pub rules: Rules,
}

impl WorkerConfig {
    /// Reads the worker's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let retry_base = env.secs_in("WORKER_RETRY_BASE_SECS", 10, 1, 900)?;
        let retry_max = env.secs_in("WORKER_RETRY_MAX_SECS", 900, 1, 12 * 3600)?;
        if retry_max < retry_base {
            return Err(ConfigError::new(
                "WORKER_RETRY_MAX_SECS",
                "must not be below WORKER_RETRY_BASE_SECS",
            ));
        }
        Ok(Self {
            outbound: OutboundConfig::from_env(env)?,
            retry_base,
            retry_max,
            rules: rules(env)?,
        })
    }
}

/// The token-refresh function (EventBridge schedule).
#[derive(Debug, Clone)]
pub struct TokenRefreshConfig {
    /// The WeChat client.
    pub wechat: WechatConfig,
    /// Where the fleet's tokens live.
    pub store: Store,
}

impl TokenRefreshConfig {
    /// Reads the token-refresh function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            wechat: WechatConfig::from_env(env)?,
            store: Store::from_env(env)?,
        })
    }
}

/// The JS-SDK function (`GET /jssdk/config`).
#[derive(Debug, Clone)]
pub struct JssdkConfig {
    /// The WeChat client.
    pub wechat: WechatConfig,
    /// Where the fleet's tokens live.
    pub store: Store,
    /// `JSSDK_ALLOWED_HOSTS`: page hosts `/jssdk/config` signs for (any host when empty).
    pub allowed_hosts: Vec<String>,
}

impl JssdkConfig {
    /// Reads the JS-SDK function's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            wechat: WechatConfig::from_env(env)?,
            store: Store::from_env(env)?,
            allowed_hosts: env
                .optional("JSSDK_ALLOWED_HOSTS")
                .map(|hosts| {
                    hosts
                        .split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// `wechat-local`: every route on one port. The API-calling routes exist when an AppSecret is
/// configured (or `--mock-wechat` provides one).
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `PORT` (default 3000).
    pub port: u16,
    /// The callback.
    pub callback: CallbackConfig,
    /// Send, worker and JS-SDK, when an AppSecret is configured.
    pub api: Option<LocalApiConfig>,
    /// `/pay/notify` and the reconciliation, when `PAY_MCHID` is set (or `--mock-wechat-pay`).
    pub pay: Option<super::pay::PayConfig>,
    /// The logins, when `OAUTH_REDIRECT_URI` or `MINIPROGRAM_APPID` is set (or `--mock-wechat`).
    pub auth: Option<super::auth::AuthConfig>,
}

/// `LOCAL_WORKER_THREADS`: the threads serving `wechat-local` (default: the cores this process
/// may run on). One means a current-thread runtime — on one core a multi-thread runtime's
/// hand-offs between its threads cost CPU and buy nothing.
///
/// # Errors
/// [`ConfigError`] when the variable is not a number from 1 to 256.
pub fn local_worker_threads(env: &Env) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let threads = env.int_in("LOCAL_WORKER_THREADS", cores.min(256) as u64, 1, 256)?;
    Ok(usize::try_from(threads).unwrap_or(1))
}

/// The API-calling routes of `wechat-local`.
#[derive(Debug, Clone)]
pub struct LocalApiConfig {
    /// The send API.
    pub send: SendConfig,
    /// The worker (in-process poller).
    pub worker: WorkerConfig,
    /// The JS-SDK route.
    pub jssdk: JssdkConfig,
    /// The follower sync (on a timer here).
    pub sync: super::sync::SyncConfig,
}

impl LocalConfig {
    /// Reads every route's variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first missing or invalid variable.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let api = match WechatConfig::is_configured(env) {
            false => None,
            true => Some(LocalApiConfig {
                send: SendConfig::from_env(env)?,
                worker: WorkerConfig::from_env(env)?,
                jssdk: JssdkConfig::from_env(env)?,
                sync: super::sync::SyncConfig::from_env(env)?,
            }),
        };
        Ok(Self {
            port: u16::try_from(env.int_in("PORT", 3000, 1, 65535)?).unwrap_or(3000),
            callback: CallbackConfig::from_env(env)?,
            api,
            pay: match env.optional("PAY_MCHID") {
                Some(_) => Some(super::pay::PayConfig::from_env(env)?),
                None => None,
            },
            auth: match super::auth::AuthConfig::is_configured(env) {
                true => Some(super::auth::AuthConfig::from_env(env)?),
                false => None,
            },
        })
    }
}

fn max_body_bytes(env: &Env) -> Result<usize, ConfigError> {
    Ok(usize::try_from(env.int_in("MAX_BODY_BYTES", 64 * 1024, 1024, 1024 * 1024)?).unwrap_or(64 * 1024))
}

/// `REPLY_RULES_FILE`'s rules, or the demo rules when unset.
fn rules(env: &Env) -> Result<Rules, ConfigError> {
    let Some(path) = env.optional("REPLY_RULES_FILE") else {
        return Ok(Rules::demo());
    };
    let json = env.read_file("REPLY_RULES_FILE", path)?;
    Rules::parse(&json).map_err(|e| ConfigError::new("REPLY_RULES_FILE", format!("{path:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EncryptMode;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        LocalConfig::from_env(&Env::from_pairs(pairs.iter().copied())).unwrap_err()
    }

    #[test]
    fn on_lambda_secrets_come_only_by_reference() {
        let lambda = |pairs: &[(&str, &str)]| {
            let mut env = Env::from_pairs(pairs.iter().copied());
            env.set("AWS_LAMBDA_FUNCTION_NAME", "wechat-ha-callback");
            env.set("SEND_QUEUE_URL", "https://sqs.example/q");
            env
        };
        let callback = |pairs: &[(&str, &str)]| CallbackConfig::from_env(&lambda(pairs)).map(|_| ());
        let secret = (
            "WECHAT_CALLBACK_SECRET_ID",
            "arn:aws:secretsmanager:us-east-1:1:secret:cb",
        );
        assert_eq!(callback(&[]).unwrap_err().var, "WECHAT_CALLBACK_SECRET_ID");
        for plain in [
            "WECHAT_TOKEN",
            "WECHAT_ENCODING_AES_KEY",
            "WECHAT_ENCODING_AES_KEY_PREVIOUS",
        ] {
            let error = callback(&[secret, (plain, "value")]).unwrap_err();
            assert_eq!(error.var, plain);
            assert!(
                !error.to_string().contains("value"),
                "the value is never echoed: {error}"
            );
        }
        assert!(callback(&[secret]).is_ok());
        let send = |pairs: &[(&str, &str)]| SendConfig::from_env(&lambda(pairs)).map(|_| ());
        let app = [("WECHAT_APPID", "wx1")];
        assert_eq!(
            send(&[app[0], ("WECHAT_APPSECRET", "s")]).unwrap_err().var,
            "WECHAT_APPSECRET"
        );
        assert!(send(&[app[0], ("WECHAT_APPSECRET_SECRET_ID", "arn:app")]).is_ok());
        // In an emulator (it looks like Lambda) plain values are allowed on request.
        assert!(callback(&[("WECHAT_TOKEN", "tok"), ("ALLOW_PLAIN_SECRETS", "true")]).is_ok());
        // Off Lambda (local runs, tests) plain values stay fine.
        assert!(LocalConfig::from_env(&Env::from_pairs([("WECHAT_TOKEN", "tok")])).is_ok());
    }

    #[test]
    fn minimal_environment_gives_documented_defaults() {
        let settings = LocalConfig::from_env(&Env::from_pairs([("WECHAT_TOKEN", "tok")])).unwrap();
        let AccountSource::Ready(account) = &settings.callback.account else {
            panic!("plain variables")
        };
        assert_eq!(account.mode, EncryptMode::Plain);
        assert_eq!(settings.callback.max_skew_secs, 300);
        assert_eq!(settings.callback.store, Store::Memory);
        assert_eq!(settings.callback.max_body_bytes, 65536);
        assert_eq!(settings.callback.budget, Duration::from_secs(4));
        assert_eq!(settings.port, 3000);
        assert!(settings.api.is_none(), "no AppSecret, no client");
        let env = Env::from_pairs([("WECHAT_APPID", "wx1"), ("WECHAT_APPSECRET", "s")]);
        assert_eq!(
            SendConfig::from_env(&env).unwrap().outbound.send_budget,
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn a_key_defaults_the_mode_to_compatible() {
        let env = Env::from_pairs([
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_ENCODING_AES_KEY", KEY),
        ]);
        let AccountSource::Ready(account) = CallbackConfig::from_env(&env).unwrap().account else {
            panic!("plain variables")
        };
        assert_eq!(account.mode, EncryptMode::Compatible);
    }

    #[test]
    fn each_invalid_variable_is_named() {
        assert_eq!(err(&[]).var, "WECHAT_TOKEN");
        let short = err(&[
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_ENCODING_AES_KEY", "short"),
        ]);
        assert_eq!(short.var, "WECHAT_ENCODING_AES_KEY");
        assert!(short.problem.contains("43 characters"), "{short}");
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCODING_AES_KEY", KEY)]).var,
            "WECHAT_APPID"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCRYPT_MODE", "safe")]).var,
            "WECHAT_ENCODING_AES_KEY"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_ENCRYPT_MODE", "loud")]).var,
            "WECHAT_ENCRYPT_MODE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("STATE_STORE", "dynamodb")]).var,
            "DYNAMODB_TABLE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("STATE_STORE", "redis")]).var,
            "STATE_STORE"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("CALLBACK_BUDGET_MS", "6000")]).var,
            "CALLBACK_BUDGET_MS"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("CALLBACK_BUDGET_MS", "4500")]).var,
            "CALLBACK_BUDGET_MS",
            "no budget that leaves no reserve within WeChat's 5 s"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("CALLBACK_MAX_SKEW_SECS", "5")]).var,
            "CALLBACK_MAX_SKEW_SECS"
        );
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("DEDUP_TTL_SECS", "10")]).var,
            "DEDUP_TTL_SECS"
        );
        let bad_base = [
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_API_BASE", "ftp://x"),
        ];
        assert_eq!(err(&bad_base).var, "WECHAT_API_BASE");
        assert_eq!(
            err(&[("WECHAT_TOKEN", "tok"), ("WECHAT_APPSECRET", "s")]).var,
            "WECHAT_APPID"
        );
        let retry = [
            ("WECHAT_TOKEN", "tok"),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_APPSECRET", "s"),
            ("WORKER_RETRY_BASE_SECS", "60"),
            ("WORKER_RETRY_MAX_SECS", "30"),
        ];
        assert_eq!(err(&retry).var, "WORKER_RETRY_MAX_SECS");
        assert_eq!(err(&[("WECHAT_TOKEN", "tok"), ("PORT", "0")]).var, "PORT");
    }

    #[test]
    fn each_function_reads_only_what_it_uses() {
        let callback_only = Env::from_pairs([("WECHAT_TOKEN", "tok")]);
        assert!(CallbackConfig::from_env(&callback_only).is_ok(), "no AppSecret needed");
        assert_eq!(SendConfig::from_env(&callback_only).unwrap_err().var, "WECHAT_APPID");
        let api_only = Env::from_pairs([("WECHAT_APPID", "wx1"), ("WECHAT_APPSECRET", "s")]);
        assert!(SendConfig::from_env(&api_only).is_ok(), "no callback token needed");
        assert!(WorkerConfig::from_env(&api_only).is_ok());
        assert!(TokenRefreshConfig::from_env(&api_only).is_ok());
        assert!(JssdkConfig::from_env(&api_only).is_ok());
        assert_eq!(CallbackConfig::from_env(&api_only).unwrap_err().var, "WECHAT_TOKEN");
    }

    #[test]
    fn a_rules_file_that_cannot_be_read_or_parsed_names_the_variable() {
        let missing = Env::from_pairs([("WECHAT_TOKEN", "tok"), ("REPLY_RULES_FILE", "/nonexistent.json")]);
        let error = CallbackConfig::from_env(&missing).unwrap_err();
        assert_eq!(error.var, "REPLY_RULES_FILE");
        assert!(error.problem.contains("/nonexistent.json"), "{error}");
    }

    #[test]
    fn the_callback_secrets_can_come_from_secrets_manager_and_then_no_token_is_read() {
        let env = Env::from_pairs([
            (
                "WECHAT_CALLBACK_SECRET_ID",
                "arn:aws:secretsmanager:us-east-1:1:secret:cb",
            ),
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_ENCRYPT_MODE", "safe"),
        ]);
        let AccountSource::SecretsManager { id, appid, mode } = CallbackConfig::from_env(&env).unwrap().account else {
            panic!("a secret reference")
        };
        assert_eq!(
            (id.as_str(), appid.as_str(), mode),
            (
                "arn:aws:secretsmanager:us-east-1:1:secret:cb",
                "wx1",
                Some(EncryptMode::Safe)
            )
        );
    }

    #[test]
    fn local_worker_threads_default_to_the_usable_cores_and_refuse_nonsense_by_name() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(local_worker_threads(&Env::from_pairs([])).unwrap(), cores.min(256));
        assert_eq!(
            local_worker_threads(&Env::from_pairs([("LOCAL_WORKER_THREADS", "1")])).unwrap(),
            1
        );
        for bad in ["0", "many", "257"] {
            let error = local_worker_threads(&Env::from_pairs([("LOCAL_WORKER_THREADS", bad)])).unwrap_err();
            assert!(error.to_string().contains("LOCAL_WORKER_THREADS"), "{bad}: {error}");
        }
    }
}
