//! The coordinator: global transactions and their branches in the initiating
//! service's database, driven to a terminal state by the initiator and, when
//! it cannot, by the recovery worker on any instance.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use futures_util::{StreamExt as _, stream};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use strata_domain::RepositoryError;
use strata_domain::ports::{BranchOp, Clock, SystemClock};
use uuid::Uuid;

use super::migration::{Branches, Transactions};
use super::transport::{BranchAnswer, BranchCall, BranchTransport};
use crate::Database;
use crate::database::{execute, insert_absent};
use crate::db_error::storage_error;

/// Where a global transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Registered with its branches; tries (or saga actions) under way.
    Prepared,
    /// Every try succeeded: confirms are retried until each succeeds.
    Submitted,
    /// A try failed, or the transaction timed out: cancels are retried until
    /// each succeeds.
    Aborting,
    /// Every branch confirmed.
    Succeeded,
    /// Every branch cancelled.
    Failed,
}

impl TransactionState {
    /// Its stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Submitted => "submitted",
            Self::Aborting => "aborting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The state named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Prepared,
            Self::Submitted,
            Self::Aborting,
            Self::Succeeded,
            Self::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }

    /// Whether nothing more happens to it.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// The states the protocol moves a transaction to from this one; an
    /// operator's force aside, no other move is made. The TCC model
    /// (`infrastructure/tests/model/tcc.pml`) makes the same moves, and a test
    /// keeps the two equal.
    #[must_use]
    pub const fn successors(self) -> &'static [Self] {
        match self {
            Self::Prepared => &[Self::Submitted, Self::Aborting],
            Self::Submitted => &[Self::Succeeded],
            Self::Aborting => &[Self::Failed],
            Self::Succeeded | Self::Failed => &[],
        }
    }
}

/// What a global transaction came to, as far as is known now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every branch confirmed (or every saga action done).
    Succeeded,
    /// Every branch cancelled; why the transaction aborted.
    Failed {
        /// The first refusal's text, or `timeout`.
        reason: String,
    },
    /// Not finished yet: the recovery worker takes it from here.
    Pending {
        /// Where it stands.
        state: TransactionState,
    },
}

/// One branch of a global transaction: where its participant serves it, and
/// its request.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchSpec {
    /// The participant's branch address; the operation is appended.
    pub url: String,
    /// The request each of its operations gets.
    pub payload: serde_json::Value,
}

/// How the coordinator times and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TccSettings {
    /// How long a transaction may stay prepared: past it, it aborts.
    pub timeout: Duration,
    /// The pause before the first retry of an unfinished phase; it doubles
    /// with each retry that makes no progress.
    pub retry_interval: Duration,
    /// Doublings after which a transaction is flagged for an operator: it
    /// keeps its place and is retried only when an operator asks.
    pub max_doublings: u32,
    /// How long a recovery worker's claim on a transaction holds.
    pub lease: Duration,
    /// How many claimed transactions a recovery pass drives at once, so that
    /// a participant that does not answer holds up one pass for one call
    /// timeout, not for one per transaction.
    pub recovery_concurrency: usize,
}

impl Default for TccSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retry_interval: Duration::from_secs(1),
            max_doublings: 8,
            lease: Duration::from_secs(30),
            recovery_concurrency: 16,
        }
    }
}

/// A moment of the coordinator's work where a test can make it die.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The transaction and its branches are stored; no try was sent.
    Prepared,
    /// Every try answered; nothing decided yet.
    TriesAnswered,
    /// `submitted` is stored; no confirm was sent.
    Submitted,
    /// A branch answered an operation; its status is not stored yet.
    BranchAnswered {
        /// The branch.
        branch: String,
        /// The operation.
        op: BranchOp,
    },
}

/// Decides whether the coordinator dies at a [`Phase`]: for fault-injection
/// tests. [`NoFaults`] never does.
#[async_trait]
pub trait Faults: Send + Sync {
    /// Whether to die at `phase` of `gid`.
    async fn crash_at(&self, phase: &Phase, gid: &str) -> bool;
}

/// No faults: the coordinator of a real service.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

#[async_trait]
impl Faults for NoFaults {
    async fn crash_at(&self, _phase: &Phase, _gid: &str) -> bool {
        false
    }
}

/// Why the coordinator could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TccError {
    /// Its tables could not be read or written.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
    /// A transaction with this id exists already.
    #[error("a global transaction `{0}` exists already")]
    Duplicate(String),
    /// No transaction has this id.
    #[error("no global transaction `{0}`")]
    NotFound(String),
    /// The transaction is not in a state the request applies to.
    #[error("global transaction `{gid}` is {state}")]
    WrongState {
        /// The transaction.
        gid: String,
        /// Its state.
        state: &'static str,
    },
    /// A fault injected at `0`: the coordinator stopped as a dying process
    /// would, writing nothing more.
    #[error("died at {0:?}")]
    Crashed(Phase),
}

/// A global transaction as stored, with its branches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionView {
    /// Its id.
    pub gid: String,
    /// `tcc` or `saga`.
    pub kind: String,
    /// Where it stands.
    pub state: TransactionState,
    /// Why it aborted, once it did.
    pub reason: Option<String>,
    /// Retries in a row that made no progress.
    pub attempts: u32,
    /// Whether it waits for an operator.
    pub flagged: bool,
    /// The last error a branch call gave.
    pub last_error: Option<String>,
    /// When the recovery worker next takes it, in milliseconds since the Unix
    /// epoch.
    pub next_retry_at_ms: i64,
    /// When it began, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Its branches, in order.
    pub branches: Vec<BranchView>,
}

