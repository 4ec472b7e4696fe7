//! The transactional outbox: domain events stored in the `strata_outbox` table in
//! the same transaction as the state change that produced them.

mod entity;
mod migration;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder, QuerySelect, Set};
use strata_domain::RepositoryError;
use strata_domain::ports::{EventEnvelope, Outbox};

pub(crate) use migration::CreateOutboxTable;

use crate::Database;
use crate::db_error::storage_error;

/// The [`Outbox`] on the `strata_outbox` table, joining the running unit of work.
#[derive(Debug, Clone)]
pub struct SeaOrmOutbox {
    database: Database,
}

impl SeaOrmOutbox {
    /// An outbox in `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Up to `limit` stored events, oldest first.
    ///
    /// # Errors
    /// When the table cannot be read or holds a row that is not valid JSON.
    pub async fn oldest(&self, limit: u64) -> Result<Vec<EventEnvelope>, RepositoryError> {
        let session = self.database.reader().await?;
        let rows = entity::Entity::find()
            .order_by_asc(entity::Column::Id)
            .limit(limit)
            .all(&*session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.into_iter()
            .map(|row| {
                Ok(EventEnvelope {
                    id: row.id,
                    aggregate_kind: row.aggregate_kind,
                    aggregate_id: row.aggregate_id,
                    aggregate_version: u64::try_from(row.aggregate_version).unwrap_or_default(),
                    event_type: row.event_type,
                    payload: serde_json::from_str(&row.payload)
                        .map_err(RepositoryError::storage)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Outbox for SeaOrmOutbox {
    async fn append(&self, events: Vec<EventEnvelope>) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        insert(&*session, events).await.map_err(storage_error)?;
        session.finish().await
    }
}

pub(crate) async fn insert(
    connection: &impl ConnectionTrait,
    events: Vec<EventEnvelope>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = events.into_iter().map(|event| entity::ActiveModel {
        id: Set(event.id),
        aggregate_kind: Set(event.aggregate_kind),
        aggregate_id: Set(event.aggregate_id),
        aggregate_version: Set(i64::try_from(event.aggregate_version).unwrap_or(i64::MAX)),
        event_type: Set(event.event_type),
        payload: Set(event.payload.to_string()),
    });
    entity::Entity::insert_many(rows)
        .exec(connection)
        .await
        .map(|_| ())
}
