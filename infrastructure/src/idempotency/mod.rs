//! Idempotency keys in the `strata_idempotency_keys` table.

mod entity;
mod migration;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryTrait, Set};
use strata_domain::RepositoryError;
use strata_domain::ports::{Claim, ClaimToken, Clock, Completion, IdempotencyStore, SystemClock};

pub(crate) use migration::CreateIdempotencyTable;
pub(crate) use migration::FenceIdempotencyKeys;

use self::entity::{ActiveModel, Column, Entity as Keys, Model};
use crate::Database;
use crate::database::insert_absent;
use crate::db_error::storage_error;

/// How long a completed request is remembered by its key; a key older than this
/// is processed as new.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// The [`IdempotencyStore`] on a database table.
///
/// Claims and releases are single statements committed on their own
/// ([`Database::autocommit`]): one round trip each, and SQLite's write lock
/// held only while the statement runs. A claim reads first, so a duplicate of
/// a request that is still running is told so at once, even while that
/// request holds SQLite's write lock. Results are stored in the unit of work
/// running on the calling task — it must be a unit of work of this store's
/// database, so the result commits with the side effect — fenced by the
/// claim's token.
#[derive(Clone)]
pub struct SeaOrmIdempotencyStore {
    database: Database,
    retention: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SeaOrmIdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeaOrmIdempotencyStore")
            .field("database", &self.database)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl SeaOrmIdempotencyStore {
    /// Keys in `database`, remembered for [`IDEMPOTENCY_RETENTION`], on the
    /// machine's clock.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self {
            database,
            retention: IDEMPOTENCY_RETENTION,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same store remembering keys for `retention` instead.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The same store telling time by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_millis(&self) -> i64 {
        millis(
            self.clock
                .now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
        )
    }

    /// What a stored row (or its absence) means for a claim at `now`, without
    /// writing anything.
    fn judge(&self, row: Option<&Model>, fingerprint: &str, now: i64) -> Verdict {
        match row {
            None => Verdict::Insert,
            // Past retention the key is forgotten, whatever it held.
            Some(row) if row.created_at.saturating_add(millis(self.retention)) <= now => {
                Verdict::Replace
            }
            Some(row) if row.fingerprint != fingerprint => Verdict::Answer(Claim::Mismatch),
            Some(row) if row.state == COMPLETED => {
                Verdict::Answer(Claim::Completed(row.result.clone().unwrap_or_default()))
            }
            Some(row) if row.locked_until > now => Verdict::Answer(Claim::InProgress),
            // The holder's lease ran out without completing: presumed dead.
            Some(_) => Verdict::Replace,
        }
    }
}

impl SeaOrmIdempotencyStore {
    /// One attempt at a claim: the answer, or `None` when the row changed under
    /// the attempt in a way that leaves the key free (worth one more try).
    async fn try_claim(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
        now: i64,
    ) -> Result<Option<Claim>, RepositoryError> {
        let seen = {
            let session = self.database.reader().await?;
            let row = find(&session, key).await?;
            session.finish().await?;
            row
        };
        let verdict = self.judge(seen.as_ref(), fingerprint, now);
        if let Verdict::Answer(claim) = verdict {
            return Ok(Some(claim));
        }
        let token = ClaimToken::new(uuid::Uuid::new_v4().simple().to_string());
        let fresh = ActiveModel {
            key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.to_owned()),
            state: Set(IN_PROGRESS.to_owned()),
            result: Set(None),
            created_at: Set(now),
            locked_until: Set(now.saturating_add(millis(lease))),
            claim_token: Set(token.as_str().to_owned()),
        };
        let session = self.database.autocommit()?;
        let written = match (verdict, seen) {
            (Verdict::Replace, Some(seen)) => {
                // Only if nobody changed the row since it was read: of two
                // retries taking over a dead holder's key, one wins.
                Keys::update_many()
                    .set(fresh)
                    .filter(Column::Key.eq(key))
                    .filter(Column::ClaimToken.eq(seen.claim_token))
                    .filter(Column::State.eq(seen.state))
                    .filter(Column::CreatedAt.eq(seen.created_at))
                    .exec(&session)
                    .await
                    .map_err(storage_error)?
                    .rows_affected
            }
            _ => u64::from(
                insert_absent(&session, Keys::insert(fresh).into_query(), [Column::Key]).await?,
            ),
        };
        session.finish().await?;
        if written == 1 {
            return Ok(Some(Claim::Acquired(token)));
        }
        // Another request wrote the key first, and its write is committed:
        // answer from what it wrote.
        let session = self.database.reader().await?;
        let row = find(&session, key).await?;
        session.finish().await?;
        Ok(match self.judge(row.as_ref(), fingerprint, now) {
            Verdict::Answer(claim) => Some(claim),
            Verdict::Insert => None,
            Verdict::Replace => Some(Claim::InProgress),
        })
    }
}

enum Verdict {
    Answer(Claim),
    Insert,
    Replace,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

async fn find(
    connection: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<Model>, RepositoryError> {
    Keys::find_by_id(key.to_owned())
        .one(connection)
        .await
        .map_err(storage_error)
}

#[async_trait]
impl IdempotencyStore for SeaOrmIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, RepositoryError> {
        let now = self.now_millis();
        // Twice at most: a row seen on the first read may be gone by the write
        // (freed by its holder, purged), and the key is then free to claim.
        for _ in 0..2 {
            if let Some(answer) = self.try_claim(key, fingerprint, lease, now).await? {
                return Ok(answer);
            }
        }
        Ok(Claim::InProgress)
    }

    async fn complete(
        &self,
        key: &str,
        token: &ClaimToken,
        result: &[u8],
    ) -> Result<Completion, RepositoryError> {
        let session = self.database.writer().await?;
        let stored = Keys::update_many()
            .col_expr(Column::State, Expr::value(COMPLETED))
            .col_expr(Column::Result, Expr::value(result.to_vec()))
            .filter(Column::Key.eq(key))
            .filter(Column::ClaimToken.eq(token.as_str()))
            .filter(Column::State.eq(IN_PROGRESS))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(if stored.rows_affected == 1 {
            Completion::Stored
        } else {
            Completion::LeaseLost
        })
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), RepositoryError> {
        let session = self.database.autocommit()?;
        Keys::delete_many()
            .filter(Column::Key.eq(key))
            .filter(Column::ClaimToken.eq(token.as_str()))
            .filter(Column::State.eq(IN_PROGRESS))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    async fn purge_expired(&self) -> Result<u64, RepositoryError> {
        let oldest_kept = self.now_millis().saturating_sub(millis(self.retention));
        let session = self.database.autonomous().await?;
        let purged = Keys::delete_many()
            .filter(Column::CreatedAt.lte(oldest_kept))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(purged.rows_affected)
    }
}
