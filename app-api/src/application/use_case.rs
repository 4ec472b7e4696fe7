use async_trait::async_trait;
use strata_domain::ValidationFailure;
use strata_domain::ports::Propagation;

use super::pipeline::UseCaseKind;
use super::{Access, AppError, CachePolicy, Dispatcher, Invalidation, RequestContext};

/// The rules a use case's input must meet, checked by the validation middleware
/// before any handler runs. Every type that implements `validator::Validate` —
/// the `validator` Strata re-exports as [`crate::validator`] — has them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no validation rules Strata can run",
    label = "this input does not implement Strata's `validator::Validate`",
    note = "derive it from the validator Strata re-exports: \
            `#[derive(strata_app_api::validator::Validate)]` with \
            `#[validate(crate = \"strata_app_api::validator\")]` on the type, \
            or depend on the same `validator` version as Strata (0.21); \
            a `Validate` from another version of validator is another trait"
)]
pub trait InputRules {
    /// Checks the rules.
    ///
    /// # Errors
    /// One entry per invalid field.
    fn check_rules(&self) -> Result<(), ValidationFailure>;
}

impl<T: validator::Validate> InputRules for T {
    fn check_rules(&self) -> Result<(), ValidationFailure> {
        strata_domain::validate(self)
    }
}

/// A request to change the system, such as `CreateProduct`.
///
/// Its `validator` rules are checked by the validation middleware before any
/// handler runs; a command without rules derives `Validate` with none.
pub trait Command: InputRules + Send + Sync + 'static {
    /// What the command answers when it succeeds.
    type Output: Send + 'static;
    /// A stable name for logs and metrics, such as `catalog.create_product`.
    const NAME: &'static str;
    /// Who may run it; checked before validation and before any handler runs.
    const ACCESS: Access;
    /// How its unit of work relates to one already running (nested use cases join
    /// by default).
    const PROPAGATION: Propagation = Propagation::Required;
    /// Whether the audit trail records it; a job that runs on a schedule and
    /// changes nothing anyone asked for may opt out.
    const AUDITED: bool = true;

    /// What cached answers this command makes stale; dropped after it commits.
    fn invalidates(&self) -> Invalidation {
        Invalidation::none()
    }
}

/// A request to read from the system without changing it, such as `GetProduct`.
/// Queries run without a unit of work.
pub trait Query: InputRules + Send + Sync + 'static {
    /// What the query answers.
    type Output: Send + 'static;
    /// A stable name for logs and metrics, such as `catalog.get_product`.
    const NAME: &'static str;
    /// Who may run it; checked before validation and before any handler runs.
    const ACCESS: Access;

    /// Whether and how its answer is cached; not cached by default.
    fn cache_policy(&self) -> Option<CachePolicy> {
        None
    }
}

/// Carries out one kind of command: the business step and nothing else. Logging,
/// validation and the transaction are the pipeline's job.
#[async_trait]
pub trait CommandHandler<C: Command>: Send + Sync + 'static {
    /// Runs the command.
    async fn handle(&self, cx: &UseCaseContext, command: C) -> Result<C::Output, AppError>;
}

/// Answers one kind of query.
#[async_trait]
pub trait QueryHandler<Q: Query>: Send + Sync + 'static {
    /// Answers the query.
    async fn ask(&self, cx: &UseCaseContext, query: Q) -> Result<Q::Output, AppError>;
}

/// What a handler is given besides its input: the request it serves, and a way
/// to run other use cases through the same pipeline (a nested command joins the
/// caller's unit of work).
#[derive(Debug, Clone)]
pub struct UseCaseContext {
    request: RequestContext,
    dispatcher: Dispatcher,
    depth: usize,
    /// The use case this context serves, when it runs in the pipeline.
    serving: Option<(&'static str, UseCaseKind)>,
    within_command: bool,
}

impl UseCaseContext {
    /// A context for calling a handler directly, outside the pipeline, as unit
    /// tests and benchmarks do; nested use cases go through `dispatcher`.
    #[must_use]
    pub fn new(request: RequestContext, dispatcher: Dispatcher) -> Self {
        Self::nested(request, dispatcher, 0, None, false)
    }

    pub(crate) fn nested(
        request: RequestContext,
        dispatcher: Dispatcher,
        depth: usize,
        serving: Option<(&'static str, UseCaseKind)>,
        within_command: bool,
    ) -> Self {
        Self {
            request,
            dispatcher,
            depth,
            serving,
            within_command,
        }
    }

    /// Whether the use cases this one calls run inside a command's unit of work.
    fn calls_within_command(&self) -> bool {
        self.within_command || matches!(self.serving, Some((_, UseCaseKind::Command)))
    }

    /// The request this use case serves.
    #[must_use]
    pub fn request(&self) -> &RequestContext {
        &self.request
    }

    /// Runs another command as part of this use case: it joins this use case's
    /// unit of work (in a savepoint of its own).
    ///
    /// # Errors
    /// Whatever the command's pipeline and handler answer. A query may not run a
    /// command: queries have no unit of work, so the command would commit on
    /// its own behind the caller's back; that is refused as an internal error
    /// naming both use cases.
    pub async fn execute<C: Command>(&self, command: C) -> Result<C::Output, AppError> {
        if let Some((query, UseCaseKind::Query)) = self.serving {
            return Err(AppError::Internal(
                format!(
                    "query `{query}` ran command `{}`: a query has no unit of work, so the \
                     command would commit on its own; run it from a command instead",
                    C::NAME
                )
                .into(),
            ));
        }
        self.dispatcher
            .dispatch_command(
                &self.request,
                self.depth + 1,
                self.calls_within_command(),
                command,
            )
            .await
    }

    /// Runs a query as part of this use case.
    ///
    /// # Errors
    /// Whatever the query's pipeline and handler answer.
    pub async fn ask<Q: Query>(&self, query: Q) -> Result<Q::Output, AppError> {
        self.dispatcher
            .dispatch_query(
                &self.request,
                self.depth + 1,
                self.calls_within_command(),
                query,
            )
            .await
    }
}
