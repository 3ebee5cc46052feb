//! Every function's deps on one port: one store, one queue and one WeChat client shared by all,
//! as the functions of one deployment share one table, one queue and one account.

use std::sync::Arc;

use shared::clock::{SharedClock, SystemClock};
use shared::config::{LocalConfig, Store};
use shared::deps::{Aws, CallbackDeps, JssdkDeps, SendDeps, StartupError, TokenRefreshDeps, WorkerDeps, wechat_client};
use shared::queue::SharedQueue;
use shared::store::dynamo::create_table_if_missing;

/// The deps of every route `wechat-local` serves.
#[derive(Debug)]
pub struct LocalDeps {
    /// `/wechat`.
    pub callback: CallbackDeps,
    /// The API-calling routes, when an AppSecret is configured.
    pub api: Option<ApiDeps>,
    /// The shared queue (the in-process worker polls it).
    pub queue: SharedQueue,
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
}

impl LocalDeps {
    /// Builds everything from `config`, creating the DynamoDB table when one is named (on AWS
    /// the template creates it; locally, an emulator or a dev account, we do).
    ///
    /// # Errors
    /// [`StartupError`] when the table cannot be created, a secret loaded or a setting is
    /// inconsistent.
    pub async fn build(config: LocalConfig) -> Result<Self, StartupError> {
        let aws = Aws::default();
        let clock: SharedClock = Arc::new(SystemClock);
        let store = aws.store(&config.callback.store, &clock).await;
        if let Store::Dynamodb { table } = &config.callback.store {
            create_table_if_missing(&aws_sdk_dynamodb::Client::new(aws.sdk().await), table).await?;
        }
        let queue = aws.queue(&config.callback.queue).await;
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
                let client = wechat_client(&api.send.outbound.wechat, store.clone(), clock.clone(), &aws).await?;
                let bot = Arc::new(shared::bot::RuleHandler::new(api.worker.rules.clone()));
                Some(ApiDeps {
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
        Ok(Self { callback, api, queue })
    }
}
