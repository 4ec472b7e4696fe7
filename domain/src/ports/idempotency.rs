use std::time::Duration;

use async_trait::async_trait;

use crate::RepositoryError;

/// Proof that a request holds an idempotency key: handed out by
/// [`IdempotencyStore::claim`], and required to store the result or to free the
/// key. A holder whose lease ran out and whose key was taken over by a retry
/// holds a token that no longer matches, so it can neither store a second
/// result nor free the key from under the retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A token with this value, as the store keeps it.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token's value, for the store to compare.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier claim expired): this request runs, and
    /// holds the key with this token.
    Acquired(ClaimToken),
    /// Another request with this key is running right now.
    InProgress,
    /// A request with this key and the same fingerprint completed; here is its
    /// stored result, to answer again.
    Completed(Vec<u8>),
    /// The key was used with a different request.
    Mismatch,
}

/// What storing a result found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The result is stored; it commits with the unit of work it was stored in.
    Stored,
    /// The caller no longer holds the key: its lease ran out and a retry took the
    /// key over (or completed it). Nothing was stored, and the caller must roll
    /// its unit of work back so the side effect happens once.
    LeaseLost,
}

/// Remembers requests by their idempotency key, so a retried request is answered
/// with the first one's result instead of running twice.
///
/// `claim` runs in a transaction of its own before the request's unit of work. A
/// duplicate of a request still running is told [`Claim::InProgress`] without
/// waiting for that request; recording a new claim may wait briefly for the
/// storage's write lock. `complete` runs inside that unit of work, so the
/// stored result and the side effect commit together, fenced by the claim's
/// token; `release` frees the key of a request that failed.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request whose content hashes to `fingerprint`. A claim
    /// older than `lease` that never completed is taken over (its holder is
    /// presumed dead).
    async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        lease: Duration,
    ) -> Result<Claim, RepositoryError>;

    /// Stores the result of the request holding `key` with `token`, in the unit
    /// of work running on the calling task.
    async fn complete(
        &self,
        key: &str,
        token: &ClaimToken,
        result: &[u8],
    ) -> Result<Completion, RepositoryError>;

    /// Frees `key`, if `token` still holds it, so that a retry of a failed
    /// request runs.
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), RepositoryError>;

    /// Forgets every key older than the store's retention; answers how many.
    async fn purge_expired(&self) -> Result<u64, RepositoryError>;
}
