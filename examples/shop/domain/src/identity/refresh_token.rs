use async_trait::async_trait;
use strata_domain::{Id, RepositoryError};

use super::UserId;

/// The chain of refresh tokens descended from one sign-in. Reusing any token of
/// a family after it was rotated revokes the whole family.
pub type TokenFamily = Id<RefreshToken>;

/// A stored refresh token (only its hash is stored; the adapter hashes the
/// presented token to find it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The family it belongs to.
    pub family: TokenFamily,
    /// Whose session it continues.
    pub user: UserId,
    /// When it stops being accepted, in Unix seconds.
    pub expires_at: u64,
    /// Whether it was already exchanged for a new one.
    pub used: bool,
    /// Whether its family was revoked.
    pub revoked: bool,
}

/// Where refresh tokens are kept.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    /// Stores a new random token for `user` in `family`, valid until `expires_at`
    /// (Unix seconds), and returns it; it is never readable again.
    async fn issue(
        &self,
        user: UserId,
        family: TokenFamily,
        expires_at: u64,
    ) -> Result<String, RepositoryError>;

    /// The stored token matching `token`, if any.
    async fn find(&self, token: &str) -> Result<Option<RefreshToken>, RepositoryError>;

    /// Marks `token` used. `false` when it already was: exactly one of two
    /// concurrent exchanges of one token wins.
    async fn consume(&self, token: &str) -> Result<bool, RepositoryError>;

    /// Revokes every token of `family`.
    async fn revoke_family(&self, family: TokenFamily) -> Result<(), RepositoryError>;

    /// Forgets every token that expired at or before `now` (Unix seconds), used
    /// or not: none of them can start a session again. Answers how many.
    async fn purge_expired(&self, now: u64) -> Result<u64, RepositoryError>;
}
