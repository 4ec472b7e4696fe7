//! Spans exported to an OpenTelemetry collector over OTLP/HTTP with protobuf
//! bodies (feature `otel`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The path OTLP/HTTP collectors take traces on.
const TRACES_PATH: &str = "/v1/traces";

/// Where spans are exported to, and which service they are from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP address, such as `http://127.0.0.1:4318`; spans
    /// are posted to its `/v1/traces` (a URL that ends so already is kept as it
    /// is). Plain `http://` only: the feature builds no TLS.
    pub endpoint: String,
    /// The `service.name` every exported span carries.
    pub service_name: String,
}

impl OtlpSettings {
    /// The URL spans are posted to.
    ///
    /// # Errors
    /// [`TelemetryError::Endpoint`] unless the endpoint is an `http://` URL with a
    /// host. The reason never quotes the endpoint, which may carry credentials.
    pub fn traces_url(&self) -> Result<String, TelemetryError> {
        let endpoint = self.endpoint.trim();
        if endpoint.starts_with("https://") {
            return Err(TelemetryError::Endpoint(
                "must be a plain http:// URL: the `otel` feature is built without TLS, so \
                 send to a collector on the same host or network",
            ));
        }
        let malformed = TelemetryError::Endpoint(
            "must be an http:// URL with a host, such as http://127.0.0.1:4318",
        );
        let Some(rest) = endpoint.strip_prefix("http://") else {
            return Err(malformed);
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
            return Err(malformed);
        }
        let base = endpoint.trim_end_matches('/');
        Ok(if base.ends_with(TRACES_PATH) {
            base.to_owned()
        } else {
            format!("{base}{TRACES_PATH}")
        })
    }
}

/// Telemetry could not be set up, or the export could not finish.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The collector's address is not usable; the text says why.
    #[error("the OTLP endpoint {0}")]
    Endpoint(&'static str),
    /// The exporter could not be built.
    #[error("the OTLP exporter could not be built")]
    Exporter(#[source] ExporterBuildError),
    /// Spans could not be sent, or not in time.
    #[error("spans could not be exported")]
    Export(#[source] OTelSdkError),
    /// A global subscriber was installed before.
    #[error("a log subscriber is already installed")]
    AlreadyInstalled,
}

/// The running export: spans are batched and sent from a thread of its own.
///
/// Dropping it shuts the export down as [`shutdown`](Self::shutdown) does. Both
/// that and [`flush`](Self::flush) block until the collector has answered or
/// a few seconds have passed, so async code calls them through
/// `tokio::task::spawn_blocking`.
#[derive(Debug)]
#[must_use = "dropping the export stops it at once"]
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl OtlpExport {
    /// Sends every span that has ended so far.
    ///
    /// # Errors
    /// When the collector cannot be reached, refuses them, or does not answer in time.
    pub fn flush(&self) -> Result<(), TelemetryError> {
        self.provider.force_flush().map_err(TelemetryError::Export)
    }

    /// Sends the spans still waiting and stops; spans that end later are dropped.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.provider.shutdown().map_err(TelemetryError::Export)
    }
}

impl Drop for OtlpExport {
    fn drop(&mut self) {
        // The subscriber holds the provider too, and a global one is never
        // dropped: without this the last batch would never leave.
        let _ = self.provider.shutdown();
    }
}

/// A layer exporting every span it sees to the collector of `settings`, and the
/// export it feeds. Put it in a subscriber of your own, global or scoped; or let
/// [`init_with`](super::init_with) install it beside the log lines.
///
/// # Errors
/// When the endpoint is not usable or the exporter cannot be built.
pub fn otlp_layer<S>(settings: &OtlpSettings) -> Result<(impl Layer<S>, OtlpExport), TelemetryError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url()?)
        .build()
        .map_err(TelemetryError::Exporter)?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("strata"));
    Ok((layer, OtlpExport { provider }))
}

/// Makes `span` part of the caller's trace, so the spans this service exports
/// join the ones its callers export. A caller that asked for its trace not to
/// be sampled gets no spans from here either.
#[cfg(feature = "http")]
pub(crate) fn continue_trace(span: &tracing::Span, caller: &crate::application::TraceContext) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(caller.trace_id()),
        SpanId::from_hex(caller.parent_id()),
    ) else {
        return;
    };
    let flags = if caller.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    // Fails only when no exporting layer is installed, and then there is no
    // trace to join.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}
