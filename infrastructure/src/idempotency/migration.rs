use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob_null, string_len};

/// Creates the `strata_idempotency_keys` table.
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

/// Fences the keys: each claim gets a token that storing a result or freeing the
/// key must present, and the purge job finds expired keys by their age.
#[derive(Debug)]
pub(crate) struct FenceIdempotencyKeys;

impl MigrationName for FenceIdempotencyKeys {
    fn name(&self) -> &str {
        "m20261201_000001_fence_strata_idempotency_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FenceIdempotencyKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Keys::Table)
                    .add_column(string_len(Keys::ClaimToken, 64).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CREATED_AT_INDEX)
                    .table(Keys::Table)
                    .col(Keys::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(CREATED_AT_INDEX)
                    .table(Keys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Keys::Table)
                    .drop_column(Keys::ClaimToken)
                    .to_owned(),
            )
            .await
    }
}

const CREATED_AT_INDEX: &str = "strata_idempotency_keys_created_at";

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
    ClaimToken,
}
