//! The invalidation journal in the `strata_cache_invalidations` table.

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use strata_domain::RepositoryError;
use strata_domain::ports::{InvalidationJournal, OwedInvalidation};
use uuid::Uuid;

use crate::Database;
use crate::db_error::storage_error;
use crate::outbox::now_ms;

/// Ids settled per statement: well under every engine's bound on parameters.
const SETTLE_CHUNK: usize = 500;

/// The [`InvalidationJournal`] in a service's database: an entry is a row
/// written in the unit of work whose changes made the entries stale, deleted
/// once they were dropped from the cache.
#[derive(Debug, Clone)]
pub struct SeaOrmInvalidationJournal {
    database: Database,
}

impl SeaOrmInvalidationJournal {
    /// The journal in `database`, the database of the units of work that
    /// write to it.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait]
impl InvalidationJournal for SeaOrmInvalidationJournal {
    async fn record(&self, keys: &[String], tags: &[String]) -> Result<Uuid, RepositoryError> {
        let id = Uuid::now_v7();
        let row = entity::ActiveModel {
            id: Set(id),
            recorded_at: Set(now_ms()),
            keys: Set(serde_json::to_string(keys).map_err(RepositoryError::storage)?),
            tags: Set(serde_json::to_string(tags).map_err(RepositoryError::storage)?),
        };
        let session = self.database.writer().await?;
        entity::Entity::insert(row)
            .exec_without_returning(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(id)
    }

    async fn settle(&self, ids: &[Uuid]) -> Result<(), RepositoryError> {
        if ids.is_empty() {
            return Ok(());
        }
        let session = self.database.autonomous().await?;
        for chunk in ids.chunks(SETTLE_CHUNK) {
            entity::Entity::delete_many()
                .filter(entity::Column::Id.is_in(chunk.iter().copied()))
                .exec(&session)
                .await
                .map_err(storage_error)?;
        }
        session.finish().await
    }

    async fn owed(
        &self,
        age: Duration,
        limit: u64,
    ) -> Result<Vec<OwedInvalidation>, RepositoryError> {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(age);
        let session = self.database.reader().await?;
        let rows = entity::Entity::find()
            .filter(entity::Column::RecordedAt.lte(cutoff))
            .order_by_asc(entity::Column::RecordedAt)
            .order_by_asc(entity::Column::Id)
            .limit(limit)
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(rows.into_iter().map(owed).collect())
    }
}

/// A row as an owed invalidation. A row whose lists do not read (written by
/// hand, say) owes nothing and is settled with the rest.
fn owed(row: entity::Model) -> OwedInvalidation {
    let list = |text: &str| {
        serde_json::from_str::<Vec<String>>(text).unwrap_or_else(|error| {
            tracing::warn!(id = %row.id, error = %error, "an owed cache invalidation does not read; dropping it");
            Vec::new()
        })
    };
    OwedInvalidation {
        id: row.id,
        keys: list(&row.keys),
        tags: list(&row.tags),
    }
}

mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "strata_cache_invalidations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub recorded_at: i64,
        pub keys: String,
        pub tags: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod migration {
    use sea_orm_migration::prelude::*;
    use sea_orm_migration::schema::{big_integer, pk_uuid, text};

    /// Creates `strata_cache_invalidations`, the invalidation journal.
    #[derive(Debug)]
    pub(crate) struct CreateInvalidationJournal;

    impl MigrationName for CreateInvalidationJournal {
        fn name(&self) -> &str {
            "m20261207_000000_create_strata_cache_invalidations"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateInvalidationJournal {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table(Journal::Table)
                        .if_not_exists()
                        .col(pk_uuid(Journal::Id))
                        .col(big_integer(Journal::RecordedAt))
                        .col(text(Journal::Keys))
                        .col(text(Journal::Tags))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name("strata_cache_invalidations_recorded_at")
                        .table(Journal::Table)
                        .col(Journal::RecordedAt)
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table(Journal::Table).to_owned())
                .await
        }
    }

    #[derive(DeriveIden)]
    enum Journal {
        #[sea_orm(iden = "strata_cache_invalidations")]
        Table,
        Id,
        RecordedAt,
        Keys,
        Tags,
    }
}
