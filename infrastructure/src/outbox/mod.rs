//! The transactional outbox: domain events stored in the `strata_outbox` table in
//! the same transaction as the state change that produced them, and the
//! [`OutboxRelay`] that publishes them through an event bus — the
//! [`InProcessBus`] by default, [`RedisStreamsPublisher`] with the `redis`
//! feature.

mod entity;
mod in_process;
mod migration;
#[cfg(feature = "redis")]
mod redis_streams;
mod relay;
mod replay;
mod two_phase;

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use strata_domain::RepositoryError;
use strata_domain::ports::{DeadLetter, DeadLetters, EventEnvelope, Outbox};
use strata_domain::{Page, PageRequest};
use uuid::Uuid;

pub use in_process::InProcessBus;
pub(crate) use migration::{CreateOutboxTable, RelayOutboxTable};
#[cfg(all(fuzzing, feature = "redis"))]
pub(crate) use redis_streams::entry_fields as redis_streams_entry_fields;
#[cfg(feature = "redis")]
pub use redis_streams::{RedisStreamsConfig, RedisStreamsPublisher};
pub(crate) use relay::now_ms;
pub use relay::{OutboxRelay, RelayPass, RelaySettings};
pub(crate) use replay::CreateReplayTable;
pub use replay::InProcessReplay;
pub(crate) use two_phase::CreateMessagesTable;
pub use two_phase::{CheckBack, SeaOrmTransactionalMessages};

/// The PostgreSQL channel a commit that stored events notifies, so relays on
/// other instances wake at once.
pub(crate) const NOTIFY_CHANNEL: &str = "strata_outbox";

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

    /// Up to `limit` stored events, published or not, oldest first.
    ///
    /// # Errors
    /// When the table cannot be read or holds a row that is not valid JSON.
    pub async fn oldest(&self, limit: u64) -> Result<Vec<EventEnvelope>, RepositoryError> {
        let session = self.database.reader().await?;
        let rows = entity::Entity::find()
            .order_by_asc(entity::Column::Id)
            .limit(limit)
            .all(&session)
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
                    traceparent: row.traceparent,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Outbox for SeaOrmOutbox {
    async fn append(&self, events: Vec<EventEnvelope>) -> Result<(), RepositoryError> {
        let mut session = self.database.writer().await?;
        if events.is_empty() {
            return session.finish().await;
        }
        let trace = session.trace();
        let events = events
            .into_iter()
            .map(|mut event| {
                if event.traceparent.is_none() {
                    event.traceparent.clone_from(&trace);
                }
                event
            })
            .collect();
        insert(&session, events).await.map_err(storage_error)?;
        session.mark_events_stored();
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
    let recorded_at = relay::now_ms();
    let rows = events.into_iter().map(|event| entity::ActiveModel {
        id: Set(event.id),
        aggregate_kind: Set(event.aggregate_kind),
        aggregate_id: Set(event.aggregate_id),
        aggregate_version: Set(i64::try_from(event.aggregate_version).unwrap_or(i64::MAX)),
        event_type: Set(event.event_type),
        payload: Set(event.payload.to_string()),
        recorded_at: Set(recorded_at),
        attempts: Set(0),
        next_attempt_at: Set(0),
        claimed_by: Set(None),
        claimed_until: Set(None),
        published_at: Set(None),
        dead_at: Set(None),
        last_error: Set(None),
        traceparent: Set(event.traceparent),
    });
    entity::Entity::insert_many(rows).exec(connection).await?;
    // Delivered when the transaction commits, to every relay listening.
    if connection.get_database_backend() == DbBackend::Postgres {
        connection
            .execute_unprepared(&format!("NOTIFY {NOTIFY_CHANNEL}"))
            .await?;
    }
    Ok(())
}

/// How the outbox stands: for metrics, the CLI and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Events not published yet (dead letters not counted).
    pub pending: u64,
    /// Events dead-lettered, waiting for an operator.
    pub dead: u64,
    /// When the oldest pending event was recorded, in milliseconds since the
    /// Unix epoch.
    pub oldest_pending_at_ms: Option<i64>,
    /// The most failed attempts of any pending event.
    pub most_attempts: u32,
}

#[derive(Debug, FromQueryResult)]
struct PendingSummary {
    oldest: Option<i64>,
    most_attempts: Option<i32>,
}

impl SeaOrmOutbox {
    /// How many events wait, how many are dead, and how old the oldest is.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn status(&self) -> Result<OutboxStatus, RepositoryError> {
        let session = self.database.reader().await?;
        let pending = || {
            entity::Entity::find()
                .filter(entity::Column::PublishedAt.is_null())
                .filter(entity::Column::DeadAt.is_null())
        };
        let pending_count = pending().count(&session).await.map_err(storage_error)?;
        let dead = entity::Entity::find()
            .filter(entity::Column::PublishedAt.is_null())
            .filter(entity::Column::DeadAt.is_not_null())
            .count(&session)
            .await
            .map_err(storage_error)?;
        let summary = pending()
            .select_only()
            .column_as(entity::Column::RecordedAt.min(), "oldest")
            .column_as(entity::Column::Attempts.max(), "most_attempts")
            .into_model::<PendingSummary>()
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let (oldest, most_attempts) = summary
            .map(|summary| (summary.oldest, summary.most_attempts))
            .unwrap_or_default();
        Ok(OutboxStatus {
            pending: pending_count,
            dead,
            oldest_pending_at_ms: oldest.filter(|_| pending_count > 0),
            most_attempts: most_attempts
                .and_then(|attempts| u32::try_from(attempts).ok())
                .unwrap_or(0),
        })
    }
}

#[async_trait]
impl DeadLetters for SeaOrmOutbox {
    async fn dead_letters(&self, page: PageRequest) -> Result<Page<DeadLetter>, RepositoryError> {
        let session = self.database.reader().await?;
        let dead = || {
            entity::Entity::find()
                .filter(entity::Column::PublishedAt.is_null())
                .filter(entity::Column::DeadAt.is_not_null())
        };
        let total = dead().count(&session).await.map_err(storage_error)?;
        let rows = dead()
            .order_by_desc(entity::Column::DeadAt)
            .order_by_desc(entity::Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let items = rows
            .into_iter()
            .map(|row| DeadLetter {
                id: row.id,
                aggregate_kind: row.aggregate_kind,
                aggregate_id: row.aggregate_id,
                aggregate_version: u64::try_from(row.aggregate_version).unwrap_or_default(),
                event_type: row.event_type,
                attempts: u32::try_from(row.attempts).unwrap_or_default(),
                last_error: row.last_error.unwrap_or_default(),
                dead_at_ms: row.dead_at.unwrap_or_default(),
            })
            .collect();
        Ok(Page::new(items, page, total))
    }

    async fn retry(&self, id: Uuid) -> Result<bool, RepositoryError> {
        let mut session = self.database.writer().await?;
        let updated = entity::Entity::update_many()
            .col_expr(entity::Column::DeadAt, Expr::val(Option::<i64>::None))
            .col_expr(entity::Column::Attempts, Expr::val(0))
            .col_expr(entity::Column::NextAttemptAt, Expr::val(0_i64))
            .filter(entity::Column::Id.eq(id))
            .filter(entity::Column::DeadAt.is_not_null())
            .filter(entity::Column::PublishedAt.is_null())
            .exec(&session)
            .await
            .map_err(storage_error)?;
        let retried = updated.rows_affected == 1;
        if retried {
            // Due now: the relay in this process is told once it is committed.
            session.mark_events_stored();
        }
        session.finish().await?;
        Ok(retried)
    }
}
