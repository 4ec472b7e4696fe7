use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, pk_uuid, string, string_len, string_len_null, text,
    text_null,
};

/// Creates the `strata_outbox` table.
#[derive(Debug)]
pub struct CreateOutboxTable;

impl MigrationName for CreateOutboxTable {
    fn name(&self) -> &str {
        // Dated before any application migration so it sorts first.
        "m20260101_000000_create_strata_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutboxTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StrataOutbox::Table)
                    .if_not_exists()
                    .col(pk_uuid(StrataOutbox::Id))
                    .col(string_len(StrataOutbox::AggregateKind, 64))
                    .col(string(StrataOutbox::AggregateId))
                    .col(big_integer(StrataOutbox::AggregateVersion))
                    .col(string_len(StrataOutbox::EventType, 128))
                    .col(text(StrataOutbox::Payload))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StrataOutbox::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum StrataOutbox {
    Table,
    Id,
    AggregateKind,
    AggregateId,
    AggregateVersion,
    EventType,
    Payload,
    RecordedAt,
    Attempts,
    NextAttemptAt,
    ClaimedBy,
    ClaimedUntil,
    PublishedAt,
    DeadAt,
    LastError,
    Traceparent,
}

/// Gives the outbox what its relay needs: when each event was recorded, its
/// publishing attempts and backoff, the relay instance holding it and until
/// when, when it was published or dead-lettered and why, and the trace it
/// belongs to.
#[derive(Debug)]
pub struct RelayOutboxTable;

impl MigrationName for RelayOutboxTable {
    fn name(&self) -> &str {
        "m20261202_000000_relay_strata_outbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RelayOutboxTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        for column in [
            big_integer(StrataOutbox::RecordedAt).default(0).to_owned(),
            integer(StrataOutbox::Attempts).default(0).to_owned(),
            big_integer(StrataOutbox::NextAttemptAt)
                .default(0)
                .to_owned(),
            string_len_null(StrataOutbox::ClaimedBy, 64),
            big_integer_null(StrataOutbox::ClaimedUntil),
            big_integer_null(StrataOutbox::PublishedAt),
            big_integer_null(StrataOutbox::DeadAt),
            text_null(StrataOutbox::LastError),
            string_len_null(StrataOutbox::Traceparent, 64),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(StrataOutbox::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Events stored before the relay existed were recorded no later than
        // now; their age counts from here.
        manager
            .exec_stmt(
                Query::update()
                    .table(StrataOutbox::Table)
                    .value(StrataOutbox::RecordedAt, super::now_ms())
                    .to_owned(),
            )
            .await?;
        // Partial indexes over the rows not published yet on SQLite and
        // PostgreSQL: a relay's claim never walks the published rows kept for
        // the retention, however many there are. MySQL has no partial
        // indexes: there the unpublished come first in each index, so a claim
        // still seeks straight to them.
        let connection = manager.get_connection();
        let partial = connection.get_database_backend() != sea_orm::DbBackend::MySql;
        let (lead, predicate) = if partial {
            ("", " WHERE published_at IS NULL")
        } else {
            ("published_at, ", "")
        };
        connection
            .execute_unprepared(&format!(
                "CREATE INDEX {PENDING_INDEX} ON strata_outbox ({lead}id){predicate}"
            ))
            .await?;
        connection
            .execute_unprepared(&format!(
                "CREATE INDEX {AGGREGATE_INDEX} ON strata_outbox \
                 ({lead}aggregate_kind, aggregate_id, aggregate_version, id){predicate}"
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PUBLISHED_INDEX)
                    .table(StrataOutbox::Table)
                    .col(StrataOutbox::PublishedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [PENDING_INDEX, AGGREGATE_INDEX, PUBLISHED_INDEX] {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(StrataOutbox::Table)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            StrataOutbox::RecordedAt,
            StrataOutbox::Attempts,
            StrataOutbox::NextAttemptAt,
            StrataOutbox::ClaimedBy,
            StrataOutbox::ClaimedUntil,
            StrataOutbox::PublishedAt,
            StrataOutbox::DeadAt,
            StrataOutbox::LastError,
            StrataOutbox::Traceparent,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(StrataOutbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

const PENDING_INDEX: &str = "strata_outbox_pending";
const AGGREGATE_INDEX: &str = "strata_outbox_pending_by_aggregate";
const PUBLISHED_INDEX: &str = "strata_outbox_published";
