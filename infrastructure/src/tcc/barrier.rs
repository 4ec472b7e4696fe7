//! The participant's barrier on `strata_tcc_barrier`.

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, StatementBuilder};
use strata_domain::RepositoryError;
use strata_domain::ports::{BarrierDecision, BranchOp, TccBarrier};

use super::migration::Barrier;
use crate::database::{execute, insert_absent};
use crate::db_error::storage_error;
use crate::outbox::now_ms;
use crate::{Database, Session};

/// [`TccBarrier`] in a participant's database: one row per (global id,
/// branch id, operation), unique, inserted in the running unit of work.
///
/// * A try inserts its row: new → run; there already → a duplicate (success)
///   or, when the cancel's row is there too, a try after its cancel
///   (refused).
/// * A confirm inserts its row: new → run; there already → a duplicate.
/// * A cancel first inserts the *try's* row: new → the try never ran, and
///   this row is now its tombstone (a late try finds it and is refused); the
///   cancel's own row follows, and nothing is compensated. Otherwise it
///   inserts its own row: new → compensate; there already → a duplicate.
///
/// Concurrent calls of one branch meet on the unique key: on PostgreSQL the
/// second insert waits for the first transaction and then finds its row;
/// SQLite's writers take turns. Every call inserts in the same order (the
/// try's row, then its own), so two of them never wait on each other in a
/// cycle.
#[derive(Debug, Clone)]
pub struct SeaOrmTccBarrier {
    database: Database,
}

impl SeaOrmTccBarrier {
    /// The barrier in `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Forgets barrier rows older than `age` — longer than any call of their
    /// transaction can still arrive.
    ///
    /// # Errors
    /// When the table cannot be written.
    pub async fn purge(&self, age: Duration) -> Result<u64, RepositoryError> {
        let cutoff = now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let session = self.database.autonomous().await?;
        let delete = Query::delete()
            .from_table(Barrier::Table)
            .and_where(Expr::col(Barrier::CreatedAt).lt(cutoff))
            .to_owned();
        let deleted = execute(&session, &delete).await?;
        session.finish().await?;
        Ok(deleted)
    }
}

/// Inserts the row of `op`: whether it is new.
async fn insert(
    session: &Session<'_>,
    gid: &str,
    branch: &str,
    op: BranchOp,
) -> Result<bool, RepositoryError> {
    let statement = Query::insert()
        .into_table(Barrier::Table)
        .columns([
            Barrier::Gid,
            Barrier::BranchId,
            Barrier::Op,
            Barrier::CreatedAt,
        ])
        .values_panic([
            gid.into(),
            branch.into(),
            op.as_str().into(),
            now_ms().into(),
        ])
        .to_owned();
    insert_absent(
        session,
        statement,
        [Barrier::Gid, Barrier::BranchId, Barrier::Op],
    )
    .await
}

async fn exists(
    session: &Session<'_>,
    gid: &str,
    branch: &str,
    op: BranchOp,
) -> Result<bool, RepositoryError> {
    let select = Query::select()
        .expr(Expr::val(1))
        .from(Barrier::Table)
        .and_where(Expr::col(Barrier::Gid).eq(gid))
        .and_where(Expr::col(Barrier::BranchId).eq(branch))
        .and_where(Expr::col(Barrier::Op).eq(op.as_str()))
        .to_owned();
    let backend = session.get_database_backend();
    Ok(session
        .query_one_raw(StatementBuilder::build(&select, &backend))
        .await
        .map_err(storage_error)?
        .is_some())
}

/// What the barrier decides for `op`, from what its inserts found. For a try,
/// `first`: its row was new, `second`: its cancel's row is there. For a
/// confirm, `first`: its row was new (`second` means nothing). For a cancel,
/// `first`: its own row was new, `second`: it wrote the try's row, so the try
/// never ran and the row is now its tombstone. The TCC model
/// (`infrastructure/tests/model/tcc.pml`) decides by the same table, and a
/// test keeps the two equal.
#[must_use]
pub const fn decide(op: BranchOp, first: bool, second: bool) -> BarrierDecision {
    match (op, first, second) {
        (BranchOp::Try | BranchOp::Confirm, true, _) | (BranchOp::Cancel, true, false) => {
            BarrierDecision::Run
        }
        (BranchOp::Try, false, true) => BarrierDecision::Refuse,
        (BranchOp::Try | BranchOp::Confirm, false, _) | (BranchOp::Cancel, _, _) => {
            BarrierDecision::Skip
        }
    }
}

#[async_trait]
impl TccBarrier for SeaOrmTccBarrier {
    async fn enter(
        &self,
        gid: &str,
        branch: &str,
        op: BranchOp,
    ) -> Result<BarrierDecision, RepositoryError> {
        let session = self.database.writer().await?;
        let (first, second) = match op {
            BranchOp::Try => {
                let first = insert(&session, gid, branch, BranchOp::Try).await?;
                // A new try runs whatever else is there: no need to look.
                let second = !first && exists(&session, gid, branch, BranchOp::Cancel).await?;
                (first, second)
            }
            BranchOp::Confirm => (
                insert(&session, gid, branch, BranchOp::Confirm).await?,
                false,
            ),
            BranchOp::Cancel => {
                let tombstone = insert(&session, gid, branch, BranchOp::Try).await?;
                let first = insert(&session, gid, branch, BranchOp::Cancel).await?;
                (first, tombstone)
            }
        };
        let decision = decide(op, first, second);
        session.finish().await?;
        Ok(decision)
    }
}
