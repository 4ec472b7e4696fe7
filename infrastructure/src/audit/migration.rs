use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, pk_uuid, string_len, string_len_null, uuid};

/// Creates the audit trail's tables: an entry per command, and the aggregates
/// each one changed.
#[derive(Debug)]
pub(crate) struct CreateAuditTables;

impl MigrationName for CreateAuditTables {
    fn name(&self) -> &str {
        "m20261201_000002_create_strata_audit"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Audit::Table)
                    .if_not_exists()
                    .col(pk_uuid(Audit::Id))
                    .col(big_integer(Audit::AtMs))
                    .col(string_len(Audit::PrincipalKind, 16))
                    .col(string_len_null(Audit::Principal, 255))
                    .col(string_len(Audit::UseCase, 128))
                    .col(string_len(Audit::Outcome, 64))
                    .col(string_len(Audit::RequestId, 128))
                    .col(string_len(Audit::TraceId, 32))
                    .col(big_integer(Audit::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("strata_audit_at_ms")
                    .table(Audit::Table)
                    .col(Audit::AtMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .if_not_exists()
                    .col(uuid(Changes::AuditId))
                    .col(integer(Changes::Position))
                    .col(string_len(Changes::Kind, 64))
                    .col(string_len(Changes::AggregateId, 255))
                    .col(big_integer(Changes::VersionBefore))
                    .col(big_integer(Changes::VersionAfter))
                    .primary_key(Index::create().col(Changes::AuditId).col(Changes::Position))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("strata_audit_changes_aggregate")
                    .table(Changes::Table)
                    .col(Changes::AggregateId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Changes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Audit::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Audit {
    #[sea_orm(iden = "strata_audit")]
    Table,
    Id,
    AtMs,
    PrincipalKind,
    Principal,
    UseCase,
    Outcome,
    RequestId,
    TraceId,
    DurationMs,
}

#[derive(DeriveIden)]
enum Changes {
    #[sea_orm(iden = "strata_audit_changes")]
    Table,
    AuditId,
    Position,
    Kind,
    AggregateId,
    VersionBefore,
    VersionAfter,
}
