//! The audit trail in the `strata_audit` and `strata_audit_changes` tables.

mod entity;
mod migration;

use std::time::SystemTime;

use async_trait::async_trait;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use strata_domain::ports::{AggregateChange, AuditEntry, AuditFilter, AuditTrail};
use strata_domain::{Page, PageRequest, RepositoryError};

pub(crate) use migration::CreateAuditTables;

use self::entity::{change, entry};
use crate::Database;
use crate::db_error::storage_error;
use crate::unit_of_work::{current_changes, current_suspension};

/// The [`AuditTrail`] in the service's database: an entry commits with the
/// command it describes, together with the aggregates its unit of work changed;
/// the entry of a command that ran outside a unit of work is written on its own
/// with what the units of work it began committed; the entry of a failed
/// command is written on its own, in the background.
#[derive(Debug, Clone)]
pub struct SeaOrmAuditTrail {
    database: Database,
}

impl SeaOrmAuditTrail {
    /// The trail in `database`, the database of the units of work it describes.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

async fn insert(
    connection: &impl ConnectionTrait,
    entry: &AuditEntry,
) -> Result<(), RepositoryError> {
    entry::ActiveModel {
        id: Set(entry.id),
        at_ms: Set(entry.at_ms),
        principal_kind: Set(entry.principal_kind.clone()),
        principal: Set(entry.principal.clone()),
        use_case: Set(entry.use_case.clone()),
        outcome: Set(entry.outcome.clone()),
        request_id: Set(entry.request_id.clone()),
        trace_id: Set(entry.trace_id.clone()),
        duration_ms: Set(i64::try_from(entry.duration_ms).unwrap_or(i64::MAX)),
    }
    .insert(connection)
    .await
    .map_err(storage_error)?;
    if entry.changes.is_empty() {
        return Ok(());
    }
    let rows = entry
        .changes
        .iter()
        .enumerate()
        .map(|(position, changed)| change::ActiveModel {
            audit_id: Set(entry.id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            kind: Set(changed.kind.clone()),
            aggregate_id: Set(changed.id.clone()),
            version_before: Set(i64::try_from(changed.version_before).unwrap_or(i64::MAX)),
            version_after: Set(i64::try_from(changed.version_after).unwrap_or(i64::MAX)),
        });
    change::Entity::insert_many(rows)
        .exec(connection)
        .await
        .map_err(storage_error)?;
    Ok(())
}

fn stored_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

#[async_trait]
impl AuditTrail for SeaOrmAuditTrail {
    async fn record(&self, mut entry: AuditEntry) -> Result<(), RepositoryError> {
        entry.changes.extend(current_changes(self.database.id()));
        if current_suspension(self.database.id()).is_some() {
            let session = self.database.autonomous().await?;
            insert(&session, &entry).await?;
            return session.finish().await;
        }
        let session = self.database.writer().await?;
        insert(&session, &entry).await?;
        session.finish().await
    }

    /// Written on a task of its own, which the database tracks
    /// ([`Database::settle`]): on SQLite the write may wait for the write lock
    /// another request holds, and the failed request's answer must not.
    async fn record_failure(&self, entry: AuditEntry) -> Result<(), RepositoryError> {
        let database = self.database.clone();
        database.commits().clone().spawn(async move {
            let written = async {
                let session = database.autonomous().await?;
                insert(&session, &entry).await?;
                session.finish().await
            };
            if let Err(error) = written.await {
                tracing::warn!(
                    use_case = %entry.use_case,
                    error = %error,
                    "a failed command could not be recorded in the audit trail"
                );
            }
        });
        Ok(())
    }

    async fn search(
        &self,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, RepositoryError> {
        let mut query = entry::Entity::find();
        if let Some(principal) = &filter.principal {
            query = query.filter(entry::Column::Principal.eq(principal.as_str()));
        }
        if let Some(use_case) = &filter.use_case {
            query = query.filter(entry::Column::UseCase.eq(use_case.as_str()));
        }
        if let Some(from) = filter.from_ms {
            query = query.filter(entry::Column::AtMs.gte(from));
        }
        if let Some(to) = filter.to_ms {
            query = query.filter(entry::Column::AtMs.lt(to));
        }
        if let Some(aggregate) = &filter.aggregate {
            query = query.filter(
                entry::Column::Id.in_subquery(
                    Query::select()
                        .column(change::Column::AuditId)
                        .from(change::Entity)
                        .and_where(change::Column::AggregateId.eq(aggregate.as_str()))
                        .to_owned(),
                ),
            );
        }
        let session = self.database.reader().await?;
        let total = query.clone().count(&session).await.map_err(storage_error)?;
        let rows = query
            .order_by_desc(entry::Column::AtMs)
            .order_by_desc(entry::Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.id).collect();
        let changes = if ids.is_empty() {
            Vec::new()
        } else {
            change::Entity::find()
                .filter(change::Column::AuditId.is_in(ids))
                .order_by_asc(change::Column::Position)
                .all(&session)
                .await
                .map_err(storage_error)?
        };
        session.finish().await?;
        let items = rows
            .into_iter()
            .map(|row| AuditEntry {
                changes: changes
                    .iter()
                    .filter(|changed| changed.audit_id == row.id)
                    .map(|changed| AggregateChange {
                        kind: changed.kind.clone(),
                        id: changed.aggregate_id.clone(),
                        version_before: stored_u64(changed.version_before),
                        version_after: stored_u64(changed.version_after),
                    })
                    .collect(),
                id: row.id,
                at_ms: row.at_ms,
                principal_kind: row.principal_kind,
                principal: row.principal,
                use_case: row.use_case,
                outcome: row.outcome,
                request_id: row.request_id,
                trace_id: row.trace_id,
                duration_ms: stored_u64(row.duration_ms),
            })
            .collect();
        Ok(Page::new(items, page, total))
    }

    async fn purge_before(&self, cutoff: SystemTime) -> Result<u64, RepositoryError> {
        let cutoff = AuditEntry::millis(cutoff);
        let session = self.database.autonomous().await?;
        change::Entity::delete_many()
            .filter(
                change::Column::AuditId.in_subquery(
                    Query::select()
                        .column(entry::Column::Id)
                        .from(entry::Entity)
                        .and_where(entry::Column::AtMs.lt(cutoff))
                        .to_owned(),
                ),
            )
            .exec(&session)
            .await
            .map_err(storage_error)?;
        let purged = entry::Entity::delete_many()
            .filter(entry::Column::AtMs.lt(cutoff))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(purged.rows_affected)
    }
}
