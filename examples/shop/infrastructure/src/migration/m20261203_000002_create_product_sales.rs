use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string_len, uuid};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProductSales::Table)
                    .if_not_exists()
                    .col(integer(ProductSales::Day))
                    .col(uuid(ProductSales::Product))
                    .col(string_len(ProductSales::Currency, 3))
                    .col(big_integer(ProductSales::Units).default(0))
                    .col(big_integer(ProductSales::RevenueMinor).default(0))
                    .primary_key(
                        Index::create()
                            .col(ProductSales::Day)
                            .col(ProductSales::Product)
                            .col(ProductSales::Currency),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProductSales::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum ProductSales {
    #[sea_orm(iden = "report_product_sales")]
    Table,
    Day,
    Product,
    Currency,
    Units,
    RevenueMinor,
}
