//! What consumers keep in the database, in the transaction of their effects:
//! who owns each partition and how far it got, which messages were applied,
//! and which were given up on — so a crash can neither lose nor double an
//! effect. And the logs they read: [`PartitionLog`] over the in-process bus
//! and Redis Streams.

mod group;
mod log;
mod migration;

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use strata_domain::{Page, PageRequest, RepositoryError};
use uuid::Uuid;

#[cfg(feature = "redis")]
pub use group::RedisStreamsGroup;
pub use group::{Delivery, GroupSettings, GroupStatus, GroupSubscription, InProcessGroup};
#[cfg(feature = "redis")]
pub use log::RedisStreamsLog;
#[cfg(feature = "redis")]
pub(crate) use log::entry_of;
pub use log::{LogEntry, PartitionLog, ReadError, Undecodable};
pub(crate) use migration::CreateConsumerTables;
use migration::{DeadLetters, Inbox, Members, Partitions};

use crate::Database;
use crate::database::{execute, insert_absent};
use crate::db_error::storage_error;
use crate::outbox::now_ms;

/// A consumer's bookkeeping in one database.
#[derive(Debug, Clone)]
pub struct ConsumerStore {
    database: Database,
}

/// A message a consumer gave up on.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ConsumerDeadLetter {
    /// Its row.
    pub id: i64,
    /// The consumer.
    pub consumer: String,
    /// The partition it came from.
    pub partition: i32,
    /// Its position in that partition.
    pub position: String,
    /// Its message id, when it could be read.
    pub message_id: Option<String>,
    /// The message as it came.
    pub message: String,
    /// Why it was given up on.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub dead_at: i64,
}

#[derive(Debug, FromQueryResult)]
struct InboxRow {
    message_id: Uuid,
}

#[derive(Debug, FromQueryResult)]
struct MembersRow {
    members: i64,
}

#[derive(Debug, FromQueryResult)]
struct HolderRow {
    partition: i32,
    owner: String,
}

#[derive(Debug, FromQueryResult)]
struct PositionRow {
    position: Option<String>,
}

