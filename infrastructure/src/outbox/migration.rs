use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, pk_uuid, string, string_len, text};

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
}
