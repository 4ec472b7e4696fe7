//! The relay: publishes what the outbox holds, in order per aggregate, at least
//! once, and keeps what it could not publish.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, LockBehavior, LockType, Order, Query,
    SelectStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    StatementBuilder,
};
use strata_domain::RepositoryError;
use strata_domain::ports::{EventPublisher, Message, PublishError};
use uuid::Uuid;

use super::entity::{self, Column};
use crate::Database;
use crate::db_error::storage_error;

/// How the relay works; the defaults suit most services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// How many events one pass claims and publishes at most.
    pub batch: u32,
    /// How long a claim holds: a relay that dies leaves its events to another
    /// after this.
    pub lease: Duration,
    /// Failed attempts after which an event is dead-lettered (kept, shown, and
    /// retried only when an operator says so).
    pub max_attempts: u32,
    /// The pause after a first failed attempt; it doubles with each one.
    pub backoff: Duration,
    /// The longest pause between attempts.
    pub max_backoff: Duration,
    /// How often the relay looks without being woken (other instances'
    /// commits on SQLite, retries coming due).
    pub poll_interval: Duration,
    /// How long published events are kept before they are purged.
    pub retention: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 100,
            lease: Duration::from_secs(30),
            max_attempts: 12,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Events claimed.
    pub claimed: usize,
    /// Events the broker confirmed, now marked published.
    pub published: usize,
    /// Events that failed an attempt (and wait for their backoff).
    pub failed: usize,
    /// Events that failed their last allowed attempt and were dead-lettered.
    pub dead: usize,
}

/// Publishes the events of one database's outbox through an
/// [`EventPublisher`]; run one on every instance ([`OutboxRelay::run`]).
///
/// * **Claims** due events in batches, and only events whose every earlier
///   event of the same aggregate is published or claimed with them: an
///   aggregate's events are never published out of order, and an event that
///   cannot be published holds back the later ones of its aggregate (not those
///   of others). On PostgreSQL a pass is one transaction: the events are
///   locked (`FOR UPDATE SKIP LOCKED`, so relays take disjoint batches),
///   published, and marked before it commits. On MySQL and SQLite the claim
///   is a lease written with the relay's instance (`FOR UPDATE SKIP LOCKED`
///   on MySQL; SQLite's single writer serializes the claims), so the single
///   writer is not held while the broker answers — unless the publisher
///   only hands the events to memory ([`EventPublisher::publishes_in_memory`],
///   the in-process bus), which answers at once: then the pass is one
///   transaction there too.
/// * **Marks** them published only after the broker confirmed. A relay that
///   dies in between leaves them to be published again — at once on
///   PostgreSQL, where its transaction rolls back, after the lease elsewhere —
///   with the same message ids, which consumers recognise.
/// * **Backs off** per event after a failed attempt, doubling up to a ceiling,
///   and dead-letters an event after `max_attempts`.
#[derive(Clone)]
pub struct OutboxRelay {
    database: Database,
    publisher: Arc<dyn EventPublisher>,
    settings: RelaySettings,
    instance: String,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("publisher", &self.publisher.name())
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay of `database`'s outbox into `publisher`.
    #[must_use]
    pub fn new(
        database: Database,
        publisher: Arc<dyn EventPublisher>,
        settings: RelaySettings,
    ) -> Self {
        Self {
            database,
            publisher,
            settings,
            instance: Uuid::new_v4().simple().to_string(),
        }
    }

