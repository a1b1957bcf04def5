//! The wrapping `HttpClient`: each request is read, the schedule decides, and the request is
//! answered in the service's shape, sent on with its answer lost, replaced or held back, or
//! passed through untouched.

use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

use super::answer::WireAnswer;
use super::request::RequestInfo;
use super::schedule::{Action, Injection};

/// What decides each request's fault (the layer), as the connector sees it.
pub(super) trait Decide: fmt::Debug + Send + Sync + Clone + 'static {
    /// The fault for `request`, counted and logged, or `None` to pass it through.
    fn decide(&self, request: &RequestInfo) -> Option<Injection>;
}

/// The error a lost answer surfaces as: a timeout, which the SDK classifies as transient and
/// retries.
#[derive(Debug, thiserror::Error)]
#[error("ftgo fault layer: the answer was lost after the request reached the server")]
pub struct AnswerLost;

/// An `HttpClient` that puts a fault layer in front of another.
#[derive(Debug)]
pub(super) struct FaultClient<D> {
    pub(super) layer: D,
    pub(super) inner: SharedHttpClient,
}

impl<D: Decide> HttpClient for FaultClient<D> {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            layer: self.layer.clone(),
            inner: self.inner.http_connector(settings, components),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
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

struct FaultConnector<D> {
    layer: D,
    inner: SharedHttpConnector,
}

impl<D> fmt::Debug for FaultConnector<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultConnector").finish_non_exhaustive()
    }
}

impl<D: Decide> HttpConnector for FaultConnector<D> {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let info = RequestInfo::read(
            request.method(),
            request.uri(),
            |name| request.headers().get(name).map(str::to_owned),
            request.body().bytes(),
        );
        let Some(injection) = self.layer.decide(&info) else {
            return self.inner.call(request);
        };
        match injection.action {
            Action::Refuse(answer) => HttpConnectorFuture::ready(Ok(response(answer))),
            Action::LoseAnswer => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = sent.await;
                    Err(ConnectorError::timeout(Box::new(AnswerLost)))
                })
            }
            Action::Replace(answer) => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = sent.await;
                    Ok(response(answer))
                })
            }
            Action::Delay(delay) => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let answer = sent.await;
                    tokio::time::sleep(delay).await;
                    answer
                })
            }
        }
    }
}

fn response(answer: WireAnswer) -> HttpResponse {
    let status = http::StatusCode::from_u16(answer.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::new(status.into(), SdkBody::from(answer.body));
    for (name, value) in answer.headers {
        response.headers_mut().insert(name, value);
    }
    response
}
