//! Log output: pretty lines for a terminal, JSON objects for a log collector.

use tracing_subscriber::EnvFilter;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Pretty => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
    }
}