/// A branch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchView {
    /// Its id within the transaction.
    pub branch: String,
    /// Where its participant serves it.
    pub url: String,
    /// `registered`, `calling` (a saga action sent), `tried`, `try_failed`,
    /// `confirmed` or `cancelled`.
    pub state: String,
    /// Calls made.
    pub attempts: u32,
    /// The last call's error.
    pub last_error: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct TransactionRow {
    gid: String,
    kind: String,
    state: String,
    timeout_at: i64,
    next_retry_at: i64,
    attempts: i32,
    flagged: bool,
    reason: Option<String>,
    last_error: Option<String>,
    created_at: i64,
}

#[derive(Debug, Clone, FromQueryResult)]
struct BranchRow {
    branch_id: String,
    position: i32,
    url: String,
    payload: String,
    state: String,
    attempts: i32,
    last_error: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct GidRow {
    gid: String,
}

#[derive(Debug, FromQueryResult)]
struct CountRow {
    state: String,
    flagged: bool,
    transactions: i64,
}

/// How many global transactions stand where, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionCounts {
    /// Per state, how many transactions are in it.
    pub by_state: Vec<(TransactionState, u64)>,
    /// How many wait for an operator.
    pub flagged: u64,
}

/// What one call of a branch came to, to store.
struct BranchOutcome {
    branch: String,
    /// Its new state, when the call moved it.
    state: Option<&'static str>,
    /// The call's error, if any (cleared by a success).
    error: Option<String>,
}

impl BranchOutcome {
    fn state(branch: &str, state: &'static str, error: Option<&str>) -> Self {
        Self {
            branch: branch.to_owned(),
            state: Some(state),
            error: error.map(|error| error.chars().take(2_000).collect()),
        }
    }

    fn error(branch: &str, error: &str) -> Self {
        Self {
            branch: branch.to_owned(),
            state: None,
            error: Some(error.chars().take(2_000).collect()),
        }
    }

    /// `row` as storing this outcome leaves it.
    fn apply_to(&self, row: &mut BranchRow) {
        if let Some(state) = self.state {
            state.clone_into(&mut row.state);
        }
        row.attempts = row.attempts.saturating_add(1);
        row.last_error.clone_from(&self.error);
    }
}

/// Where a global transaction stands, as far as driving it on needs.
struct Standing {
    saga: bool,
    state: TransactionState,
    timeout_at: i64,
    attempts: i32,
    reason: Option<String>,
}

const TCC: &str = "tcc";
const SAGA: &str = "saga";

/// The coordinator of one service's global transactions.
#[derive(Clone)]
pub struct Coordinator {
    database: Database,
    transport: Arc<dyn BranchTransport>,
    settings: TccSettings,
    clock: Arc<dyn Clock>,
    faults: Arc<dyn Faults>,
    alert: Option<Alert>,
    instance: String,
}

