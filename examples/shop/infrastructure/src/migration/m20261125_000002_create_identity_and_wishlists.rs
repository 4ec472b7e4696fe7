use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, boolean, pk_uuid, string_len, text, uuid};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_uuid(Users::Id))
                    .col(string_len(Users::Email, 254).unique_key())
                    .col(string_len(Users::PasswordHash, 255))
                    .col(string_len(Users::Role, 16))
                    .col(big_integer(Users::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .if_not_exists()
                    .col(string_len(RefreshTokens::TokenHash, 64).primary_key())
                    .col(uuid(RefreshTokens::Family))
                    .col(uuid(RefreshTokens::UserId))
                    .col(big_integer(RefreshTokens::ExpiresAt))
                    .col(boolean(RefreshTokens::Used))
                    .col(boolean(RefreshTokens::Revoked))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_by_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::Family)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Wishlists::Table)
                    .if_not_exists()
                    .col(pk_uuid(Wishlists::Id))
                    .col(uuid(Wishlists::Owner))
                    .col(string_len(Wishlists::Name, 80))
                    .col(text(Wishlists::Products))
                    .col(big_integer(Wishlists::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("wishlists_by_owner")
                    .table(Wishlists::Table)
                    .col(Wishlists::Owner)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Wishlists::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    Version,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    Family,
    UserId,
    ExpiresAt,
    Used,
    Revoked,
}

#[derive(DeriveIden)]
enum Wishlists {
    Table,
    Id,
    Owner,
    Name,
    Products,
    Version,
}
