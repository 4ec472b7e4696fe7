use std::fmt;

use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DbErr, EntityTrait, PrimaryKeyTrait, RuntimeErr, SqlErr,
};
use strata_domain::{RepositoryError, Version};

/// Maps any sea-orm error: [`RepositoryError::Busy`] when the database could not
/// answer in time — no free connection, a lock not granted (SQLite busy,
/// PostgreSQL's or MySQL's lock timeout), a deadlock or serialization failure the engine
/// broke — so the client is told to retry later (503) rather than that the server
/// failed; otherwise a storage failure.
#[must_use]
pub fn storage_error(error: DbErr) -> RepositoryError {
    if is_busy(&error) {
        RepositoryError::Busy(Box::new(error))
    } else {
        RepositoryError::storage(error)
    }
}

/// Whether `error` means "busy now, may succeed later".
pub(crate) fn is_busy(error: &DbErr) -> bool {
    if matches!(error, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)) {
        return true;
    }
    match sqlx_error(error) {
        Some(sea_orm::sqlx::Error::PoolTimedOut) => true,
        Some(sea_orm::sqlx::Error::Database(database)) => {
            let code = database.code();
            let code = code.as_deref().unwrap_or_default();
            match error_backend(database.as_ref()) {
                // 5 SQLITE_BUSY and 6 SQLITE_LOCKED, whatever their extended code.
                Backend::Sqlite => code
                    .parse::<i32>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
                // lock_not_available, deadlock_detected, serialization_failure
                Backend::Postgres => matches!(code, "55P03" | "40P01" | "40001"),
                // ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK
                #[cfg(feature = "mysql")]
                Backend::MySql(number) => matches!(number, 1205 | 1213),
            }
        }
        _ => false,
    }
}

/// Whether `error` is the engine breaking a deadlock by rolling back the
/// transaction it failed in (PostgreSQL's `deadlock_detected`, MySQL's
/// `ER_LOCK_DEADLOCK`), which may then be run again whole.
pub(crate) fn is_deadlock(error: &RepositoryError) -> bool {
    let RepositoryError::Busy(source) = error else {
        return false;
    };
    match source.downcast_ref::<DbErr>().and_then(sqlx_error) {
        Some(sea_orm::sqlx::Error::Database(database)) => match error_backend(database.as_ref()) {
            Backend::Postgres => database.code().as_deref() == Some("40P01"),
            #[cfg(feature = "mysql")]
            Backend::MySql(number) => number == 1213,
            Backend::Sqlite => false,
        },
        _ => false,
    }
}

/// The driver's error under a sea-orm error, when there is one.
fn sqlx_error(error: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match error {
        DbErr::Conn(RuntimeErr::SqlxError(sqlx))
        | DbErr::Exec(RuntimeErr::SqlxError(sqlx))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => Some(sqlx.as_ref()),
        _ => None,
    }
}

enum Backend {
    Sqlite,
    Postgres,
    /// With the server's error number.
    #[cfg(feature = "mysql")]
    MySql(u16),
}

fn error_backend(error: &dyn sea_orm::sqlx::error::DatabaseError) -> Backend {
    if error
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return Backend::Sqlite;
    }
    #[cfg(feature = "mysql")]
    if let Some(mysql) = error.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        return Backend::MySql(mysql.number());
    }
    Backend::Postgres
}

/// Maps a sea-orm error met while writing a `kind` aggregate: a unique-constraint
/// violation becomes [`RepositoryError::Duplicate`] naming the field it was
/// about, anything else a storage failure.
///
/// `unique` lists the table's unique columns with the field each one is to its
/// clients, `("sku", "sku")`, `("email_lower", "email")`. The violated column is
/// read from the engine's error (SQLite names `table.column`, PostgreSQL's detail
/// `Key (column)=...`); a table with one unique column needs no reading.
#[must_use]
pub fn repository_error(
    error: DbErr,
    kind: &'static str,
    unique: &[(&'static str, &'static str)],
) -> RepositoryError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => {
            let columns = violated_columns(&error, &message);
            let key = unique
                .iter()
                .find(|(column, _)| columns.iter().any(|violated| violated == column))
                .or_else(|| unique.first().filter(|_| unique.len() == 1))
                .map_or("unknown", |(_, field)| field);
            RepositoryError::Duplicate { kind, key }
        }
        _ => storage_error(error),
    }
}

/// The columns a unique-constraint violation was about, as the engine reported.
fn violated_columns(error: &DbErr, message: &str) -> Vec<String> {
    // SQLite: "UNIQUE constraint failed: products.sku[, products.other]".
    if let Some((_, list)) = message.split_once("constraint failed: ") {
        return list
            .split(',')
            .map(|qualified| {
                let qualified = qualified.trim();
                qualified
                    .rsplit_once('.')
                    .map_or(qualified, |(_, column)| column)
                    .to_owned()
            })
            .collect();
    }
    // MySQL: "Duplicate entry '...' for key 'sku'" (MySQL 8 writes
    // 'products.sku'): the index's name, which for a unique column is the
    // column's. The entry is the client's and is never kept.
    if let Some((_, key)) = message.rsplit_once(" for key '") {
        let index = key.trim_end_matches('\'');
        return vec![
            index
                .rsplit_once('.')
                .map_or(index, |(_, name)| name)
                .to_owned(),
        ];
    }
    // PostgreSQL: the detail "Key (sku)=(...) already exists."; the value is
    // the client's and is never kept.
    let detail = match error {
        DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
            match sqlx.as_ref() {
                sea_orm::sqlx::Error::Database(database) => database
                    .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                    .and_then(|postgres| postgres.detail().map(str::to_owned)),
                _ => None,
            }
        }
        _ => None,
    };
    detail
        .as_deref()
        .and_then(|detail| detail.strip_prefix("Key ("))
        .and_then(|rest| rest.split_once(")="))
        .map(|(columns, _)| {
            columns
                .split(',')
                .map(|column| column.trim().trim_matches('"').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Why a conditional update of a `kind` aggregate changed no row: it was saved by
/// someone else since `expected` ([`RepositoryError::Conflict`]), or it does not
/// exist ([`RepositoryError::NotFound`]); a failure to look is a storage error.
pub async fn missing_or_stale<E>(
    connection: &impl ConnectionTrait,
    id: <E::PrimaryKey as PrimaryKeyTrait>::ValueType,
    kind: &'static str,
    expected: Version,
) -> RepositoryError
where
    E: EntityTrait,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: fmt::Display + Clone,
{
    let shown = id.to_string();
    match E::find_by_id(id).one(connection).await {
        Ok(None) => RepositoryError::NotFound { kind, id: shown },
        Ok(Some(_)) => RepositoryError::Conflict {
            kind,
            id: shown,
            expected,
        },
        Err(error) => storage_error(error),
    }
}
