use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, string_len, string_len_null, text, text_null,
};

/// Creates the distributed-transaction tables: the coordinator's global
/// transactions and their branches, and the participants' barrier.
#[derive(Debug)]
pub struct CreateTccTables;

impl MigrationName for CreateTccTables {
    fn name(&self) -> &str {
        "m20261204_000000_create_strata_tcc"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTccTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Transactions::Table)
                    .if_not_exists()
                    .col(string_len(Transactions::Gid, 64).primary_key())
                    .col(string_len(Transactions::Kind, 8))
                    .col(string_len(Transactions::State, 16))
                    .col(big_integer(Transactions::TimeoutAt))
                    .col(big_integer(Transactions::NextRetryAt))
                    .col(integer(Transactions::Attempts).default(0))
                    .col(boolean(Transactions::Flagged).default(false))
                    .col(text_null(Transactions::Reason))
                    .col(text_null(Transactions::LastError))
                    .col(string_len_null(Transactions::LeaseOwner, 64))
                    .col(big_integer(Transactions::LeaseUntil).default(0))
                    .col(big_integer(Transactions::CreatedAt))
                    .col(big_integer(Transactions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("strata_tcc_transactions_due")
                    .table(Transactions::Table)
                    .col(Transactions::State)
                    .col(Transactions::NextRetryAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Branches::Table)
                    .if_not_exists()
                    .col(string_len(Branches::Gid, 64))
                    .col(string_len(Branches::BranchId, 16))
                    .col(integer(Branches::Position))
                    .col(text(Branches::Url))
                    .col(text(Branches::Payload))
                    .col(string_len(Branches::State, 16))
                    .col(integer(Branches::Attempts).default(0))
                    .col(text_null(Branches::LastError))
                    .col(big_integer(Branches::UpdatedAt))
                    .primary_key(Index::create().col(Branches::Gid).col(Branches::BranchId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Barrier::Table)
                    .if_not_exists()
                    .col(string_len(Barrier::Gid, 64))
                    .col(string_len(Barrier::BranchId, 16))
                    .col(string_len(Barrier::Op, 8))
                    .col(big_integer(Barrier::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Barrier::Gid)
                            .col(Barrier::BranchId)
                            .col(Barrier::Op),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("strata_tcc_barrier_created")
                    .table(Barrier::Table)
                    .col(Barrier::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Barrier::Table.into_iden(),
            Branches::Table.into_iden(),
            Transactions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub(crate) enum Transactions {
    #[sea_orm(iden = "strata_tcc_transactions")]
    Table,
    Gid,
    Kind,
    State,
    TimeoutAt,
    NextRetryAt,
    Attempts,
    Flagged,
    Reason,
    LastError,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Branches {
    #[sea_orm(iden = "strata_tcc_branches")]
    Table,
    Gid,
    BranchId,
    Position,
    Url,
    Payload,
    State,
    Attempts,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Barrier {
    #[sea_orm(iden = "strata_tcc_barrier")]
    Table,
    Gid,
    BranchId,
    Op,
    CreatedAt,
}
