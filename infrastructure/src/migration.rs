//! One way to run a service's migrations, with Strata's own tables included.
//!
//! A service lists only its own migrations in a sea-orm [`MigratorTrait`];
//! [`migrate_up`], [`migrate_down`] and [`migration_status`] run them together
//! with those of Strata's tables (the outbox, idempotency keys, the audit trail
//! and the ones to come), ordered by name, so a new framework table reaches every service
//! without a line changed in it.

use std::marker::PhantomData;

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};
use sea_orm_migration::{MigrationStatus, MigrationTrait, MigratorTrait};

use crate::Database;
use crate::audit::CreateAuditTables;
use crate::cache::CreateInvalidationJournal;
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
        Box::new(CreateInvalidationJournal),
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
/// start at once on one PostgreSQL or MySQL database migrate one after
/// another: the first applies them, the others then find them applied.
///
/// # Errors
/// When a migration fails; its changes are not kept.
pub async fn migrate_up<M: MigratorTrait>(database: &Database) -> Result<(), DbErr> {
    match database.backend() {
        DbBackend::Postgres => {
            let migrating = locked(database).await?;
            WithStrata::<M>::up(&migrating, None).await?;
            migrating.commit().await
        }
        DbBackend::MySql => {
            let migrating = named_lock(database).await?;
            let migrated = WithStrata::<M>::up(&migrating, None).await;
            unlock(migrating, migrated).await
        }
        _ => WithStrata::<M>::up(database.writer_pool(), None).await,
    }
}

/// Undoes the newest `steps` applied migrations, newest first.
///
/// # Errors
/// When a migration's `down` fails.
pub async fn migrate_down<M: MigratorTrait>(database: &Database, steps: u32) -> Result<(), DbErr> {
    match database.backend() {
        DbBackend::Postgres => {
            let migrating = locked(database).await?;
            WithStrata::<M>::down(&migrating, Some(steps)).await?;
            migrating.commit().await
        }
        DbBackend::MySql => {
            let migrating = named_lock(database).await?;
            let migrated = WithStrata::<M>::down(&migrating, Some(steps)).await;
            unlock(migrating, migrated).await
        }
        _ => WithStrata::<M>::down(database.writer_pool(), Some(steps)).await,
    }
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

/// The name of MySQL's lock migrations run under, held by one connection:
/// this prefix and a digest of the database's name, as a named lock is the
/// whole server's and its name at most 64 characters.
const MYSQL_MIGRATION_LOCK: &str = "CONCAT('strata_migrations:', SHA1(DATABASE()))";

/// A connection of `database` (in a transaction, which only keeps it apart
/// from the pool: MySQL's DDL commits as it goes) holding the MySQL lock
/// migrations run under, taken however long another instance holds it.
async fn named_lock(database: &Database) -> Result<DatabaseTransaction, DbErr> {
    let migrating = database.writer_pool().begin().await?;
    // A year: as good as forever, in the units every MySQL and MariaDB take.
    let granted = migrating
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            format!("SELECT GET_LOCK({MYSQL_MIGRATION_LOCK}, 31536000) AS granted"),
        ))
        .await?
        .and_then(|row| row.try_get::<Option<i64>>("", "granted").ok().flatten());
    if granted == Some(1) {
        Ok(migrating)
    } else {
        Err(DbErr::Custom(
            "the migration lock was not granted".to_owned(),
        ))
    }
}

/// Lets the next instance in, whether `migrated` went well or not — the
/// lock belongs to the connection, which goes back to the pool — and
/// answers `migrated`.
async fn unlock(migrating: DatabaseTransaction, migrated: Result<(), DbErr>) -> Result<(), DbErr> {
    let released = migrating
        .execute_raw(Statement::from_string(
            DbBackend::MySql,
            format!("SELECT RELEASE_LOCK({MYSQL_MIGRATION_LOCK})"),
        ))
        .await;
    migrated?;
    released?;
    migrating.commit().await
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
