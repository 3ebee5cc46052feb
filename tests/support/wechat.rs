//! A WeChat mock (two domains) and a client of the demo account pointed at it.

use std::sync::Arc;

use shared::clock::SharedClock;
use shared::resilience::Registry;
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::wechat::{ClientSettings, WechatClient, register};
use wechat_mock::{MockConfig, MockHandle, MockServer};

use crate::APPID;

/// The demo account's AppSecret on the mock.
pub const SECRET: &str = "demo-app-secret";

/// A mock with domains `api` and `api2`, knowing the demo account (and 150 followers, for the
/// follower sync).
pub async fn start_mock() -> MockHandle {
    MockServer::new()
        .config(MockConfig::default().with_app(APPID, SECRET).with_followers(150, 3))
        .domain("api")
        .domain("api2")
        .start()
        .await
        .expect("mock starts")
}

/// A client of the demo account on `mock`, with its registry (to force breakers in tests).
pub fn client(mock: &MockHandle, store: SharedStore, clock: SharedClock) -> (WechatClient, Registry) {
    let settings = ClientSettings::new(APPID, vec![mock.base_url("api"), mock.base_url("api2")]);
    let builder =
        Registry::builder(store.clone(), clock.clone()).observer(Arc::new(shared::resilience::TracingObserver));
    let registry = register(&settings, builder)
        .expect("valid policies")
        .build()
        .expect("registry");
    let client = WechatClient::with_registry(&settings, Secret::new(SECRET), &registry, store, clock).expect("client");
    (client, registry)
}
