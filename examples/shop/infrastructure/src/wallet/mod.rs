//! The wallet's database: one row of counters per customer, and its
//! migrations (it keeps a database of its own).

use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, FromQueryResult, StatementBuilder};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, uuid};
use shop_domain::catalog::{Currency, Money};
use shop_domain::identity::UserId;
use shop_domain::wallet::{Moved, WalletBalance, Wallets};
use strata_domain::RepositoryError;
use strata_infrastructure::{Database, storage_error};

/// The wallet's schema; Strata's tables (barrier, idempotency keys, audit)
/// are added by the runtime.
#[derive(Debug)]
pub struct WalletMigrator;

#[async_trait::async_trait]
impl MigratorTrait for WalletMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateWallets)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateWallets;

#[async_trait::async_trait]
impl MigrationTrait for CreateWallets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Wallet::Table)
                    .if_not_exists()
                    .col(uuid(Wallet::Owner).primary_key())
                    .col(string_len(Wallet::Currency, 3))
                    .col(big_integer(Wallet::Balance))
                    .col(big_integer(Wallet::Frozen).default(0))
                    .col(big_integer(Wallet::Spent).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Wallet::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Wallet {
    #[sea_orm(iden = "wallets")]
    Table,
    Owner,
    Currency,
    Balance,
    Frozen,
    Spent,
}

/// The [`Wallets`] on sea-orm: each move one conditional `UPDATE` in the
/// caller's unit of work, refused rather than taken below zero.
#[derive(Debug, Clone)]
pub struct SeaOrmWallets {
    database: Database,
}

impl SeaOrmWallets {
    /// The wallets in `database` (the wallet context's).
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Moves `amount` from `from` to `to` of `owner`'s wallet, if `from`
    /// holds it in `amount`'s currency; otherwise says why not.
    async fn shift(
        &self,
        owner: UserId,
        amount: Money,
        from: Wallet,
        to: Wallet,
    ) -> Result<Moved, RepositoryError> {
        let minor = amount.amount_minor();
        let update = Query::update()
            .table(Wallet::Table)
            .value(from, Expr::col(from).sub(minor))
            .value(to, Expr::col(to).add(minor))
            .and_where(Expr::col(Wallet::Owner).eq(owner.as_uuid()))
            .and_where(Expr::col(Wallet::Currency).eq(amount.currency().as_str()))
            .and_where(Expr::col(from).gte(minor))
            .to_owned();
        if crate::execute(&self.database, &update).await? == 1 {
            return Ok(Moved::Done);
        }
        self.refusal(owner, amount.currency()).await
    }

    async fn refusal(&self, owner: UserId, currency: Currency) -> Result<Moved, RepositoryError> {
        Ok(match self.row(owner).await? {
            Some(row) if row.currency != currency.as_str() => {
                Currency::parse(&row.currency).map_or(Moved::Short, Moved::OtherCurrency)
            }
            _ => Moved::Short,
        })
    }

    async fn row(&self, owner: UserId) -> Result<Option<WalletRow>, RepositoryError> {
        let select = Query::select()
            .columns([
                Wallet::Currency,
                Wallet::Balance,
                Wallet::Frozen,
                Wallet::Spent,
            ])
            .from(Wallet::Table)
            .and_where(Expr::col(Wallet::Owner).eq(owner.as_uuid()))
            .to_owned();
        let session = self.database.reader().await?;
        let backend = session.get_database_backend();
        let row = WalletRow::find_by_statement(StatementBuilder::build(&select, &backend))
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        Ok(row)
    }
}

#[derive(Debug, FromQueryResult)]
struct WalletRow {
    currency: String,
    balance: i64,
    frozen: i64,
    spent: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("stored wallet {owner} is invalid")]
struct CorruptWallet {
    owner: UserId,
}

#[async_trait]
impl Wallets for SeaOrmWallets {
    async fn top_up(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError> {
        let minor = amount.amount_minor();
        let opened = Query::insert()
            .into_table(Wallet::Table)
            .columns([
                Wallet::Owner,
                Wallet::Currency,
                Wallet::Balance,
                Wallet::Frozen,
                Wallet::Spent,
            ])
            .values([
                SimpleExpr::from(owner.as_uuid()),
                amount.currency().as_str().into(),
                minor.into(),
                0_i64.into(),
                0_i64.into(),
            ])
            .map_err(RepositoryError::storage)?
            .to_owned();
        if crate::insert_absent(&self.database, opened, [Wallet::Owner]).await? {
            return Ok(Moved::Done);
        }
        let add = Query::update()
            .table(Wallet::Table)
            .value(Wallet::Balance, Expr::col(Wallet::Balance).add(minor))
            .and_where(Expr::col(Wallet::Owner).eq(owner.as_uuid()))
            .and_where(Expr::col(Wallet::Currency).eq(amount.currency().as_str()))
            .and_where(Expr::col(Wallet::Balance).lte(Money::MAX_MINOR - minor))
            .to_owned();
        if crate::execute(&self.database, &add).await? == 1 {
            return Ok(Moved::Done);
        }
        self.refusal(owner, amount.currency()).await
    }

    async fn freeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError> {
        self.shift(owner, amount, Wallet::Balance, Wallet::Frozen)
            .await
    }

    async fn debit(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError> {
        self.shift(owner, amount, Wallet::Frozen, Wallet::Spent)
            .await
    }

    async fn unfreeze(&self, owner: UserId, amount: Money) -> Result<Moved, RepositoryError> {
        self.shift(owner, amount, Wallet::Frozen, Wallet::Balance)
            .await
    }

    async fn balance(&self, owner: UserId) -> Result<Option<WalletBalance>, RepositoryError> {
        let Some(row) = self.row(owner).await? else {
            return Ok(None);
        };
        let money = |minor: i64| {
            Money::new(minor, &row.currency)
                .map_err(|_| RepositoryError::storage(CorruptWallet { owner }))
        };
        Ok(Some(WalletBalance {
            balance: money(row.balance)?,
            frozen: money(row.frozen)?,
            spent: money(row.spent)?,
        }))
    }
}
