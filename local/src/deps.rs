//! Every function's deps on one port: one store, one queue and one WeChat client shared by all,
//! as the functions of one deployment share one table, one queue and one account.

use std::sync::Arc;

use shared::admin::RecentEvents;
use shared::clock::{SharedClock, SystemClock};
use shared::config::{AdminConfig, HealthConfig, LocalConfig, Store};
use shared::deps::{
    AdminDeps, Aws, CallbackDeps, HealthDeps, JssdkDeps, SendDeps, StartupError, TokenRefreshDeps, WorkerDeps,
};
use shared::queue::SharedQueue;
use shared::resilience::{Observers, Registry, SharedObserver, TracingObserver};
use shared::store::SharedStore;
use shared::store::dynamo::create_table_if_missing;
use shared::wechat::{WechatClient, register};

/// The deps of every route `wechat-local` serves.
#[derive(Debug)]
pub struct LocalDeps {
    /// `/wechat`.
    pub callback: CallbackDeps,
    /// The API-calling routes, when an AppSecret is configured.
    pub api: Option<ApiDeps>,
    /// The shared queue (the in-process worker polls it).
    pub queue: SharedQueue,
    /// The shared store.
    pub store: SharedStore,
    /// What the store is, for the status page.
    pub store_description: String,
    /// Prometheus text of every metric (`GET /metrics`), when the recorder is installed.
    pub prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `/pay/notify` and the reconciliation, when a merchant is configured.
    pub pay: Option<shared::deps::PayDeps>,
    /// The logins, when one is configured.
    pub auth: Option<shared::deps::AuthDeps>,
}

/// The routes that call WeChat's API.
#[derive(Debug)]
pub struct ApiDeps {
    /// `/messages/*`.
    pub send: SendDeps,
    /// The in-process worker.
    pub worker: WorkerDeps,
    /// `/jssdk/config`.
    pub jssdk: JssdkDeps,
    /// The token refresh (the template's schedule, on a timer here).
    pub refresh: TokenRefreshDeps,
    /// `/admin/*`.
    pub admin: AdminDeps,
    /// `/health`, `/health/ready`.
    pub health: HealthDeps,
    /// The latest resilience events (the status page).
    pub events: Arc<RecentEvents>,
    /// The account (the status page's token line).
    pub appid: String,
    /// The follower sync (the template's schedule, on a timer here).
    pub sync: shared::deps::SyncDeps,
    /// `/followers…`.
    pub followers: shared::deps::FollowersDeps,
}