/// Called with a transaction's id when it is flagged for an operator: a
/// hook to page someone, open a ticket, post to a channel.
pub type Alert = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("instance", &self.instance)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Coordinator {
    /// A coordinator keeping its transactions in `database` and calling
    /// branches through `transport`.
    #[must_use]
    pub fn new(
        database: Database,
        transport: Arc<dyn BranchTransport>,
        settings: TccSettings,
    ) -> Self {
        Self {
            database,
            transport,
            settings,
            clock: Arc::new(SystemClock),
            faults: Arc::new(NoFaults),
            alert: None,
            instance: Uuid::new_v4().simple().to_string(),
        }
    }

    /// The same coordinator telling time by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same coordinator dying where `faults` says (tests).
    #[must_use]
    pub fn with_faults(mut self, faults: Arc<dyn Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// The same coordinator calling `alert` whenever a transaction is
    /// flagged for an operator (besides the error log line and the
    /// `flagged` state it always leaves).
    #[must_use]
    pub fn with_alert(mut self, alert: Alert) -> Self {
        self.alert = Some(alert);
        self
    }

    /// Its settings.
    #[must_use]
    pub fn settings(&self) -> &TccSettings {
        &self.settings
    }

    fn now(&self) -> i64 {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, millis)
    }

    async fn die_at(&self, phase: Phase, gid: &str) -> Result<(), TccError> {
        if self.faults.crash_at(&phase, gid).await {
            return Err(TccError::Crashed(phase));
        }
        Ok(())
    }

    /// Runs a TCC transaction `gid` over `branches`: tries all at once,
    /// then confirms all (every try succeeded) or cancels all. Returns what
    /// it came to; a phase a participant did not finish is left to the
    /// recovery worker ([`Outcome::Pending`]).
    ///
    /// # Errors
    /// [`TccError::Duplicate`] when `gid` was used; storage failures.
    pub async fn tcc(
        &self,
        gid: &str,
        branches: Vec<BranchSpec>,
        traceparent: Option<&str>,
    ) -> Result<Outcome, TccError> {
        let (deadline, mut rows) = self.create(gid, TCC, &branches).await?;
        self.die_at(Phase::Prepared, gid).await?;
        let answers = join_all(
            rows.iter()
                .map(|branch| self.call(gid, branch, BranchOp::Try, traceparent, deadline)),
        )
        .await;
        self.die_at(Phase::TriesAnswered, gid).await?;
        let mut refusal = None;
        let mut unknown = None;
        let mut outcomes = Vec::with_capacity(rows.len());
        for (branch, answer) in rows.iter().zip(&answers) {
            outcomes.push(match answer {
                BranchAnswer::Success => BranchOutcome::state(&branch.branch_id, "tried", None),
                BranchAnswer::Failure(reason) => {
                    refusal.get_or_insert_with(|| reason.clone());
                    BranchOutcome::state(&branch.branch_id, "try_failed", Some(reason))
                }
                BranchAnswer::Unknown(error) => {
                    unknown.get_or_insert_with(|| error.clone());
                    BranchOutcome::error(&branch.branch_id, error)
                }
            });
        }
        let (to, reason) = if refusal.is_none() && unknown.is_none() {
            (TransactionState::Submitted, None)
        } else {
            let reason = refusal
                .or(unknown.map(|error| format!("a participant did not answer: {error}")))
                .unwrap_or_default();
            (TransactionState::Aborting, Some(reason))
        };
        let moved = self
            .move_storing(
                gid,
                &outcomes,
                TransactionState::Prepared,
                to,
                reason.as_deref(),
                false,
            )
            .await?;
        if !moved {
            // Moved meanwhile (by recovery, past the timeout): from where it
            // stands now.
            return self.drive(gid, traceparent).await;
        }
        if to == TransactionState::Submitted {
            self.die_at(Phase::Submitted, gid).await?;
        }
        for (row, outcome) in rows.iter_mut().zip(&outcomes) {
            outcome.apply_to(row);
        }
        let standing = Standing {
            saga: false,
            state: to,
            timeout_at: deadline,
            attempts: 0,
            reason,
        };
        self.drive_from(gid, traceparent, &standing, &rows).await
    }

    /// Runs a saga `gid` over `steps`: each step's action in turn; when one
    /// fails, the compensations of every step that may have run, in reverse
    /// order. Returns what it came to.
    ///
    /// # Errors
    /// As [`Coordinator::tcc`].
    pub async fn saga(
        &self,
        gid: &str,
        steps: Vec<BranchSpec>,
        traceparent: Option<&str>,
    ) -> Result<Outcome, TccError> {
        let (deadline, rows) = self.create(gid, SAGA, &steps).await?;
        self.die_at(Phase::Prepared, gid).await?;
        let mut failed = None;
        for branch in &rows {
            // Marked before it is sent, so a compensation follows it even if
            // the answer is lost with this process.
            self.store_outcomes(
                gid,
                &[BranchOutcome::state(&branch.branch_id, "calling", None)],
            )
            .await?;
            match self
                .call(gid, branch, BranchOp::Try, traceparent, deadline)
                .await
            {
                BranchAnswer::Success => {
                    self.store_outcomes(
                        gid,
                        &[BranchOutcome::state(&branch.branch_id, "tried", None)],
                    )
                    .await?;
                }
                BranchAnswer::Failure(reason) => {
                    self.store_outcomes(
                        gid,
                        &[BranchOutcome::state(
                            &branch.branch_id,
                            "try_failed",
                            Some(&reason),
                        )],
                    )
                    .await?;
                    failed = Some(reason);
                    break;
                }
                BranchAnswer::Unknown(error) => {
                    self.store_outcomes(gid, &[BranchOutcome::error(&branch.branch_id, &error)])
                        .await?;
                    failed = Some(format!("a participant did not answer: {error}"));
                    break;
                }
            }
        }
        self.die_at(Phase::TriesAnswered, gid).await?;
        match failed {
            None => {
                self.move_state(
                    gid,
                    TransactionState::Prepared,
                    TransactionState::Submitted,
                    None,
                )
                .await?;
            }
            Some(reason) => {
                self.move_state(
                    gid,
                    TransactionState::Prepared,
                    TransactionState::Aborting,
                    Some(&reason),
                )
                .await?;
            }
        }
        self.drive(gid, traceparent).await
    }

    /// Takes `gid` as far as it can go from where it stands, and leaves what
    /// is left to a later retry.
    async fn drive(&self, gid: &str, traceparent: Option<&str>) -> Result<Outcome, TccError> {
        let mut row = self
            .transaction_row(gid)
            .await?
            .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
        let mut state = TransactionState::from_name(&row.state)
            .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
        if state == TransactionState::Prepared && self.now() >= row.timeout_at {
            self.move_state(
                gid,
                TransactionState::Prepared,
                TransactionState::Aborting,
                Some("timeout"),
            )
            .await?;
            row = self
                .transaction_row(gid)
                .await?
                .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
            state = TransactionState::from_name(&row.state)
                .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
        }
        let branches = self.branches(gid).await?;
        let standing = Standing {
            saga: row.kind == SAGA,
            state,
            timeout_at: row.timeout_at,
            attempts: row.attempts,
            reason: row.reason,
        };
        self.drive_from(gid, traceparent, &standing, &branches)
            .await
    }

    /// [`Self::drive`] from a standing already known: its state, the
    /// branches as they are stored.
    async fn drive_from(
        &self,
        gid: &str,
        traceparent: Option<&str>,
        standing: &Standing,
        branches: &[BranchRow],
    ) -> Result<Outcome, TccError> {
        let Standing {
            saga,
            state,
            timeout_at,
            attempts,
            ref reason,
        } = *standing;
        let (done, progressed, error) = match state {
            TransactionState::Succeeded => return Ok(Outcome::Succeeded),
            TransactionState::Failed => {
                return Ok(Outcome::Failed {
                    reason: self.known_reason(gid, reason.as_deref()).await?,
                });
            }
            TransactionState::Prepared => {
                self.release(gid, timeout_at).await?;
                return Ok(Outcome::Pending { state });
            }
            TransactionState::Submitted if saga => (true, false, None),
            TransactionState::Submitted => {
                self.finish_open(
                    gid,
                    branches,
                    BranchOp::Confirm,
                    "confirmed",
                    traceparent,
                    timeout_at,
                )
                .await?
            }
            TransactionState::Aborting if saga => {
                self.compensate_in_reverse(gid, branches, traceparent, timeout_at)
                    .await?
            }
            TransactionState::Aborting => {
                self.finish_open(
                    gid,
                    branches,
                    BranchOp::Cancel,
                    "cancelled",
                    traceparent,
                    timeout_at,
                )
                .await?
            }
        };
        if done {
            let terminal = if state == TransactionState::Submitted {
                TransactionState::Succeeded
            } else {
                TransactionState::Failed
            };
            if !self.transition(gid, state, terminal, None, true).await? {
                // Moved meanwhile (an operator forced it): what it holds now.
                return self.outcome_of(gid).await;
            }
            return Ok(match terminal {
                TransactionState::Succeeded => Outcome::Succeeded,
                _ => Outcome::Failed {
                    reason: self.known_reason(gid, reason.as_deref()).await?,
                },
            });
        }
        self.retry_later(gid, attempts, progressed, error.as_deref())
            .await?;
        Ok(Outcome::Pending { state })
    }

    /// Calls `op` on every branch not `finished` yet, all at once: whether
    /// all are, whether any call succeeded, and the last error.
    async fn finish_open(
        &self,
        gid: &str,
        branches: &[BranchRow],
        op: BranchOp,
        finished: &'static str,
        traceparent: Option<&str>,
        deadline: i64,
    ) -> Result<(bool, bool, Option<String>), TccError> {
        let open: Vec<&BranchRow> = branches
            .iter()
            .filter(|branch| branch.state != finished)
            .collect();
        self.finish_all(gid, &open, op, finished, traceparent, deadline)
            .await
    }

    async fn finish_all(
        &self,
        gid: &str,
        open: &[&BranchRow],
        op: BranchOp,
        finished: &'static str,
        traceparent: Option<&str>,
        deadline: i64,
    ) -> Result<(bool, bool, Option<String>), TccError> {
        let answers = join_all(
            open.iter()
                .map(|branch| self.call(gid, branch, op, traceparent, deadline)),
        )
        .await;
        let (mut done, mut progressed, mut error) = (true, false, None);
        let mut outcomes = Vec::with_capacity(open.len());
        for (branch, answer) in open.iter().zip(answers) {
            self.die_at(
                Phase::BranchAnswered {
                    branch: branch.branch_id.clone(),
                    op,
                },
                gid,
            )
            .await?;
            outcomes.push(match answer {
                BranchAnswer::Success => {
                    progressed = true;
                    BranchOutcome::state(&branch.branch_id, finished, None)
                }
                BranchAnswer::Failure(text) | BranchAnswer::Unknown(text) => {
                    // A confirm or a cancel must succeed in the end: any
                    // answer but success is retried.
                    done = false;
                    let outcome = BranchOutcome::error(&branch.branch_id, &text);
                    error = Some(text);
                    outcome
                }
            });
        }
        self.store_outcomes(gid, &outcomes).await?;
        Ok((done, progressed, error))
    }

    /// Compensates the saga's steps that may have run, the last first, one
    /// at a time; stops at the first that does not succeed.
    async fn compensate_in_reverse(
        &self,
        gid: &str,
        branches: &[BranchRow],
        traceparent: Option<&str>,
        deadline: i64,
    ) -> Result<(bool, bool, Option<String>), TccError> {
        let mut progressed = false;
        let mut ran: Vec<&BranchRow> = branches
            .iter()
            .filter(|branch| branch.state != "registered" && branch.state != "cancelled")
            .collect();
        ran.sort_by_key(|branch| std::cmp::Reverse(branch.position));
        for branch in ran {
            let (done, this_progressed, error) = self
                .finish_all(
                    gid,
                    std::slice::from_ref(&branch),
                    BranchOp::Cancel,
                    "cancelled",
                    traceparent,
                    deadline,
                )
                .await?;
            progressed |= this_progressed;
            if !done {
                return Ok((false, progressed, error));
            }
        }
        Ok((true, progressed, None))
    }

    async fn call(
        &self,
        gid: &str,
        branch: &BranchRow,
        op: BranchOp,
        traceparent: Option<&str>,
        deadline_ms: i64,
    ) -> BranchAnswer {
        let payload = match serde_json::from_str::<serde_json::Value>(&branch.payload) {
            Ok(payload) => payload,
            Err(error) => return BranchAnswer::Unknown(format!("stored payload: {error}")),
        };
        let answer = self
            .transport
            .call(BranchCall {
                gid,
                branch: &branch.branch_id,
                op,
                url: &branch.url,
                payload: &payload,
                traceparent,
                deadline_ms,
            })
            .await;
        if !matches!(answer, BranchAnswer::Success) {
            tracing::warn!(gid, branch = %branch.branch_id, op = op.as_str(), ?answer, "a branch call did not succeed");
        }
        answer
    }

    /// Claims up to `limit` transactions due for recovery (timed out while
    /// prepared, or with a phase to retry) and drives them,
    /// `recovery_concurrency` at a time: how many it took. Any number of
    /// instances may run it; each transaction is claimed by one at a time,
    /// for the lease, so a pass should claim no more than it drives within
    /// the lease.
    ///
    /// # Errors
    /// Storage failures, and [`TccError::Crashed`] from injected faults: the
    /// pass stops there, dropping the drives still running as a crash would;
    /// what they held is taken again once their leases run out.
    pub async fn recover_once(&self, limit: u64) -> Result<usize, TccError> {
        let gids = self.claim(limit).await?;
        let taken = gids.len();
        let mut driven = stream::iter(gids)
            .map(|gid| async move {
                let result = self.drive(&gid, None).await;
                (gid, result)
            })
            .buffer_unordered(self.settings.recovery_concurrency.max(1));
        while let Some((gid, result)) = driven.next().await {
            match result {
                Ok(_) => {}
                Err(error @ (TccError::Crashed(_) | TccError::Storage(_))) => return Err(error),
                Err(error) => {
                    tracing::error!(gid, %error, "a global transaction could not be recovered");
                }
            }
        }
        Ok(taken)
    }

    async fn claim(&self, limit: u64) -> Result<Vec<String>, TccError> {
        let now = self.now();
        let session = self.database.autonomous().await?;
        let due: SelectStatement = Query::select()
            .column(Transactions::Gid)
            .from(Transactions::Table)
            .and_where(Expr::col(Transactions::State).is_in([
                TransactionState::Prepared.as_str(),
                TransactionState::Submitted.as_str(),
                TransactionState::Aborting.as_str(),
            ]))
            .and_where(Expr::col(Transactions::Flagged).eq(false))
            .and_where(Expr::col(Transactions::NextRetryAt).lte(now))
            .and_where(Expr::col(Transactions::LeaseUntil).lt(now))
            .order_by(Transactions::NextRetryAt, Order::Asc)
            .limit(limit)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let backend = session.get_database_backend();
        let rows = session
            .query_all_raw(StatementBuilder::build(&due, &backend))
            .await
            .map_err(storage_error)?;
        let gids: Vec<String> = rows
            .iter()
            .map(|row| GidRow::from_query_result(row, "").map(|row| row.gid))
            .collect::<Result<_, _>>()
            .map_err(storage_error)?;
        if !gids.is_empty() {
            let take = Query::update()
                .table(Transactions::Table)
                .value(Transactions::LeaseOwner, self.instance.as_str())
                .value(
                    Transactions::LeaseUntil,
                    now.saturating_add(millis(self.settings.lease)),
                )
                .and_where(Expr::col(Transactions::Gid).is_in(gids.clone()))
                .to_owned();
            execute(&session, &take).await?;
        }
        session.finish().await?;
        Ok(gids)
    }

    /// Stores the transaction and its branches: when it times out (ms).
    /// Stores `gid` prepared with its `branches` registered: its deadline,
    /// and the branches as stored.
    async fn create(
        &self,
        gid: &str,
        kind: &str,
        branches: &[BranchSpec],
    ) -> Result<(i64, Vec<BranchRow>), TccError> {
        let now = self.now();
        let timeout_at = now.saturating_add(millis(self.settings.timeout));
        let session = self.database.autonomous().await?;
        let insert = Query::insert()
            .into_table(Transactions::Table)
            .columns([
                Transactions::Gid,
                Transactions::Kind,
                Transactions::State,
                Transactions::TimeoutAt,
                Transactions::NextRetryAt,
                Transactions::Attempts,
                Transactions::Flagged,
                Transactions::LeaseOwner,
                Transactions::LeaseUntil,
                Transactions::CreatedAt,
                Transactions::UpdatedAt,
            ])
            .values_panic([
                gid.into(),
                kind.into(),
                TransactionState::Prepared.as_str().into(),
                timeout_at.into(),
                timeout_at.into(),
                0_i32.into(),
                false.into(),
                self.instance.as_str().into(),
                // The initiator holds it through its timeout and a lease more:
                // recovery takes it only once the initiator is gone.
                timeout_at
                    .saturating_add(millis(self.settings.lease))
                    .into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        if !insert_absent(&session, insert, [Transactions::Gid]).await? {
            session.finish().await?;
            return Err(TccError::Duplicate(gid.to_owned()));
        }
        let rows: Vec<BranchRow> = branches
            .iter()
            .enumerate()
            .map(|(position, branch)| {
                let position = i32::try_from(position).unwrap_or(i32::MAX);
                BranchRow {
                    branch_id: format!("{:02}", position.saturating_add(1)),
                    position,
                    url: branch.url.clone(),
                    payload: branch.payload.to_string(),
                    state: "registered".to_owned(),
                    attempts: 0,
                    last_error: None,
                }
            })
            .collect();
        if !rows.is_empty() {
            let mut insert = Query::insert();
            insert.into_table(Branches::Table).columns([
                Branches::Gid,
                Branches::BranchId,
                Branches::Position,
                Branches::Url,
                Branches::Payload,
                Branches::State,
                Branches::Attempts,
                Branches::UpdatedAt,
            ]);
            for row in &rows {
                insert.values_panic([
                    gid.into(),
                    row.branch_id.as_str().into(),
                    row.position.into(),
                    row.url.as_str().into(),
                    row.payload.as_str().into(),
                    row.state.as_str().into(),
                    row.attempts.into(),
                    now.into(),
                ]);
            }
            execute(&session, &insert).await?;
        }
        session.finish().await?;
        Ok((timeout_at, rows))
    }

    /// Moves `gid` from `from` to `to`, if it is in `from`: whether it was.
    async fn move_state(
        &self,
        gid: &str,
        from: TransactionState,
        to: TransactionState,
        reason: Option<&str>,
    ) -> Result<bool, TccError> {
        self.transition(gid, from, to, reason, false).await
    }

    /// Moves `gid` from `from` to `to` (with `reason`, when given), if it is
    /// in `from`, and — when `release` — lets go of it to be looked at now,
    /// all in one statement: whether it was in `from`.
    async fn transition(
        &self,
        gid: &str,
        from: TransactionState,
        to: TransactionState,
        reason: Option<&str>,
        release: bool,
    ) -> Result<bool, TccError> {
        self.move_storing(gid, &[], from, to, reason, release).await
    }

    /// [`Self::transition`]'s statement, in `session`'s transaction.
    async fn write_transition(
        &self,
        session: &crate::Session<'_>,
        gid: &str,
        from: TransactionState,
        to: TransactionState,
        reason: Option<&str>,
        release: bool,
    ) -> Result<bool, TccError> {
        if !from.successors().contains(&to) {
            return Err(TccError::WrongState {
                gid: gid.to_owned(),
                state: from.as_str(),
            });
        }
        let now = self.now();
        let mut update = Query::update();
        update
            .table(Transactions::Table)
            .value(Transactions::State, to.as_str())
            .value(Transactions::UpdatedAt, now)
            .and_where(Expr::col(Transactions::Gid).eq(gid))
            .and_where(Expr::col(Transactions::State).eq(from.as_str()));
        if let Some(reason) = reason {
            update.value(Transactions::Reason, reason);
        }
        if release {
            update
                .value(Transactions::LeaseUntil, 0_i64)
                .value(Transactions::NextRetryAt, now);
        }
        Ok(execute(session, &update).await? == 1)
    }

    /// Stores what each branch's call came to, all in one transaction.
    async fn store_outcomes(&self, gid: &str, outcomes: &[BranchOutcome]) -> Result<(), TccError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let session = self.database.autonomous().await?;
        self.write_outcomes(&session, gid, outcomes).await?;
        session.finish().await?;
        Ok(())
    }

    /// [`Self::transition`] and, when it moved, what each branch's call came
    /// to (`outcomes`), in one transaction: whether it moved. When it did not,
    /// nothing is stored: whoever moved it may have moved its branches on
    /// too, and an older answer must not set them back.
    async fn move_storing(
        &self,
        gid: &str,
        outcomes: &[BranchOutcome],
        from: TransactionState,
        to: TransactionState,
        reason: Option<&str>,
        release: bool,
    ) -> Result<bool, TccError> {
        let session = self.database.autonomous().await?;
        let moved = self
            .write_transition(&session, gid, from, to, reason, release)
            .await?;
        if moved {
            self.write_outcomes(&session, gid, outcomes).await?;
        }
        session.finish().await?;
        if moved {
            tracing::info!(
                gid,
                from = from.as_str(),
                to = to.as_str(),
                "a global transaction moved"
            );
        }
        Ok(moved)
    }

    /// [`Self::store_outcomes`]'s statements, in `session`'s transaction.
    async fn write_outcomes(
        &self,
        session: &crate::Session<'_>,
        gid: &str,
        outcomes: &[BranchOutcome],
    ) -> Result<(), TccError> {
        let now = self.now();
        for outcome in outcomes {
            let mut update = Query::update();
            update
                .table(Branches::Table)
                .value(Branches::Attempts, Expr::col(Branches::Attempts).add(1))
                .value(Branches::LastError, outcome.error.clone())
                .value(Branches::UpdatedAt, now)
                .and_where(Expr::col(Branches::Gid).eq(gid))
                .and_where(Expr::col(Branches::BranchId).eq(outcome.branch.as_str()));
            if let Some(state) = outcome.state {
                update.value(Branches::State, state);
            }
            execute(session, &update).await?;
        }
        Ok(())
    }

    /// Schedules the next retry of `gid`: the pause doubles with each retry
    /// in a row that made no progress, from `retry_interval`; past
    /// `max_doublings` the transaction is flagged for an operator.
    async fn retry_later(
        &self,
        gid: &str,
        attempts: i32,
        progressed: bool,
        error: Option<&str>,
    ) -> Result<(), TccError> {
        let attempts = if progressed {
            0
        } else {
            attempts.saturating_add(1)
        };
        let doublings = u32::try_from(attempts).unwrap_or(0);
        let flagged = doublings > self.settings.max_doublings;
        let pause = millis(self.settings.retry_interval).saturating_mul(
            1_i64 << Ord::min(Ord::min(doublings, self.settings.max_doublings), 40),
        );
        let now = self.now();
        let session = self.database.autonomous().await?;
        let mut update = Query::update();
        update
            .table(Transactions::Table)
            .value(Transactions::Attempts, attempts)
            .value(Transactions::Flagged, flagged)
            .value(Transactions::NextRetryAt, now.saturating_add(pause))
            .value(Transactions::LeaseUntil, 0_i64)
            .value(Transactions::UpdatedAt, now)
            .and_where(Expr::col(Transactions::Gid).eq(gid));
        if let Some(error) = error {
            update.value(
                Transactions::LastError,
                error.chars().take(2_000).collect::<String>(),
            );
        }
        execute(&session, &update).await?;
        session.finish().await?;
        if flagged {
            tracing::error!(
                gid,
                attempts,
                "a global transaction keeps failing and waits for an operator"
            );
            if let Some(alert) = &self.alert {
                alert(gid);
            }
        }
        Ok(())
    }

    /// Lets go of `gid`, to be taken again at `next_retry_at` (ms).
    async fn release(&self, gid: &str, next_retry_at: i64) -> Result<(), TccError> {
        let session = self.database.autonomous().await?;
        let update = Query::update()
            .table(Transactions::Table)
            .value(Transactions::LeaseUntil, 0_i64)
            .value(Transactions::NextRetryAt, next_retry_at)
            .and_where(Expr::col(Transactions::Gid).eq(gid))
            .to_owned();
        execute(&session, &update).await?;
        session.finish().await?;
        Ok(())
    }

    async fn transaction_row(&self, gid: &str) -> Result<Option<TransactionRow>, TccError> {
        let session = self.database.reader().await?;
        let select = transaction_columns()
            .and_where(Expr::col(Transactions::Gid).eq(gid))
            .to_owned();
        let backend = session.get_database_backend();
        let row = session
            .query_one_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(row
            .map(|row| TransactionRow::from_query_result(&row, ""))
            .transpose()
            .map_err(storage_error)?)
    }

    async fn state_of(&self, gid: &str) -> Result<TransactionState, TccError> {
        self.transaction_row(gid)
            .await?
            .and_then(|row| TransactionState::from_name(&row.state))
            .ok_or_else(|| TccError::NotFound(gid.to_owned()))
    }

    /// What `gid` has come to, as it is stored.
    async fn outcome_of(&self, gid: &str) -> Result<Outcome, TccError> {
        let row = self
            .transaction_row(gid)
            .await?
            .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
        let state = TransactionState::from_name(&row.state)
            .ok_or_else(|| TccError::NotFound(gid.to_owned()))?;
        Ok(match state {
            TransactionState::Succeeded => Outcome::Succeeded,
            TransactionState::Failed => Outcome::Failed {
                reason: row.reason.unwrap_or_default(),
            },
            _ => Outcome::Pending { state },
        })
    }

    /// `known`, or when none is, the reason stored for `gid`.
    async fn known_reason(&self, gid: &str, known: Option<&str>) -> Result<String, TccError> {
        match known {
            Some(reason) => Ok(reason.to_owned()),
            None => self.reason_of(gid).await,
        }
    }

    async fn reason_of(&self, gid: &str) -> Result<String, TccError> {
        Ok(self
            .transaction_row(gid)
            .await?
            .and_then(|row| row.reason)
            .unwrap_or_default())
    }

    async fn branches(&self, gid: &str) -> Result<Vec<BranchRow>, TccError> {
        let session = self.database.reader().await?;
        let select = Query::select()
            .columns([
                Branches::BranchId,
                Branches::Position,
                Branches::Url,
                Branches::Payload,
                Branches::State,
                Branches::Attempts,
                Branches::LastError,
            ])
            .from(Branches::Table)
            .and_where(Expr::col(Branches::Gid).eq(gid))
            .order_by(Branches::Position, Order::Asc)
            .to_owned();
        let backend = session.get_database_backend();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.iter()
            .map(|row| {
                BranchRow::from_query_result(row, "").map_err(|error| storage_error(error).into())
            })
            .collect()
    }

    /// How many transactions stand in each state, and how many are flagged.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn counts(&self) -> Result<TransactionCounts, TccError> {
        let session = self.database.reader().await?;
        let select = Query::select()
            .columns([Transactions::State, Transactions::Flagged])
            .expr_as(Expr::col(Transactions::Gid).count(), "transactions")
            .from(Transactions::Table)
            .group_by_columns([Transactions::State, Transactions::Flagged])
            .to_owned();
        let backend = session.get_database_backend();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let mut counts = TransactionCounts::default();
        for row in &rows {
            let row = CountRow::from_query_result(row, "").map_err(storage_error)?;
            let Some(state) = TransactionState::from_name(&row.state) else {
                continue;
            };
            let transactions = u64::try_from(row.transactions).unwrap_or_default();
            if row.flagged {
                counts.flagged += transactions;
            }
            match counts
                .by_state
                .iter_mut()
                .find(|(known, _)| *known == state)
            {
                Some((_, total)) => *total += transactions,
                None => counts.by_state.push((state, transactions)),
            }
        }
        Ok(counts)
    }

    /// One page of transactions, newest first; only those in `state` when
    /// given, only the flagged ones when `flagged`.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list(
        &self,
        state: Option<TransactionState>,
        flagged: bool,
        page: strata_domain::PageRequest,
    ) -> Result<strata_domain::Page<TransactionView>, TccError> {
        let mut filter = sea_orm::Condition::all();
        if let Some(state) = state {
            filter = filter.add(Expr::col(Transactions::State).eq(state.as_str()));
        }
        if flagged {
            filter = filter.add(Expr::col(Transactions::Flagged).eq(true));
        }
        let select = transaction_columns()
            .cond_where(filter.clone())
            .order_by(Transactions::CreatedAt, Order::Desc)
            .order_by(Transactions::Gid, Order::Desc)
            .limit(u64::from(page.per_page()))
            .offset(page.offset())
            .to_owned();
        let count = Query::select()
            .expr_as(Expr::col(Transactions::Gid).count(), "transactions")
            .from(Transactions::Table)
            .cond_where(filter)
            .to_owned();
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let rows = session
            .query_all_raw(StatementBuilder::build(&select, &backend))
            .await
            .map_err(storage_error)?;
        let total = session
            .query_one_raw(StatementBuilder::build(&count, &backend))
            .await
            .map_err(storage_error)?
            .map(|row| row.try_get::<i64>("", "transactions"))
            .transpose()
            .map_err(storage_error)?
            .unwrap_or(0);
        session.finish().await?;
        let items = rows
            .iter()
            .map(|row| {
                let row = TransactionRow::from_query_result(row, "").map_err(storage_error)?;
                Ok(view_of(row, Vec::new()))
            })
            .collect::<Result<Vec<_>, TccError>>()?;
        Ok(strata_domain::Page::new(
            items,
            page,
            u64::try_from(total).unwrap_or_default(),
        ))
    }

    /// `gid` as stored, with its branches.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn get(&self, gid: &str) -> Result<Option<TransactionView>, TccError> {
        let Some(row) = self.transaction_row(gid).await? else {
            return Ok(None);
        };
        let branches = self.branches(gid).await?;
        Ok(Some(view_of(row, branches)))
    }

    /// An operator's retry of `gid`: unflagged, its backoff reset, taken by
    /// the next recovery pass.
    ///
    /// # Errors
    /// [`TccError::NotFound`]; [`TccError::WrongState`] when it is terminal.
    pub async fn retry(&self, gid: &str) -> Result<(), TccError> {
        let state = self.state_of(gid).await?;
        if state.is_terminal() {
            return Err(TccError::WrongState {
                gid: gid.to_owned(),
                state: state.as_str(),
            });
        }
        let session = self.database.autonomous().await?;
        let update = Query::update()
            .table(Transactions::Table)
            .value(Transactions::Flagged, false)
            .value(Transactions::Attempts, 0_i32)
            .value(Transactions::NextRetryAt, self.now())
            .and_where(Expr::col(Transactions::Gid).eq(gid))
            .to_owned();
        execute(&session, &update).await?;
        session.finish().await?;
        Ok(())
    }

    /// An operator's decision: `gid` is `to` (terminal) from now on, whatever
    /// its branches did — for a participant that will never answer again.
    ///
    /// # Errors
    /// [`TccError::NotFound`]; [`TccError::WrongState`] when it is terminal
    /// already, or `to` is not terminal.
    pub async fn force(&self, gid: &str, to: TransactionState) -> Result<(), TccError> {
        let state = self.state_of(gid).await?;
        if state.is_terminal() || !to.is_terminal() {
            return Err(TccError::WrongState {
                gid: gid.to_owned(),
                state: state.as_str(),
            });
        }
        if !self
            .move_state(gid, state, to, Some("forced by an operator"))
            .await?
        {
            return Err(TccError::WrongState {
                gid: gid.to_owned(),
                state: self.state_of(gid).await?.as_str(),
            });
        }
        let session = self.database.autonomous().await?;
        let update = Query::update()
            .table(Transactions::Table)
            .value(Transactions::Flagged, false)
            .and_where(Expr::col(Transactions::Gid).eq(gid))
            .to_owned();
        execute(&session, &update).await?;
        session.finish().await?;
        tracing::warn!(
            gid,
            to = to.as_str(),
            "an operator forced a global transaction"
        );
        Ok(())
    }
}

