//! The service's consumers' dead letters for operators: listed per consumer,
//! and applied again through the consumer's own handler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strata_app_api::application::{AppError, error_chain};
use strata_app_api::messaging::MessageHandler;
use strata_domain::ports::{
    ConsumerDeadLetter, ConsumerDeadLetters, ConsumerRetry, Message, Propagation, UnitOfWork,
    in_unit_of_work,
};
use strata_domain::{Page, PageRequest, RepositoryError};
use strata_infrastructure::consumer::ConsumerStore;

use crate::consumer::{lock, request_for};

/// What a consumer was started with, to apply its dead letters again.
#[derive(Clone)]
pub(crate) struct ConsumerEntry {
    pub(crate) store: ConsumerStore,
    pub(crate) unit_of_work: Arc<dyn UnitOfWork>,
    pub(crate) handler: Arc<dyn MessageHandler>,
}

/// The service's consumers by name.
#[derive(Clone, Default)]
pub(crate) struct Consumers(Arc<Mutex<BTreeMap<String, ConsumerEntry>>>);

impl Consumers {
    pub(crate) fn add(&self, name: &str, entry: ConsumerEntry) {
        lock(&self.0).insert(name.to_owned(), entry);
    }

    fn get(&self, name: &str) -> Option<ConsumerEntry> {
        lock(&self.0).get(name).cloned()
    }
}

/// The [`ConsumerDeadLetters`] of a service's consumers: each consumer's dead
/// letters are in the database its effects are.
pub(crate) struct ConsumerOperator {
    pub(crate) consumers: Consumers,
}

fn view(dead: strata_infrastructure::consumer::ConsumerDeadLetter) -> ConsumerDeadLetter {
    let event_type = serde_json::from_str::<Message>(&dead.message)
        .ok()
        .map(|message| message.event_type);
    ConsumerDeadLetter {
        id: dead.id,
        consumer: dead.consumer,
        partition: u32::try_from(dead.partition).unwrap_or_default(),
        position: dead.position,
        message_id: dead.message_id,
        event_type,
        reason: dead.reason,
        dead_at_ms: dead.dead_at,
    }
}

#[async_trait]
impl ConsumerDeadLetters for ConsumerOperator {
    async fn list(
        &self,
        consumer: &str,
        page: PageRequest,
    ) -> Result<Option<Page<ConsumerDeadLetter>>, RepositoryError> {
        let Some(entry) = self.consumers.get(consumer) else {
            return Ok(None);
        };
        Ok(Some(
            entry.store.dead_letters(consumer, page).await?.map(view),
        ))
    }

    async fn retry(&self, consumer: &str, id: i64) -> Result<ConsumerRetry, RepositoryError> {
        let Some(entry) = self.consumers.get(consumer) else {
            return Ok(ConsumerRetry::NotFound);
        };
        let Some(dead) = entry.store.dead_letter(consumer, id).await? else {
            return Ok(ConsumerRetry::NotFound);
        };
        let message: Message = match serde_json::from_str(&dead.message) {
            Ok(message) => message,
            Err(error) => {
                return Ok(ConsumerRetry::Failed(format!(
                    "the message cannot be read: {error}"
                )));
            }
        };
        let request = request_for(entry.handler.as_ref(), consumer, &message);
        let applied: Result<bool, AppError> =
            in_unit_of_work(entry.unit_of_work.as_ref(), Propagation::Required, async {
                // Gone already: another retry applied it.
                if !entry.store.forget_dead_letter(consumer, id).await? {
                    return Ok(false);
                }
                // Its inbox row is there when the consumer buried it; a
                // redelivery is skipped either way.
                entry.store.first_delivery(consumer, message.id).await?;
                entry.handler.handle(&request, &message).await?;
                Ok(true)
            })
            .await;
        Ok(match applied {
            Ok(true) => {
                tracing::info!(consumer, id, message = %message.id, "an operator applied a dead letter again");
                ConsumerRetry::Applied
            }
            Ok(false) => ConsumerRetry::NotFound,
            Err(error) => ConsumerRetry::Failed(error_chain(&error)),
        })
    }
}
