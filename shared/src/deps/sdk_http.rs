//! The one HTTPS client every AWS SDK client of a process shares, connecting on first use.
//!
//! Left to itself, the SDK gives each service client a default HTTPS client of its own, and each
//! of those builds a connector when its service client is built — only to drop it, "so that
//! native certs load at client initialization time" — and its real one at the first request.
//! Every connector parses the system's root certificates again (the file is read once per
//! process; the parse is not kept): a callback's cold start made four — one per client it builds
//! (Secrets Manager, DynamoDB, SQS) and Secrets Manager's real one — and parsed again at the first
//! DynamoDB write and at the first hand-over to SQS. Shared and connecting on first use, a process
//! parses them once per connector setting it really uses (docs/benchmarks.md §22).
//!
//! The connectors are built as the SDK's default builds them (rustls on aws-lc, the proxy from the
//! standard environment variables, the client's timeouts and sleep): only when and how often
//! changes.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// An HTTP client that builds its connectors on first use only: the SDK's check at client
/// construction (`validate_base_client_config`) is left to the trait's default, which does
/// nothing; the inner client keeps one connector per setting, for every SDK client it serves.
#[derive(Debug)]
pub(super) struct ConnectOnFirstUse(SharedHttpClient);

impl ConnectOnFirstUse {
    /// The SDK's default HTTPS client, connecting on first use.
    pub(super) fn https() -> Self {
        Self(default_https())
    }

    /// `inner`, connecting on first use (tests count what the SDK asks of it).
    #[cfg(test)]
    fn over(inner: SharedHttpClient) -> Self {
        Self(inner)
    }
}

impl HttpClient for ConnectOnFirstUse {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// What `aws-smithy-runtime`'s default HTTPS client builds (its constructor is crate-private):
/// a copy of `default_https_client` in aws-smithy-runtime 1.16.2 (`src/client/http.rs`) for the
/// behaviour version this code loads (`latest`: the proxy from the environment; older versions
/// disabled it). `build_with_connector_fn` is a hidden API, hence the `~1.5.2` requirement in the
/// workspace manifest: on an SDK upgrade, compare this with that function again.
fn default_https() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::{BehaviorVersion, SdkConfig};
    use aws_sdk_sqs::config::{Credentials, Region, RuntimeComponentsBuilder};

    use super::*;

    /// Counts what the SDK asks of a client: checks at construction, connectors.
    #[derive(Debug, Default)]
    struct Counting {
        checks: AtomicUsize,
        connectors: AtomicUsize,
        inner: Option<SharedHttpClient>,
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.connectors.fetch_add(1, Ordering::Relaxed);
            self.inner
                .as_ref()
                .expect("a client under test that connects has an inner client")
                .http_connector(settings, components)
        }

        fn validate_base_client_config(&self, _: &RuntimeComponentsBuilder, _: &ConfigBag) -> Result<(), BoxError> {
            // What the SDK's default client does here: build a connector (and drop it).
            self.checks.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    fn sdk_over(client: impl HttpClient + 'static) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(client)
            .build()
    }

    fn build_three_clients(sdk: &SdkConfig) {
        let _ = aws_sdk_dynamodb::Client::new(sdk);
        let _ = aws_sdk_sqs::Client::new(sdk);
        let _ = aws_sdk_secretsmanager::Client::new(sdk);
    }

    #[test]
    fn building_service_clients_builds_no_connector() {
        // The SDK's own behaviour, for contrast: a check per service client built.
        let direct = Arc::new(Counting::default());
        build_three_clients(&sdk_over(SharedHttpClient::new(ArcClient(direct.clone()))));
        assert_eq!(direct.checks.load(Ordering::Relaxed), 3);

        let counting = Arc::new(Counting::default());
        let lazy = ConnectOnFirstUse::over(SharedHttpClient::new(ArcClient(counting.clone())));
        build_three_clients(&sdk_over(lazy));
        assert_eq!(counting.checks.load(Ordering::Relaxed), 0, "no check at construction");
        assert_eq!(
            counting.connectors.load(Ordering::Relaxed),
            0,
            "no connector before a request"
        );
    }

    #[tokio::test]
    async fn the_first_request_connects_through_the_shared_client() {
        let counting = Arc::new(Counting {
            inner: Some(default_https()),
            ..Counting::default()
        });
        let sdk = sdk_over(ConnectOnFirstUse::over(SharedHttpClient::new(ArcClient(
            counting.clone(),
        ))));
        // A port nothing listens on any more: the request fails to connect, after asking the
        // shared client for a connector (and cannot hang: the operation has a timeout).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = aws_sdk_sqs::config::Builder::from(&sdk)
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .timeout_config(
                aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(std::time::Duration::from_secs(5))
                    .build(),
            )
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        let sent = aws_sdk_sqs::Client::from_conf(config)
            .get_queue_url()
            .queue_name("q")
            .send()
            .await;
        assert!(sent.is_err(), "nothing listens there");
        assert_eq!(counting.connectors.load(Ordering::Relaxed), 1);
        assert_eq!(counting.checks.load(Ordering::Relaxed), 0);
    }

    /// A shared `Counting` as a client (the SDK takes clients by value).
    #[derive(Debug)]
    struct ArcClient(Arc<Counting>);

    impl HttpClient for ArcClient {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.0.http_connector(settings, components)
        }

        fn validate_base_client_config(
            &self,
            components: &RuntimeComponentsBuilder,
            cfg: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.validate_base_client_config(components, cfg)
        }
    }
}