impl LocalDeps {
    /// Builds everything from `config`, creating the DynamoDB table when one is named (on AWS
    /// the template creates it; locally, an emulator or a dev account, we do).
    ///
    /// # Errors
    /// [`StartupError`] when the table cannot be created, a secret loaded or a setting is
    /// inconsistent.
    pub async fn build(
        config: LocalConfig,
        prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Result<Self, StartupError> {
        let aws = Aws::default();
        let clock: SharedClock = Arc::new(SystemClock);
        let store_description = config.callback.store.describe();
        let store_kind = config.callback.store.clone();
        let store = aws.store(&config.callback.store, &clock).await;
        if let Store::Dynamodb { table } = &config.callback.store {
            create_table_if_missing(&aws_sdk_dynamodb::Client::new(aws.sdk().await), table).await?;
        }
        let queue = aws.queue(&config.callback.queue).await;
        let pay = match config.pay.clone() {
            None => None,
            Some(pay_config) => {
                let secrets = match &pay_config.secrets {
                    shared::config::PaySecretsSource::Ready(secrets) => (**secrets).clone(),
                    shared::config::PaySecretsSource::SecretsManager(id) => {
                        let raw = aws.secret_string(id).await?;
                        serde_json::from_str(raw.expose()).map_err(|e| {
                            StartupError::Config(shared::config::ConfigError::new("PAY_SECRET_ID", e.to_string()))
                        })?
                    }
                };
                // The events go to the local queue (the worker ignores what is not a job).
                Some(shared::deps::PayDeps::new(
                    pay_config,
                    secrets,
                    store.clone(),
                    None,
                    clock.clone(),
                )?)
            }
        };
        let auth = match config.auth {
            None => None,
            Some(auth) => {
                let web_secret = match &auth.web {
                    Some(web) => Some(aws.secret(&web.wechat.appsecret).await?),
                    None => None,
                };
                let miniprogram_secret = match &auth.miniprogram {
                    Some(miniprogram) => Some(aws.secret(&miniprogram.appsecret).await?),
                    None => None,
                };
                Some(shared::deps::AuthDeps::new(
                    auth,
                    (web_secret, miniprogram_secret),
                    store.clone(),
                    clock.clone(),
                )?)
            }
        };
        let callback_config = CallbackDeps::load_account(config.callback, &aws).await?;
        let callback = CallbackDeps::new(
            callback_config.clone(),
            store.clone(),
            queue.clone(),
            clock.clone(),
            Arc::new(shared::bot::RuleHandler::new(callback_config.rules.clone())),
        )?;
        let api = match config.api {
            None => None,
            Some(api) => {
                // One registry for the whole server, its events also kept for the status page.
                let events = Arc::new(RecentEvents::new(clock.clone()));
                let settings = api.send.outbound.wechat.client.clone();
                let observer: SharedObserver = Arc::new(Observers(vec![Arc::new(TracingObserver), events.clone()]));
                let registry = register(
                    &settings,
                    Registry::builder(store.clone(), clock.clone()).observer(observer),
                )
                .and_then(shared::resilience::RegistryBuilder::build)
                .map_err(|e| StartupError::Client(e.into()))?;
                let appsecret = aws.secret(&api.send.outbound.wechat.appsecret).await?;
                let client = WechatClient::with_registry(&settings, appsecret, &registry, store.clone(), clock.clone())
                    .map_err(|e| StartupError::Client(e.into()))?;
                let bot = Arc::new(shared::bot::RuleHandler::new(api.worker.rules.clone()));
                let key = api.send.internal_api_key.clone();
                let admin = AdminDeps::new(
                    AdminConfig {
                        client: settings.clone(),
                        store: store_kind.clone(),
                        internal_api_key: key,
                    },
                    store.clone(),
                    clock.clone(),
                )?;
                let health = HealthDeps::new(
                    HealthConfig {
                        client: Some(settings.clone()),
                        store: store_kind.clone(),
                        secret_ids: Vec::new(),
                        store_timeout: std::time::Duration::from_millis(500),
                    },
                    store.clone(),
                    clock.clone(),
                )?;
                let sync = shared::deps::SyncDeps {
                    syncer: shared::sync::Syncer {
                        client: client.clone(),
                        store: store.clone(),
                        clock: clock.clone(),
                        politeness: api.sync.politeness,
                    },
                    run_margin: api.sync.run_margin,
                };
                let followers = shared::deps::FollowersDeps {
                    store: store.clone(),
                    internal_api_key: api.send.internal_api_key.clone(),
                };
                Some(ApiDeps {
                    sync,
                    followers,
                    admin,
                    health,
                    events,
                    appid: settings.appid.clone(),
                    send: SendDeps::new(api.send, client.clone(), store.clone(), queue.clone(), clock.clone())?,
                    worker: WorkerDeps::new(
                        api.worker,
                        client.clone(),
                        store.clone(),
                        queue.clone(),
                        clock.clone(),
                        bot,
                    )?,
                    jssdk: JssdkDeps::new(api.jssdk, client.clone(), clock),
                    refresh: TokenRefreshDeps { client },
                })
            }
        };
        Ok(Self {
            callback,
            api,
            queue,
            store,
            store_description,
            prometheus,
            pay,
            auth,
        })
    }
}