    /// The settings it runs with.
    #[must_use]
    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    /// Relays until `stop` resolves: a pass whenever a commit stored events in
    /// this process, at least every `poll_interval`, and straight away again
    /// while passes come back full.
    ///
    /// # Errors
    /// When the outbox cannot be read or written.
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
        mut progress: impl FnMut(RelayPass),
    ) -> Result<(), RepositoryError> {
        tokio::pin!(stop);
        // A commit in this process leaves a permit, so one made during a pass
        // is not missed.
        let signal = self.database.outbox_signal();
        let mut listener = Listener::new(&self.database).await;
        loop {
            let pass = self.relay_once().await?;
            progress(pass);
            if pass.claimed == self.settings.batch as usize && pass.failed == 0 {
                // More may be waiting; go on at once unless the service stops.
                tokio::select! {
                    biased;
                    () = &mut stop => return Ok(()),
                    () = std::future::ready(()) => continue,
                }
            }
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = signal.notified() => {}
                () = listener.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// One pass: claims a batch, publishes it, records the outcome.
    ///
    /// # Errors
    /// When the outbox cannot be read or written; a broker failure is not an
    /// error of the pass but recorded on the events.
    pub async fn relay_once(&self) -> Result<RelayPass, RepositoryError> {
        if self.database.backend() == DbBackend::Postgres || self.publisher.publishes_in_memory() {
            // One transaction: the events stay locked while the broker takes
            // them and are marked before the commit — no lease written, one
            // commit fewer, and a relay that dies mid-pass leaves nothing
            // claimed. Elsewhere only for a publisher that answers at once: a
            // broker's round trip would hold SQLite's only write lock, or
            // MySQL's locks on every row the claim scanned.
            let (session, claimed) = self.choose_retrying_deadlocks().await?;
            let pass = self.publish(&Held::Locked(&session), &claimed).await?;
            session.finish().await?;
            return Ok(pass);
        }
        let claimed = self.claim_retrying_deadlocks().await?;
        self.publish(&Held::Leased, &claimed).await
    }

    /// Publishes the `claimed` events, held as `held` says, and records the
    /// outcome on each.
    async fn publish(
        &self,
        held: &Held<'_, '_>,
        claimed: &[entity::Model],
    ) -> Result<RelayPass, RepositoryError> {
        let mut pass = RelayPass {
            claimed: claimed.len(),
            ..RelayPass::default()
        };
        if claimed.is_empty() {
            return Ok(pass);
        }
        let messages: Vec<Message> = claimed.iter().map(message_of).collect::<Result<_, _>>()?;
        match self.publisher.publish(&messages).await {
            Ok(()) => {
                self.published(held, claimed.iter().map(|row| row.id).collect())
                    .await?;
                pass.published = claimed.len();
            }
            Err(PublishError::Unavailable(error)) => {
                let reason = error_text(error.as_ref());
                tracing::warn!(
                    events = claimed.len(),
                    reason,
                    "the broker did not confirm a batch of outbox events; they will be sent again"
                );
                for row in claimed {
                    pass.record_failure(self.failed(held, row, &reason, false).await?);
                }
            }
            Err(PublishError::Refused(_)) => {
                // One of them is refused for what it is: find it, one at a time,
                // each aggregate in order, and let the others through.
                let mut stopped: Vec<(String, String)> = Vec::new();
                for (row, message) in claimed.iter().zip(&messages) {
                    let aggregate = (row.aggregate_kind.clone(), row.aggregate_id.clone());
                    if stopped.contains(&aggregate) {
                        self.let_go(held, row.id).await?;
                        continue;
                    }
                    match self.publisher.publish(std::slice::from_ref(message)).await {
                        Ok(()) => {
                            self.published(held, vec![row.id]).await?;
                            pass.published += 1;
                        }
                        Err(error) => {
                            stopped.push(aggregate);
                            let refused = matches!(error, PublishError::Refused(_));
                            let reason = error_text(&error);
                            if refused {
                                tracing::warn!(event = %row.id, reason, "the broker refused an outbox event");
                            }
                            pass.record_failure(self.failed(held, row, &reason, refused).await?);
                        }
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Marks `ids` published where they are held.
    async fn published(&self, held: &Held<'_, '_>, ids: Vec<Uuid>) -> Result<(), RepositoryError> {
        match held {
            Held::Leased => self.mark_published(ids).await,
            Held::Locked(session) => mark_published(*session, ids).await,
        }
    }

    /// Records a failed attempt of `row` where it is held.
    async fn failed(
        &self,
        held: &Held<'_, '_>,
        row: &entity::Model,
        reason: &str,
        refused: bool,
    ) -> Result<Failure, RepositoryError> {
        match held {
            Held::Leased => self.fail(row, reason, refused).await,
            Held::Locked(session) => {
                self.record_failure(*session, row, reason, refused, None)
                    .await
            }
        }
    }

    /// Lets go of event `id`, not published in this pass: its lease is given
    /// up; a locked one is let go at the commit.
    async fn let_go(&self, held: &Held<'_, '_>, id: Uuid) -> Result<(), RepositoryError> {
        match held {
            Held::Leased => self.release(id).await,
            Held::Locked(_) => Ok(()),
        }
    }

    /// [`Self::choose`] in a transaction of its own, again after a deadlock
    /// (see [`Self::claim_retrying_deadlocks`]); the events it returns stay
    /// locked until the transaction ends.
    async fn choose_retrying_deadlocks(
        &self,
    ) -> Result<(crate::Session<'_>, Vec<entity::Model>), RepositoryError> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            let session = self.database.autonomous().await?;
            match self.choose(&session, now_ms()).await {
                Err(error) if attempt < ATTEMPTS && crate::db_error::is_deadlock(&error) => {
                    attempt += 1;
                    tracing::debug!(attempt, "an outbox claim met a deadlock; claiming again");
                }
                Err(error) => return Err(error),
                Ok(chosen) => return Ok((session, chosen)),
            }
        }
    }

    /// [`Self::claim`], again after a deadlock: two relays' claims can lock
    /// the same rows in opposite orders (MySQL locks every row a locking
    /// read scans, not only those it returns), and the engine then rolls one
    /// back whole — nothing claimed, so nothing lost by claiming again.
    async fn claim_retrying_deadlocks(&self) -> Result<Vec<entity::Model>, RepositoryError> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            match self.claim().await {
                Err(error) if attempt < ATTEMPTS && crate::db_error::is_deadlock(&error) => {
                    attempt += 1;
                    tracing::debug!(attempt, "an outbox claim met a deadlock; claiming again");
                }
                claimed => return claimed,
            }
        }
    }

    async fn claim(&self) -> Result<Vec<entity::Model>, RepositoryError> {
        let now = now_ms();
        let session = self.database.autonomous().await?;
        let claimed = self.choose(&session, now).await?;
        if claimed.is_empty() {
            session.finish().await?;
            return Ok(Vec::new());
        }
        let until = now.saturating_add(millis(self.settings.lease));
        entity::Entity::update_many()
            .col_expr(Column::ClaimedBy, Expr::val(self.instance.clone()))
            .col_expr(Column::ClaimedUntil, Expr::val(until))
            .filter(Column::Id.is_in(claimed.iter().map(|row| row.id)))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(claimed)
    }

    /// The events a pass takes, locked in `connection`'s transaction: the
    /// heads, then as many of their followers as the batch has room for.
    async fn choose(
        &self,
        connection: &impl ConnectionTrait,
        now: i64,
    ) -> Result<Vec<entity::Model>, RepositoryError> {
        let backend = connection.get_database_backend();
        let end = query_ids(connection, backend, &window_end(now, self.settings.batch))
            .await?
            .pop();
        let mut heads: Vec<entity::Model> =
            query_models(connection, backend, &heads(now, self.settings.batch, end)).await?;
        if heads.is_empty() && end.is_some() {
            // Every due event in the window waits behind an earlier one of
            // its aggregate that is not due (dead, or backing off): look past
            // the window, so one aggregate's held-back tail does not stop the
            // others'.
            heads = query_models(
                connection,
                backend,
                &self::heads(now, self.settings.batch, None),
            )
            .await?;
        }
        if heads.is_empty() {
            return Ok(Vec::new());
        }
        // The events after the heads, so a busy aggregate is not published
        // one event per pass: one statement for all of them.
        let room = (self.settings.batch as usize).saturating_sub(heads.len());
        let followers = if room == 0 {
            Vec::new()
        } else {
            // Chosen first, then locked by their ids alone: a locking
            // statement that looked for them itself, or by any other index,
            // would lock (or wait for) every row it scanned on MySQL, and two
            // relays would deadlock on each other's heads.
            let ids: Vec<Uuid> = query_ids(connection, backend, &followers(&heads, room)).await?;
            if ids.is_empty() {
                Vec::new()
            } else {
                let mut locked = query_models(connection, backend, &lock_followers(ids)).await?;
                // Published by another relay since they were chosen.
                locked.retain(|row| row.published_at.is_none());
                locked
            }
        };
        let keep: Vec<bool> = {
            let mut stopped: HashSet<(&str, &str)> = HashSet::new();
            followers
                .iter()
                .map(|follower| {
                    let aggregate = (
                        follower.aggregate_kind.as_str(),
                        follower.aggregate_id.as_str(),
                    );
                    // Another relay's, dead or waiting for a retry: the
                    // aggregate's chain stops before it.
                    let taken = follower.claimed_until.is_some_and(|until| until >= now);
                    if taken || follower.dead_at.is_some() || follower.next_attempt_at > now {
                        stopped.insert(aggregate);
                    }
                    !stopped.contains(&aggregate)
                })
                .collect()
        };
        let mut claimed = heads;
        claimed.extend(
            followers
                .into_iter()
                .zip(keep)
                .filter_map(|(follower, kept)| kept.then_some(follower)),
        );
        Ok(claimed)
    }

    async fn mark_published(&self, ids: Vec<Uuid>) -> Result<(), RepositoryError> {
        let session = self.database.autonomous().await?;
        mark_published(&session, ids).await?;
        session.finish().await
    }

    async fn release(&self, id: Uuid) -> Result<(), RepositoryError> {
        let session = self.database.autonomous().await?;
        entity::Entity::update_many()
            .col_expr(Column::ClaimedBy, Expr::val(Option::<String>::None))
            .col_expr(Column::ClaimedUntil, Expr::val(Option::<i64>::None))
            .filter(Column::Id.eq(id))
            .filter(Column::ClaimedBy.eq(self.instance.clone()))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await
    }

    /// Records a failed attempt of `row`: its backoff, or — when the broker
    /// refused it for what it is, `max_attempts` times — its dead-lettering.
    /// A broker that cannot be reached never dead-letters anything: the event
    /// waits, retried every `max_backoff` at the longest, until it is back.
    async fn fail(
        &self,
        row: &entity::Model,
        reason: &str,
        refused: bool,
    ) -> Result<Failure, RepositoryError> {
        let session = self.database.autonomous().await?;
        // Only while this relay still holds it: one whose lease ran out
        // leaves the event to its new holder.
        let failure = self
            .record_failure(&session, row, reason, refused, Some(&self.instance))
            .await?;
        session.finish().await?;
        Ok(failure)
    }

    /// Writes [`Self::fail`]'s record of a failed attempt in `connection`'s
    /// transaction; with `holder`, only while the event's lease is still that
    /// relay's.
    async fn record_failure(
        &self,
        connection: &impl ConnectionTrait,
        row: &entity::Model,
        reason: &str,
        refused: bool,
        holder: Option<&str>,
    ) -> Result<Failure, RepositoryError> {
        let attempts = row.attempts.saturating_add(1);
        let now = now_ms();
        let dead =
            refused && u32::try_from(attempts).unwrap_or(u32::MAX) >= self.settings.max_attempts;
        let mut update = entity::Entity::update_many()
            .col_expr(Column::Attempts, Expr::val(attempts))
            .col_expr(
                Column::LastError,
                Expr::val(Some(reason.chars().take(2_000).collect::<String>())),
            )
            .col_expr(Column::ClaimedBy, Expr::val(Option::<String>::None))
            .col_expr(Column::ClaimedUntil, Expr::val(Option::<i64>::None));
        update = if dead {
            update.col_expr(Column::DeadAt, Expr::val(Some(now)))
        } else {
            update.col_expr(
                Column::NextAttemptAt,
                Expr::val(now.saturating_add(millis(self.backoff(attempts)))),
            )
        };
        update = update.filter(Column::Id.eq(row.id));
        if let Some(holder) = holder {
            update = update.filter(Column::ClaimedBy.eq(holder));
        }
        update.exec(connection).await.map_err(storage_error)?;
        if dead {
            tracing::error!(event = %row.id, attempts, reason, "an outbox event was dead-lettered");
            Ok(Failure::Dead)
        } else {
            Ok(Failure::Retried)
        }
    }

    /// The pause after the `attempts`-th failure in a row.
    fn backoff(&self, attempts: i32) -> Duration {
        let doublings = std::cmp::min(u32::try_from(attempts.saturating_sub(1)).unwrap_or(0), 30);
        self.settings
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.settings.max_backoff)
    }

    /// Deletes events published longer ago than the retention.
    ///
    /// # Errors
    /// When the outbox cannot be written.
    pub async fn purge_published(&self) -> Result<u64, RepositoryError> {
        let cutoff = now_ms().saturating_sub(millis(self.settings.retention));
        let session = self.database.autonomous().await?;
        let deleted = entity::Entity::delete_many()
            .filter(Column::PublishedAt.lt(cutoff))
            .exec(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(deleted.rows_affected)
    }
}

enum Failure {
    Retried,
    Dead,
}

/// How a pass holds the events it claimed.
enum Held<'session, 'database> {
    /// Under a lease written with the relay's instance, committed.
    Leased,
    /// Locked in this transaction, which the pass commits at its end.
    Locked(&'session crate::Session<'database>),
}

impl RelayPass {
    fn record_failure(&mut self, failure: Failure) {
        match failure {
            Failure::Retried => self.failed += 1,
            Failure::Dead => {
                self.failed += 1;
                self.dead += 1;
            }
        }
    }
}

/// How many due events, per event of a batch, a pass looks among for heads.
const HEAD_WINDOW: u64 = 10;

/// Whether an event is due and claimed by no relay now: unpublished, not
/// dead, past its backoff, and not under another relay's lease.
fn due(now: i64, table: &Alias) -> Condition {
    let column = |column: Column| Expr::col((table.clone(), column));
    Condition::all()
        .add(column(Column::PublishedAt).is_null())
        .add(column(Column::DeadAt).is_null())
        .add(column(Column::NextAttemptAt).lte(now))
        .add(
            Condition::any()
                .add(column(Column::ClaimedUntil).is_null())
                .add(column(Column::ClaimedUntil).lt(now)),
        )
}

/// The id of the last event in the window a pass looks among for heads: the
/// `HEAD_WINDOW` × `batch` oldest due events. None when fewer are due.
fn window_end(now: i64, batch: u32) -> SelectStatement {
    let window = Alias::new("w");
    let size = std::cmp::max(u64::from(batch).saturating_mul(HEAD_WINDOW), 1);
    Query::select()
        .column((window.clone(), Column::Id))
        .from_as(entity::Entity, window.clone())
        .cond_where(due(now, &window))
        .order_by((window, Column::Id), Order::Asc)
        .offset(size - 1)
        .limit(1)
        .to_owned()
}

/// The first unpublished event of each aggregate that is due and not claimed,
/// oldest first, among the oldest due events (those up to `end`, the window's
/// last, when [`window_end`] found one).
///
/// The heads are looked for among the oldest due events only: however many
/// wait (a backlog after a broker outage), a pass reads a window of them,
/// even where the planner has no statistics of the table yet and would
/// otherwise check every waiting event for an earlier one. The window is a
/// range of ids, so the events are read in order and the search stops at the
/// `batch`-th head rather than checking the whole window.
fn heads(now: i64, batch: u32, end: Option<Uuid>) -> SelectStatement {
    let outer = Alias::new("o");
    let earlier = Alias::new("e");
    let column = |table: &Alias, column: Column| Expr::col((table.clone(), column));
    let earlier_unpublished = Query::select()
        .expr(Expr::val(1))
        .from_as(entity::Entity, earlier.clone())
        .and_where(
            column(&earlier, Column::AggregateKind).equals((outer.clone(), Column::AggregateKind)),
        )
        .and_where(
            column(&earlier, Column::AggregateId).equals((outer.clone(), Column::AggregateId)),
        )
        .and_where(column(&earlier, Column::PublishedAt).is_null())
        // One row comparison, which the index over unpublished events by
        // aggregate answers with one probe, however many events wait.
        .and_where(
            Expr::tuple([
                column(&earlier, Column::AggregateVersion),
                column(&earlier, Column::Id),
            ])
            .lt(Expr::tuple([
                column(&outer, Column::AggregateVersion),
                column(&outer, Column::Id),
            ])),
        )
        .to_owned();
    let mut heads = Query::select()
        .column((outer.clone(), Asterisk))
        .from_as(entity::Entity, outer.clone())
        // Asked of the row itself: a row another relay claimed (or
        // published) after this statement's snapshot is locked here at its
        // latest version, and PostgreSQL checks these conditions again
        // against that version, so it is skipped rather than claimed twice.
        .cond_where(due(now, &outer))
        .and_where(Expr::exists(earlier_unpublished).not())
        .to_owned();
    if let Some(end) = end {
        heads.and_where(column(&outer, Column::Id).lte(end));
    }
    heads
        .order_by((outer.clone(), Column::Id), Order::Asc)
        .limit(u64::from(batch))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned()
}

/// The ids of the unpublished events after `heads`, each aggregate's in its
/// order: the first after every head, then the second after every head, and
/// so on, `limit` in all — so one busy aggregate does not take a whole pass.
fn followers(heads: &[entity::Model], limit: usize) -> SelectStatement {
    let of_heads = heads.iter().fold(Condition::any(), |any, head| {
        any.add(
            Condition::all()
                .add(Expr::col(Column::AggregateKind).eq(head.aggregate_kind.clone()))
                .add(Expr::col(Column::AggregateId).eq(head.aggregate_id.clone())),
        )
    });
    let place = Alias::new("place");
    let ranked = Alias::new("ranked");
    let placed = Query::select()
        .column(Column::Id)
        .expr_as(
            Expr::cust(
                "ROW_NUMBER() OVER (PARTITION BY aggregate_kind, aggregate_id \
                 ORDER BY aggregate_version, id)",
            ),
            place.clone(),
        )
        .from(entity::Entity)
        .cond_where(of_heads)
        .and_where(Expr::col(Column::PublishedAt).is_null())
        .and_where(Expr::col(Column::Id).is_not_in(heads.iter().map(|head| head.id)))
        .to_owned();
    Query::select()
        .column((ranked.clone(), Column::Id))
        .from_subquery(placed, ranked.clone())
        .order_by((ranked.clone(), place), Order::Asc)
        .order_by((ranked, Column::Id), Order::Asc)
        .limit(limit as u64)
        .to_owned()
}

/// The events `ids` [`followers`] chose, locked.
fn lock_followers(ids: Vec<Uuid>) -> SelectStatement {
    Query::select()
        .column(Asterisk)
        .from(entity::Entity)
        .and_where(Expr::col(Column::Id).is_in(ids))
        .order_by(Column::AggregateKind, Order::Asc)
        .order_by(Column::AggregateId, Order::Asc)
        .order_by(Column::AggregateVersion, Order::Asc)
        .order_by(Column::Id, Order::Asc)
        // Waiting, never skipping: a follower skipped would let a later one
        // of the aggregate go first.
        .lock(LockType::Update)
        .to_owned()
}

/// Marks `ids` published now and no longer claimed.
async fn mark_published(
    connection: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<(), RepositoryError> {
    entity::Entity::update_many()
        .col_expr(Column::PublishedAt, Expr::val(now_ms()))
        .col_expr(Column::ClaimedBy, Expr::val(Option::<String>::None))
        .col_expr(Column::ClaimedUntil, Expr::val(Option::<i64>::None))
        .filter(Column::Id.is_in(ids))
        .exec(connection)
        .await
        .map_err(storage_error)?;
    Ok(())
}

async fn query_ids(
    connection: &impl ConnectionTrait,
    backend: DbBackend,
    statement: &SelectStatement,
) -> Result<Vec<Uuid>, RepositoryError> {
    let rows = connection
        .query_all_raw(StatementBuilder::build(statement, &backend))
        .await
        .map_err(storage_error)?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "id").map_err(storage_error))
        .collect()
}

async fn query_models(
    connection: &impl ConnectionTrait,
    backend: DbBackend,
    statement: &SelectStatement,
) -> Result<Vec<entity::Model>, RepositoryError> {
    let rows = connection
        .query_all_raw(StatementBuilder::build(statement, &backend))
        .await
        .map_err(storage_error)?;
    rows.iter()
        .map(|row| entity::Model::from_query_result(row, "").map_err(storage_error))
        .collect()
}

pub(super) fn message_of(row: &entity::Model) -> Result<Message, RepositoryError> {
    Ok(Message {
        id: row.id,
        topic: row.aggregate_kind.clone(),
        key: row.aggregate_id.clone(),
        version: u64::try_from(row.aggregate_version).unwrap_or_default(),
        event_type: row.event_type.clone(),
        payload: serde_json::from_str(&row.payload).map_err(RepositoryError::storage)?,
        traceparent: row.traceparent.clone(),
        recorded_at_ms: row.recorded_at,
    })
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// An error and its causes, as one line.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Commits on other instances, heard through PostgreSQL's `LISTEN`; on SQLite,
/// or while the listening connection is lost, nothing is heard and the relay
/// polls.
struct Listener {
    listener: Option<sea_orm::sqlx::postgres::PgListener>,
}

impl Listener {
    async fn new(database: &Database) -> Self {
        if database.backend() != DbBackend::Postgres {
            return Self { listener: None };
        }
        // A connection of its own, outside the service's pools: a listener
        // holds its connection for as long as it listens.
        let options = database
            .writer_pool()
            .get_postgres_connection_pool()
            .connect_options();
        let own = sea_orm::sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*options).clone());
        let listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&own).await {
            Ok(mut listener) => match listener.listen(super::NOTIFY_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(error = %error, "the relay cannot listen for commits; it polls");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(error = %error, "the relay cannot listen for commits; it polls");
                None
            }
        };
        Self { listener }
    }

    /// Resolves when another instance committed events; never when not
    /// listening.
    async fn notified(&mut self) {
        let Some(listener) = &mut self.listener else {
            return std::future::pending().await;
        };
        // `try_recv` reconnects after a lost connection and then reports it
        // (`None`); either way, a look at the outbox is due.
        if let Err(error) = listener.try_recv().await {
            tracing::warn!(error = %error, "the relay stopped listening for commits; it polls");
            self.listener = None;
        }
    }
}
