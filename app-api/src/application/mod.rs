//! Use cases, the pipeline they run through, and the application's error type.
//! Nothing here knows HTTP or SQL.
//!
//! A use case is a [`Command`] or a [`Query`] with one handler. The
//! [`Dispatcher`] runs each through the same ordered chain of [`Middleware`]
//! (see [`middleware::standard`]) before its handler, so a handler holds the
//! business step alone.

mod access;
pub mod audit;
mod cache;
pub mod consumers;
pub(crate) mod context;
mod dispatcher;
mod error;
pub mod middleware;
pub mod outbox;
mod pipeline;
pub mod transactions;
mod use_case;

pub use access::{Access, Owned, OwnerOr, ResourcePolicy};
pub use cache::{Cache, CachePolicy, Cached, CatchUpError, Invalidation, InvalidationLog};
pub use context::{Principal, PrincipalKind, RequestContext, TraceContext};
pub use dispatcher::{Dispatcher, DispatcherBuilder, MAX_IDEMPOTENCY_KEY_LENGTH};
pub use error::{AppError, error_chain};
pub use pipeline::{
    IdempotencyPlan, Invocation, KeyRequirement, Middleware, Next, OutputCodec, UseCaseCall,
    UseCaseInput, UseCaseKind, UseCaseOutput,
};
pub use use_case::{Command, CommandHandler, InputRules, Query, QueryHandler, UseCaseContext};