/// The columns of a transaction, as [`TransactionRow`] reads them.
fn transaction_columns() -> SelectStatement {
    Query::select()
        .columns([
            Transactions::Gid,
            Transactions::Kind,
            Transactions::State,
            Transactions::TimeoutAt,
            Transactions::NextRetryAt,
            Transactions::Attempts,
            Transactions::Flagged,
            Transactions::Reason,
            Transactions::LastError,
            Transactions::CreatedAt,
        ])
        .from(Transactions::Table)
        .to_owned()
}

fn view_of(row: TransactionRow, branches: Vec<BranchRow>) -> TransactionView {
    TransactionView {
        gid: row.gid,
        kind: row.kind,
        // Only the coordinator writes states; an unknown one reads as the
        // earliest, so it is never taken for finished.
        state: TransactionState::from_name(&row.state).unwrap_or(TransactionState::Prepared),
        reason: row.reason,
        attempts: u32::try_from(row.attempts).unwrap_or_default(),
        flagged: row.flagged,
        last_error: row.last_error,
        next_retry_at_ms: row.next_retry_at,
        created_at_ms: row.created_at,
        branches: branches
            .into_iter()
            .map(|branch| BranchView {
                branch: branch.branch_id,
                url: branch.url,
                state: branch.state,
                attempts: u32::try_from(branch.attempts).unwrap_or_default(),
                last_error: branch.last_error,
            })
            .collect(),
    }
}

