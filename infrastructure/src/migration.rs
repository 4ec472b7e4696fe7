//! One way to run a service's migrations, with Strata's own tables included.
//!
//! A service lists only its own migrations in a sea-orm [`MigratorTrait`];
//! [`migrate_up`], [`migrate_down`] and [`migration_status`] run them together
//! with those of Strata's tables (the outbox, idempotency keys, the audit trail
//! and the ones to come), ordered by name, so a new framework table reaches every service
//! without a line changed in it.

use std::marker::PhantomData;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use sea_orm_migration::{MigrationStatus, MigrationTrait, MigratorTrait};

use crate::Database;
use crate::audit::CreateAuditTables;
use crate::consumer::CreateConsumerTables;
use crate::idempotency::{CreateIdempotencyTable, FenceIdempotencyKeys};
use crate::outbox::{CreateMessagesTable, CreateOutboxTable, CreateReplayTable, RelayOutboxTable};
use crate::tcc::CreateTccTables;

/// Strata's own migrations, oldest first.
#[must_use]
pub fn strata_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateOutboxTable),
        Box::new(CreateIdempotencyTable),
        Box::new(FenceIdempotencyKeys),
        Box::new(CreateAuditTables),
        Box::new(RelayOutboxTable),
        Box::new(CreateConsumerTables),
        Box::new(CreateMessagesTable),
        Box::new(CreateTccTables),
        Box::new(CreateReplayTable),
    ]
}

/// A service's migrations `M` with Strata's added, ordered by name (migration
/// names start with their date, so this is the order they were written in).
#[derive(Debug)]
pub struct WithStrata<M>(PhantomData<fn() -> M>);

#[async_trait::async_trait]
impl<M: MigratorTrait> MigratorTrait for WithStrata<M> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = strata_migrations();
        all.extend(M::migrations());
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    fn migration_table_name() -> sea_orm::DynIden {
        M::migration_table_name()
    }
}

/// Applies every migration of `M` and Strata not applied yet. Instances that
/// start at once on one PostgreSQL database migrate one after another: the
/// first applies them, the others then find them applied.
///
/// # Errors
/// When a migration fails; its changes are not kept.
pub async fn migrate_up<M: MigratorTrait>(database: &Database) -> Result<(), DbErr> {
    if database.backend() != DbBackend::Postgres {
        return WithStrata::<M>::up(database.writer_pool(), None).await;
    }
    let migrating = locked(database).await?;
    WithStrata::<M>::up(&migrating, None).await?;
    migrating.commit().await
}

/// Undoes the newest `steps` applied migrations, newest first.
///
/// # Errors
/// When a migration's `down` fails.
pub async fn migrate_down<M: MigratorTrait>(database: &Database, steps: u32) -> Result<(), DbErr> {
    if database.backend() != DbBackend::Postgres {
        return WithStrata::<M>::down(database.writer_pool(), Some(steps)).await;
    }
    let migrating = locked(database).await?;
    WithStrata::<M>::down(&migrating, Some(steps)).await?;
    migrating.commit().await
}

/// The PostgreSQL advisory lock migrations run under (any number; this one
/// spells "StrataMi" in ASCII).
const MIGRATION_LOCK: i64 = 0x5374_7261_7461_4D69;

/// A PostgreSQL transaction holding the database's migration lock, taken
/// however long another instance's migrations hold it. The migrations run
/// in it (PostgreSQL's DDL is transactional, so they apply whole or not at
/// all) and its commit lets the next instance in, which finds them applied.
async fn locked(database: &Database) -> Result<DatabaseTransaction, DbErr> {
    let migrating = database.writer_pool().begin().await?;
    migrating
        .execute_unprepared("SET LOCAL lock_timeout = 0")
        .await?;
    migrating
        .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    // The migrations' own statements wait no longer than any other's.
    migrating.execute_unprepared("RESET lock_timeout").await?;
    Ok(migrating)
}

/// Every migration of `M` and Strata, in the order they apply, with whether it
/// has been applied.
///
/// # Errors
/// When the migration table cannot be read.
pub async fn migration_status<M: MigratorTrait>(
    database: &Database,
) -> Result<Vec<(String, bool)>, DbErr> {
    Ok(
        WithStrata::<M>::get_migration_with_status(database.writer_pool())
            .await?
            .into_iter()
            .map(|migration| {
                (
                    migration.name().to_owned(),
                    migration.status() == MigrationStatus::Applied,
                )
            })
            .collect(),
    )
}
