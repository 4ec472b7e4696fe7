//! Ordered consumers: inbound adapters that turn the events of a partitioned
//! log into use cases, each partition owned by one instance at a time, the
//! effects of a batch and the partition's new position committed in one
//! transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_app_api::application::{AppError, RequestContext, TraceContext};
use strata_app_api::config::duration;
use strata_app_api::messaging::{Incoming, MessageHandler};
use strata_app_api::workers::{Worker, WorkerContext, WorkerError};
use strata_domain::ports::{Message, Propagation, UnitOfWork, in_unit_of_work};
use strata_infrastructure::consumer::{ConsumerStore, LogEntry, PartitionLog, Undecodable};
use uuid::Uuid;

use crate::consumer_metrics::ConsumerGauges;

/// How an ordered consumer works; the service's settings carry them as
/// `[consumers]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Messages applied in one transaction at most: a partition's batch, or
    /// the batches of several partitions of one round when together they
    /// are no more.
    pub batch: usize,
    /// How long an instance holds a partition without renewing it: after it,
    /// another instance (or the same one started again) takes the partition
    /// over. Shorter recovers sooner after a crash; longer rides out longer
    /// pauses.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// How long to wait for new messages when a round found none; also how
    /// long the running consumer uses the share of partitions it found
    /// before asking the database again (at most a third of the lease).
    #[serde(with = "duration")]
    pub idle_wait: Duration,
    /// How many of its partitions an instance reads at once, and applies
    /// batches of at once when they do not fit in one transaction together,
    /// each then in its own transaction (so on its own database connection).
    pub parallel: usize,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            batch: 100,
            lease: Duration::from_secs(15),
            idle_wait: Duration::from_millis(200),
            parallel: 4,
        }
    }
}

/// An ordered consumer: a [`Worker`] on every instance; the instances share
/// the partitions through lease rows, and each partition is read in order
/// from its stored position by the one instance holding it.
pub struct OrderedConsumer {
    name: String,
    /// What its partitions are kept under: its name, and for a log local to
    /// this process, that log's id too.
    partitions_key: String,
    instance: String,
    /// Failed tries of messages that failed for reasons that may pass.
    tries: std::sync::Mutex<std::collections::HashMap<Uuid, u32>>,
    /// The partitions it holds, where each stands and when its lease was last
    /// renewed, so an idle round does not write to the database.
    held: std::sync::Mutex<std::collections::HashMap<u32, Held>>,
    /// When it last said it runs the consumer.
    announced: std::sync::Mutex<Option<Instant>>,
    log: Arc<dyn PartitionLog>,
    store: ConsumerStore,
    unit_of_work: Arc<dyn UnitOfWork>,
    handler: Arc<dyn MessageHandler>,
    settings: ConsumerSettings,
    gauges: Option<ConsumerGauges>,
}

impl std::fmt::Debug for OrderedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedConsumer")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Why a batch did not commit.
enum Failed {
    /// Another instance took the partition over: nothing of the batch is kept.
    LeaseLost,
    /// The handler or the storage said to try again later.
    Later(AppError),
    /// A message failed for what it is.
    Message(AppError),
}

const LEASE_LOST: &str = "consumer_lease_lost";

