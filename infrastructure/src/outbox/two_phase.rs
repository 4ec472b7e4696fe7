//! Two-phase transactional messages on the `strata_messages` table: the row
//! is the message's state and the check-back's marker at once.

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use strata_domain::ports::{EventEnvelope, MessageState, TransactionalMessages};
use strata_domain::{RepositoryError, Version};
use uuid::Uuid;

use super::{insert, now_ms};
use crate::database::execute;
use crate::db_error::storage_error;
use crate::{Database, Session};

/// [`TransactionalMessages`] in a service's database.
///
/// A message is prepared in a row of its own; the local transaction moves the
/// row from `prepared` to `committed` with a conditional update and stores the
/// message in the outbox beside it, so the commit is the submit. The
/// check-back ([`SeaOrmTransactionalMessages::check_back`]) moves a message
/// still `prepared` past its timeout to `failed` with the same kind of
/// update: whichever of the two commits first wins, and the other changes no
/// row — a late local transaction then fails and rolls back. On PostgreSQL
/// the loser waits on the winner's row lock; on SQLite writers take turns.
#[derive(Debug, Clone)]
pub struct SeaOrmTransactionalMessages {
    database: Database,
    timeout: Duration,
}

#[derive(Debug, FromQueryResult)]
struct MessageRow {
    id: Uuid,
    state: String,
    topic: String,
    message_key: String,
    event_type: String,
    payload: String,
    traceparent: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: Uuid,
}

/// What a check-back did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckBack {
    /// Messages whose local transaction had not committed in time.
    pub failed: usize,
}

impl SeaOrmTransactionalMessages {
    /// Messages in `database`; one prepared and not committed within
    /// `timeout` is failed by the next check-back.
    #[must_use]
    pub fn new(database: Database, timeout: Duration) -> Self {
        Self { database, timeout }
    }

    /// Fails up to `limit` messages still prepared past their timeout, each
    /// in a transaction of its own.
    ///
    /// # Errors
    /// When the table cannot be read or written.
    pub async fn check_back(&self, limit: u64) -> Result<CheckBack, RepositoryError> {
        let session = self.database.reader().await?;
        let due = Query::select()
            .column(Messages::Id)
            .from(Messages::Table)
            .and_where(Expr::col(Messages::State).eq(MessageState::Prepared.as_str()))
            .and_where(Expr::col(Messages::ResolveAfter).lt(now_ms()))
            .order_by(Messages::ResolveAfter, Order::Asc)
            .limit(limit)
            .to_owned();
        let rows = query_all(&session, &due).await?;
        session.finish().await?;
        let mut done = CheckBack::default();
        for row in rows {
            let id = IdRow::from_query_result(&row, "")
                .map_err(storage_error)?
                .id;
            let session = self.database.autonomous().await?;
            let failed =
                move_state(&session, id, MessageState::Prepared, MessageState::Failed).await?;
            session.finish().await?;
            if failed {
                tracing::warn!(message = %id, "a prepared message whose local transaction had not committed in time was failed");
                done.failed += 1;
            }
        }
        Ok(done)
    }

    /// Forgets resolved messages prepared more than `age` ago.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn purge(&self, age: Duration) -> Result<u64, RepositoryError> {
        let cutoff = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.autonomous().await?;
        let delete = Query::delete()
            .from_table(Messages::Table)
            .and_where(Expr::col(Messages::State).ne(MessageState::Prepared.as_str()))
            .and_where(Expr::col(Messages::PreparedAt).lt(cutoff))
            .to_owned();
        let deleted = execute(&session, &delete).await?;
        session.finish().await?;
        Ok(deleted)
    }

    async fn load(
        &self,
        session: &Session<'_>,
        id: Uuid,
    ) -> Result<Option<MessageRow>, RepositoryError> {
        let select = Query::select()
            .columns([
                Messages::Id,
                Messages::State,
                Messages::Topic,
                Messages::MessageKey,
                Messages::EventType,
                Messages::Payload,
                Messages::Traceparent,
            ])
            .from(Messages::Table)
            .and_where(Expr::col(Messages::Id).eq(id))
            .to_owned();
        let backend = session.get_database_backend();
        session
            .query_one_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?
            .map(|row| MessageRow::from_query_result(&row, ""))
            .transpose()
            .map_err(storage_error)
    }
}

async fn query_all(
    session: &Session<'_>,
    statement: &impl StatementBuilder,
) -> Result<Vec<sea_orm::QueryResult>, RepositoryError> {
    let backend = session.get_database_backend();
    session
        .query_all_raw(StatementBuilder::build(statement, &backend))
        .await
        .map_err(storage_error)
}

