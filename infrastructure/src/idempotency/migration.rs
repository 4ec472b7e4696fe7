use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob_null, string_len};

/// Creates the `strata_idempotency_keys` table. Add it to your migrator before the
/// migrations of your own tables.
#[derive(Debug)]
pub struct CreateIdempotencyTable;

impl MigrationName for CreateIdempotencyTable {
    fn name(&self) -> &str {
        "m20260101_000001_create_strata_idempotency_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdempotencyTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Keys::Table)
                    .if_not_exists()
                    .col(string_len(Keys::Key, 512).primary_key())
                    .col(string_len(Keys::Fingerprint, 64))
                    .col(string_len(Keys::State, 16))
                    .col(blob_null(Keys::Result))
                    .col(big_integer(Keys::CreatedAt))
                    .col(big_integer(Keys::LockedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Keys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Keys {
    #[sea_orm(iden = "strata_idempotency_keys")]
    Table,
    Key,
    Fingerprint,
    State,
    Result,
    CreatedAt,
    LockedUntil,
}
