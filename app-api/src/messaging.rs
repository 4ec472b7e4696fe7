//! Inbound adapters for messages, as [`crate::http`] is for requests: a
//! [`MessageHandler`] maps a message to a command and dispatches it through
//! the same pipeline. The runtime's consumers feed it.

use async_trait::async_trait;
use strata_domain::ports::Message;

use crate::application::{AppError, Principal, PrincipalKind, RequestContext};

/// What a consumer does with a message: map it to a command (or several) and
/// dispatch it, as an HTTP handler does with a request. It runs inside the
/// unit of work that also moves the consumer's position, as the principal
/// [`MessageHandler::principal`] names, in the trace of the request that
/// recorded the event.
#[async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    /// Whether it wants messages of `topic` (an aggregate kind); the others
    /// are passed over.
    fn wants(&self, topic: &str) -> bool;

    /// Who the messages run as: by default a service principal named after
    /// the consumer with no permissions; a handler whose commands need some
    /// grants them here.
    fn principal(&self, consumer: &str) -> Principal {
        Principal::new(consumer, PrincipalKind::Service)
    }

    /// Applies `message`.
    ///
    /// # Errors
    /// A failure rolls back what the batch did, and the messages are applied
    /// again one at a time. One that fails on its own is dead-lettered with
    /// the error: at once when the error is about the message (invalid,
    /// refused by a rule, not found, not allowed); after a few tries, each
    /// after the consumer's backoff, for a conflict or a failure inside;
    /// never for [`AppError::Unavailable`], which only stops the consumer for
    /// a backoff.
    async fn handle(&self, request: &RequestContext, message: &Message) -> Result<(), AppError>;

    /// Applies a batch of messages, in order, inside one unit of work: by
    /// default each with [`MessageHandler::handle`]. A handler whose effect
    /// is a row per message can write the batch's rows in one statement
    /// here. A failure rolls back the batch, and its messages are then
    /// applied one at a time, each as a batch of one, as for
    /// [`MessageHandler::handle`].
    ///
    /// # Errors
    /// As [`MessageHandler::handle`].
    async fn handle_batch(&self, batch: &[Incoming<'_>]) -> Result<(), AppError> {
        for incoming in batch {
            self.handle(&incoming.request, incoming.message).await?;
        }
        Ok(())
    }
}

/// A message as a consumer hands it to [`MessageHandler::handle_batch`]: the
/// message and the request it runs as (its principal, and its trace joined
/// to the one that recorded the event).
#[derive(Debug)]
pub struct Incoming<'a> {
    /// Who it runs as and in which trace.
    pub request: RequestContext,
    /// The message.
    pub message: &'a Message,
}
