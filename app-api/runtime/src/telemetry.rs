//! Log output and, with the `otel` feature, span export, set up for `serve`.

use strata_app_api::telemetry::{self, LogFormat};

use crate::service::BoxError;
use crate::settings::ServiceSettings;

/// The log set-up, and what it leaves to do at exit: with the `otel` feature and
/// `otlp_endpoint` set, send the spans of the last moments.
#[derive(Debug)]
pub(crate) struct Telemetry {
    /// `None` when a log subscriber was installed before (by the program itself).
    _writer: Option<telemetry::LogWriter>,
    #[cfg(feature = "otel")]
    export: Option<telemetry::OtlpExport>,
}

impl Telemetry {
    /// Installs the log subscriber (`LOG_FORMAT`, `RUST_LOG`) and, when
    /// configured, the span export to the collector.
    #[cfg(feature = "otel")]
    pub(crate) fn start(settings: &ServiceSettings, service: &str) -> Result<Self, BoxError> {
        let otlp = settings
            .otlp_endpoint
            .as_ref()
            .map(|endpoint| telemetry::OtlpSettings {
                endpoint: endpoint.expose().to_owned(),
                service_name: service.to_owned(),
            });
        let (writer, export) = telemetry::init_with(LogFormat::from_env(), otlp)?;
        Ok(Self {
            _writer: Some(writer),
            export,
        })
    }

    // Without the feature `otlp_endpoint` was refused when the settings were checked.
    #[cfg(not(feature = "otel"))]
    pub(crate) fn start(_settings: &ServiceSettings, _service: &str) -> Result<Self, BoxError> {
        Ok(Self {
            _writer: telemetry::init(LogFormat::from_env()),
        })
    }

    /// Sends what is left to send.
    #[cfg_attr(not(feature = "otel"), allow(clippy::unused_async))]
    pub(crate) async fn stop(self, service: &str) {
        #[cfg(feature = "otel")]
        if let Some(export) = self.export {
            // Shutting down waits on the collector, which a runtime thread must not.
            let outcome = tokio::task::spawn_blocking(move || export.shutdown()).await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => eprintln!(
                    "{service}: warning: {}",
                    strata_app_api::application::error_chain(&error)
                ),
                Err(error) => eprintln!(
                    "{service}: warning: {}",
                    strata_app_api::application::error_chain(&error)
                ),
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = service;
    }
}
