use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use strata_domain::ValidationFailure;
use strata_domain::ports::Propagation;
use validator::Validate;

use super::{Access, AppError, Dispatcher, RequestContext, UseCaseContext};

/// Whether a use case changes the system or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseCaseKind {
    /// A [`super::Command`].
    Command,
    /// A [`super::Query`].
    Query,
}

impl UseCaseKind {
    /// `command` or `query`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Query => "query",
        }
    }
}

/// A use case's input, type-erased so that one middleware chain serves every use
/// case.
pub trait UseCaseInput: Any + Send + Sync {
    /// Checks the input's `validator` rules.
    ///
    /// # Errors
    /// One entry per invalid field.
    fn validate_input(&self) -> Result<(), ValidationFailure>;

    /// The input, for a middleware that knows its concrete type.
    fn as_any(&self) -> &dyn Any;

    /// The input, for the handler at the end of the chain.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<T: Validate + Send + Sync + 'static> UseCaseInput for T {
    fn validate_input(&self) -> Result<(), ValidationFailure> {
        strata_domain::validate(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A use case's answer, type-erased on its way back through the chain.
pub type UseCaseOutput = Box<dyn Any + Send>;

/// One run of one use case, as the middleware sees it.
pub struct Invocation {
    /// The use case's stable name.
    pub name: &'static str,
    /// Command or query.
    pub kind: UseCaseKind,
    /// Who may run it.
    pub access: Access,
    /// For commands, how their unit of work joins a running one; `None` for
    /// queries, which run without one.
    pub propagation: Option<Propagation>,
    /// The request being served.
    pub request: RequestContext,
    /// 0 for a use case the API called, 1 for one that use case called, and so on.
    pub depth: usize,
    /// The input.
    pub input: Box<dyn UseCaseInput>,
}

impl std::fmt::Debug for Invocation {
    // The input is left out on purpose: it may hold passwords or personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("depth", &self.depth)
            .field("request_id", &self.request.request_id())
            .finish_non_exhaustive()
    }
}

/// A concern applied around every use case — logging, validation, transactions —
/// written once. It does its part and calls `next.run(invocation)` to go on, or
/// answers without calling it to stop the chain.
#[async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// A short name, used to show and test the chain's order.
    fn name(&self) -> &'static str;

    /// Handles one invocation.
    async fn handle(
        &self,
        invocation: Invocation,
        next: Next<'_>,
    ) -> Result<UseCaseOutput, AppError>;
}

/// The rest of the chain after the current middleware.
pub struct Next<'a> {
    pub(crate) middleware: &'a [Arc<dyn Middleware>],
    pub(crate) endpoint: &'a dyn Endpoint,
    pub(crate) dispatcher: &'a Dispatcher,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &self.middleware.len())
            .finish_non_exhaustive()
    }
}

impl Next<'_> {
    /// Runs the rest of the chain and, at its end, the handler.
    ///
    /// # Errors
    /// Whatever a later middleware or the handler answers.
    pub async fn run(self, invocation: Invocation) -> Result<UseCaseOutput, AppError> {
        match self.middleware.split_first() {
            Some((first, rest)) => {
                first
                    .handle(
                        invocation,
                        Next {
                            middleware: rest,
                            endpoint: self.endpoint,
                            dispatcher: self.dispatcher,
                        },
                    )
                    .await
            }
            None => {
                let cx = UseCaseContext::nested(
                    invocation.request,
                    self.dispatcher.clone(),
                    invocation.depth,
                );
                self.endpoint.call(cx, invocation.input.into_any()).await
            }
        }
    }
}

/// A registered handler behind the type-erased chain.
#[async_trait]
pub(crate) trait Endpoint: Send + Sync {
    async fn call(
        &self,
        cx: UseCaseContext,
        input: Box<dyn Any + Send>,
    ) -> Result<UseCaseOutput, AppError>;
}
