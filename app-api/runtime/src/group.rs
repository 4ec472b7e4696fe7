//! Group consumers: inbound adapters that share a consumer group's messages
//! among the instances — load-balanced and unordered — each message's effect
//! committed with an inbox row, and acknowledged only after the commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_app_api::application::AppError;
use strata_app_api::messaging::MessageHandler;
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_domain::ports::{Propagation, UnitOfWork, in_unit_of_work};
use strata_infrastructure::consumer::{ConsumerStore, Delivery, GroupSubscription};

use crate::consumer::{Read, apply_batch, lock, may_pass};
use crate::consumer_metrics::ConsumerGauges;

/// How a group consumer works.
#[derive(Debug, Clone)]
pub struct GroupConsumerSettings {
    /// Messages applied in one transaction at most.
    pub batch: usize,
    /// How long a round waits for messages when there are none.
    pub idle_wait: Duration,
}

impl Default for GroupConsumerSettings {
    fn default() -> Self {
        Self {
            batch: 100,
            idle_wait: Duration::from_millis(200),
        }
    }
}

/// A group consumer: a [`Worker`] on every instance, each a member of the
/// broker's consumer group. A batch's effects and their inbox rows commit in
/// one transaction, then the batch is acknowledged: a redelivery (the member
/// died between the two, or stalled and another claimed its messages) is
/// recognised by the inbox and only acknowledged.
pub struct GroupConsumer {
    name: String,
    subscription: Arc<dyn GroupSubscription>,
    store: ConsumerStore,
    unit_of_work: Arc<dyn UnitOfWork>,
    handler: Arc<dyn MessageHandler>,
    settings: GroupConsumerSettings,
    gauges: Option<ConsumerGauges>,
    /// When the group's backlog was last read for the gauges.
    measured: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a batch did not commit.
enum Failed {
    /// The handler or the storage said to try again later.
    Later(AppError),
    /// A message failed for what it is, or for a reason that may pass.
    Message(AppError),
}

/// How often the group's backlog is read for the gauges.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

impl GroupConsumer {
    /// A consumer named `name` (its inbox and dead letters are kept under
    /// that name) applying `subscription`'s messages with `handler`.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        subscription: Arc<dyn GroupSubscription>,
        store: ConsumerStore,
        unit_of_work: Arc<dyn UnitOfWork>,
        handler: Arc<dyn MessageHandler>,
        settings: GroupConsumerSettings,
    ) -> Self {
        Self {
            name: name.into(),
            subscription,
            store,
            unit_of_work,
            handler,
            settings,
            gauges: None,
            measured: std::sync::Mutex::new(None),
        }
    }

