use std::time::Instant;

use async_trait::async_trait;
use tracing::{Instrument, field};

use crate::application::pipeline::{Invocation, Middleware, Next, UseCaseOutput};
use crate::application::{AppError, error_chain};

/// One span per use case — name, kind, request id, principal, depth, outcome,
/// duration (the trace id is on the enclosing `http_request` span) — and one log
/// line per failure, with its cause chain, written by the
/// outermost use case only so a failure is logged once however deep it arose.
///
/// It never logs a use case's input: inputs carry passwords and personal data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logging;

#[async_trait]
impl Middleware for Logging {
    fn name(&self) -> &'static str {
        "logging"
    }

    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        // Values as text, not `Debug`-quoted: names and ids need no escaping,
        // and the `http_request` span writes its own the same way.
        let span = tracing::info_span!(
            "use_case",
            name = %invocation.name,
            kind = %invocation.kind.as_str(),
            request_id = %invocation.request.request_id(),
            principal = invocation
                .request
                .principal()
                .map(|principal| field::display(principal.subject())),
            depth = invocation.depth,
            outcome = field::Empty,
            duration_us = field::Empty,
        );
        let outermost = invocation.depth == 0;
        let preflight = invocation.preflight;
        let started = Instant::now();
        let result = next.run(invocation).instrument(span.clone()).await;
        span.record(
            "duration_us",
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        );
        // Events name their span as parent rather than entering it: entering and
        // leaving costs on every call, and the success line is usually disabled.
        match &result {
            Ok(_) if preflight => {
                span.record("outcome", field::display("allowed"));
                tracing::debug!(parent: &span, "the caller may run the use case");
            }
            Ok(_) => {
                span.record("outcome", field::display("ok"));
                tracing::debug!(parent: &span, "use case succeeded");
            }
            Err(error @ AppError::Internal(_)) => {
                span.record("outcome", field::display("error"));
                if outermost {
                    tracing::error!(parent: &span, error = %error_chain(error), "use case failed");
                }
            }
            Err(error @ AppError::Unavailable { .. }) => {
                span.record("outcome", field::display("unavailable"));
                if outermost {
                    tracing::warn!(parent: &span, code = error.code(), error = %error_chain(error), "use case could not run now");
                }
            }
            Err(error) => {
                span.record("outcome", field::display("rejected"));
                if outermost {
                    tracing::info!(parent: &span, code = error.code(), "use case rejected");
                }
            }
        }
        result
    }
}
