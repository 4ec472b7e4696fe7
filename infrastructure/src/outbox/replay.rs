//! What an in-process bus had not delivered when its process ended, published
//! again by the next process.

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait};
use sea_orm::{
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, StatementBuilder,
};
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, MigrationName, MigrationTrait, SchemaManager, Table,
};
use sea_orm_migration::schema::{big_integer, string_len};
use strata_domain::RepositoryError;

use super::entity::{self, Column};
use super::in_process::InProcessBus;
use super::now_ms;
use super::relay::message_of;
use crate::Database;
use crate::database::execute;
use crate::db_error::storage_error;

/// Keeps the in-process bus's events from being lost with its process.
///
/// The relay marks an event published once the bus holds it, and the bus
/// lives in memory: when the process ends — stopped, or killed — whatever its
/// consumers had not applied yet would be gone. So each running bus
/// [records](InProcessReplay::record), every second or so, a watermark in
/// the `strata_outbox_replay` table: every event it was given before that
/// moment has been applied by every reader. The next process, before its
/// relay and consumers start, [publishes again](InProcessReplay::replay_into)
/// every event marked published since the oldest watermark on record, in the
/// order they were published. Consumers recognise by the message id those
/// they had applied (their inbox), so a replayed event is applied once.
///
/// A watermark is taken before the bus is looked at, and is the publish time
/// of the oldest entry a reader may still need: it never passes an event not
/// applied yet, only lags behind (what it lags by is replayed and recognised).
#[derive(Debug, Clone)]
pub struct InProcessReplay {
    database: Database,
}

#[derive(Debug, FromQueryResult)]
struct OldestRow {
    oldest: Option<i64>,
}

impl InProcessReplay {
    /// The watermarks in `database`, the one whose outbox the bus relays.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records how far the readers of `bus` have got.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn record(&self, bus: &InProcessBus) -> Result<(), RepositoryError> {
        // Now, before looking: an event published from here on is after it.
        let now = now_ms();
        let delivered_before = bus
            .oldest_kept_ms()
            .map_or(now, |oldest| std::cmp::min(oldest, now));
        let session = self.database.autonomous().await?;
        let upsert = Query::insert()
            .into_table(Watermarks::Table)
            .columns([
                Watermarks::Bus,
                Watermarks::DeliveredBefore,
                Watermarks::RecordedAt,
            ])
            .values_panic([bus.id().into(), delivered_before.into(), now.into()])
            .on_conflict(
                OnConflict::column(Watermarks::Bus)
                    .update_columns([Watermarks::DeliveredBefore, Watermarks::RecordedAt])
                    .to_owned(),
            )
            .to_owned();
        execute(&session, &upsert).await?;
        session.finish().await
    }

    /// Publishes into `bus`, a new one, every event marked published since
    /// the oldest watermark any bus recorded, in the order they were
    /// published, records the watermark of `bus`, then forgets those not
    /// renewed for `stale` (buses gone, whose events this bus has now taken
    /// over). Call it before the relay and the consumers of `bus` start.
    /// Answers how many it published.
    ///
    /// # Errors
    /// When the outbox or the table cannot be read or written.
    pub async fn replay_into(
        &self,
        bus: &InProcessBus,
        stale: Duration,
    ) -> Result<usize, RepositoryError> {
        let started = now_ms();
        let since = self.oldest_watermark().await?;
        let mut replayed = 0;
        if let Some(since) = since {
            loop {
                let session = self.database.reader().await?;
                let rows = entity::Entity::find()
                    .filter(Column::PublishedAt.gte(since))
                    .order_by_asc(Column::PublishedAt)
                    .order_by_asc(Column::AggregateVersion)
                    .order_by_asc(Column::Id)
                    .offset(u64::try_from(replayed).unwrap_or(u64::MAX))
                    .limit(REPLAY_BATCH)
                    .all(&session)
                    .await
                    .map_err(storage_error)?;
                session.finish().await?;
                let messages = rows
                    .iter()
                    .map(|row| Ok((row.published_at.unwrap_or(since), message_of(row)?)))
                    .collect::<Result<Vec<_>, RepositoryError>>()?;
                let count = messages.len();
                bus.publish_again(messages);
                replayed += count;
                if (count as u64) < REPLAY_BATCH {
                    break;
                }
            }
        }
        // This bus holds them now, at their first publish times: its own
        // watermark stands for them before the others are forgotten.
        self.record(bus).await?;
        let cutoff = started.saturating_sub(i64::try_from(stale.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.autonomous().await?;
        let forget = Query::delete()
            .from_table(Watermarks::Table)
            .and_where(Expr::col(Watermarks::RecordedAt).lt(cutoff))
            .to_owned();
        execute(&session, &forget).await?;
        session.finish().await?;
        Ok(replayed)
    }

    async fn oldest_watermark(&self) -> Result<Option<i64>, RepositoryError> {
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let select = Query::select()
            .expr_as(Expr::col(Watermarks::DeliveredBefore).min(), "oldest")
            .from(Watermarks::Table)
            .to_owned();
        let row = session
            .query_one_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(row
            .map(|row| OldestRow::from_query_result(&row, ""))
            .transpose()
            .map_err(storage_error)?
            .and_then(|row| row.oldest))
    }
}

/// How many events a replay reads at a time.
const REPLAY_BATCH: u64 = 500;

/// Creates the `strata_outbox_replay` table of in-process buses' watermarks.
#[derive(Debug)]
pub struct CreateReplayTable;

impl MigrationName for CreateReplayTable {
    fn name(&self) -> &str {
        "m20261206_000000_create_strata_outbox_replay"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateReplayTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Watermarks::Table)
                    .if_not_exists()
                    .col(string_len(Watermarks::Bus, 64).primary_key())
                    .col(big_integer(Watermarks::DeliveredBefore))
                    .col(big_integer(Watermarks::RecordedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Watermarks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Watermarks {
    #[sea_orm(iden = "strata_outbox_replay")]
    Table,
    Bus,
    DeliveredBefore,
    RecordedAt,
}
