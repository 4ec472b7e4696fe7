//! Wallet use cases: a customer's balance and top-ups, and the TCC
//! participant that freezes money for orders, then debits or unfreezes it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shop_domain::catalog::Money;
use shop_domain::identity::UserId;
use shop_domain::wallet::{Moved, Wallets, insufficient_funds};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, DispatcherBuilder, KeyRequirement, Query,
    QueryHandler, UseCaseContext,
};
use strata_app_api::tcc::{Participant, register_participant};
use strata_domain::Id;
use strata_domain::ports::TccBarrier;
use validator::Validate;

use crate::application::catalog::{PriceInput, PriceView};
use crate::application::permissions::MONEY_FREEZE;

/// The currency an empty wallet is shown in: the shop's own. A wallet takes
/// the currency of its first top-up.
pub const SHOP_CURRENCY: &str = "EUR";

/// A customer's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Wallet)]
pub struct WalletView {
    /// Free to spend.
    pub balance: PriceView,
    /// Held for orders under way.
    pub frozen: PriceView,
}

fn price(money: Money) -> PriceView {
    PriceView {
        amount_minor: money.amount_minor(),
        currency: money.currency().to_string(),
    }
}

/// The caller's wallet.
#[derive(Debug, Clone, Copy, Validate)]
pub struct GetMyWallet {}

impl Query for GetMyWallet {
    type Output = WalletView;
    const NAME: &'static str = "wallet.get_mine";
    const ACCESS: Access = Access::SignedIn;
}

/// Adds money to the caller's wallet.
#[derive(Debug, Clone, PartialEq, Eq, Validate, Serialize)]
pub struct TopUp {
    /// How much.
    #[validate(nested)]
    pub amount: PriceInput,
}

impl Command for TopUp {
    type Output = WalletView;
    const NAME: &'static str = "wallet.top_up";
    const ACCESS: Access = Access::SignedIn;
}

/// The amount of a branch's request.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct AmountRequest {
    /// In minor units.
    #[validate(range(min = 1, max = Money::MAX_MINOR))]
    pub amount_minor: i64,
    /// Its currency.
    #[validate(length(equal = 3))]
    pub currency: String,
}

/// What the wallet's branch of an order carries, for each of its three
/// operations.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct MoneyRequest {
    /// The order (the global transaction).
    pub order_id: uuid::Uuid,
    /// Whose money.
    pub owner_id: uuid::Uuid,
    /// How much.
    #[validate(nested)]
    pub amount: AmountRequest,
}

impl MoneyRequest {
    fn parts(&self) -> Result<(UserId, Money), AppError> {
        let amount = Money::new(self.amount.amount_minor, &self.amount.currency)?;
        Ok((Id::from_uuid(self.owner_id), amount))
    }
}

macro_rules! branch_command {
    ($name:ident, $text:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Validate)]
        pub struct $name {
            /// The branch's request.
            #[validate(nested)]
            pub request: MoneyRequest,
        }

        impl Command for $name {
            type Output = ();
            const NAME: &'static str = $text;
            const ACCESS: Access = Access::Permission(MONEY_FREEZE);
        }
    };
}

branch_command!(
    FreezeMoney,
    "wallet.freeze",
    "Moves an order's total from the balance to frozen."
);
branch_command!(
    DebitMoney,
    "wallet.debit",
    "Spends an order's frozen total."
);
branch_command!(
    UnfreezeMoney,
    "wallet.unfreeze",
    "Moves an order's frozen total back to the balance."
);

/// The wallet's TCC participant: freeze, debit, unfreeze.
#[derive(Debug)]
pub struct MoneyBranch;

impl Participant for MoneyBranch {
    type Request = MoneyRequest;
    type Try = FreezeMoney;
    type Confirm = DebitMoney;
    type Cancel = UnfreezeMoney;

    fn try_command(request: MoneyRequest) -> FreezeMoney {
        FreezeMoney { request }
    }

    fn confirm_command(request: MoneyRequest) -> DebitMoney {
        DebitMoney { request }
    }

    fn cancel_command(request: MoneyRequest) -> UnfreezeMoney {
        UnfreezeMoney { request }
    }
}

/// The wallet's use-case handlers.
pub struct WalletService {
    wallets: Arc<dyn Wallets>,
}

impl std::fmt::Debug for WalletService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletService").finish_non_exhaustive()
    }
}

impl WalletService {
    /// Handlers over `wallets`.
    #[must_use]
    pub fn new(wallets: Arc<dyn Wallets>) -> Self {
        Self { wallets }
    }

