//! One way to run a service's migrations, with Strata's own tables included.
//!
//! A service lists only its own migrations in a sea-orm [`MigratorTrait`];
//! [`migrate_up`], [`migrate_down`] and [`migration_status`] run them together
//! with those of Strata's tables (the outbox, idempotency keys, the audit trail
//! and the ones to come), ordered by name, so a new framework table reaches every service
//! without a line changed in it.

use std::marker::PhantomData;

use sea_orm::DbErr;
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
    one_at_a_time(database, WithStrata::<M>::up(database.writer_pool(), None)).await
}

/// Undoes the newest `steps` applied migrations, newest first.
///
/// # Errors
/// When a migration's `down` fails.
pub async fn migrate_down<M: MigratorTrait>(database: &Database, steps: u32) -> Result<(), DbErr> {
    one_at_a_time(
        database,
        WithStrata::<M>::down(database.writer_pool(), Some(steps)),
    )
    .await
}

/// The PostgreSQL advisory lock migrations run under (any number; this one
/// spells "strata migrations" in hex, more or less).
const MIGRATION_LOCK: i64 = 0x5374_7261_7461_4D69;

/// Runs `migrating` while this process holds the database's migration lock,
/// on PostgreSQL: a transaction of its own takes it (waiting however long
/// another instance's migrations take) and ends after `migrating`, which
/// runs on the pool's other connections. SQLite's single writer needs none.
async fn one_at_a_time<T>(
    database: &Database,
    migrating: impl std::future::Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    if database.backend() != DbBackend::Postgres {
        return migrating.await;
    }
    let lock = database.writer_pool().begin().await?;
    lock.execute_unprepared("SET LOCAL lock_timeout = 0")
        .await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    let outcome = migrating.await;
    lock.commit().await?;
    outcome
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
