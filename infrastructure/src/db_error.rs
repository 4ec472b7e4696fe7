use std::fmt;

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, PrimaryKeyTrait, SqlErr};
use strata_domain::{RepositoryError, Version};

/// Maps a sea-orm error met while writing a `kind` aggregate: a unique-constraint
/// violation becomes [`RepositoryError::Duplicate`] on `unique_key`, anything else
/// a storage failure.
#[must_use]
pub fn repository_error(
    error: DbErr,
    kind: &'static str,
    unique_key: &'static str,
) -> RepositoryError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => RepositoryError::Duplicate {
            kind,
            key: unique_key,
        },
        _ => RepositoryError::storage(error),
    }
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
        Err(error) => RepositoryError::storage(error),
    }
}
