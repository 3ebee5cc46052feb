//! The refresh against moto's WAFv2 (over HTTP, the server `scripts/test.sh` starts) and the
//! WeChat mock: WeChat's list lands in the IP set as CIDR blocks, and an unchanged list writes
//! nothing.

use std::sync::Arc;

use aws_sdk_wafv2::types::{IpAddressVersion, Scope};
use callback_ip_refresh::refresh;
use shared::clock::{SharedClock, SystemClock};
use shared::config::IpSetRef;
use shared::deadline::Deadline;
use shared::resilience::Registry;
use shared::secret::Secret;
use shared::store::SharedStore;
use shared::store::memory::MemoryStore;
use shared::wechat::{ClientSettings, WechatClient, register};
use wechat_mock::{CALLBACK_IPS, DEFAULT_APPID, DEFAULT_SECRET, MockServer};

#[tokio::test]
async fn wechats_list_reaches_the_ip_set_once() {
    if !testkit::emulator::emulator_configured() {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("moto");
    let sdk = testkit::emulator::sdk_config()
        .await
        .to_builder()
        .endpoint_url(endpoint)
        .build();
    let waf = aws_sdk_wafv2::Client::new(&sdk);
    let name = format!("wechat-callback-{}", std::process::id());
    let created = waf
        .create_ip_set()
        .name(&name)
        .scope(Scope::Cloudfront)
        .ip_address_version(IpAddressVersion::Ipv4)
        .set_addresses(Some(vec!["192.0.2.1/32".to_owned()]))
        .send()
        .await
        .expect("create the IP set");
    let summary = created.summary().expect("summary");
    let set = IpSetRef {
        name: name.clone(),
        id: summary.id().unwrap_or_default().to_owned(),
        scope: "CLOUDFRONT".into(),
        region: "us-east-1".into(),
    };

    let mock = MockServer::new().start().await.expect("mock");
    let clock: SharedClock = Arc::new(SystemClock);
    let store: SharedStore = Arc::new(MemoryStore::new(clock.clone()));
    let settings = ClientSettings::new(DEFAULT_APPID, vec![mock.base_url("api")]);
    let registry = register(&settings, Registry::builder(store.clone(), clock.clone()))
        .expect("policies")
        .build()
        .expect("registry");
    let wechat =
        WechatClient::with_registry(&settings, Secret::new(DEFAULT_SECRET), &registry, store, clock).expect("client");
    let deadline = || Deadline::after(std::time::Duration::from_secs(10));

    let first = refresh(&wechat, &waf, &set, deadline()).await.expect("refresh");
    assert!(first.changed);
    let stored = waf
        .get_ip_set()
        .name(&name)
        .id(&set.id)
        .scope(Scope::Cloudfront)
        .send()
        .await
        .expect("get");
    let mut addresses = stored.ip_set().expect("set").addresses().to_vec();
    addresses.sort();
    let mut expected: Vec<String> = CALLBACK_IPS
        .iter()
        .map(|ip| {
            if ip.contains('/') {
                (*ip).to_owned()
            } else {
                format!("{ip}/32")
            }
        })
        .collect();
    expected.sort();
    assert_eq!(addresses, expected);

    let second = refresh(&wechat, &waf, &set, deadline()).await.expect("refresh");
    assert!(!second.changed, "an unchanged list writes nothing");
    assert_eq!(mock.calls("/cgi-bin/get_callback_ip"), 2);
}
