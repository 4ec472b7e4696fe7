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
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::de::DeserializeOwned;
use strata_domain::ValidationFailure;
use strata_domain::ports::{BarrierDecision, BranchOp, Clock, TccBarrier};

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
/// The header giving when the transaction stops sending tries, in
/// milliseconds since the Unix epoch.
pub const DEADLINE_HEADER: &str = "x-strata-deadline";

/// One operation of one branch: `command`, run only as the barrier decides.
#[derive(Debug, Clone)]
pub struct Branch<C> {
    /// The global transaction.
    pub gid: String,
    /// The branch.
    pub branch: String,
    /// Which operation this is.
    pub op: BranchOp,
    /// When the transaction stops sending tries (ms since the Unix epoch),
    /// when the call said.
    pub deadline_ms: Option<i64>,
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

/// Runs a branch's command by the timeout rule, for a participant whose
/// resource cannot hold a barrier in the transaction of its change (an
/// external API): a try after the transaction's deadline is refused; a cancel
/// is answered "not yet" (425 with `Retry-After`) until a try sent before the
/// deadline can no longer arrive (the deadline and `grace`, the longest a
/// call takes), and then runs; a confirm runs. The commands must be
/// idempotent at the resource, and a cancel of a try that never ran must do
/// no harm there.
pub struct TimeoutRuleHandler<C: Command> {
    clock: Arc<dyn Clock>,
    grace: Duration,
    inner: Arc<dyn CommandHandler<C>>,
}

impl<C: Command> std::fmt::Debug for TimeoutRuleHandler<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutRuleHandler")
            .field("command", &C::NAME)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<C: Command> TimeoutRuleHandler<C> {
    /// `inner` by the timeout rule, a try sent before the deadline arriving
    /// within `grace`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>, grace: Duration, inner: Arc<dyn CommandHandler<C>>) -> Self {
        Self {
            clock,
            grace,
            inner,
        }
    }
}

/// The code of a try that arrived after its transaction's deadline.
pub const TRY_TOO_LATE: &str = "tcc_try_too_late";
/// The code of a cancel asked before its try could no longer arrive.
pub const TRY_MAY_STILL_ARRIVE: &str = "tcc_try_may_still_arrive";

