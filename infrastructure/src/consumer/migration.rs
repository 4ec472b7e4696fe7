use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string_len, string_len_null, text, uuid};

/// Creates the consumers' tables: the instances running each consumer, who owns
/// each partition and where it stands, the messages each consumer applied, and
/// those it gave up on.
#[derive(Debug)]
pub struct CreateConsumerTables;

impl MigrationName for CreateConsumerTables {
    fn name(&self) -> &str {
        "m20261202_000001_create_strata_consumers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateConsumerTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Partitions::Table)
                    .if_not_exists()
                    .col(string_len(Partitions::Consumer, 200))
                    .col(integer(Partitions::Partition))
                    .col(string_len_null(Partitions::Owner, 64))
                    .col(big_integer(Partitions::LeaseUntil).default(0))
                    .col(string_len_null(Partitions::Position, 64))
                    .primary_key(
                        Index::create()
                            .col(Partitions::Consumer)
                            .col(Partitions::Partition),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .if_not_exists()
                    .col(string_len(Members::Consumer, 200))
                    .col(string_len(Members::Instance, 64))
                    .col(big_integer(Members::SeenUntil))
                    .primary_key(
                        Index::create()
                            .col(Members::Consumer)
                            .col(Members::Instance),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Inbox::Table)
                    .if_not_exists()
                    .col(string_len(Inbox::Consumer, 128))
                    .col(uuid(Inbox::MessageId))
                    .col(big_integer(Inbox::AppliedAt))
                    .primary_key(Index::create().col(Inbox::Consumer).col(Inbox::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(DeadLetters::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string_len(DeadLetters::Consumer, 128))
                    .col(integer(DeadLetters::Partition))
                    .col(string_len(DeadLetters::Position, 64))
                    .col(string_len_null(DeadLetters::MessageId, 36))
                    .col(text(DeadLetters::Message))
                    .col(text(DeadLetters::Reason))
                    .col(big_integer(DeadLetters::DeadAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeadLetters::Table.into_iden(),
            Inbox::Table.into_iden(),
            Members::Table.into_iden(),
            Partitions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub(crate) enum Partitions {
    #[sea_orm(iden = "strata_consumer_partitions")]
    Table,
    Consumer,
    Partition,
    Owner,
    LeaseUntil,
    Position,
}

#[derive(DeriveIden)]
pub(crate) enum Members {
    #[sea_orm(iden = "strata_consumer_members")]
    Table,
    Consumer,
    Instance,
    SeenUntil,
}

#[derive(DeriveIden)]
pub(crate) enum Inbox {
    #[sea_orm(iden = "strata_inbox")]
    Table,
    Consumer,
    MessageId,
    AppliedAt,
}

#[derive(DeriveIden)]
pub(crate) enum DeadLetters {
    #[sea_orm(iden = "strata_consumer_dead_letters")]
    Table,
    Id,
    Consumer,
    Partition,
    Position,
    MessageId,
    Message,
    Reason,
    DeadAt,
}
