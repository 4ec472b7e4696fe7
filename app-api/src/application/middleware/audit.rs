use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use strata_domain::ports::{AuditEntry, AuditTrail, Clock};

use crate::application::pipeline::{
    Invocation, Middleware, Next, UseCaseCall, UseCaseKind, UseCaseOutput,
};
use crate::application::{AppError, RequestContext, error_chain};

/// What the audit middleware knows of a command before it ends. Cheap to
/// clone: the request it keeps is shared.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    started: Instant,
    at: SystemTime,
    use_case: &'static str,
    request: RequestContext,
}

impl AuditDraft {
    fn entry(&self, outcome: &str) -> AuditEntry {
        let (principal_kind, principal) = match self.request.principal() {
            Some(principal) => (
                principal.kind().as_str(),
                Some(principal.subject().to_owned()),
            ),
            None => ("anonymous", None),
        };
        AuditEntry {
            id: uuid::Uuid::now_v7(),
            at_ms: AuditEntry::millis(self.at),
            principal_kind: principal_kind.to_owned(),
            principal,
            use_case: self.use_case.to_owned(),
            outcome: outcome.to_owned(),
            request_id: self.request.request_id().to_owned(),
            trace_id: self.request.trace().trace_id().to_owned(),
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            changes: Vec::new(),
        }
    }
}

/// Leaves an audit entry for every command a request ran (not the ones it
/// nested, whose changes its entry lists) unless the command opted out
/// (`Command::AUDITED = false`): who, what, how it ended, when, how long, and
/// the aggregates its unit of work changed. A command that succeeds is recorded
/// inside its unit of work by [`AuditRecord`], so the entry commits with it; one
/// that fails — refused by authorization or validation, or rolled back — is
/// recorded here, on its own. Runs right inside logging, so refusals are
/// recorded too.
#[derive(Clone)]
pub struct Audit {
    trail: Arc<dyn AuditTrail>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    /// Entries kept in `trail`, timed by `clock`.
    #[must_use]
    pub fn new(trail: Arc<dyn AuditTrail>, clock: Arc<dyn Clock>) -> Self {
        Self { trail, clock }
    }
}

#[async_trait]
impl Middleware for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.kind == UseCaseKind::Command && call.depth == 0 && call.audited
    }

    async fn handle(
        &self,
        mut invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        if invocation.kind != UseCaseKind::Command || invocation.depth > 0 || !invocation.audited {
            return next.run(invocation).await;
        }
        let draft = AuditDraft {
            started: Instant::now(),
            at: self.clock.now(),
            use_case: invocation.name,
            request: invocation.request.clone(),
        };
        invocation.audit = Some(draft.clone());
        let result = next.run(invocation).await;
        if let Err(error) = &result
            && let Err(failure) = self.trail.record_failure(draft.entry(error.code())).await
        {
            tracing::warn!(
                use_case = draft.use_case,
                error = %error_chain(&failure),
                "a failed command could not be recorded in the audit trail"
            );
        }
        result
    }
}

/// Records a command that succeeded, inside its unit of work (see [`Audit`]).
#[derive(Clone)]
pub struct AuditRecord {
    trail: Arc<dyn AuditTrail>,
}

impl std::fmt::Debug for AuditRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditRecord").finish_non_exhaustive()
    }
}

impl AuditRecord {
    /// Entries kept in `trail`.
    #[must_use]
    pub fn new(trail: Arc<dyn AuditTrail>) -> Self {
        Self { trail }
    }
}

#[async_trait]
impl Middleware for AuditRecord {
    fn name(&self) -> &'static str {
        "audit-record"
    }

    fn applies_to(&self, call: &UseCaseCall) -> bool {
        call.audit.is_some()
    }

    async fn handle(
        &self,
        mut invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError> {
        let Some(draft) = invocation.audit.take() else {
            return next.run(invocation).await;
        };
        let output = next.run(invocation).await?;
        self.trail.record(draft.entry("ok")).await?;
        Ok(output)
    }
}
