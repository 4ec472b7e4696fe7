use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, string_len_null, uuid_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CatalogDays::Table)
                    .if_not_exists()
                    .col(integer(CatalogDays::Day).primary_key())
                    .col(big_integer(CatalogDays::ProductsAdded).default(0))
                    .col(big_integer(CatalogDays::PriceChanges).default(0))
                    .col(uuid_null(CatalogDays::LastChangedProduct))
                    .col(big_integer_null(CatalogDays::LastPriceMinor))
                    .col(string_len_null(CatalogDays::LastCurrency, 3))
                    .col(big_integer_null(CatalogDays::LastChangedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CatalogDays::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum CatalogDays {
    #[sea_orm(iden = "report_catalog_days")]
    Table,
    Day,
    ProductsAdded,
    PriceChanges,
    LastChangedProduct,
    LastPriceMinor,
    LastCurrency,
    LastChangedAt,
}