impl OrderedConsumer {
    /// A consumer named `name` (its position, inbox and dead letters are
    /// kept under that name) reading `log` into `handler`.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        log: Arc<dyn PartitionLog>,
        store: ConsumerStore,
        unit_of_work: Arc<dyn UnitOfWork>,
        handler: Arc<dyn MessageHandler>,
        settings: ConsumerSettings,
    ) -> Self {
        let name = name.into();
        log.subscribe(&name);
        let partitions_key = match log.local_to() {
            Some(log) => format!("{name}@{log}"),
            None => name.clone(),
        };
        Self {
            name,
            partitions_key,
            instance: Uuid::new_v4().simple().to_string(),
            tries: std::sync::Mutex::new(std::collections::HashMap::new()),
            held: std::sync::Mutex::new(std::collections::HashMap::new()),
            announced: std::sync::Mutex::new(None),
            log,
            store,
            unit_of_work,
            handler,
            settings,
            gauges: None,
        }
    }

    /// Reports how far behind each partition it holds is to `gauges`.
    #[must_use]
    pub(crate) fn reporting_to(mut self, gauges: ConsumerGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Records the age of the oldest of `entries`, read from `partition` and
    /// not applied yet; none means the partition is caught up.
    fn behind(&self, partition: u32, entries: &[LogEntry]) {
        if let Some(gauges) = &self.gauges {
            let oldest = entries
                .iter()
                .filter_map(|entry| entry.message.as_ref().ok())
                .map(|message| message.recorded_at_ms)
                .min();
            gauges.behind(&self.name, Some(partition), oldest);
        }
    }

    /// Applies the `batches` read from their partitions and moves each
    /// partition's position past its last entry, all in one unit of work.
    async fn apply(&self, batches: &[(u32, &[LogEntry])]) -> Result<(), Failed> {
        let outcome: Result<(), AppError> =
            in_unit_of_work(self.unit_of_work.as_ref(), Propagation::Required, async {
                let read: Vec<Read<'_>> = batches
                    .iter()
                    .flat_map(|&(partition, entries)| {
                        entries
                            .iter()
                            .map(move |entry| (partition, entry.position.as_str(), &entry.message))
                    })
                    .collect();
                apply_batch(&self.store, &self.name, self.handler.as_ref(), &read).await?;
                for &(partition, entries) in batches {
                    if let Some(last) = entries.last() {
                        self.advance(partition, &last.position).await?;
                    }
                }
                Ok(())
            })
            .await;
        outcome.map_err(|error| match error {
            AppError::Conflict {
                code: LEASE_LOST, ..
            } => Failed::LeaseLost,
            error @ AppError::Unavailable { .. } => Failed::Later(error),
            error => Failed::Message(error),
        })
    }

    /// Moves `partition` to `position` in the running unit of work, or fails
    /// it with [`LEASE_LOST`] when another instance took the partition over.
    async fn advance(&self, partition: u32, position: &str) -> Result<(), AppError> {
        if self
            .store
            .advance(
                &self.partitions_key,
                partition,
                &self.instance,
                position,
                self.settings.lease,
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::Conflict {
                code: LEASE_LOST,
                message: "another instance took the partition over".into(),
            })
        }
    }

    /// Gives up on the message at `entry`, in a unit of work that also moves
    /// the position past it.
    async fn bury(&self, partition: u32, entry: &LogEntry, error: &AppError) -> Result<(), Failed> {
        let Ok(message) = &entry.message else {
            return Ok(());
        };
        let reason = strata_app_api::application::error_chain(error);
        tracing::error!(consumer = %self.name, partition, message = %message.id, reason, "a message that fails was dead-lettered");
        let text = serde_json::to_string(message).unwrap_or_default();
        let outcome: Result<(), AppError> =
            in_unit_of_work(self.unit_of_work.as_ref(), Propagation::Required, async {
                self.store.first_delivery(&self.name, message.id).await?;
                self.store
                    .bury(
                        &self.name,
                        partition,
                        &entry.position,
                        Some(message.id),
                        &text,
                        &reason,
                    )
                    .await?;
                self.advance(partition, &entry.position).await
            })
            .await;
        outcome.map_err(|error| match error {
            AppError::Conflict {
                code: LEASE_LOST, ..
            } => Failed::LeaseLost,
            error => Failed::Later(error),
        })
    }

    /// One round: takes or renews the partitions it can, reads a batch of
    /// each one it holds, and applies them; how many entries it applied or
    /// dead-lettered. [`Worker::run`] repeats it.
    ///
    /// When the batches read come to no more than
    /// [`ConsumerSettings::batch`] messages in all, they are applied in one
    /// transaction: a round then costs one commit, however many partitions
    /// had a few messages each. Otherwise (or when that transaction fails)
    /// each partition's batch is applied in a transaction of its own, up to
    /// [`ConsumerSettings::parallel`] at once, since order is kept within a
    /// partition only.
    ///
    /// # Errors
    /// When the log or the database cannot be reached, or a message asks to
    /// be tried again later.
    pub async fn round(&self) -> Result<usize, WorkerError> {
        let share = Box::pin(self.my_share()).await?;
        self.round_of(&share).await
    }

    /// [`Self::round`] over the partitions `share`.
    async fn round_of(&self, share: &[u32]) -> Result<usize, WorkerError> {
        use futures_util::StreamExt as _;
        let mut reading = futures_util::stream::iter(share.iter().copied())
            .map(|partition| self.read_batch(partition))
            .buffer_unordered(self.settings.parallel.max(1));
        let mut batches = Vec::new();
        // A partition that cannot be read now leaves the others to go on;
        // its error still ends the round, after them.
        let mut failure = None;
        while let Some(read) = reading.next().await {
            match read {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => {}
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        // Each partition's batch in the order of its partition.
        batches.sort_unstable_by_key(|(partition, _)| *partition);
        let total: usize = batches.iter().map(|(_, entries)| entries.len()).sum();
        if batches.len() > 1 && total <= self.settings.batch {
            let together: Vec<(u32, &[LogEntry])> = batches
                .iter()
                .map(|(partition, entries)| (*partition, entries.as_slice()))
                .collect();
            if Box::pin(self.apply(&together)).await.is_ok() {
                for (partition, entries) in &batches {
                    self.moved(*partition, entries);
                }
                return failure.map_or(Ok(total), Err);
            }
            // Nothing of it is kept: each partition's batch goes on its own,
            // so a lease lost, a message failing or one asking to be tried
            // later stops only its own partition.
        }
        let mut rounds =
            futures_util::stream::iter(batches)
                .map(|(partition, entries)| async move {
                    self.apply_partition(partition, &entries).await
                })
                .buffer_unordered(self.settings.parallel.max(1));
        let mut handled = 0;
        while let Some(outcome) = rounds.next().await {
            match outcome {
                Ok(count) => handled += count,
                // The other partitions' batches still finish.
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        // What the other partitions applied is committed; the failure still
        // makes the worker back off, as it would have alone.
        match failure {
            Some(error) => Err(error),
            None => Ok(handled),
        }
    }

    /// The next batch of `partition`, if this instance holds it and it has
    /// one.
    async fn read_batch(
        &self,
        partition: u32,
    ) -> Result<Option<(u32, Vec<LogEntry>)>, WorkerError> {
        let Some(position) = self.position_of(partition).await? else {
            return Ok(None);
        };
        let entries = self
            .log
            .read(
                partition,
                position.as_deref(),
                self.settings.batch,
                Duration::ZERO,
            )
            .await?;
        self.behind(partition, &entries);
        Ok((!entries.is_empty()).then_some((partition, entries)))
    }

    /// Applies the batch `entries` of `partition` on its own.
    async fn apply_partition(
        &self,
        partition: u32,
        entries: &[LogEntry],
    ) -> Result<usize, WorkerError> {
        match Box::pin(self.apply(&[(partition, entries)])).await {
            Ok(()) => {
                self.moved(partition, entries);
                Ok(entries.len())
            }
            Err(Failed::LeaseLost) => {
                self.lost(partition);
                Ok(0)
            }
            Err(Failed::Later(error)) => Err(Box::new(error)),
            // One of them fails: apply them one at a time, so only it is
            // given up on.
            Err(Failed::Message(_)) => Box::pin(self.one_by_one(partition, entries)).await,
        }
    }

    async fn one_by_one(&self, partition: u32, entries: &[LogEntry]) -> Result<usize, WorkerError> {
        let mut handled = 0;
        for entry in entries {
            match self
                .apply(&[(partition, std::slice::from_ref(entry))])
                .await
            {
                Ok(()) => {}
                Err(Failed::LeaseLost) => {
                    self.lost(partition);
                    break;
                }
                Err(Failed::Later(error)) => return Err(Box::new(error)),
                Err(Failed::Message(error)) => {
                    if !self.gives_up_on(entry, &error) {
                        return Err(Box::new(error));
                    }
                    match self.bury(partition, entry, &error).await {
                        Ok(()) => {}
                        Err(Failed::LeaseLost) => {
                            self.lost(partition);
                            break;
                        }
                        Err(Failed::Later(error) | Failed::Message(error)) => {
                            return Err(Box::new(error));
                        }
                    }
                }
            }
            handled += 1;
            self.moved(partition, std::slice::from_ref(entry));
        }
        Ok(handled)
    }

    /// The partitions this instance holds or may take: an even share among
    /// the instances running the consumer now (each says so every round), so
    /// a new instance gets its part as the others let theirs go. Lets go of
    /// those over its share.
    async fn my_share(&self) -> Result<Vec<u32>, WorkerError> {
        let partitions = self.log.partitions();
        let holders = self.store.holders(&self.partitions_key).await?;
        let mine: Vec<u32> = holders
            .iter()
            .filter(|(_, owner)| *owner == self.instance)
            .map(|(partition, _)| *partition)
            .collect();
        if self.renewal_due(*lock(&self.announced)) {
            self.store
                .announce(&self.partitions_key, &self.instance, self.settings.lease)
                .await?;
            *lock(&self.announced) = Some(Instant::now());
        }
        let instances = self.store.members(&self.partitions_key).await?;
        let share = partitions.div_ceil(instances) as usize;
        let taken: std::collections::BTreeSet<u32> = holders
            .iter()
            .filter(|(_, owner)| *owner != self.instance)
            .map(|(partition, _)| *partition)
            .collect();
        let mut chosen: Vec<u32> = mine.iter().copied().take(share).collect();
        for extra in mine.iter().skip(share) {
            self.store
                .let_go(&self.partitions_key, *extra, &self.instance)
                .await?;
            self.lost(*extra);
        }
        for partition in 0..partitions {
            if chosen.len() >= share {
                break;
            }
            if !chosen.contains(&partition) && !taken.contains(&partition) {
                chosen.push(partition);
            }
        }
        Ok(chosen)
    }

    /// Where this instance is to read `partition` from, if it holds it: the
    /// position it keeps while its lease is fresh (each batch's commit renews
    /// it), otherwise what renewing or taking the lease finds.
    async fn position_of(&self, partition: u32) -> Result<Option<Option<String>>, WorkerError> {
        if let Some(held) = lock(&self.held).get(&partition)
            && !self.renewal_due(Some(held.renewed))
        {
            return Ok(Some(held.position.clone()));
        }
        // Boxed, as the other calls to the database in a round: futures
        // held inline would make every round's future as large as theirs,
        // and it is moved for each partition of each round.
        let position = Box::pin(self.store.hold(
            &self.partitions_key,
            partition,
            &self.instance,
            self.settings.lease,
        ))
        .await?;
        let mut held = lock(&self.held);
        match &position {
            Some(position) => {
                held.insert(
                    partition,
                    Held {
                        position: position.clone(),
                        renewed: Instant::now(),
                    },
                );
            }
            None => {
                held.remove(&partition);
            }
        }
        Ok(position)
    }

    /// `partition` now stands after `applied`, its lease renewed with them.
    fn moved(&self, partition: u32, applied: &[LogEntry]) {
        if let Some(last) = applied.last() {
            self.log.passed(&self.name, partition, &last.position);
            lock(&self.held).insert(
                partition,
                Held {
                    position: Some(last.position.clone()),
                    renewed: Instant::now(),
                },
            );
        }
    }

    /// This instance no longer holds `partition`.
    fn lost(&self, partition: u32) {
        lock(&self.held).remove(&partition);
        // Its lag is the new holder's to report.
        self.behind(partition, &[]);
    }

    /// Whether a lease last renewed at `renewed` is due for renewal: a third
    /// of the lease after it.
    fn renewal_due(&self, renewed: Option<Instant>) -> bool {
        renewed.is_none_or(|at| at.elapsed() >= self.settings.lease / 3)
    }

    /// Whether to give up on the message at `entry` after `error`: at once
    /// when the error is about the message itself (invalid, refused by a
    /// rule, about something missing or not allowed), after a few tries when
    /// it may pass (a conflict, a failure inside).
    fn gives_up_on(&self, entry: &LogEntry, error: &AppError) -> bool {
        let Ok(message) = &entry.message else {
            return true;
        };
        if !may_pass(error) {
            return true;
        }
        let mut tries = lock(&self.tries);
        let count = tries.entry(message.id).or_insert(0);
        *count += 1;
        if *count >= TRIES_BEFORE_GIVING_UP {
            tries.remove(&message.id);
            true
        } else {
            false
        }
    }
}

/// The request `message` runs as in `consumer`: as the handler's principal,
/// in the trace of the work that recorded it.
/// A message of a batch as read: its partition, its position there, and the
/// message or why it could not be read as one.
pub(crate) type Read<'a> = (u32, &'a str, &'a Result<Message, Undecodable>);

/// Applies a batch in the running unit of work: one statement records its
/// messages in the inbox and names those seen before; the handler gets the
/// others (a message published twice and read twice in one batch only at its
/// first copy) in one `handle_batch`; one that cannot be read is dead-lettered.
pub(crate) async fn apply_batch(
    store: &ConsumerStore,
    consumer: &str,
    handler: &dyn MessageHandler,
    read: &[Read<'_>],
) -> Result<(), AppError> {
    let wanted: Vec<Uuid> = read
        .iter()
        .filter_map(|(_, _, message)| message.as_ref().ok())
        .filter(|message| handler.wants(&message.topic))
        .map(|message| message.id)
        .collect();
    let mut first = store.first_deliveries(consumer, &wanted).await?;
    let mut batch = Vec::with_capacity(read.len());
    for &(partition, position, message) in read {
        match message {
            Ok(message) if first.remove(&message.id) => batch.push(Incoming {
                request: request_for(handler, consumer, message),
                message,
            }),
            Ok(_) => {}
            Err(undecodable) => {
                tracing::error!(consumer = %consumer, partition, position = %position, error = %undecodable.error, "a message that cannot be read was dead-lettered");
                store
                    .bury(
                        consumer,
                        partition,
                        position,
                        None,
                        &undecodable.raw,
                        &format!("cannot be read: {}", undecodable.error),
                    )
                    .await?;
            }
        }
    }
    if !batch.is_empty() {
        handler.handle_batch(&batch).await?;
    }
    Ok(())
}

pub(crate) fn request_for(
    handler: &dyn MessageHandler,
    consumer: &str,
    message: &Message,
) -> RequestContext {
    let trace = message
        .traceparent
        .as_deref()
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::start, |trace| trace.child());
    RequestContext::new(message.id.to_string(), trace).with_principal(handler.principal(consumer))
}

/// Whether a message that failed with `error` may pass when tried again (a
/// conflict, a failure inside), rather than failing for what it is.
pub(crate) fn may_pass(error: &AppError) -> bool {
    matches!(error, AppError::Conflict { .. } | AppError::Internal(_))
}

/// A partition this instance holds: where it stands, and when its lease was
/// last renewed.
struct Held {
    position: Option<String>,
    renewed: Instant,
}

pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many times a message failing for a reason that may pass is tried
/// before it is dead-lettered.
const TRIES_BEFORE_GIVING_UP: u32 = 5;

#[async_trait]
impl Worker for OrderedConsumer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, context: WorkerContext) -> Result<(), WorkerError> {
        // The partitions it found to be its share, and when: rounds use them
        // again for up to `idle_wait` (a third of the lease, if shorter)
        // rather than ask the database each time, so a busy consumer asks
        // about five times a second, as an idle one does.
        // Asking also renews this instance's membership, due a third of the
        // lease after the last time.
        let reuse = std::cmp::min(self.settings.idle_wait, self.settings.lease / 3);
        let mut last_share: Option<(Instant, Vec<u32>)> = None;
        while !context.is_stopping() {
            let (found, mut share) = match last_share.take() {
                Some((found, share)) if found.elapsed() < reuse => (found, share),
                _ => (Instant::now(), Box::pin(self.my_share()).await?),
            };
            let handled = Box::pin(self.round_of(&share)).await?;
            // Those it found held by another instance, or lost, are asked
            // about again only with the share.
            share.retain(|partition| lock(&self.held).contains_key(partition));
            last_share = Some((found, share));
            context.beat();
            if handled == 0 {
                // Idle: wait for an entry in a partition it holds, up to
                // `idle_wait` (it looks for partitions to take meanwhile).
                let positions: Vec<(u32, Option<String>)> = lock(&self.held)
                    .iter()
                    .map(|(partition, held)| (*partition, held.position.clone()))
                    .collect();
                let mut stop = context.clone();
                tokio::select! {
                    () = self.log.wait_for_any(&positions, self.settings.idle_wait) => {}
                    () = stop.stopping() => break,
                }
            }
        }
        for partition in 0..self.log.partitions() {
            self.store
                .let_go(&self.partitions_key, partition, &self.instance)
                .await?;
        }
        self.store
            .leave(&self.partitions_key, &self.instance)
            .await?;
        Ok(())
    }
}
