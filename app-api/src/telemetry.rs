//! Log output: pretty lines for a terminal, JSON objects for a log collector;
//! with the `otel` feature, spans exported to an OpenTelemetry collector too.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

mod fields;
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

/// The thread that writes log lines to standard output.
///
/// A request never waits on the terminal, pipe or file behind standard output:
/// formatted lines go to this thread through a queue, and it writes whatever has
/// queued up with one system call. Nothing is dropped: when the queue is full
/// (16,384 lines), logging waits for room. Keep the value until the process
/// ends; dropping it writes out what is still queued and stops the thread.
#[derive(Debug)]
#[must_use = "dropping the log writer stops it"]
pub struct LogWriter {
    _worker: tracing_appender::non_blocking::WorkerGuard,
}

/// Installs the global log subscriber: level from `RUST_LOG` (default `info`),
/// lines in `format`, written to standard output by a [`LogWriter`]. Returns
/// `None` when a subscriber was already installed.
pub fn init(format: LogFormat) -> Option<LogWriter> {
    let (subscriber, writer) = subscriber(format, std::io::stdout(), colour_on_stdout());
    subscriber.try_init().ok().map(|()| writer)
}

/// The subscriber [`init`] installs — level from `RUST_LOG` (default `info`),
/// lines in `format` — writing to `output`, with colour codes or without:
/// for what must see the log a service writes, or what it costs, without
/// installing it for the whole process. Keep the writer while it is used.
pub fn subscriber<W>(
    format: LogFormat,
    output: W,
    colour: bool,
) -> (impl Subscriber + Send + Sync + 'static, LogWriter)
where
    W: std::io::Write + Send + 'static,
{
    let (lines, writer) = log_lines(format, output, colour);
    (
        tracing_subscriber::registry()
            .with(level_filter())
            .with(lines),
        writer,
    )
}

/// Installs the global log subscriber as [`init`] does and, when `otlp` is given,
/// exports every span the level lets through to that collector as well.
///
/// Keep the returned writer and export until the process ends, and shut the
/// export down then ([`OtlpExport::shutdown`]), or the spans of the last seconds
/// are lost.
///
/// # Errors
/// When the endpoint is not usable, the exporter cannot be built, or a
/// subscriber was already installed (the export is then shut down again).
#[cfg(feature = "otel")]
pub fn init_with(
    format: LogFormat,
    otlp: Option<OtlpSettings>,
) -> Result<(LogWriter, Option<OtlpExport>), TelemetryError> {
    let (spans, export) = match otlp {
        Some(settings) => {
            let (layer, export) = otlp_layer(&settings)?;
            (Some(layer), Some(export))
        }
        None => (None, None),
    };
    // The level filter comes first so a span too fine for the log is not
    // exported either: one `RUST_LOG` decides both.
    let (lines, writer) = log_lines(format, std::io::stdout(), colour_on_stdout());
    tracing_subscriber::registry()
        .with(level_filter())
        .with(lines)
        .with(spans)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok((writer, export))
}

fn level_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Colour codes only for a person at a terminal: a pipe, a file or a log
/// collector gets plain text, and `NO_COLOR` turns them off anywhere.
fn colour_on_stdout() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// How many formatted lines wait for the writer thread before logging waits
/// for room. The queue takes 32 bytes a line, all of it at start: 16,384 lines
/// (512 KiB) are a second of logging at 16,000 requests a second, while the
/// writer, which writes them out in batches, empties it many times faster.
const LOG_QUEUE_LINES: usize = 16_384;

fn log_lines<S, W>(
    format: LogFormat,
    output: W,
    colour: bool,
) -> (Box<dyn Layer<S> + Send + Sync>, LogWriter)
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: std::io::Write + Send + 'static,
{
    // The writer thread flushes after each run of queued lines, so under load
    // many lines leave in one write and, when idle, each line leaves at once.
    let (queue, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("strata-log")
        .finish(std::io::BufWriter::new(output));
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(queue);
    let layer = match format {
        LogFormat::Pretty if colour => lines.boxed(),
        LogFormat::Pretty => lines.fmt_fields(fields::PlainFields).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    (layer, LogWriter { _worker: worker })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::{LogFormat, log_lines};

    /// One write: the writing thread's name, and the bytes.
    type Written = (Option<String>, Vec<u8>);

    /// An output that records what it was given and on which thread, and lets
    /// nothing through until the test opens its gate.
    #[derive(Clone)]
    struct Output {
        written: Arc<Mutex<Vec<Written>>>,
        gate: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl Write for Output {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let gate = self
                .gate
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            // Open once and stays open: a closed sender lets every later write through.
            let _ = gate.recv_timeout(Duration::from_secs(10));
            let thread = std::thread::current().name().map(str::to_owned);
            self.written
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .push((thread, bytes.to_vec()));
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logging_does_not_wait_for_the_output_and_loses_no_line() {
        let (open, gate) = mpsc::channel();
        let output = Output {
            written: Arc::default(),
            gate: Arc::new(Mutex::new(gate)),
        };
        let (lines, writer) = log_lines(LogFormat::Json, output.clone(), false);
        let subscriber = tracing_subscriber::registry().with(lines);
        tracing::subscriber::with_default(subscriber, || {
            for line in 0..500 {
                tracing::info!(line, "request served");
            }
        });
        // All 500 events were logged while the output let nothing through.
        assert!(output.written.lock().expect("not poisoned").is_empty());
        drop(open);
        drop(writer);

        let written = output.written.lock().expect("not poisoned");
        assert!(
            written
                .iter()
                .all(|(thread, _)| thread.as_deref() == Some("strata-log")),
            "written on {:?}",
            written.iter().map(|(thread, _)| thread).collect::<Vec<_>>()
        );
        // Lines that queued up together left together.
        assert!(
            written.len() < 500,
            "{} writes for 500 lines",
            written.len()
        );
        let text: Vec<u8> = written
            .iter()
            .flat_map(|(_, bytes)| bytes.clone())
            .collect();
        let text = String::from_utf8(text).expect("UTF-8");
        let numbers: Vec<u64> = text
            .lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                line["fields"]["line"].as_u64().expect("the line's number")
            })
            .collect();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>());
    }
}
