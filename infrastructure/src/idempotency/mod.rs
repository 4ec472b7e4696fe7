//! Idempotency keys in the `strata_idempotency_keys` table.

mod entity;
mod migration;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use strata_domain::RepositoryError;
use strata_domain::ports::{Claim, IdempotencyStore};

pub use migration::CreateIdempotencyTable;

use self::entity::{ActiveModel, Column, Entity as Keys};
use crate::Database;

/// How long a completed request is remembered by its key; a key older than this
/// is processed as new.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// The [`IdempotencyStore`] on a database table. Claims run in a transaction of
/// their own; results are stored in the running unit of work.
#[derive(Debug, Clone)]
pub struct SeaOrmIdempotencyStore {
    database: Database,
    retention: Duration,
}

impl SeaOrmIdempotencyStore {
    /// Keys in `database`, remembered for [`IDEMPOTENCY_RETENTION`].
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self {
            database,
            retention: IDEMPOTENCY_RETENTION,
        }
    }

    /// The same store remembering keys for `retention` instead.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO),
    )
}

#[async_trait]
impl IdempotencyStore for SeaOrmIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let now = now_millis();
        let fresh = || ActiveModel {
            key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.to_owned()),
            state: Set(IN_PROGRESS.to_owned()),
            result: Set(None),
            created_at: Set(now),
            locked_until: Set(now.saturating_add(millis(lease))),
        };
        let inserted = Keys::insert(fresh())
            .on_conflict(OnConflict::column(Column::Key).do_nothing().to_owned())
            .exec_without_returning(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        let claim = if inserted == 1 {
            Claim::Acquired
        } else {
            let row = Keys::find_by_id(key.to_owned())
                .one(&*session)
                .await
                .map_err(RepositoryError::storage)?;
            match row {
                // Freed between our insert and read: try once more next time.
                None => Claim::InProgress,
                Some(row) if row.created_at.saturating_add(millis(self.retention)) <= now => {
                    // Past retention the key is forgotten: this is a new request.
                    let replaced = Keys::update_many()
                        .set(fresh())
                        .filter(Column::Key.eq(key))
                        .filter(Column::CreatedAt.eq(row.created_at))
                        .exec(&*session)
                        .await
                        .map_err(RepositoryError::storage)?;
                    if replaced.rows_affected == 1 {
                        Claim::Acquired
                    } else {
                        Claim::InProgress
                    }
                }
                Some(row) if row.fingerprint != fingerprint => Claim::Mismatch,
                Some(row) if row.state == COMPLETED => {
                    Claim::Completed(row.result.unwrap_or_default())
                }
                Some(row) if row.locked_until > now => Claim::InProgress,
                Some(row) => {
                    // The holder's lease ran out without completing: it died. Take
                    // over, unless another retry just did.
                    let taken = Keys::update_many()
                        .col_expr(
                            Column::LockedUntil,
                            Expr::value(now.saturating_add(millis(lease))),
                        )
                        .filter(Column::Key.eq(key))
                        .filter(Column::State.eq(IN_PROGRESS))
                        .filter(Column::LockedUntil.eq(row.locked_until))
                        .exec(&*session)
                        .await
                        .map_err(RepositoryError::storage)?;
                    if taken.rows_affected == 1 {
                        Claim::Acquired
                    } else {
                        Claim::InProgress
                    }
                }
            }
        };
        session.finish().await.map_err(RepositoryError::storage)?;
        Ok(claim)
    }

    async fn complete(&self, key: &str, result: &[u8]) -> Result<(), RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        Keys::update_many()
            .col_expr(Column::State, Expr::value(COMPLETED))
            .col_expr(Column::Result, Expr::value(result.to_vec()))
            .filter(Column::Key.eq(key))
            .exec(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)
    }

    async fn release(&self, key: &str) -> Result<(), RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        Keys::delete_many()
            .filter(Column::Key.eq(key))
            .filter(Column::State.eq(IN_PROGRESS))
            .exec(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)
    }
}
