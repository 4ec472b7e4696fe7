//! The outbox's dead letters for operators: the query an administrator's
//! screen asks and the command that publishes one again, over the
//! [`DeadLetters`] port.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_domain::ports::{DeadLetter, DeadLetters};
use strata_domain::{Page, PageRequest};
use validator::Validate;

use super::{Access, AppError, Command, CommandHandler, Query, QueryHandler, UseCaseContext};

/// The permission to see and retry the outbox's dead letters.
pub const OUTBOX_OPERATE: &str = "outbox.operate";

/// One page of the outbox's dead letters, the most recent first.
#[derive(Debug, Clone, Copy, Validate)]
pub struct ListDeadLetters {
    /// The 1-based page.
    #[validate(range(min = 1))]
    pub page: u32,
    /// Entries per page.
    #[validate(range(min = 1, max = PageRequest::MAX_PER_PAGE))]
    pub per_page: u32,
}

impl Query for ListDeadLetters {
    type Output = Page<DeadLetterView>;
    const NAME: &'static str = "outbox.list_dead_letters";
    const ACCESS: Access = Access::Permission(OUTBOX_OPERATE);
}

/// Publishes dead letter `id` again: a fresh set of attempts, due now. Not
/// found when there is no such dead letter (never dead, or published since).
#[derive(Debug, Clone, Copy, Validate)]
pub struct RetryDeadLetter {
    /// The event's id.
    pub id: uuid::Uuid,
}

impl Command for RetryDeadLetter {
    type Output = ();
    const NAME: &'static str = "outbox.retry_dead_letter";
    const ACCESS: Access = Access::Permission(OUTBOX_OPERATE);
}

/// A dead letter as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterView {
    /// The event's id.
    pub id: uuid::Uuid,
    /// Its aggregate's kind.
    pub aggregate_kind: String,
    /// Its aggregate's id, as the aggregate's kind writes it.
    pub aggregate: String,
    /// The aggregate version it produced.
    pub aggregate_version: u64,
    /// Its type.
    pub event_type: String,
    /// How many attempts failed.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was dead-lettered, in milliseconds since the Unix epoch.
    pub dead_at_ms: i64,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(dead: DeadLetter) -> Self {
        Self {
            id: dead.id,
            aggregate_kind: dead.aggregate_kind,
            aggregate: dead.aggregate_id,
            aggregate_version: dead.aggregate_version,
            event_type: dead.event_type,
            attempts: dead.attempts,
            last_error: dead.last_error,
            dead_at_ms: dead.dead_at_ms,
        }
    }
}

/// Answers [`ListDeadLetters`] and [`RetryDeadLetter`].
pub struct OutboxOperator {
    dead_letters: Arc<dyn DeadLetters>,
}

impl std::fmt::Debug for OutboxOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxOperator").finish_non_exhaustive()
    }
}

impl OutboxOperator {
    /// An operator of `dead_letters`.
    #[must_use]
    pub fn new(dead_letters: Arc<dyn DeadLetters>) -> Self {
        Self { dead_letters }
    }
}

#[async_trait]
impl QueryHandler<ListDeadLetters> for OutboxOperator {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ListDeadLetters,
    ) -> Result<Page<DeadLetterView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        Ok(self
            .dead_letters
            .dead_letters(page)
            .await?
            .map(DeadLetterView::from))
    }
}

#[async_trait]
impl CommandHandler<RetryDeadLetter> for OutboxOperator {
    async fn handle(&self, _cx: &UseCaseContext, command: RetryDeadLetter) -> Result<(), AppError> {
        if self.dead_letters.retry(command.id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound {
                kind: "dead_letter",
                id: command.id.to_string(),
            })
        }
    }
}
