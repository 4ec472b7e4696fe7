//! Distributed transactions for operators: the queries an administrator's
//! dashboard asks (transactions by state, one with its branches) and the
//! commands that repair one (retry it now, force it to a terminal state),
//! over the [`GlobalTransactions`] port.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use strata_domain::ports::{
    GlobalBranch, GlobalTransaction, GlobalTransactions, Propagation, Repair,
};
use strata_domain::{Page, PageRequest};
use validator::Validate;

use super::{Access, AppError, Command, CommandHandler, Query, QueryHandler, UseCaseContext};

/// The permission to see and repair distributed transactions.
pub const TCC_OPERATE: &str = "tcc.operate";

/// The longest global transaction id.
pub const MAX_GID_CHARS: u64 = 64;

/// What a state filter may name.
pub const STATE_PATTERN: &str = "^(prepared|submitted|aborting|succeeded|failed|flagged)$";

fn state_name(state: &str) -> Result<(), validator::ValidationError> {
    if matches!(
        state,
        "prepared" | "submitted" | "aborting" | "succeeded" | "failed" | "flagged"
    ) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("state").with_message(
            "must be prepared, submitted, aborting, succeeded, failed or flagged".into(),
        ))
    }
}

fn terminal_state(state: &str) -> Result<(), validator::ValidationError> {
    if matches!(state, "succeeded" | "failed") {
        Ok(())
    } else {
        Err(validator::ValidationError::new("state")
            .with_message("must be succeeded or failed".into()))
    }
}

/// One page of transactions, newest first, only those in `state` when given
/// (`flagged`: those waiting for an operator).
#[derive(Debug, Clone, Validate)]
pub struct ListTransactions {
    /// The state to show.
    #[validate(custom(function = "state_name"))]
    pub state: Option<String>,
    /// The 1-based page.
    #[validate(range(min = 1))]
    pub page: u32,
    /// Transactions per page.
    #[validate(range(min = 1, max = PageRequest::MAX_PER_PAGE))]
    pub per_page: u32,
}

impl Query for ListTransactions {
    type Output = Page<TransactionView>;
    const NAME: &'static str = "tcc.list_transactions";
    const ACCESS: Access = Access::Permission(TCC_OPERATE);
}

/// One transaction with its branches.
#[derive(Debug, Clone, Validate)]
pub struct GetTransaction {
    /// Its id.
    #[validate(length(min = 1, max = MAX_GID_CHARS))]
    pub gid: String,
}

impl Query for GetTransaction {
    type Output = TransactionView;
    const NAME: &'static str = "tcc.get_transaction";
    const ACCESS: Access = Access::Permission(TCC_OPERATE);
}

/// Takes a transaction up again at once, with a fresh set of retries (one
/// flagged for an operator, say, once its participant is back).
#[derive(Debug, Clone, Validate, Serialize)]
pub struct RetryTransaction {
    /// Its id.
    #[validate(length(min = 1, max = MAX_GID_CHARS))]
    pub gid: String,
}

