//! Messages sent if and only if a local transaction commits, for work that
//! has no aggregate to record an event on.

use async_trait::async_trait;
use uuid::Uuid;

use super::EventEnvelope;
use crate::RepositoryError;

/// What became of a two-phase message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Prepared; its local transaction has not committed (yet).
    Prepared,
    /// Its local transaction committed: it is delivered through the outbox.
    Committed,
    /// The check-back found its local transaction had not committed in time:
    /// it is never delivered, and that transaction can no longer commit.
    Failed,
}

impl MessageState {
    /// Its stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Committed => "committed",
            Self::Failed => "failed",
        }
    }

    /// The state named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Prepared, Self::Committed, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// Two-phase transactional messages: [`prepare`](Self::prepare) the message,
/// run the local transaction that [`commit`](Self::commit)s it, and the
/// commit is its submit — the message joins the outbox in that transaction.
/// A check-back resolves what is left prepared past its timeout: committed
/// locally means delivered; not committed means failed, and the late local
/// transaction is then refused, so nothing is delivered.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TransactionalMessages: Send + Sync {
    /// Records `message` as prepared, on its own, before the local
    /// transaction starts.
    ///
    /// # Errors
    /// When it cannot be stored.
    async fn prepare(&self, message: EventEnvelope) -> Result<(), RepositoryError>;

    /// In the running unit of work: marks message `id` committed and queues
    /// it in the outbox, both with the local transaction's changes.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the check-back failed it first: the
    /// unit of work must then roll back. [`RepositoryError::NotFound`] when it
    /// was never prepared.
    async fn commit(&self, id: Uuid) -> Result<(), RepositoryError>;

    /// Its state, if it was prepared.
    ///
    /// # Errors
    /// When it cannot be read.
    async fn state(&self, id: Uuid) -> Result<Option<MessageState>, RepositoryError>;
}