/// Moves message `id` from `from` to `to`: whether it was in `from`.
async fn move_state(
    session: &Session<'_>,
    id: Uuid,
    from: MessageState,
    to: MessageState,
) -> Result<bool, RepositoryError> {
    let update = Query::update()
        .table(Messages::Table)
        .value(Messages::State, to.as_str())
        .and_where(Expr::col(Messages::Id).eq(id))
        .and_where(Expr::col(Messages::State).eq(from.as_str()))
        .to_owned();
    Ok(execute(session, &update).await? == 1)
}

#[async_trait]
impl TransactionalMessages for SeaOrmTransactionalMessages {
    async fn prepare(&self, message: EventEnvelope) -> Result<(), RepositoryError> {
        let session = self.database.autonomous().await?;
        let trace = message.traceparent.clone().or_else(|| session.trace());
        let now = now_ms();
        let timeout = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
        let insert = Query::insert()
            .into_table(Messages::Table)
            .columns([
                Messages::Id,
                Messages::State,
                Messages::Topic,
                Messages::MessageKey,
                Messages::EventType,
                Messages::Payload,
                Messages::Traceparent,
                Messages::PreparedAt,
                Messages::ResolveAfter,
            ])
            .values_panic([
                message.id.into(),
                MessageState::Prepared.as_str().into(),
                message.aggregate_kind.into(),
                message.aggregate_id.into(),
                message.event_type.into(),
                message.payload.to_string().into(),
                trace.into(),
                now.into(),
                now.saturating_add(timeout).into(),
            ])
            .to_owned();
        execute(&session, &insert).await?;
        session.finish().await
    }

    async fn commit(&self, id: Uuid) -> Result<(), RepositoryError> {
        let mut session = self.database.writer().await?;
        // The conditional update first: on PostgreSQL it takes the row's lock,
        // so a check-back waits for this transaction, and this one for it.
        let committed = move_state(
            &session,
            id,
            MessageState::Prepared,
            MessageState::Committed,
        )
        .await?;
        if !committed {
            let found = self.load(&session, id).await?;
            session.finish().await?;
            return Err(match found {
                None => RepositoryError::NotFound {
                    kind: "message",
                    id: id.to_string(),
                },
                Some(_) => RepositoryError::Conflict {
                    kind: "message",
                    id: id.to_string(),
                    expected: Version::new(0),
                },
            });
        }
        let row = self
            .load(&session, id)
            .await?
            .ok_or_else(|| RepositoryError::NotFound {
                kind: "message",
                id: id.to_string(),
            })?;
        let payload = serde_json::from_str(&row.payload).map_err(RepositoryError::storage)?;
        let envelope = EventEnvelope {
            id: row.id,
            aggregate_kind: row.topic,
            aggregate_id: row.message_key,
            aggregate_version: 0,
            event_type: row.event_type,
            payload,
            traceparent: row.traceparent,
        };
        insert(&session, vec![envelope])
            .await
            .map_err(storage_error)?;
        session.mark_events_stored();
        session.finish().await
    }

    async fn state(&self, id: Uuid) -> Result<Option<MessageState>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = self.load(&session, id).await?;
        session.finish().await?;
        Ok(row.and_then(|row| MessageState::from_name(&row.state)))
    }
}

pub(crate) use migration::CreateMessagesTable;
use migration::Messages;

mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{big_integer, string_len, string_len_null, text, uuid};

    /// Creates `strata_messages`.
    #[derive(Debug)]
    pub(crate) struct CreateMessagesTable;

    impl MigrationName for CreateMessagesTable {
        fn name(&self) -> &str {
            "m20261203_000000_create_strata_messages"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateMessagesTable {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Messages::Table)
                        .if_not_exists()
                        .col(uuid(Messages::Id).primary_key())
                        .col(string_len(Messages::State, 16))
                        .col(string_len(Messages::Topic, 128))
                        .col(string_len(Messages::MessageKey, 128))
                        .col(string_len(Messages::EventType, 128))
                        .col(text(Messages::Payload))
                        .col(string_len_null(Messages::Traceparent, 64))
                        .col(big_integer(Messages::PreparedAt))
                        .col(big_integer(Messages::ResolveAfter))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("strata_messages_due")
                        .table(Messages::Table)
                        .col(Messages::State)
                        .col(Messages::ResolveAfter)
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(Messages::Table).to_owned())
                .await
        }
    }

    #[derive(DeriveIden)]
    pub(super) enum Messages {
        #[sea_orm(iden = "strata_messages")]
        Table,
        Id,
        State,
        Topic,
        MessageKey,
        EventType,
        Payload,
        Traceparent,
        PreparedAt,
        ResolveAfter,
    }
}