impl Command for RetryTransaction {
    type Output = ();
    const NAME: &'static str = "tcc.retry_transaction";
    const ACCESS: Access = Access::Permission(TCC_OPERATE);
    // The coordinator commits each change of a transaction on its own, as
    // its recovery worker does: the operator's change must not wait inside a
    // unit of work that holds SQLite's one write lock.
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// Moves a transaction to `succeeded` or `failed` without calling its
/// branches, for an operator who repaired them by hand.
#[derive(Debug, Clone, Validate, Serialize)]
pub struct ForceTransaction {
    /// Its id.
    #[validate(length(min = 1, max = MAX_GID_CHARS))]
    pub gid: String,
    /// `succeeded` or `failed`.
    #[validate(custom(function = "terminal_state"))]
    pub state: String,
}

impl Command for ForceTransaction {
    type Output = ();
    const NAME: &'static str = "tcc.force_transaction";
    const ACCESS: Access = Access::Permission(TCC_OPERATE);
    // The coordinator commits each change of a transaction on its own, as
    // its recovery worker does: the operator's change must not wait inside a
    // unit of work that holds SQLite's one write lock.
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// A branch as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TransactionBranch))]
pub struct BranchView {
    /// Its id within the transaction.
    pub branch: String,
    /// Where its participant serves it.
    pub url: String,
    /// `registered`, `calling`, `tried`, `try_failed`, `confirmed` or
    /// `cancelled`.
    pub state: String,
    /// Calls made.
    pub attempts: u32,
    /// The last call's error.
    pub last_error: Option<String>,
}

/// A global transaction as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Transaction))]
pub struct TransactionView {
    /// Its id.
    pub gid: String,
    /// `tcc` or `saga`.
    pub kind: String,
    /// `prepared`, `submitted`, `aborting`, `succeeded` or `failed`.
    pub state: String,
    /// Why it aborted, once it did.
    pub reason: Option<String>,
    /// Retries in a row that made no progress.
    pub attempts: u32,
    /// Whether it waits for an operator.
    pub flagged: bool,
    /// The last error a branch call gave.
    pub last_error: Option<String>,
    /// When the recovery worker next takes it, in milliseconds since the
    /// Unix epoch.
    pub next_retry_at_ms: i64,
    /// When it began, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Its branches, in order (empty in lists).
    pub branches: Vec<BranchView>,
}

impl From<GlobalTransaction> for TransactionView {
    fn from(transaction: GlobalTransaction) -> Self {
        Self {
            gid: transaction.gid,
            kind: transaction.kind,
            state: transaction.state,
            reason: transaction.reason,
            attempts: transaction.attempts,
            flagged: transaction.flagged,
            last_error: transaction.last_error,
            next_retry_at_ms: transaction.next_retry_at_ms,
            created_at_ms: transaction.created_at_ms,
            branches: transaction
                .branches
                .into_iter()
                .map(|branch: GlobalBranch| BranchView {
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

/// Answers the transaction queries and commands.
pub struct TransactionOperator {
    transactions: Arc<dyn GlobalTransactions>,
}

impl std::fmt::Debug for TransactionOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionOperator")
            .finish_non_exhaustive()
    }
}

impl TransactionOperator {
    /// An operator of `transactions`.
    #[must_use]
    pub fn new(transactions: Arc<dyn GlobalTransactions>) -> Self {
        Self { transactions }
    }
}

fn repaired(gid: String, repair: Repair) -> Result<(), AppError> {
    match repair {
        Repair::Done => Ok(()),
        Repair::NotFound => Err(AppError::NotFound {
            kind: "transaction",
            id: gid,
        }),
        Repair::WrongState(state) => Err(AppError::Conflict {
            code: "transaction_state",
            message: format!("transaction {gid} is {state}"),
        }),
    }
}

#[async_trait]
impl QueryHandler<ListTransactions> for TransactionOperator {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ListTransactions,
    ) -> Result<Page<TransactionView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        Ok(self
            .transactions
            .list(query.state, page)
            .await?
            .map(TransactionView::from))
    }
}

#[async_trait]
impl QueryHandler<GetTransaction> for TransactionOperator {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: GetTransaction,
    ) -> Result<TransactionView, AppError> {
        self.transactions
            .get(&query.gid)
            .await?
            .map(TransactionView::from)
            .ok_or(AppError::NotFound {
                kind: "transaction",
                id: query.gid,
            })
    }
}

#[async_trait]
impl CommandHandler<RetryTransaction> for TransactionOperator {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: RetryTransaction,
    ) -> Result<(), AppError> {
        let repair = self.transactions.retry(&command.gid).await?;
        repaired(command.gid, repair)
    }
}

#[async_trait]
impl CommandHandler<ForceTransaction> for TransactionOperator {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: ForceTransaction,
    ) -> Result<(), AppError> {
        let repair = self
            .transactions
            .force(&command.gid, &command.state)
            .await?;
        repaired(command.gid, repair)
    }
}

#[cfg(test)]
mod tests {
    use strata_domain::ports::MockGlobalTransactions;

    use super::*;
    use crate::application::middleware::{Authorization, Validation};
    use crate::application::{Dispatcher, Principal, PrincipalKind, RequestContext};

    fn operator_request() -> RequestContext {
        RequestContext::background()
            .with_principal(Principal::new("ops", PrincipalKind::User).with_permission(TCC_OPERATE))
    }

    fn dispatcher(transactions: MockGlobalTransactions) -> Dispatcher {
        let operator = Arc::new(TransactionOperator::new(Arc::new(transactions)));
        Dispatcher::builder()
            .middleware([
                Arc::new(Authorization) as Arc<dyn crate::application::Middleware>,
                Arc::new(Validation),
            ])
            .query::<ListTransactions>(operator.clone())
            .query::<GetTransaction>(operator.clone())
            .command::<RetryTransaction>(operator.clone())
            .command::<ForceTransaction>(operator)
            .build()
    }

    #[tokio::test]
    async fn a_repair_of_a_missing_or_finished_transaction_says_so() {
        let mut transactions = MockGlobalTransactions::new();
        transactions.expect_retry().returning(|gid| {
            Ok(if gid == "gone" {
                Repair::NotFound
            } else {
                Repair::WrongState("succeeded".into())
            })
        });
        let dispatcher = dispatcher(transactions);
        let missing = dispatcher
            .execute(&operator_request(), RetryTransaction { gid: "gone".into() })
            .await;
        assert!(matches!(
            missing,
            Err(AppError::NotFound {
                kind: "transaction",
                ..
            })
        ));
        let finished = dispatcher
            .execute(&operator_request(), RetryTransaction { gid: "done".into() })
            .await;
        assert!(matches!(
            finished,
            Err(AppError::Conflict {
                code: "transaction_state",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn forcing_names_a_terminal_state_and_needs_the_permission() {
        let mut transactions = MockGlobalTransactions::new();
        transactions
            .expect_force()
            .times(1)
            .returning(|_, _| Ok(Repair::Done));
        let dispatcher = dispatcher(transactions);
        let prepared = dispatcher
            .execute(
                &operator_request(),
                ForceTransaction {
                    gid: "g".into(),
                    state: "prepared".into(),
                },
            )
            .await;
        assert!(matches!(prepared, Err(AppError::Invalid(_))));
        let anonymous = dispatcher
            .execute(
                &RequestContext::background(),
                ForceTransaction {
                    gid: "g".into(),
                    state: "failed".into(),
                },
            )
            .await;
        assert!(matches!(anonymous, Err(AppError::Unauthenticated)));
        let forced = dispatcher
            .execute(
                &operator_request(),
                ForceTransaction {
                    gid: "g".into(),
                    state: "failed".into(),
                },
            )
            .await;
        assert!(forced.is_ok());
    }
}
