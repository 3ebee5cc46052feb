//! `wechat-mock` binary: serves the mock on one or more ports for local runs.
//!
//! Usage: `wechat-mock [NAME=ADDR ...]`, default `api=127.0.0.1:8090 api2=127.0.0.1:8091`.
//! Accounts: `WECHAT_MOCK_APPID` / `WECHAT_MOCK_SECRET` (defaults `wx_mock_appid` / `mock_app_secret`)
//! and the mini-program `wx_mock_miniprogram` / `mock_miniprogram_secret`.

use std::net::SocketAddr;

use wechat_mock::{
    DEFAULT_APPID, DEFAULT_MINIPROGRAM_APPID, DEFAULT_MINIPROGRAM_SECRET, DEFAULT_SECRET, MockConfig, MockServer,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = vec!["api=127.0.0.1:8090".into(), "api2=127.0.0.1:8091".into()];
    }
    let appid = std::env::var("WECHAT_MOCK_APPID").unwrap_or_else(|_| DEFAULT_APPID.to_owned());
    let secret = std::env::var("WECHAT_MOCK_SECRET").unwrap_or_else(|_| DEFAULT_SECRET.to_owned());
    let config = MockConfig {
        apps: vec![
            (appid, secret),
            (
                DEFAULT_MINIPROGRAM_APPID.to_owned(),
                DEFAULT_MINIPROGRAM_SECRET.to_owned(),
            ),
        ],
        ..MockConfig::default()
    };
    let mut server = MockServer::new().config(config);
    for arg in &args {
        let (name, addr) = arg.split_once('=').ok_or("expected NAME=ADDR")?;
        server = server.domain_at(name, addr.parse::<SocketAddr>()?);
    }
    let mock = server.start().await?;
    for name in mock.domain_names() {
        tracing::info!(domain = %name, url = %mock.base_url(&name), "wechat-mock listening");
    }
    // Runs until the process is stopped (Ctrl-C / SIGTERM end it; nothing needs flushing).
    std::future::pending::<()>().await;
    mock.shutdown();
    Ok(())
}
