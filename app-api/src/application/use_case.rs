use async_trait::async_trait;

use super::AppError;

/// A request to change the system, such as `CreateProduct`.
pub trait Command: Send + 'static {
    /// What the command answers when it succeeds.
    type Output: Send + 'static;
    /// A stable name for logs and metrics, such as `catalog.create_product`.
    const NAME: &'static str;
}

/// A request to read from the system without changing it, such as `GetProduct`.
pub trait Query: Send + 'static {
    /// What the query answers.
    type Output: Send + 'static;
    /// A stable name for logs and metrics, such as `catalog.get_product`.
    const NAME: &'static str;
}

/// Carries out one kind of command: the business step and nothing else.
#[async_trait]
pub trait CommandHandler<C: Command>: Send + Sync {
    /// Runs the command.
    async fn handle(&self, command: C) -> Result<C::Output, AppError>;
}

/// Answers one kind of query.
#[async_trait]
pub trait QueryHandler<Q: Query>: Send + Sync {
    /// Answers the query.
    async fn ask(&self, query: Q) -> Result<Q::Output, AppError>;
}
