//! Inventory use cases: stock as anyone may read it, a new product's first
//! stock (from the catalog's events), and the TCC participant that reserves
//! stock for orders, then deducts or releases it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shop_domain::catalog::ProductId;
use shop_domain::inventory::{Quantity, StockLedger, StockLine, out_of_stock};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, DispatcherBuilder, Query, QueryHandler,
    UseCaseContext,
};
use strata_app_api::tcc::{Participant, register_participant};
use strata_domain::ports::TccBarrier;
use validator::Validate;

use crate::application::permissions::{STOCK_OPEN, STOCK_RESERVE};

/// The most lines one reservation moves: as many as one order has.
pub const MAX_LINES: u64 = 50;

const _: () = assert!(MAX_LINES as usize == shop_domain::ordering::Order::MAX_LINES);

/// Where a product's units are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Stock)]
pub struct StockView {
    /// The product.
    pub product_id: uuid::Uuid,
    /// Free to order.
    pub available: u64,
    /// Held for orders under way.
    pub reserved: u64,
    /// Gone with confirmed orders.
    pub sold: u64,
}

/// A product's stock.
#[derive(Debug, Clone, Copy, Validate)]
pub struct GetStock {
    /// The product.
    pub product: ProductId,
}

impl Query for GetStock {
    type Output = StockView;
    const NAME: &'static str = "inventory.get_stock";
    const ACCESS: Access = Access::Anyone;
}

/// Gives a new product its first units (the catalog's `stock` at creation);
/// a product that has stock keeps it.
#[derive(Debug, Clone, Copy, Validate)]
pub struct OpenStock {
    /// The product.
    pub product: ProductId,
    /// Its first units.
    #[validate(range(max = shop_domain::catalog::Stock::MAX))]
    pub units: u32,
}

impl Command for OpenStock {
    type Output = bool;
    const NAME: &'static str = "inventory.open_stock";
    const ACCESS: Access = Access::Permission(STOCK_OPEN);
}

/// One line of a branch's request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Validate)]
pub struct LineRequest {
    /// The product.
    pub product_id: uuid::Uuid,
    /// How many units.
    #[validate(range(min = 1, max = Quantity::MAX))]
    pub quantity: u32,
}

/// What the inventory's branch of an order carries, for each of its three
/// operations.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
pub struct StockRequest {
    /// The order (the global transaction).
    pub order_id: uuid::Uuid,
    /// What it takes.
    #[validate(length(min = 1, max = MAX_LINES), nested)]
    pub lines: Vec<LineRequest>,
}

impl StockRequest {
    fn lines(&self) -> Result<Vec<StockLine>, AppError> {
        self.lines
            .iter()
            .map(|line| {
                Ok(StockLine {
                    product: ProductId::from_uuid(line.product_id),
                    quantity: Quantity::new(i64::from(line.quantity)).map_err(AppError::from)?,
                })
            })
            .collect()
    }
}

macro_rules! branch_command {
    ($name:ident, $text:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Validate)]
        pub struct $name {
            /// The branch's request.
            #[validate(nested)]
            pub request: StockRequest,
        }

        impl Command for $name {
            type Output = ();
            const NAME: &'static str = $text;
            const ACCESS: Access = Access::Permission(STOCK_RESERVE);
        }
    };
}

branch_command!(
    ReserveStock,
    "inventory.reserve",
    "Moves an order's units from available to reserved, all or none."
);
branch_command!(
    DeductStock,
    "inventory.deduct",
    "Moves an order's reserved units to sold."
);
branch_command!(
    ReleaseStock,
    "inventory.release",
    "Moves an order's reserved units back to available."
);

/// The inventory's TCC participant: reserve, deduct, release.
#[derive(Debug)]
pub struct StockBranch;

impl Participant for StockBranch {
    type Request = StockRequest;
    type Try = ReserveStock;
    type Confirm = DeductStock;
    type Cancel = ReleaseStock;

    fn try_command(request: StockRequest) -> ReserveStock {
        ReserveStock { request }
    }

    fn confirm_command(request: StockRequest) -> DeductStock {
        DeductStock { request }
    }

    fn cancel_command(request: StockRequest) -> ReleaseStock {
        ReleaseStock { request }
    }
}

/// The inventory's use-case handlers.
pub struct Inventory {
    ledger: Arc<dyn StockLedger>,
}

impl std::fmt::Debug for Inventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory").finish_non_exhaustive()
    }
}

impl Inventory {
    /// Handlers over `ledger`.
    #[must_use]
    pub fn new(ledger: Arc<dyn StockLedger>) -> Self {
        Self { ledger }
    }
}

/// A reservation that was made cannot be found whole: the stock was changed
/// behind the inventory's back. Answered as an error to retry, so the
/// transaction waits for an operator rather than finishing wrong.
fn reservation_missing(line: StockLine) -> AppError {
    AppError::Internal(
        format!(
            "{} units of product {} were reserved and are no longer",
            line.quantity.units(),
            line.product
        )
        .into(),
    )
}

#[async_trait]
impl QueryHandler<GetStock> for Inventory {
    async fn ask(&self, _cx: &UseCaseContext, query: GetStock) -> Result<StockView, AppError> {
        let level = self
            .ledger
            .level(query.product)
            .await?
            .ok_or_else(|| AppError::not_found("stock", query.product))?;
        Ok(StockView {
            product_id: query.product.as_uuid(),
            available: level.available,
            reserved: level.reserved,
            sold: level.sold,
        })
    }
}

#[async_trait]
impl CommandHandler<OpenStock> for Inventory {
    async fn handle(&self, _cx: &UseCaseContext, command: OpenStock) -> Result<bool, AppError> {
        Ok(self.ledger.open(command.product, command.units).await?)
    }
}

#[async_trait]
impl CommandHandler<ReserveStock> for Inventory {
    async fn handle(&self, _cx: &UseCaseContext, command: ReserveStock) -> Result<(), AppError> {
        // All or none: a line short of stock fails the command, and its unit
        // of work takes back the lines reserved before it.
        for line in command.request.lines()? {
            if !self.ledger.reserve(line).await? {
                return Err(out_of_stock(line.product).into());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl CommandHandler<DeductStock> for Inventory {
    async fn handle(&self, _cx: &UseCaseContext, command: DeductStock) -> Result<(), AppError> {
        for line in command.request.lines()? {
            if !self.ledger.deduct(line).await? {
                return Err(reservation_missing(line));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl CommandHandler<ReleaseStock> for Inventory {
    async fn handle(&self, _cx: &UseCaseContext, command: ReleaseStock) -> Result<(), AppError> {
        for line in command.request.lines()? {
            if !self.ledger.release(line).await? {
                return Err(reservation_missing(line));
            }
        }
        Ok(())
    }
}

/// Registers the inventory's use cases with `inventory` as their handler,
/// its branch operations behind `barrier`.
#[must_use]
pub fn register(
    dispatcher: DispatcherBuilder,
    inventory: &Arc<Inventory>,
    barrier: &Arc<dyn TccBarrier>,
) -> DispatcherBuilder {
    let dispatcher = dispatcher
        .query::<GetStock>(inventory.clone())
        .command::<OpenStock>(inventory.clone());
    register_participant::<StockBranch>(
        dispatcher,
        barrier,
        inventory.clone(),
        inventory.clone(),
        inventory.clone(),
    )
}
