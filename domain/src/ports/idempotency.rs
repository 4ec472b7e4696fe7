use std::time::Duration;

use async_trait::async_trait;

use crate::RepositoryError;

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier claim expired): this request runs.
    Acquired,
    /// Another request with this key is running right now.
    InProgress,
    /// A request with this key and the same fingerprint completed; here is its
    /// stored result, to answer again.
    Completed(Vec<u8>),
    /// The key was used with a different request.
    Mismatch,
}

/// Remembers requests by their idempotency key, so a retried request is answered
/// with the first one's result instead of running twice.
///
/// `claim` runs in a transaction of its own before the request's unit of work;
/// `complete` runs inside that unit of work, so the stored result and the side
/// effect commit together; `release` frees the key of a request that failed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request whose content hashes to `fingerprint`. A claim
    /// older than `lease` that never completed is taken over (its holder died).
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, RepositoryError>;

    /// Stores the result of the request holding `key`.
    async fn complete(&self, key: &str, result: &[u8]) -> Result<(), RepositoryError>;

    /// Frees `key` so that a retry of a failed request runs.
    async fn release(&self, key: &str) -> Result<(), RepositoryError>;
}
