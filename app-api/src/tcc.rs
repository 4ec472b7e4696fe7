//! TCC participants as inbound adapters, as [`crate::http`] handlers are:
//! one registration ([`register_participant`], [`participant_routes`]) turns
//! three commands — try, confirm, cancel — into a participant that answers a
//! coordinator's branch calls, each command run through the pipeline with the
//! barrier decided in its own unit of work.
//!
//! ```text
//! POST {path}/try      x-strata-gid, x-strata-branch, JSON request
//! POST {path}/confirm
//! POST {path}/cancel
//! ```
//!
//! Answers: 200 done (or already done, or an empty compensation); 409 refused
//! for good — a rule, a conflict, something missing or invalid, or a try that
//! arrived after its cancel; anything else (401, 403, 5xx, 503) is not an
//! answer, and the coordinator calls again.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::DeserializeOwned;
use strata_domain::ValidationFailure;
use strata_domain::ports::{BarrierDecision, BranchOp, TccBarrier};

use strata_domain::ports::Propagation;

use crate::application::{
    Access, AppError, Command, CommandHandler, Dispatcher, DispatcherBuilder, InputRules,
    RequestContext, UseCaseContext,
};
use crate::http::ApiJson;

/// The header naming the global transaction.
pub const GID_HEADER: &str = "x-strata-gid";
/// The header naming the branch.
pub const BRANCH_HEADER: &str = "x-strata-branch";

/// One operation of one branch: `command`, run only as the barrier decides.
#[derive(Debug, Clone)]
pub struct Branch<C> {
    /// The global transaction.
    pub gid: String,
    /// The branch.
    pub branch: String,
    /// Which operation this is.
    pub op: BranchOp,
    /// The participant's command for it.
    pub command: C,
}

impl<C: InputRules> InputRules for Branch<C> {
    fn check_rules(&self) -> Result<(), ValidationFailure> {
        self.command.check_rules()
    }
}

impl<C: Command<Output = ()>> Command for Branch<C> {
    type Output = ();
    const NAME: &'static str = C::NAME;
    const ACCESS: Access = C::ACCESS;
    // The barrier row and the business change commit together.
    const PROPAGATION: Propagation = Propagation::Required;
    const AUDITED: bool = C::AUDITED;
}

/// Runs a branch's command behind the barrier: the first call of an
/// operation runs it; a duplicate, or a cancel whose try never ran, answers
/// success without it; a try after its cancel is refused.
pub struct BranchHandler<C: Command> {
    barrier: Arc<dyn TccBarrier>,
    inner: Arc<dyn CommandHandler<C>>,
}

impl<C: Command> std::fmt::Debug for BranchHandler<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BranchHandler")
            .field("command", &C::NAME)
            .finish_non_exhaustive()
    }
}

impl<C: Command> BranchHandler<C> {
    /// `inner` behind `barrier`.
    #[must_use]
    pub fn new(barrier: Arc<dyn TccBarrier>, inner: Arc<dyn CommandHandler<C>>) -> Self {
        Self { barrier, inner }
    }
}

/// The code of a try refused because its cancel came first.
pub const CANCELLED_BEFORE_TRY: &str = "tcc_cancelled_before_try";

#[async_trait]
impl<C: Command<Output = ()>> CommandHandler<Branch<C>> for BranchHandler<C> {
    async fn handle(&self, cx: &UseCaseContext, branch: Branch<C>) -> Result<(), AppError> {
        match self
            .barrier
            .enter(&branch.gid, &branch.branch, branch.op)
            .await?
        {
            BarrierDecision::Run => self.inner.handle(cx, branch.command).await,
            BarrierDecision::Skip => Ok(()),
            BarrierDecision::Refuse => Err(AppError::Conflict {
                code: CANCELLED_BEFORE_TRY,
                message: "this branch was cancelled before its try arrived".into(),
            }),
        }
    }
}

/// A TCC participant: the request a branch carries, and the command each
/// operation makes of it.
pub trait Participant: Send + Sync + 'static {
    /// The branch's request, the same for its three operations.
    type Request: DeserializeOwned + Send + 'static;
    /// Reserves.
    type Try: Command<Output = ()>;
    /// Makes the reservation final.
    type Confirm: Command<Output = ()>;
    /// Releases the reservation.
    type Cancel: Command<Output = ()>;

    /// The try of `request`.
    fn try_command(request: Self::Request) -> Self::Try;
    /// The confirm of `request`.
    fn confirm_command(request: Self::Request) -> Self::Confirm;
    /// The cancel of `request`.
    fn cancel_command(request: Self::Request) -> Self::Cancel;
}

