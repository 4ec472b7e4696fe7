use std::time::Duration;

use async_trait::async_trait;

/// Why an attempt was not let through.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The key has used up its allowance; an attempt after `retry_after` may pass.
    #[error("rate limit reached; retry after {retry_after:?}")]
    Limited {
        /// How long until the next attempt can succeed.
        retry_after: Duration,
    },
    /// The limiter could not decide (its store is unreachable). Each caller
    /// chooses whether that lets the attempt through or refuses it.
    #[error("the rate limiter is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Counts attempts per key (a client address, an account) and refuses them once a
/// key has used up its allowance, until enough time has passed.
///
/// A key is an opaque string; callers prefix it with what it identifies
/// (`client:203.0.113.9`, `sign-in:ada@example.com`) so that one limiter can
/// serve several purposes without their keys colliding.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Records one attempt for `key`, or refuses it.
    ///
    /// # Errors
    /// [`RateLimitError::Limited`] when the key has no allowance left;
    /// [`RateLimitError::Unavailable`] when the limiter cannot tell.
    async fn acquire(&self, key: &str) -> Result<(), RateLimitError>;

    /// Gives back one attempt [`RateLimiter::acquire`]d for `key`, for limits
    /// that count only failures: each attempt is acquired before it is made —
    /// so attempts sent at once cannot all pass before the first failure is
    /// counted — and forgiven once it succeeded. Forgiving more than was
    /// acquired leaves the key with its full allowance, never more.
    ///
    /// # Errors
    /// [`RateLimitError::Unavailable`] when the limiter cannot record it.
    async fn forgive(&self, key: &str) -> Result<(), RateLimitError>;
}
