//! Distributed transactions across services: TCC (try, confirm, cancel) and
//! saga (actions and compensations), coordinated by the initiating service and
//! made safe on each participant by a barrier.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::RepositoryError;

/// What a branch call asks a participant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchOp {
    /// Reserve (TCC) or act (saga).
    Try,
    /// Make the reservation final (TCC).
    Confirm,
    /// Release the reservation (TCC) or compensate the action (saga).
    Cancel,
}

impl BranchOp {
    /// Its name on the wire and in tables.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Try => "try",
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
        }
    }

    /// The operation named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Try, Self::Confirm, Self::Cancel]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

/// What the barrier decided about a branch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierDecision {
    /// The first of its kind: run the business change, in this transaction.
    Run,
    /// Already done (a duplicate), or a cancel with no try before it (an
    /// empty compensation, which leaves a tombstone): answer success without
    /// touching the business.
    Skip,
    /// A try after its cancel (hanging): answer failure without touching the
    /// business.
    Refuse,
}

/// The participant's barrier: a row per (global id, branch id, operation)
/// written in the local transaction of the business change, deciding
/// duplicate, empty-compensation and hanging calls.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TccBarrier: Send + Sync {
    /// Records, in the running unit of work, that `op` of branch `branch` of
    /// global transaction `gid` arrived, and decides what to do with it. Its
    /// row commits or rolls back with the business change.
    ///
    /// # Errors
    /// When no unit of work runs, or the table cannot be written.
    async fn enter(
        &self,
        gid: &str,
        branch: &str,
        op: BranchOp,
    ) -> Result<BarrierDecision, RepositoryError>;
}

/// A global transaction as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalTransaction {
    /// Its id.
    pub gid: String,
    /// `tcc` or `saga`.
    pub kind: String,
    /// `prepared`, `submitted`, `aborting`, `succeeded` or `failed`.
    pub state: String,
    /// Why it aborted, once it did.
    pub reason: Option<String>,
    /// Retries in a row that made no progress.
    pub attempts: u32,
    /// Whether it waits for an operator.
    pub flagged: bool,
    /// The last error a branch call gave.
    pub last_error: Option<String>,
    /// When the recovery worker next takes it, in milliseconds since the
    /// Unix epoch.
    pub next_retry_at_ms: i64,
    /// When it began, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Its branches, in order (empty in lists).
    pub branches: Vec<GlobalBranch>,
}

/// A branch of a global transaction as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalBranch {
    /// Its id within the transaction.
    pub branch: String,
    /// Where its participant serves it.
    pub url: String,
    /// `registered`, `calling`, `tried`, `try_failed`, `confirmed` or
    /// `cancelled`.
    pub state: String,
    /// Calls made.
    pub attempts: u32,
    /// The last call's error.
    pub last_error: Option<String>,
}

/// What an operator's repair came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Done.
    Done,
    /// No transaction has that id.
    NotFound,
    /// The transaction is in a state the repair does not apply to.
    WrongState(String),
}

/// The coordinator's transactions, for operators: list, look at, retry a
/// flagged one now, or force one to a terminal state.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait GlobalTransactions: Send + Sync {
    /// One page of transactions, newest first; only those in `state` when
    /// given (`flagged` lists those waiting for an operator).
    async fn list(
        &self,
        state: Option<String>,
        page: crate::PageRequest,
    ) -> Result<crate::Page<GlobalTransaction>, RepositoryError>;

    /// Transaction `gid` with its branches.
    async fn get(&self, gid: &str) -> Result<Option<GlobalTransaction>, RepositoryError>;

    /// Takes transaction `gid` up again at once, with a fresh set of retries.
    async fn retry(&self, gid: &str) -> Result<Repair, RepositoryError>;

    /// Moves transaction `gid` to terminal state `to` (`succeeded` or
    /// `failed`) without calling its branches: for an operator who repaired
    /// them by hand.
    async fn force(&self, gid: &str, to: &str) -> Result<Repair, RepositoryError>;
}