/// Registers participant `P`'s three commands behind `barrier`.
#[must_use]
pub fn register_participant<P: Participant>(
    builder: DispatcherBuilder,
    barrier: &Arc<dyn TccBarrier>,
    try_handler: Arc<dyn CommandHandler<P::Try>>,
    confirm_handler: Arc<dyn CommandHandler<P::Confirm>>,
    cancel_handler: Arc<dyn CommandHandler<P::Cancel>>,
) -> DispatcherBuilder {
    builder
        .command::<Branch<P::Try>>(Arc::new(BranchHandler::new(
            Arc::clone(barrier),
            try_handler,
        )))
        .command::<Branch<P::Confirm>>(Arc::new(BranchHandler::new(
            Arc::clone(barrier),
            confirm_handler,
        )))
        .command::<Branch<P::Cancel>>(Arc::new(BranchHandler::new(
            Arc::clone(barrier),
            cancel_handler,
        )))
}

/// What a participant answers for `outcome`.
fn answer(outcome: Result<(), AppError>) -> Response {
    match outcome {
        Ok(()) => StatusCode::OK.into_response(),
        Err(
            error @ (AppError::Invalid(_)
            | AppError::NotFound { .. }
            | AppError::Conflict { .. }
            | AppError::Taken { .. }
            | AppError::RuleViolated { .. }),
        ) => {
            let mut response = error.into_response();
            *response.status_mut() = StatusCode::CONFLICT;
            response
        }
        Err(error) => error.into_response(),
    }
}

fn branch_of(headers: &HeaderMap) -> Result<(String, String), AppError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty() && value.len() <= 64)
            .map(str::to_owned)
    };
    match (header(GID_HEADER), header(BRANCH_HEADER)) {
        (Some(gid), Some(branch)) if branch.len() <= 16 => Ok((gid, branch)),
        _ => Err(AppError::BadRequest {
            code: "tcc_branch_missing",
            message: format!(
                "a branch call names its transaction and branch in `{GID_HEADER}` (at most 64 \
                 characters) and `{BRANCH_HEADER}` (at most 16)"
            ),
        }),
    }
}

async fn run<C: Command<Output = ()>>(
    dispatcher: Dispatcher,
    request: RequestContext,
    headers: HeaderMap,
    op: BranchOp,
    command: C,
) -> Response {
    let (gid, branch) = match branch_of(&headers) {
        Ok(branch) => branch,
        Err(error) => return error.into_response(),
    };
    answer(
        dispatcher
            .execute(
                &request,
                Branch {
                    gid,
                    branch,
                    op,
                    command,
                },
            )
            .await,
    )
}

