//! The consumers' dead letters for operators: the query that lists a
//! consumer's, and the command that applies one again once what made it fail
//! is fixed, over the [`ConsumerDeadLetters`] port.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_domain::ports::{ConsumerDeadLetter, ConsumerDeadLetters, ConsumerRetry};
use strata_domain::{Page, PageRequest};
use validator::Validate;

use super::outbox::OUTBOX_OPERATE;
use super::{Access, AppError, Command, CommandHandler, Query, QueryHandler, UseCaseContext};

/// The longest consumer name.
pub const MAX_CONSUMER_CHARS: u64 = 64;

/// One page of consumer `consumer`'s dead letters, the newest first.
#[derive(Debug, Clone, Validate)]
pub struct ListConsumerDeadLetters {
    /// The consumer.
    #[validate(length(min = 1, max = MAX_CONSUMER_CHARS))]
    pub consumer: String,
    /// The 1-based page.
    #[validate(range(min = 1))]
    pub page: u32,
    /// Entries per page.
    #[validate(range(min = 1, max = PageRequest::MAX_PER_PAGE))]
    pub per_page: u32,
}

impl Query for ListConsumerDeadLetters {
    type Output = Page<ConsumerDeadLetterView>;
    const NAME: &'static str = "consumers.list_dead_letters";
    const ACCESS: Access = Access::Permission(OUTBOX_OPERATE);
}

/// Applies consumer `consumer`'s dead letter `number` again, through the
/// consumer's handler; it is gone once applied, and stays when it fails again
/// (409 `dead_letter_failed` with the reason).
#[derive(Debug, Clone, Validate, Serialize)]
pub struct RetryConsumerDeadLetter {
    /// The consumer.
    #[validate(length(min = 1, max = MAX_CONSUMER_CHARS))]
    pub consumer: String,
    /// The dead letter's number.
    pub number: i64,
}

impl Command for RetryConsumerDeadLetter {
    type Output = ();
    const NAME: &'static str = "consumers.retry_dead_letter";
    const ACCESS: Access = Access::Permission(OUTBOX_OPERATE);
}

/// A consumer's dead letter as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerDeadLetterView {
    /// Its number among the consumer's dead letters.
    pub number: i64,
    /// The consumer.
    pub consumer: String,
    /// The partition it came from.
    pub partition: u32,
    /// Its position there.
    pub position: String,
    /// Its message id, when it could be read.
    pub message_id: Option<uuid::Uuid>,
    /// Its event type, when it could be read.
    pub event_type: Option<String>,
    /// Why it was given up on.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub dead_at_ms: i64,
}

impl From<ConsumerDeadLetter> for ConsumerDeadLetterView {
    fn from(dead: ConsumerDeadLetter) -> Self {
        Self {
            number: dead.id,
            consumer: dead.consumer,
            partition: dead.partition,
            position: dead.position,
            message_id: dead
                .message_id
                .and_then(|id| uuid::Uuid::parse_str(&id).ok()),
            event_type: dead.event_type,
            reason: dead.reason,
            dead_at_ms: dead.dead_at_ms,
        }
    }
}

/// Answers [`ListConsumerDeadLetters`] and [`RetryConsumerDeadLetter`].
pub struct ConsumerOperator {
    dead_letters: Arc<dyn ConsumerDeadLetters>,
}

impl std::fmt::Debug for ConsumerOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerOperator").finish_non_exhaustive()
    }
}

impl ConsumerOperator {
    /// An operator of `dead_letters`.
    #[must_use]
    pub fn new(dead_letters: Arc<dyn ConsumerDeadLetters>) -> Self {
        Self { dead_letters }
    }
}

#[async_trait]
impl QueryHandler<ListConsumerDeadLetters> for ConsumerOperator {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ListConsumerDeadLetters,
    ) -> Result<Page<ConsumerDeadLetterView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        self.dead_letters
            .list(&query.consumer, page)
            .await?
            .map(|page| page.map(ConsumerDeadLetterView::from))
            .ok_or(AppError::NotFound {
                kind: "consumer",
                id: query.consumer,
            })
    }
}

#[async_trait]
impl CommandHandler<RetryConsumerDeadLetter> for ConsumerOperator {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: RetryConsumerDeadLetter,
    ) -> Result<(), AppError> {
        match self
            .dead_letters
            .retry(&command.consumer, command.number)
            .await?
        {
            ConsumerRetry::Applied => Ok(()),
            ConsumerRetry::NotFound => Err(AppError::NotFound {
                kind: "dead_letter",
                id: command.number.to_string(),
            }),
            ConsumerRetry::Failed(reason) => Err(AppError::Conflict {
                code: "dead_letter_failed",
                message: format!("it failed again: {reason}"),
            }),
        }
    }
}
