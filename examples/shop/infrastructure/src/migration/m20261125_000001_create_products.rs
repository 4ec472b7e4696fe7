use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, pk_uuid, string_len};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .if_not_exists()
                    .col(pk_uuid(Products::Id))
                    .col(string_len(Products::Name, 120))
                    .col(string_len(Products::Sku, 32).unique_key())
                    .col(big_integer(Products::PriceMinor))
                    .col(string_len(Products::Currency, 3))
                    .col(big_integer(Products::Stock))
                    .col(big_integer(Products::Version))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Products::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Name,
    Sku,
    PriceMinor,
    Currency,
    Stock,
    Version,
}