/// The routes of participant `P` under `path`: `POST {path}/try`,
/// `{path}/confirm` and `{path}/cancel`, each running its command through the
/// dispatcher (register them with [`register_participant`]).
pub fn participant_routes<P, S>(path: &str) -> axum::Router<S>
where
    P: Participant,
    S: Clone + Send + Sync + 'static,
    Dispatcher: FromRef<S>,
{
    let path = path.trim_end_matches('/');
    axum::Router::new()
        .route(
            &format!("{path}/try"),
            post(
                |State(dispatcher): State<Dispatcher>,
                 request: RequestContext,
                 headers: HeaderMap,
                 ApiJson(body): ApiJson<P::Request>| async move {
                    run(
                        dispatcher,
                        request,
                        headers,
                        BranchOp::Try,
                        P::try_command(body),
                    )
                    .await
                },
            ),
        )
        .route(
            &format!("{path}/confirm"),
            post(
                |State(dispatcher): State<Dispatcher>,
                 request: RequestContext,
                 headers: HeaderMap,
                 ApiJson(body): ApiJson<P::Request>| async move {
                    run(
                        dispatcher,
                        request,
                        headers,
                        BranchOp::Confirm,
                        P::confirm_command(body),
                    )
                    .await
                },
            ),
        )
        .route(
            &format!("{path}/cancel"),
            post(
                |State(dispatcher): State<Dispatcher>,
                 request: RequestContext,
                 headers: HeaderMap,
                 ApiJson(body): ApiJson<P::Request>| async move {
                    run(
                        dispatcher,
                        request,
                        headers,
                        BranchOp::Cancel,
                        P::cancel_command(body),
                    )
                    .await
                },
            ),
        )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use strata_domain::ports::MockTccBarrier;
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, serde::Deserialize, validator::Validate)]
    #[validate(crate = "crate::validator")]
    struct Hold {
        quantity: u32,
    }

    macro_rules! hold_command {
        ($name:ident, $text:literal) => {
            #[derive(Debug, validator::Validate)]
            #[validate(crate = "crate::validator")]
            struct $name {
                quantity: u32,
            }

            impl Command for $name {
                type Output = ();
                const NAME: &'static str = $text;
                const ACCESS: Access = Access::Anyone;
            }
        };
    }

    hold_command!(Reserve, "stock.reserve");
    hold_command!(Deduct, "stock.deduct");
    hold_command!(Release, "stock.release");

    struct Stock;

    impl Participant for Stock {
        type Request = Hold;
        type Try = Reserve;
        type Confirm = Deduct;
        type Cancel = Release;

        fn try_command(request: Hold) -> Reserve {
            Reserve {
                quantity: request.quantity,
            }
        }

        fn confirm_command(request: Hold) -> Deduct {
            Deduct {
                quantity: request.quantity,
            }
        }

        fn cancel_command(request: Hold) -> Release {
            Release {
                quantity: request.quantity,
            }
        }
    }

    /// Counts its runs; refuses a quantity of 0 for a rule.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    macro_rules! counting_handler {
        ($command:ty) => {
            #[async_trait]
            impl CommandHandler<$command> for Counting {
                async fn handle(
                    &self,
                    _cx: &UseCaseContext,
                    command: $command,
                ) -> Result<(), AppError> {
                    if command.quantity == 0 {
                        return Err(AppError::RuleViolated {
                            code: "out_of_stock",
                            message: "nothing to hold".into(),
                        });
                    }
                    self.0.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }
        };
    }

    counting_handler!(Reserve);
    counting_handler!(Deduct);
    counting_handler!(Release);

    fn participant(decide: fn(BranchOp) -> BarrierDecision) -> (axum::Router, Arc<Counting>) {
        let mut barrier = MockTccBarrier::new();
        barrier
            .expect_enter()
            .returning(move |_, _, op| Ok(decide(op)));
        let barrier: Arc<dyn TccBarrier> = Arc::new(barrier);
        let counting = Arc::new(Counting::default());
        let dispatcher = register_participant::<Stock>(
            Dispatcher::builder(),
            &barrier,
            counting.clone(),
            counting.clone(),
            counting.clone(),
        )
        .build();
        (
            participant_routes::<Stock, Dispatcher>("/tcc/stock").with_state(dispatcher),
            counting,
        )
    }

    async fn call(router: &axum::Router, op: &str, body: &str, headers: bool) -> StatusCode {
        let mut request =
            Request::post(format!("/tcc/stock/{op}")).header("content-type", "application/json");
        if headers {
            request = request
                .header(GID_HEADER, "g-1")
                .header(BRANCH_HEADER, "01");
        }
        router
            .clone()
            .oneshot(
                request
                    .body(Body::from(body.to_owned()))
                    .expect("a request"),
            )
            .await
            .expect("an answer")
            .status()
    }

    #[tokio::test]
    async fn a_first_call_runs_its_command_and_a_skipped_one_answers_success_without_it() {
        let (router, counting) = participant(|_| BarrierDecision::Run);
        for op in ["try", "confirm", "cancel"] {
            assert_eq!(
                call(&router, op, r#"{"quantity": 2}"#, true).await,
                StatusCode::OK
            );
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 3);

        let (router, counting) = participant(|_| BarrierDecision::Skip);
        for op in ["try", "confirm", "cancel"] {
            assert_eq!(
                call(&router, op, r#"{"quantity": 2}"#, true).await,
                StatusCode::OK
            );
        }
        assert_eq!(counting.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_try_after_its_cancel_and_a_refused_command_answer_conflict() {
        let (router, counting) = participant(|_| BarrierDecision::Refuse);
        assert_eq!(
            call(&router, "try", r#"{"quantity": 2}"#, true).await,
            StatusCode::CONFLICT
        );
        assert_eq!(counting.0.load(Ordering::SeqCst), 0);
        let (router, _) = participant(|_| BarrierDecision::Run);
        assert_eq!(
            call(&router, "try", r#"{"quantity": 0}"#, true).await,
            StatusCode::CONFLICT,
            "a rule's refusal is a failure, not an unknown"
        );
    }

    #[tokio::test]
    async fn a_call_without_its_transaction_or_with_a_bad_body_is_refused() {
        let (router, counting) = participant(|_| BarrierDecision::Run);
        assert_eq!(
            call(&router, "try", r#"{"quantity": 2}"#, false).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call(&router, "try", r#"{"quantity": "two"}"#, true).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(counting.0.load(Ordering::SeqCst), 0);
    }
}