impl ConsumerStore {
    /// The store in `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Takes, or keeps, partition `partition` of `consumer` for `owner` until
    /// `lease` from now — when nobody holds it, `owner` already does, or the
    /// holder's lease ran out. `Some(position)` (where `owner` is to read
    /// from; `None` for the start) when `owner` holds it now.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn hold(
        &self,
        consumer: &str,
        partition: u32,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Option<String>>, RepositoryError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
        let session = self.database.autonomous().await?;
        let backend = session.get_database_backend();
        let insert = Query::insert()
            .into_table(Partitions::Table)
            .columns([Partitions::Consumer, Partitions::Partition])
            .values_panic([consumer.into(), partition.into()])
            .to_owned();
        insert_absent(
            &session,
            insert,
            [Partitions::Consumer, Partitions::Partition],
        )
        .await?;
        let take = Query::update()
            .table(Partitions::Table)
            .value(Partitions::Owner, owner)
            .value(Partitions::LeaseUntil, until)
            .and_where(Expr::col(Partitions::Consumer).eq(consumer))
            .and_where(Expr::col(Partitions::Partition).eq(partition))
            .and_where(
                Expr::col(Partitions::Owner)
                    .eq(owner)
                    .or(Expr::col(Partitions::Owner).is_null())
                    .or(Expr::col(Partitions::LeaseUntil).lt(now)),
            )
            .to_owned();
        let taken = execute(&session, &take).await? == 1;
        let position = if taken {
            let select = Query::select()
                .column(Partitions::Position)
                .from(Partitions::Table)
                .and_where(Expr::col(Partitions::Consumer).eq(consumer))
                .and_where(Expr::col(Partitions::Partition).eq(partition))
                .to_owned();
            let row = session
                .query_one_raw(StatementBuilder::build(&select, &backend))
                .await
                .map_err(storage_error)?;
            Some(
                row.map(|row| PositionRow::from_query_result(&row, ""))
                    .transpose()
                    .map_err(storage_error)?
                    .and_then(|row| row.position),
            )
        } else {
            None
        };
        session.finish().await?;
        Ok(position)
    }

    /// Says `instance` runs `consumer` for `lease` from now, and forgets the
    /// instances whose word ran out.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn announce(
        &self,
        consumer: &str,
        instance: &str,
        lease: Duration,
    ) -> Result<(), RepositoryError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.autonomous().await?;
        let upsert = Query::insert()
            .into_table(Members::Table)
            .columns([Members::Consumer, Members::Instance, Members::SeenUntil])
            .values_panic([consumer.into(), instance.into(), until.into()])
            .on_conflict(
                OnConflict::columns([Members::Consumer, Members::Instance])
                    .update_column(Members::SeenUntil)
                    .to_owned(),
            )
            .to_owned();
        execute(&session, &upsert).await?;
        // Those gone for good: a lease long past.
        let forget = Query::delete()
            .from_table(Members::Table)
            .and_where(Expr::col(Members::Consumer).eq(consumer))
            .and_where(Expr::col(Members::SeenUntil).lt(now))
            .to_owned();
        execute(&session, &forget).await?;
        session.finish().await
    }

    /// How many instances run `consumer` now, so each takes its share of the
    /// partitions; at least one.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn members(&self, consumer: &str) -> Result<u32, RepositoryError> {
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let count = Query::select()
            .expr_as(Expr::col(Members::Instance).count(), "members")
            .from(Members::Table)
            .and_where(Expr::col(Members::Consumer).eq(consumer))
            .and_where(Expr::col(Members::SeenUntil).gte(now_ms()))
            .to_owned();
        let row = session
            .query_one_raw(StatementBuilder::build(&count, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let members = row
            .map(|row| MembersRow::from_query_result(&row, ""))
            .transpose()
            .map_err(storage_error)?
            .map_or(1, |row| row.members);
        Ok(std::cmp::max(u32::try_from(members).unwrap_or(u32::MAX), 1))
    }

    /// Says `instance` no longer runs `consumer` (on shutdown).
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn leave(&self, consumer: &str, instance: &str) -> Result<(), RepositoryError> {
        let session = self.database.autonomous().await?;
        let delete = Query::delete()
            .from_table(Members::Table)
            .and_where(Expr::col(Members::Consumer).eq(consumer))
            .and_where(Expr::col(Members::Instance).eq(instance))
            .to_owned();
        execute(&session, &delete).await?;
        session.finish().await
    }

    /// Who holds which of `consumer`'s partitions now: `(partition, owner)`
    /// for each partition whose lease has not run out.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn holders(&self, consumer: &str) -> Result<Vec<(u32, String)>, RepositoryError> {
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let select = Query::select()
            .columns([Partitions::Partition, Partitions::Owner])
            .from(Partitions::Table)
            .and_where(Expr::col(Partitions::Consumer).eq(consumer))
            .and_where(Expr::col(Partitions::Owner).is_not_null())
            .and_where(Expr::col(Partitions::LeaseUntil).gte(now_ms()))
            .to_owned();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.iter()
            .map(|row| {
                let row = HolderRow::from_query_result(row, "").map_err(storage_error)?;
                Ok((u32::try_from(row.partition).unwrap_or_default(), row.owner))
            })
            .collect()
    }

    /// Forgets inbox rows older than `age`: a message is not delivered again
    /// after its outbox row was purged.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn purge_inbox(&self, age: Duration) -> Result<u64, RepositoryError> {
        let cutoff = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.autonomous().await?;
        let delete = Query::delete()
            .from_table(Inbox::Table)
            .and_where(Expr::col(Inbox::AppliedAt).lt(cutoff))
            .to_owned();
        let deleted = execute(&session, &delete).await?;
        session.finish().await?;
        Ok(deleted)
    }

    /// Lets go of `consumer`'s partition `partition` if `owner` holds it, so
    /// another instance takes it at once (on shutdown).
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn let_go(
        &self,
        consumer: &str,
        partition: u32,
        owner: &str,
    ) -> Result<(), RepositoryError> {
        let session = self.database.autonomous().await?;
        let update = Query::update()
            .table(Partitions::Table)
            .value(Partitions::Owner, Option::<String>::None)
            .value(Partitions::LeaseUntil, 0_i64)
            .and_where(Expr::col(Partitions::Consumer).eq(consumer))
            .and_where(
                Expr::col(Partitions::Partition).eq(i32::try_from(partition).unwrap_or(i32::MAX)),
            )
            .and_where(Expr::col(Partitions::Owner).eq(owner))
            .to_owned();
        execute(&session, &update).await?;
        session.finish().await
    }

    /// Records in the running unit of work that `consumer` applies message
    /// `id`; `false` when it already did (a redelivery, or a message published
    /// again), which is then not applied again.
    ///
    /// # Errors
    /// When no unit of work of this database runs, or the table cannot be
    /// written.
    pub async fn first_delivery(&self, consumer: &str, id: Uuid) -> Result<bool, RepositoryError> {
        Ok(self.first_deliveries(consumer, &[id]).await?.contains(&id))
    }

    /// [`ConsumerStore::first_delivery`] for a batch, in one statement: the
    /// ids of `ids` that `consumer` had not applied before.
    ///
    /// # Errors
    /// As [`ConsumerStore::first_delivery`].
    pub async fn first_deliveries(
        &self,
        consumer: &str,
        ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, RepositoryError> {
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let session = self.database.writer().await?;
        let backend = session.get_database_backend();
        let now = now_ms();
        if backend == sea_orm::DbBackend::MySql {
            // No `RETURNING` to tell which rows were new: one at a time.
            let mut new = std::collections::HashSet::new();
            for id in ids {
                let insert = Query::insert()
                    .into_table(Inbox::Table)
                    .columns([Inbox::Consumer, Inbox::MessageId, Inbox::AppliedAt])
                    .values_panic([consumer.into(), (*id).into(), now.into()])
                    .to_owned();
                if insert_absent(&session, insert, [Inbox::Consumer, Inbox::MessageId]).await? {
                    new.insert(*id);
                }
            }
            session.finish().await?;
            return Ok(new);
        }
        let mut insert = Query::insert();
        insert.into_table(Inbox::Table).columns([
            Inbox::Consumer,
            Inbox::MessageId,
            Inbox::AppliedAt,
        ]);
        for id in ids {
            insert.values_panic([consumer.into(), (*id).into(), now.into()]);
        }
        insert
            .on_conflict(
                OnConflict::columns([Inbox::Consumer, Inbox::MessageId])
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(Inbox::MessageId);
        let rows = session
            .query_all_raw(StatementBuilder::build(&insert, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.iter()
            .map(|row| {
                InboxRow::from_query_result(row, "")
                    .map(|row| row.message_id)
                    .map_err(storage_error)
            })
            .collect()
    }

    /// Moves `consumer`'s partition `partition` to `position` in the running
    /// unit of work, if `owner` still holds it, and renews its lease for
    /// `lease` from now: `false` when another instance took it over, and the
    /// unit of work must then roll back, so nothing this owner applied is
    /// kept twice.
    ///
    /// # Errors
    /// When no unit of work of this database runs, or the table cannot be
    /// written.
    pub async fn advance(
        &self,
        consumer: &str,
        partition: u32,
        owner: &str,
        position: &str,
        lease: Duration,
    ) -> Result<bool, RepositoryError> {
        let until = now_ms().saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.writer().await?;
        let update = Query::update()
            .table(Partitions::Table)
            .value(Partitions::Position, position)
            .value(Partitions::LeaseUntil, until)
            .and_where(Expr::col(Partitions::Consumer).eq(consumer))
            .and_where(
                Expr::col(Partitions::Partition).eq(i32::try_from(partition).unwrap_or(i32::MAX)),
            )
            .and_where(Expr::col(Partitions::Owner).eq(owner))
            .to_owned();
        let moved = execute(&session, &update).await? == 1;
        session.finish().await?;
        Ok(moved)
    }

    /// Records in the running unit of work that `consumer` gave up on the
    /// entry at `position` of `partition`, and why.
    ///
    /// # Errors
    /// When no unit of work of this database runs, or the table cannot be
    /// written.
    pub async fn bury(
        &self,
        consumer: &str,
        partition: u32,
        position: &str,
        message_id: Option<Uuid>,
        message: &str,
        reason: &str,
    ) -> Result<(), RepositoryError> {
        let session = self.database.writer().await?;
        let insert = Query::insert()
            .into_table(DeadLetters::Table)
            .columns([
                DeadLetters::Consumer,
                DeadLetters::Partition,
                DeadLetters::Position,
                DeadLetters::MessageId,
                DeadLetters::Message,
                DeadLetters::Reason,
                DeadLetters::DeadAt,
            ])
            .values_panic([
                consumer.into(),
                i32::try_from(partition).unwrap_or(i32::MAX).into(),
                position.into(),
                message_id.map(|id| id.to_string()).into(),
                message.into(),
                reason.chars().take(2_000).collect::<String>().into(),
                now_ms().into(),
            ])
            .to_owned();
        execute(&session, &insert).await?;
        session.finish().await
    }

    /// One page of `consumer`'s dead letters, the newest first.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn dead_letters(
        &self,
        consumer: &str,
        page: PageRequest,
    ) -> Result<Page<ConsumerDeadLetter>, RepositoryError> {
        let select = dead_letter_columns()
            .and_where(Expr::col(DeadLetters::Consumer).eq(consumer))
            .order_by(DeadLetters::Id, Order::Desc)
            .limit(u64::from(page.per_page()))
            .offset(page.offset())
            .to_owned();
        let count = Query::select()
            .expr_as(Expr::col(DeadLetters::Id).count(), "members")
            .from(DeadLetters::Table)
            .and_where(Expr::col(DeadLetters::Consumer).eq(consumer))
            .to_owned();
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        let total = session
            .query_one_raw(StatementBuilder::build(&count, &backend))
            .await
            .map_err(storage_error)?
            .map(|row| MembersRow::from_query_result(&row, ""))
            .transpose()
            .map_err(storage_error)?
            .map_or(0, |row| row.members);
        session.finish().await?;
        let items = rows
            .iter()
            .map(|row| ConsumerDeadLetter::from_query_result(row, "").map_err(storage_error))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(
            items,
            page,
            u64::try_from(total).unwrap_or_default(),
        ))
    }

    /// `consumer`'s dead letter `id`, if it has one.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn dead_letter(
        &self,
        consumer: &str,
        id: i64,
    ) -> Result<Option<ConsumerDeadLetter>, RepositoryError> {
        let select = dead_letter_columns()
            .and_where(Expr::col(DeadLetters::Consumer).eq(consumer))
            .and_where(Expr::col(DeadLetters::Id).eq(id))
            .to_owned();
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let row = session
            .query_one_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(|row| ConsumerDeadLetter::from_query_result(&row, "").map_err(storage_error))
            .transpose()
    }

    /// Removes `consumer`'s dead letter `id` in the running unit of work:
    /// `false` when it is gone already (another retry took it).
    ///
    /// # Errors
    /// When no unit of work of this database runs, or the table cannot be
    /// written.
    pub async fn forget_dead_letter(
        &self,
        consumer: &str,
        id: i64,
    ) -> Result<bool, RepositoryError> {
        let session = self.database.writer().await?;
        let delete = Query::delete()
            .from_table(DeadLetters::Table)
            .and_where(Expr::col(DeadLetters::Consumer).eq(consumer))
            .and_where(Expr::col(DeadLetters::Id).eq(id))
            .to_owned();
        let removed = execute(&session, &delete).await?;
        session.finish().await?;
        Ok(removed == 1)
    }
}

fn dead_letter_columns() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([
            DeadLetters::Id,
            DeadLetters::Consumer,
            DeadLetters::Partition,
            DeadLetters::Position,
            DeadLetters::MessageId,
            DeadLetters::Message,
            DeadLetters::Reason,
            DeadLetters::DeadAt,
        ])
        .from(DeadLetters::Table)
        .to_owned()
}