    async fn view(&self, owner: UserId) -> Result<WalletView, AppError> {
        Ok(match self.wallets.balance(owner).await? {
            Some(wallet) => WalletView {
                balance: price(wallet.balance),
                frozen: price(wallet.frozen),
            },
            None => {
                let zero = PriceView {
                    amount_minor: 0,
                    currency: SHOP_CURRENCY.to_owned(),
                };
                WalletView {
                    balance: zero.clone(),
                    frozen: zero,
                }
            }
        })
    }
}

/// The signed-in customer the use case acts for.
fn customer(cx: &UseCaseContext) -> Result<UserId, AppError> {
    let principal = cx.request().principal().ok_or(AppError::Unauthenticated)?;
    principal
        .subject()
        .parse()
        .map_err(|_| AppError::Forbidden("only a signed-in user has a wallet".into()))
}

fn other_currency(held: shop_domain::catalog::Currency) -> AppError {
    AppError::RuleViolated {
        code: "currency_mismatch",
        message: format!("the wallet holds {held}"),
    }
}

/// A move of money an order made before that cannot be made again: the
/// wallet was changed behind the transaction's back. Answered as an error to
/// retry, so the transaction waits for an operator rather than finishing
/// wrong.
fn frozen_missing(amount: Money) -> AppError {
    AppError::Internal(format!("{amount} were frozen and are no longer").into())
}

#[async_trait]
impl QueryHandler<GetMyWallet> for WalletService {
    async fn ask(&self, cx: &UseCaseContext, _query: GetMyWallet) -> Result<WalletView, AppError> {
        self.view(customer(cx)?).await
    }
}

#[async_trait]
impl CommandHandler<TopUp> for WalletService {
    async fn handle(&self, cx: &UseCaseContext, command: TopUp) -> Result<WalletView, AppError> {
        let owner = customer(cx)?;
        let amount = Money::new(command.amount.amount_minor, &command.amount.currency)?;
        if amount.amount_minor() == 0 {
            return Err(AppError::RuleViolated {
                code: "top_up_empty",
                message: "a top-up adds more than nothing".into(),
            });
        }
        match self.wallets.top_up(owner, amount).await? {
            Moved::Done => self.view(owner).await,
            Moved::OtherCurrency(held) => Err(other_currency(held)),
            Moved::Short => Err(AppError::RuleViolated {
                code: "balance_too_large",
                message: format!("a wallet holds at most {} minor units", Money::MAX_MINOR),
            }),
        }
    }
}

#[async_trait]
impl CommandHandler<FreezeMoney> for WalletService {
    async fn handle(&self, _cx: &UseCaseContext, command: FreezeMoney) -> Result<(), AppError> {
        let (owner, amount) = command.request.parts()?;
        match self.wallets.freeze(owner, amount).await? {
            Moved::Done => Ok(()),
            Moved::Short | Moved::OtherCurrency(_) => Err(insufficient_funds(amount).into()),
        }
    }
}

#[async_trait]
impl CommandHandler<DebitMoney> for WalletService {
    async fn handle(&self, _cx: &UseCaseContext, command: DebitMoney) -> Result<(), AppError> {
        let (owner, amount) = command.request.parts()?;
        match self.wallets.debit(owner, amount).await? {
            Moved::Done => Ok(()),
            Moved::Short | Moved::OtherCurrency(_) => Err(frozen_missing(amount)),
        }
    }
}

#[async_trait]
impl CommandHandler<UnfreezeMoney> for WalletService {
    async fn handle(&self, _cx: &UseCaseContext, command: UnfreezeMoney) -> Result<(), AppError> {
        let (owner, amount) = command.request.parts()?;
        match self.wallets.unfreeze(owner, amount).await? {
            Moved::Done => Ok(()),
            Moved::Short | Moved::OtherCurrency(_) => Err(frozen_missing(amount)),
        }
    }
}

/// Registers the wallet's use cases with `wallet` as their handler, its
/// branch operations behind `barrier`. A top-up needs an `Idempotency-Key`,
/// so a retried one adds the money once.
#[must_use]
pub fn register(
    dispatcher: DispatcherBuilder,
    wallet: &Arc<WalletService>,
    barrier: &Arc<dyn TccBarrier>,
) -> DispatcherBuilder {
    let dispatcher = dispatcher
        .query::<GetMyWallet>(wallet.clone())
        .idempotent_command::<TopUp>(wallet.clone(), KeyRequirement::Required);
    register_participant::<MoneyBranch>(
        dispatcher,
        barrier,
        wallet.clone(),
        wallet.clone(),
        wallet.clone(),
    )
}
