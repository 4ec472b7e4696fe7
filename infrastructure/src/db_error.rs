use sea_orm::{DbErr, SqlErr};
use strata_domain::RepositoryError;

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
