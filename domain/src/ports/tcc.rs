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