impl From<TransactionView> for strata_domain::ports::GlobalTransaction {
    fn from(view: TransactionView) -> Self {
        Self {
            gid: view.gid,
            kind: view.kind,
            state: view.state.as_str().to_owned(),
            reason: view.reason,
            attempts: view.attempts,
            flagged: view.flagged,
            last_error: view.last_error,
            next_retry_at_ms: view.next_retry_at_ms,
            created_at_ms: view.created_at_ms,
            branches: view
                .branches
                .into_iter()
                .map(|branch| strata_domain::ports::GlobalBranch {
                    branch: branch.branch,
                    url: branch.url,
                    state: branch.state,
                    attempts: branch.attempts,
                    last_error: branch.last_error,
                })
                .collect(),
        }
    }
}

/// A repair's error as the operator's port answers it.
fn repair(result: Result<(), TccError>) -> Result<strata_domain::ports::Repair, RepositoryError> {
    use strata_domain::ports::Repair;
    match result {
        Ok(()) => Ok(Repair::Done),
        Err(TccError::NotFound(_)) => Ok(Repair::NotFound),
        Err(TccError::WrongState { state, .. }) => Ok(Repair::WrongState(state.to_owned())),
        Err(TccError::Storage(error)) => Err(error),
        Err(other) => Err(RepositoryError::storage(other)),
    }
}