#[async_trait]
impl<C: Command<Output = ()>> CommandHandler<Branch<C>> for TimeoutRuleHandler<C> {
    async fn handle(&self, cx: &UseCaseContext, branch: Branch<C>) -> Result<(), AppError> {
        let Some(deadline) = branch.deadline_ms else {
            return Err(AppError::BadRequest {
                code: "tcc_deadline_missing",
                message: format!("a call to this participant gives `{DEADLINE_HEADER}`"),
            });
        };
        let now = self
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        match branch.op {
            BranchOp::Try if now > deadline => Err(AppError::Conflict {
                code: TRY_TOO_LATE,
                message: "the transaction sends no try any more".into(),
            }),
            BranchOp::Cancel => {
                let safe_from = deadline
                    .saturating_add(i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX));
                if now < safe_from {
                    let wait_ms = u64::try_from(safe_from - now).unwrap_or(0);
                    return Err(AppError::TooEarly {
                        code: TRY_MAY_STILL_ARRIVE,
                        message: "its try may still arrive: ask again later".into(),
                        retry_after_secs: wait_ms.div_ceil(1_000).max(1),
                    });
                }
                self.inner.handle(cx, branch.command).await
            }
            _ => self.inner.handle(cx, branch.command).await,
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

/// Registers participant `P`'s three commands by the timeout rule
/// ([`TimeoutRuleHandler`]), for a resource that cannot hold a barrier.
#[must_use]
pub fn register_participant_by_timeout<P: Participant>(
    builder: DispatcherBuilder,
    clock: &Arc<dyn Clock>,
    grace: Duration,
    try_handler: Arc<dyn CommandHandler<P::Try>>,
    confirm_handler: Arc<dyn CommandHandler<P::Confirm>>,
    cancel_handler: Arc<dyn CommandHandler<P::Cancel>>,
) -> DispatcherBuilder {
    builder
        .command::<Branch<P::Try>>(Arc::new(TimeoutRuleHandler::new(
            Arc::clone(clock),
            grace,
            try_handler,
        )))
        .command::<Branch<P::Confirm>>(Arc::new(TimeoutRuleHandler::new(
            Arc::clone(clock),
            grace,
            confirm_handler,
        )))
        .command::<Branch<P::Cancel>>(Arc::new(TimeoutRuleHandler::new(
            Arc::clone(clock),
            grace,
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
    let deadline_ms = headers
        .get(DEADLINE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok());
    answer(
        dispatcher
            .execute(
                &request,
                Branch {
                    gid,
                    branch,
                    op,
                    deadline_ms,
                    command,
                },
            )
            .await,
    )
}

/// The route of one operation: its command made of the request by `build`.
fn operation<P, S, C>(op: BranchOp, build: fn(P::Request) -> C) -> MethodRouter<S>
where
    P: Participant,
    C: Command<Output = ()>,
    S: Clone + Send + Sync + 'static,
    Dispatcher: FromRef<S>,
{
    post(
        move |State(dispatcher): State<Dispatcher>,
              request: RequestContext,
              headers: HeaderMap,
              ApiJson(body): ApiJson<P::Request>| async move {
            run(dispatcher, request, headers, op, build(body)).await
        },
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
            operation::<P, S, _>(BranchOp::Try, P::try_command),
        )
        .route(
            &format!("{path}/confirm"),
            operation::<P, S, _>(BranchOp::Confirm, P::confirm_command),
        )
        .route(
            &format!("{path}/cancel"),
            operation::<P, S, _>(BranchOp::Cancel, P::cancel_command),
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
    async fn by_the_timeout_rule_a_cancel_waits_until_its_try_cannot_arrive_and_a_late_try_is_refused()
     {
        let clock = strata_domain::ports::ManualClock::starting_now();
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let counting = Arc::new(Counting::default());
        let dispatcher = register_participant_by_timeout::<Stock>(
            Dispatcher::builder(),
            &shared,
            Duration::from_secs(5),
            counting.clone(),
            counting.clone(),
            counting.clone(),
        )
        .build();
        let router = participant_routes::<Stock, Dispatcher>("/tcc/stock").with_state(dispatcher);
        let now_ms = |clock: &strata_domain::ports::ManualClock| {
            i64::try_from(
                clock
                    .now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_millis(),
            )
            .expect("ms")
        };
        let deadline = now_ms(&clock) + 30_000;
        let send = |op: &'static str| {
            let router = router.clone();
            async move {
                router
                    .oneshot(
                        Request::post(format!("/tcc/stock/{op}"))
                            .header("content-type", "application/json")
                            .header(GID_HEADER, "g-1")
                            .header(BRANCH_HEADER, "01")
                            .header(DEADLINE_HEADER, deadline.to_string())
                            .body(Body::from(r#"{"quantity": 2}"#))
                            .expect("a request"),
                    )
                    .await
                    .expect("an answer")
            }
        };
        let early = send("cancel").await;
        assert_eq!(early.status(), StatusCode::TOO_EARLY);
        assert_eq!(
            early
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("35"),
            "until the deadline and the grace"
        );
        assert_eq!(counting.0.load(Ordering::SeqCst), 0);
        assert_eq!(
            send("try").await.status(),
            StatusCode::OK,
            "before the deadline"
        );
        clock.advance(Duration::from_secs(31));
        assert_eq!(send("try").await.status(), StatusCode::CONFLICT, "after it");
        assert_eq!(
            send("cancel").await.status(),
            StatusCode::TOO_EARLY,
            "within the grace"
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(send("cancel").await.status(), StatusCode::OK);
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            2,
            "the early try and the cancel"
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
