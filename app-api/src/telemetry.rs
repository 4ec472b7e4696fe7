//! Log output: pretty lines for a terminal, JSON objects for a log collector;
//! with the `otel` feature, spans exported to an OpenTelemetry collector too.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

#[cfg(feature = "otel")]
mod otlp;

#[cfg(all(feature = "otel", feature = "http"))]
pub(crate) use otlp::continue_trace;
#[cfg(feature = "otel")]
pub use otlp::{OtlpExport, OtlpSettings, TelemetryError, otlp_layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines with colours when the output is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, with span fields (request id, trace id, use case).
    Json,
}

impl LogFormat {
    /// `json` or `pretty` (the default) from the `LOG_FORMAT` environment variable.
    #[must_use]
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT") {
            Ok(value) if value.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Pretty,
        }
    }
}

/// Installs the global log subscriber: level from `RUST_LOG` (default `info`),
/// lines in `format`. Returns `false` when a subscriber was already installed.
pub fn init(format: LogFormat) -> bool {
    tracing_subscriber::registry()
        .with(level_filter())
        .with(log_lines(format))
        .try_init()
        .is_ok()
}

/// Installs the global log subscriber as [`init`] does and, when `otlp` is given,
/// exports every span the level lets through to that collector as well.
///
/// Keep the returned export until the process ends and shut it down then
/// ([`OtlpExport::shutdown`]), or the spans of the last seconds are lost.
///
/// # Errors
/// When the endpoint is not usable, the exporter cannot be built, or a
/// subscriber was already installed (the export is then shut down again).
#[cfg(feature = "otel")]
pub fn init_with(
    format: LogFormat,
    otlp: Option<OtlpSettings>,
) -> Result<Option<OtlpExport>, TelemetryError> {
    let (spans, export) = match otlp {
        Some(settings) => {
            let (layer, export) = otlp_layer(&settings)?;
            (Some(layer), Some(export))
        }
        None => (None, None),
    };
    // The level filter comes first so a span too fine for the log is not
    // exported either: one `RUST_LOG` decides both.
    tracing_subscriber::registry()
        .with(level_filter())
        .with(log_lines(format))
        .with(spans)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(export)
}

fn level_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

fn log_lines<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    // Colour codes only for a person at a terminal: a pipe, a file or a log
    // collector gets plain text, and `NO_COLOR` turns them off anywhere.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let lines = tracing_subscriber::fmt::layer().with_ansi(colour);
    match format {
        LogFormat::Pretty => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
}
