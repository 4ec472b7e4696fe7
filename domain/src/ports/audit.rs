use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Page, PageRequest, RepositoryError};

/// One aggregate a unit of work changed: which, and from which version to which
/// (`version_before` is 0 for one created). What the audit trail records of a
/// command's effect, without any of its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateChange {
    /// The aggregate's kind, such as `product`.
    pub kind: String,
    /// The aggregate's id.
    pub id: String,
    /// The version it was loaded at; 0 for a new one.
    pub version_before: u64,
    /// The version it was saved at.
    pub version_after: u64,
}

/// One command, as the audit trail keeps it: who ran it, what it was, how it
/// ended, when and for how long, and which aggregates it changed. Never its input:
/// no password, token or request body reaches the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The entry's id (UUID v7, ordered by time).
    pub id: uuid::Uuid,
    /// When the command started, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// `user`, `service` or `anonymous`.
    pub principal_kind: String,
    /// The user id or service name; none for an anonymous caller.
    pub principal: Option<String>,
    /// The use case's name, such as `catalog.change_product_price`.
    pub use_case: String,
    /// `ok`, or the stable code of the error it ended with (`stale_version`).
    pub outcome: String,
    /// The request it served.
    pub request_id: String,
    /// The distributed trace it belongs to.
    pub trace_id: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The aggregates its unit of work changed (none when it failed).
    pub changes: Vec<AggregateChange>,
}

impl AuditEntry {
    /// Milliseconds since the Unix epoch of `time`.
    #[must_use]
    pub fn millis(time: SystemTime) -> i64 {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            })
    }
}

/// Which entries to find; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Run by this principal (user id or service name).
    pub principal: Option<String>,
    /// Of this use case.
    pub use_case: Option<String>,
    /// That changed the aggregate with this id.
    pub aggregate: Option<String>,
    /// Started at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Started before this time (ms since the epoch).
    pub to_ms: Option<i64>,
}

/// Where the audit trail is kept.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Records `entry` in the unit of work running on the calling task, adding
    /// the aggregates that unit of work changed: it commits with the command, or
    /// not at all. For a command that ran outside a unit of work
    /// ([`super::Propagation::NotSupported`]) the entry is written on its own,
    /// with the aggregates the units of work it began committed.
    async fn record(&self, entry: AuditEntry) -> Result<(), RepositoryError>;

    /// Records `entry` of a command that failed, on its own: the command's unit
    /// of work was rolled back (or never began). The write may finish after this
    /// answers, so a failed request's answer never waits for it.
    async fn record_failure(&self, entry: AuditEntry) -> Result<(), RepositoryError>;

    /// The entries `filter` matches, newest first.
    async fn search(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, RepositoryError>;

    /// Forgets the entries that started before `cutoff`; answers how many.
    async fn purge_before(&self, cutoff: SystemTime) -> Result<u64, RepositoryError>;
}
