use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, pk_uuid, string_len, string_len_null, text, uuid};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(pk_uuid(Orders::Id))
                    .col(uuid(Orders::Customer))
                    .col(string_len(Orders::Status, 16))
                    .col(string_len_null(Orders::Reason, 32))
                    .col(big_integer(Orders::TotalMinor))
                    .col(string_len(Orders::Currency, 3))
                    .col(text(Orders::Lines))
                    .col(big_integer(Orders::PlacedAt))
                    .col(big_integer(Orders::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_by_customer")
                    .table(Orders::Table)
                    .col(Orders::Customer)
                    .col(Orders::PlacedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_by_status")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::PlacedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    Customer,
    Status,
    Reason,
    TotalMinor,
    Currency,
    Lines,
    PlacedAt,
    Version,
}
