//! Reading the audit trail: the query an administrator's screen asks, over the
//! [`AuditTrail`] port, and the view it answers with.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_domain::ports::{AggregateChange, AuditEntry, AuditFilter, AuditTrail};
use strata_domain::{Page, PageRequest};
use validator::Validate;

use super::{Access, AppError, Query, QueryHandler, UseCaseContext};

/// The permission to read the audit trail.
pub const AUDIT_READ: &str = "audit.read";

/// One page of the audit trail, newest first, of the entries every given
/// condition matches.
#[derive(Debug, Clone, Validate)]
pub struct ReadAuditTrail {
    /// Run by this principal (user id or service name).
    #[validate(length(min = 1, max = ReadAuditTrail::MAX_PRINCIPAL_CHARS))]
    pub principal: Option<String>,
    /// Of this use case.
    #[validate(length(min = 1, max = ReadAuditTrail::MAX_USE_CASE_CHARS))]
    pub use_case: Option<String>,
    /// That changed the aggregate with this id.
    #[validate(length(min = 1, max = ReadAuditTrail::MAX_AGGREGATE_CHARS))]
    pub aggregate: Option<String>,
    /// Started at or after this time (milliseconds since the Unix epoch).
    #[validate(range(min = 0))]
    pub from_ms: Option<i64>,
    /// Started before this time (milliseconds since the Unix epoch).
    #[validate(range(min = 0))]
    pub to_ms: Option<i64>,
    /// The 1-based page.
    #[validate(range(min = 1))]
    pub page: u32,
    /// Entries per page.
    #[validate(range(min = 1, max = PageRequest::MAX_PER_PAGE))]
    pub per_page: u32,
}

impl ReadAuditTrail {
    /// The longest principal filter, in characters.
    pub const MAX_PRINCIPAL_CHARS: u64 = 255;
    /// The longest use-case filter, in characters.
    pub const MAX_USE_CASE_CHARS: u64 = 128;
    /// The longest aggregate-id filter, in characters.
    pub const MAX_AGGREGATE_CHARS: u64 = 255;
}

impl Query for ReadAuditTrail {
    type Output = Page<AuditEntryView>;
    const NAME: &'static str = "audit.read_trail";
    const ACCESS: Access = Access::Permission(AUDIT_READ);
}

/// An audit entry as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AuditEntry))]
pub struct AuditEntryView {
    /// The entry's id.
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub id: String,
    /// When the command started, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// `user`, `service` or `anonymous`.
    pub principal_kind: String,
    /// The user id or service name; absent for an anonymous caller.
    pub principal: Option<String>,
    /// The use case, such as `catalog.change_product_price`.
    pub use_case: String,
    /// `ok`, or the code of the error it ended with.
    pub outcome: String,
    /// The request it served.
    pub request_id: String,
    /// The trace it belongs to.
    pub trace_id: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The aggregates it changed.
    pub changes: Vec<AggregateChangeView>,
}

/// An aggregate a command changed, from one version to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AggregateChange))]
pub struct AggregateChangeView {
    /// The aggregate's kind, such as `product`.
    pub kind: String,
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = uuid::Uuid))]
    pub id: String,
    /// The version before; 0 when the command made it.
    pub version_before: u64,
    /// The version after.
    pub version_after: u64,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id.to_string(),
            at_ms: entry.at_ms,
            principal_kind: entry.principal_kind,
            principal: entry.principal,
            use_case: entry.use_case,
            outcome: entry.outcome,
            request_id: entry.request_id,
            trace_id: entry.trace_id,
            duration_ms: entry.duration_ms,
            changes: entry
                .changes
                .into_iter()
                .map(|change: AggregateChange| AggregateChangeView {
                    kind: change.kind,
                    id: change.id,
                    version_before: change.version_before,
                    version_after: change.version_after,
                })
                .collect(),
        }
    }
}

/// Answers [`ReadAuditTrail`] from the trail.
#[derive(Clone)]
pub struct AuditTrailReader {
    trail: Arc<dyn AuditTrail>,
}

impl std::fmt::Debug for AuditTrailReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditTrailReader").finish_non_exhaustive()
    }
}

impl AuditTrailReader {
    /// A reader of `trail`.
    #[must_use]
    pub fn new(trail: Arc<dyn AuditTrail>) -> Self {
        Self { trail }
    }
}

#[async_trait]
impl QueryHandler<ReadAuditTrail> for AuditTrailReader {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ReadAuditTrail,
    ) -> Result<Page<AuditEntryView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        let filter = AuditFilter {
            principal: query.principal,
            use_case: query.use_case,
            aggregate: query.aggregate,
            from_ms: query.from_ms,
            to_ms: query.to_ms,
        };
        let found = self.trail.search(&filter, page).await?;
        Ok(Page::new(
            found.items.into_iter().map(AuditEntryView::from).collect(),
            page,
            found.total,
        ))
    }
}
