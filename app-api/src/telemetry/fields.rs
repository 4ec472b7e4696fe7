//! Span and event fields as plain `name=value` text, for lines without colour.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput as _};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// Writes fields exactly as the default formatter does without colour —
/// `name=value`, separated by spaces, the message first and escaped, fields
/// bridged from `log` left out — with less work for the common ones: a
/// field's name and `=` go straight to the line instead of through the
/// default formatter's styling, which costs about as much as the value even
/// when it adds nothing. Messages, errors and raw identifiers (`r#type`) are
/// still written by the default formatter.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Writes `name=` and then the value `write` writes, or hands the field
    /// to the default formatter when it is one it treats differently.
    fn field(
        &mut self,
        field: &Field,
        write: impl FnOnce(&mut Writer<'_>) -> fmt::Result,
        by_default: impl FnOnce(&mut DefaultVisitor<'_>),
    ) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        if name == "message" || name.starts_with("r#") {
            let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
            by_default(&mut default);
            self.result = default.finish();
            self.is_empty = false;
            return;
        }
        let writer = &mut self.writer;
        self.result = (if self.is_empty {
            Ok(())
        } else {
            writer.write_char(' ')
        })
        .and_then(|()| writer.write_str(name))
        .and_then(|()| writer.write_char('='))
        .and_then(|()| write(writer));
        self.is_empty = false;
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(
            field,
            |writer| write!(writer, "{value}"),
            |default| default.record_i64(field, value),
        );
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(
            field,
            |writer| write!(writer, "{value}"),
            |default| default.record_u64(field, value),
        );
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(
            field,
            |writer| writer.write_str(if value { "true" } else { "false" }),
            |default| default.record_bool(field, value),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(
            field,
            |writer| write!(writer, "{value:?}"),
            |default| default.record_str(field, value),
        );
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let mut default = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        default.record_error(field, value);
        self.result = default.finish();
        self.is_empty = false;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(
            field,
            |writer| write!(writer, "{value:?}"),
            |default| default.record_debug(field, value),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::format::DefaultFields;
    use tracing_subscriber::fmt::{FormatFields, MakeWriter};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::PlainFields;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Self;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Cause;

    impl std::fmt::Display for Cause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the disk \u{1b}[31mis full")
        }
    }

    impl std::error::Error for Cause {}

    #[derive(Debug)]
    struct Failure(Cause);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the write failed")
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// What a service logs — spans with every kind of field, values recorded
    /// later, events with messages (one trying to colour the terminal), errors
    /// with causes, raw identifiers — written through `fields`, without
    /// colour or time.
    fn log_with<F>(fields: F) -> String
    where
        F: for<'writer> FormatFields<'writer> + Send + Sync + 'static,
    {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .fmt_fields(fields)
                .with_writer(lines.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "use_case",
                name = %"catalog.create_product",
                kind = "command",
                depth = 0_u64,
                offset = -3_i64,
                nested = true,
                ratio = 0.5_f64,
                r#type = "raw",
                principal = ?Some("ada"),
                outcome = tracing::field::Empty,
                duration_us = tracing::field::Empty,
            );
            let _entered = span.enter();
            tracing::info!("started");
            tracing::info!(
                count = 2_u64,
                text = "quoted \"here\"",
                "a \u{1b}[2J message"
            );
            tracing::warn!(
                error = &Failure(Cause) as &(dyn std::error::Error + 'static),
                "it failed"
            );
            tracing::info!(error = &Cause as &(dyn std::error::Error + 'static));
            span.record("outcome", tracing::field::display("ok"));
            span.record("duration_us", 17_u64);
            tracing::info!(message = "after the record", empty = "");
        });
        let written = lines.0.lock().expect("lines").clone();
        String::from_utf8(written).expect("UTF-8")
    }

    #[test]
    fn lines_read_as_the_default_formatter_writes_them_without_colour() {
        let plain = log_with(PlainFields);
        let default = log_with(DefaultFields::new());
        assert_eq!(plain, default);
        assert_eq!(plain.lines().count(), 5, "{plain}");
        assert!(
            plain.contains("kind=\"command\" depth=0 offset=-3 nested=true ratio=0.5 type=\"raw\""),
            "{plain}"
        );
        assert!(plain.contains("outcome=ok duration_us=17"), "{plain}");
        assert!(plain.contains("\\x1b[2J message"), "escaped: {plain}");
        assert!(
            !plain.contains('\u{1b}'),
            "no escape code reaches the line: {plain}"
        );
    }
}