    /// Reports the group's backlog and how far behind it is to `gauges`.
    #[must_use]
    pub(crate) fn reporting_to(mut self, gauges: ConsumerGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Applies `deliveries` in one unit of work: each wanted message not
    /// applied before, and each one that cannot be read dead-lettered.
    async fn apply(&self, deliveries: &[Delivery]) -> Result<(), Failed> {
        let outcome: Result<(), AppError> =
            in_unit_of_work(self.unit_of_work.as_ref(), Propagation::Required, async {
                let read: Vec<Read<'_>> = deliveries
                    .iter()
                    .map(|delivery| {
                        (
                            delivery.partition,
                            delivery.position.as_str(),
                            &delivery.message,
                        )
                    })
                    .collect();
                apply_batch(&self.store, &self.name, self.handler.as_ref(), &read).await?;
                Ok(())
            })
            .await;
        outcome.map_err(|error| match error {
            error @ AppError::Unavailable { .. } => Failed::Later(error),
            error => Failed::Message(error),
        })
    }

    /// Gives up on `delivery`'s message, in a unit of work that also records
    /// it in the inbox, so a redelivery is only acknowledged.
    async fn bury(&self, delivery: &Delivery, error: &AppError) -> Result<(), AppError> {
        let Ok(message) = &delivery.message else {
            return Ok(());
        };
        let reason = strata_app_api::application::error_chain(error);
        tracing::error!(consumer = %self.name, message = %message.id, reason, "a message that fails was dead-lettered");
        let text = serde_json::to_string(message).unwrap_or_default();
        in_unit_of_work(self.unit_of_work.as_ref(), Propagation::Required, async {
            self.store.first_delivery(&self.name, message.id).await?;
            self.store
                .bury(
                    &self.name,
                    delivery.partition,
                    &delivery.position,
                    Some(message.id),
                    &text,
                    &reason,
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn ack(&self, deliveries: &[Delivery]) -> Result<(), WorkerError> {
        self.subscription.ack(deliveries).await?;
        Ok(())
    }

    /// One round: receives a batch, applies it and acknowledges it; how many
    /// messages it applied, recognised or dead-lettered. [`Worker::run`]
    /// repeats it.
    ///
    /// A message that fails for a reason that may pass (a conflict, a
    /// failure inside) is handed back unacknowledged: the broker delivers it
    /// again (at once, or after its idle threshold), and dead-letters it past
    /// the delivery limit.
    ///
    /// # Errors
    /// When the broker or the database cannot be reached, or a message asks
    /// to be tried again later.
    pub async fn round(&self) -> Result<usize, WorkerError> {
        self.measure().await;
        let deliveries = self
            .subscription
            .receive(self.settings.batch, self.settings.idle_wait)
            .await?;
        if deliveries.is_empty() {
            return Ok(0);
        }
        self.behind(&deliveries);
        match self.apply(&deliveries).await {
            Ok(()) => {
                self.ack(&deliveries).await?;
                return Ok(deliveries.len());
            }
            Err(Failed::Later(error)) => return Err(Box::new(error)),
            Err(Failed::Message(_)) => {}
        }
        // One of them fails: apply them one at a time, so only it is left.
        let mut handled = 0;
        for delivery in &deliveries {
            let one = std::slice::from_ref(delivery);
            match self.apply(one).await {
                Ok(()) => self.ack(one).await?,
                Err(Failed::Later(error)) => return Err(Box::new(error)),
                Err(Failed::Message(error)) if may_pass(&error) => {
                    tracing::warn!(consumer = %self.name, position = %delivery.position, deliveries = delivery.deliveries, error = %strata_app_api::application::error_chain(&error), "a message failed and is handed back for redelivery");
                    self.subscription.release(one).await?;
                    continue;
                }
                Err(Failed::Message(error)) => {
                    self.bury(delivery, &error).await?;
                    self.ack(one).await?;
                }
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// Records how old the oldest message of a batch just received is.
    fn behind(&self, deliveries: &[Delivery]) {
        let Some(gauges) = &self.gauges else {
            return;
        };
        let oldest = deliveries
            .iter()
            .filter_map(|delivery| delivery.message.as_ref().ok())
            .map(|message| message.recorded_at_ms)
            .min();
        if let Some(oldest) = oldest {
            gauges.behind(&self.name, None, Some(oldest));
        }
    }

    /// Reads the group's backlog for the gauges, at most every
    /// [`MEASURE_EVERY`]; a failure to read it only leaves them as they were.
    async fn measure(&self) {
        let Some(gauges) = &self.gauges else {
            return;
        };
        if lock(&self.measured).is_some_and(|at| at.elapsed() < MEASURE_EVERY) {
            return;
        }
        *lock(&self.measured) = Some(Instant::now());
        match self.subscription.status().await {
            Ok(status) => {
                gauges.backlog(&self.name, status);
                if status.pending.unwrap_or(0) == 0 && status.lag == Some(0) {
                    gauges.behind(&self.name, None, None);
                }
            }
            Err(error) => {
                tracing::debug!(consumer = %self.name, %error, "the group's backlog could not be read");
            }
        }
    }
}

#[async_trait]
impl Worker for GroupConsumer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, context: WorkerContext) -> Result<(), WorkerError> {
        // An empty round has waited `idle_wait` for messages already.
        while !context.is_stopping() {
            self.round().await?;
            context.beat();
        }
        self.subscription.leave().await?;
        Ok(())
    }
}