impl From<TccError> for RepositoryError {
    fn from(error: TccError) -> Self {
        match error {
            TccError::Storage(error) => error,
            other => Self::storage(other),
        }
    }
}

#[async_trait]
impl strata_domain::ports::GlobalTransactions for Coordinator {
    async fn list(
        &self,
        state: Option<String>,
        page: strata_domain::PageRequest,
    ) -> Result<strata_domain::Page<strata_domain::ports::GlobalTransaction>, RepositoryError> {
        let (state, flagged) = match state.as_deref() {
            None => (None, false),
            Some("flagged") => (None, true),
            Some(name) => match TransactionState::from_name(name) {
                Some(state) => (Some(state), false),
                None => return Ok(strata_domain::Page::new(Vec::new(), page, 0)),
            },
        };
        Ok(Coordinator::list(self, state, flagged, page)
            .await
            .map_err(RepositoryError::from)?
            .map(Into::into))
    }

    async fn get(
        &self,
        gid: &str,
    ) -> Result<Option<strata_domain::ports::GlobalTransaction>, RepositoryError> {
        Ok(Coordinator::get(self, gid)
            .await
            .map_err(RepositoryError::from)?
            .map(Into::into))
    }

    async fn retry(&self, gid: &str) -> Result<strata_domain::ports::Repair, RepositoryError> {
        repair(Coordinator::retry(self, gid).await)
    }

    async fn force(
        &self,
        gid: &str,
        to: &str,
    ) -> Result<strata_domain::ports::Repair, RepositoryError> {
        match TransactionState::from_name(to).filter(|state| state.is_terminal()) {
            Some(to) => repair(Coordinator::force(self, gid, to).await),
            None => Ok(strata_domain::ports::Repair::WrongState(to.to_owned())),
        }
    }
}
