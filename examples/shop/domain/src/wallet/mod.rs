//! The wallet: a customer's money in the shop — a balance to spend, an amount
//! frozen for orders under way, and what was spent. Topped up by the customer;
//! frozen, debited and unfrozen by orders.
//!
//! Like stock, a wallet is moved by conditional updates of its counters
//! ([`Wallets`]), each refused rather than taken below zero.

use async_trait::async_trait;
use serde::Serialize;
use strata_domain::{DomainError, RepositoryError};

use crate::catalog::{Currency, Money};
use crate::identity::UserId;

/// Where a customer's money is, in the wallet's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WalletBalance {
    /// Free to spend.
    pub balance: Money,
    /// Held for orders under way.
    pub frozen: Money,
    /// Gone with confirmed orders.
    pub spent: Money,
}

/// What moving money came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Done.
    Done,
    /// Not enough money where it was to come from (nothing moved).
    Short,
    /// The wallet holds another currency (nothing moved).
    OtherCurrency(Currency),
}

/// The code of a freeze refused for lack of money.
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";

/// A freeze of `amount` refused: the wallet's balance is smaller, or in
/// another currency.
#[must_use]
pub fn insufficient_funds(amount: Money) -> DomainError {
    DomainError::RuleViolated {
        code: INSUFFICIENT_FUNDS,
        message: format!("the wallet does not hold {amount} to spend"),
    }
}

/// The wallet's port: counters moved by conditional updates inside the
/// caller's unit of work. A wallet takes the currency of its first top-up.
#[async_trait]
pub trait Wallets: Send + Sync {
    /// Adds `amount` to `owner`'s balance, making the wallet if it has none.
    async fn top_up(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;

    /// Moves `amount` from `owner`'s balance to frozen.
    async fn freeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;

    /// Moves `amount` from `owner`'s frozen money to spent.
    async fn debit(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;

    /// Moves `amount` from `owner`'s frozen money back to the balance.
    async fn unfreeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;

    /// `owner`'s wallet, if they have one.
    async fn balance(&self, owner: UserId) -> Result<Option<WalletBalance>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`Wallets`] for application tests.
    pub Wallets {}

    #[async_trait]
    impl Wallets for Wallets {
        async fn top_up(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;
        async fn freeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;
        async fn debit(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;
        async fn unfreeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError>;
        async fn balance(&self, owner: UserId) -> Result<Option<WalletBalance>, RepositoryError>;
    }
}
