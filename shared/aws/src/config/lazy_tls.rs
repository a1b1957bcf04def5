//! The SDK's HTTPS client with its TLS roots loaded on the first connection, not at cold start.
//!
//! The SDK's default client (hyper 1 and rustls with aws-lc, `aws-smithy-http-client`) builds a
//! connector as soon as a service client is constructed ("so that native certs load at client
//! initialization time", its `validate_base_client_config`): that reads the platform's root store
//! (on Lambda's image, the files of `/etc/pki` and `/etc/ssl/certs`) before the runtime has
//! polled for its first event. [`https_client`] is the same client, built the way
//! `aws-smithy-runtime`'s default is (rustls with aws-lc, the environment's proxy settings, the
//! client's sleep implementation), behind [`LazyTls`], which skips that eager build: the
//! connector, and the roots with it, are made on the first request of each connector setting.
//! The roots are still the platform's (the environment keeps them current); only the moment moves,
//! from the init phase to the first call, which loads them once per process
//! (`aws-smithy-http-client` caches them).

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

/// An `HttpClient` that makes no connector before its first request (see the module docs).
#[derive(Debug)]
pub struct LazyTls {
    inner: SharedHttpClient,
}

impl LazyTls {
    /// `inner`, whose connectors are made only when a request asks for one.
    pub fn new(inner: SharedHttpClient) -> Self {
        Self { inner }
    }
}

impl HttpClient for LazyTls {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    /// Nothing to check ahead of time: the inner client's check is the eager connector build
    /// this type exists to skip.
    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the environment), its
/// TLS roots loaded on the first connection.
///
/// Built as `aws-smithy-runtime` builds its default (`default_https_client`), through
/// `Builder::build_with_connector_fn`, which that crate uses and marks `doc(hidden)`; the public
/// `build_https` would turn the environment's proxy settings off.
pub fn https_client() -> SharedHttpClient {
    let eager = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    SharedHttpClient::new(LazyTls::new(eager))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A client that counts the connectors it makes.
    fn counting(built: Arc<AtomicUsize>) -> SharedHttpClient {
        Builder::new().build_with_connector_fn(move |_, _| {
            built.fetch_add(1, Ordering::SeqCst);
            ConnectorBuilder::default().build_http()
        })
    }

    #[test]
    fn making_a_service_client_builds_no_connector_through_the_lazy_client() {
        let components = RuntimeComponentsBuilder::new("test");
        let bag = ConfigBag::base();
        let built = Arc::new(AtomicUsize::new(0));
        let eager = counting(built.clone());
        eager
            .validate_base_client_config(&components, &bag)
            .unwrap();
        assert_eq!(
            built.load(Ordering::SeqCst),
            1,
            "the SDK's client builds one"
        );

        let built = Arc::new(AtomicUsize::new(0));
        let lazy = LazyTls::new(counting(built.clone()));
        lazy.validate_base_client_config(&components, &bag).unwrap();
        assert_eq!(built.load(Ordering::SeqCst), 0, "the lazy client waits");
    }
}
