//! Ordering use cases: place an order (a distributed transaction over the
//! inventory and the wallet), see one's orders, and settle the orders whose
//! transaction finished after their request ended.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shop_domain::catalog::{ProductId, ProductRepository};
use shop_domain::identity::UserId;
use shop_domain::inventory::Quantity;
use shop_domain::ordering::{
    Order, OrderId, OrderLine, OrderPlacement, OrderRepository, OrderStatus, Placement,
};
use strata_app_api::application::{
    Access, AppError, Command, CommandHandler, DispatcherBuilder, Owned, OwnerOr, Query,
    QueryHandler, UseCaseContext,
};
use strata_domain::ports::{Clock, Propagation, UnitOfWork, in_unit_of_work_traced};
use strata_domain::{AggregateRoot, Entity, Page, PageRequest, RepositoryError};
use validator::Validate;

use crate::application::catalog::PriceView;
use crate::application::inventory::{LineRequest, MAX_LINES};
use crate::application::permissions::{ORDERS_READ_ANY, ORDERS_SETTLE};

/// The namespace of order ids made from a customer and their idempotency
/// key.
const ORDER_IDS: uuid::Uuid = uuid::Uuid::from_u128(0x6f72_6465_722d_6964_7374_7261_7461_0001);

/// One line of an order as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderItem)]
pub struct OrderItemView {
    /// The product.
    pub product_id: uuid::Uuid,
    /// How many units.
    pub quantity: u32,
    /// The price of one unit when the order was placed.
    pub unit_price: PriceView,
}

/// An order as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Order)]
pub struct OrderView {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose it is.
    #[schema(value_type = uuid::Uuid)]
    pub customer_id: String,
    /// `pending` while its transaction runs, then `confirmed` or `cancelled`.
    #[schema(pattern = "^(pending|confirmed|cancelled)$", max_length = 16)]
    pub status: String,
    /// Why it was cancelled: `out_of_stock`, `insufficient_funds` or
    /// `timeout`.
    #[schema(
        pattern = "^(out_of_stock|insufficient_funds|timeout)$",
        max_length = 32
    )]
    pub reason: Option<String>,
    /// What it costs.
    pub total: PriceView,
    /// What it holds.
    #[schema(max_items = 50)]
    pub items: Vec<OrderItemView>,
    /// When it was placed, in milliseconds since the Unix epoch.
    pub placed_at_ms: i64,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        let price = |money: shop_domain::catalog::Money| PriceView {
            amount_minor: money.amount_minor(),
            currency: money.currency().to_string(),
        };
        Self {
            id: order.id().as_uuid(),
            customer_id: order.customer().to_string(),
            status: order.status().as_str().to_owned(),
            reason: order.reason().map(|reason| reason.as_str().to_owned()),
            total: price(order.total()),
            items: order
                .lines()
                .iter()
                .map(|line| OrderItemView {
                    product_id: line.product.as_uuid(),
                    quantity: line.quantity.units(),
                    unit_price: price(line.unit_price),
                })
                .collect(),
            placed_at_ms: order.placed_at_ms(),
        }
    }
}

impl Owned for OrderView {
    const KIND: &'static str = Order::KIND;

    fn owner(&self) -> &str {
        &self.customer_id
    }

    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

/// Places an order of the caller's at the products' current prices: stock
/// reserved and money frozen, then both made final, or both released. The
/// `Idempotency-Key` names the order: a retry with the same key answers the
/// same order, as far as it has come, and never places a second one.
#[derive(Debug, Clone, Validate)]
pub struct PlaceOrder {
    /// What to buy: each product once.
    #[validate(length(min = 1, max = MAX_LINES), nested)]
    pub items: Vec<LineRequest>,
}

impl Command for PlaceOrder {
    type Output = OrderView;
    const NAME: &'static str = "ordering.place_order";
    const ACCESS: Access = Access::SignedIn;
    // The transaction calls other services: no database transaction is held
    // open across it. The order and its settlement are units of work of their
    // own.
    const PROPAGATION: Propagation = Propagation::NotSupported;
}

/// Settles the pending orders whose transaction finished after their request
/// ended, and drives the ones whose request died before starting it: every
/// pending order, `page` at a time; answers how many were settled.
#[derive(Debug, Clone, Copy, Validate)]
pub struct SettleOrders {
    /// Orders read at a time.
    #[validate(range(min = 1, max = 1_000))]
    pub page: u32,
}

impl Command for SettleOrders {
    type Output = usize;
    const NAME: &'static str = "ordering.settle_orders";
    const ACCESS: Access = Access::Permission(ORDERS_SETTLE);
    const PROPAGATION: Propagation = Propagation::NotSupported;
    const AUDITED: bool = false;
}

/// One order, shown to its customer (or staff).
#[derive(Debug, Clone, Copy, Validate)]
pub struct GetOrder {
    /// The order.
    pub id: OrderId,
}

impl Query for GetOrder {
    type Output = OrderView;
    const NAME: &'static str = "ordering.get_order";
    const ACCESS: Access = Access::SignedIn;
}

/// One page of the caller's orders, newest first.
#[derive(Debug, Clone, Copy, Validate)]
pub struct ListMyOrders {
    /// The 1-based page number.
    #[validate(range(min = 1, message = "must be 1 or more"))]
    pub page: u32,
    /// The page size.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub per_page: u32,
}

impl Query for ListMyOrders {
    type Output = Page<OrderView>;
    const NAME: &'static str = "ordering.list_mine";
    const ACCESS: Access = Access::SignedIn;
}

/// What the ordering use cases need.
pub struct OrderingPorts {
    /// Where orders are kept.
    pub orders: Arc<dyn OrderRepository>,
    /// The catalog, for prices.
    pub products: Arc<dyn ProductRepository>,
    /// The distributed transaction.
    pub placement: Arc<dyn OrderPlacement>,
    /// Units of work in the orders' database.
    pub unit_of_work: Arc<dyn UnitOfWork>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OrderingPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderingPorts").finish_non_exhaustive()
    }
}

/// The ordering use-case handlers.
pub struct Ordering {
    ports: OrderingPorts,
    /// How long an order may stay pending before the settling takes it over
    /// from its request.
    settle_after: Duration,
}

impl std::fmt::Debug for Ordering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ordering").finish_non_exhaustive()
    }
}

impl Ordering {
    /// Handlers over `ports`; orders pending for longer than `settle_after`
    /// are settled by [`SettleOrders`].
    #[must_use]
    pub fn new(ports: OrderingPorts, settle_after: Duration) -> Self {
        Self {
            ports,
            settle_after,
        }
    }

    async fn lines(&self, requested: &[LineRequest]) -> Result<Vec<OrderLine>, AppError> {
        let mut lines = Vec::with_capacity(requested.len());
        for line in requested {
            let product = ProductId::from_uuid(line.product_id);
            let found =
                self.ports
                    .products
                    .find(product)
                    .await?
                    .ok_or_else(|| AppError::RuleViolated {
                        code: "unknown_product",
                        message: format!("there is no product {product}"),
                    })?;
            lines.push(OrderLine {
                product,
                quantity: Quantity::new(i64::from(line.quantity))?,
                unit_price: found.price(),
            });
        }
        Ok(lines)
    }

    /// Stores `order` in a unit of work of its own; a concurrent request with
    /// the same key that stored it first wins, and its order is answered.
    async fn store(&self, mut order: Order, trace: Option<String>) -> Result<Order, AppError> {
        let id = order.id();
        let stored = in_unit_of_work_traced(
            self.ports.unit_of_work.as_ref(),
            Propagation::Required,
            trace,
            self.ports.orders.save(&mut order),
        )
        .await;
        match stored {
            Ok(()) => Ok(order),
            Err(RepositoryError::Duplicate { .. }) => self
                .ports
                .orders
                .find(id)
                .await?
                .ok_or_else(|| AppError::not_found(Order::KIND, id)),
            Err(error) => Err(error.into()),
        }
    }

    /// Marks order `id` as `placement` says, in a unit of work of its own.
    async fn settle(
        &self,
        id: OrderId,
        placement: Placement,
        trace: Option<String>,
    ) -> Result<Order, AppError> {
        // A concurrent settling of the same order makes the save conflict:
        // read it again, and it is settled already.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let settled = in_unit_of_work_traced(
                self.ports.unit_of_work.as_ref(),
                Propagation::Required,
                trace.clone(),
                async {
                    let mut order = self
                        .ports
                        .orders
                        .find(id)
                        .await?
                        .ok_or_else(|| AppError::not_found(Order::KIND, id))?;
                    let changed = match placement {
                        Placement::Confirmed => order.confirm()?,
                        Placement::Cancelled(reason) => order.cancel(reason)?,
                        Placement::Pending => false,
                    };
                    if changed {
                        self.ports.orders.save(&mut order).await?;
                    }
                    Ok::<_, AppError>(order)
                },
            )
            .await;
            match settled {
                Err(AppError::Conflict { .. }) if attempts < 3 => {}
                other => return other,
            }
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms(clock: &dyn Clock) -> i64 {
    clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The signed-in customer the use case acts for.
fn customer(cx: &UseCaseContext) -> Result<UserId, AppError> {
    let principal = cx.request().principal().ok_or(AppError::Unauthenticated)?;
    principal
        .subject()
        .parse()
        .map_err(|_| AppError::Forbidden("only a signed-in user places orders".into()))
}

/// Whether `order` is what `lines` asks for (a retry with the same key).
fn same_lines(order: &Order, lines: &[LineRequest]) -> bool {
    let mut stored: Vec<(uuid::Uuid, u32)> = order
        .lines()
        .iter()
        .map(|line| (line.product.as_uuid(), line.quantity.units()))
        .collect();
    let mut asked: Vec<(uuid::Uuid, u32)> = lines
        .iter()
        .map(|line| (line.product_id, line.quantity))
        .collect();
    stored.sort_unstable();
    asked.sort_unstable();
    stored == asked
}

#[async_trait]
impl CommandHandler<PlaceOrder> for Ordering {
    async fn handle(
        &self,
        cx: &UseCaseContext,
        command: PlaceOrder,
    ) -> Result<OrderView, AppError> {
        let customer = customer(cx)?;
        let key = cx
            .request()
            .idempotency_key()
            .ok_or_else(|| AppError::BadRequest {
                code: "idempotency_key_missing",
                message: "placing an order needs an `Idempotency-Key` header".into(),
            })?;
        let id = OrderId::from_uuid(uuid::Uuid::new_v5(
            &ORDER_IDS,
            format!("{customer}/{key}").as_bytes(),
        ));
        let trace = Some(cx.request().trace().header_value());
        let order = match self.ports.orders.find(id).await? {
            Some(order) => order,
            None => {
                let lines = self.lines(&command.items).await?;
                let placed_at = now_ms(self.ports.clock.as_ref());
                let order = Order::place(id, customer, lines, placed_at)?;
                self.store(order, trace.clone()).await?
            }
        };
        if order.customer() != customer || !same_lines(&order, &command.items) {
            return Err(AppError::RuleViolated {
                code: "idempotency_key_reused",
                message: "this idempotency key was used with a different request".into(),
            });
        }
        if order.status() != OrderStatus::Pending {
            return Ok(OrderView::from(&order));
        }
        let placement = self.ports.placement.place(&order, trace.clone()).await?;
        let order = self.settle(id, placement, trace).await?;
        Ok(OrderView::from(&order))
    }
}

#[async_trait]
impl CommandHandler<SettleOrders> for Ordering {
    async fn handle(&self, _cx: &UseCaseContext, command: SettleOrders) -> Result<usize, AppError> {
        let now = now_ms(self.ports.clock.as_ref());
        let before = now.saturating_sub(i64::try_from(self.settle_after.as_millis()).unwrap_or(0));
        let mut settled = 0;
        let mut after = None;
        loop {
            let pending = self
                .ports
                .orders
                .pending(before, after, u64::from(command.page))
                .await?;
            let read = pending.len();
            for order in pending {
                after = Some((order.placed_at_ms(), order.id()));
                let placement = match self.ports.placement.placement(order.id()).await? {
                    Some(placement) => placement,
                    // Its request died before the transaction began: begin it.
                    None => self.ports.placement.place(&order, None).await?,
                };
                if placement != Placement::Pending {
                    self.settle(order.id(), placement, None).await?;
                    settled += 1;
                }
            }
            if read < usize::try_from(command.page).unwrap_or(usize::MAX) {
                return Ok(settled);
            }
        }
    }
}

#[async_trait]
impl QueryHandler<GetOrder> for Ordering {
    async fn ask(&self, _cx: &UseCaseContext, query: GetOrder) -> Result<OrderView, AppError> {
        self.ports
            .orders
            .find(query.id)
            .await?
            .map(|order| OrderView::from(&order))
            .ok_or_else(|| AppError::not_found(Order::KIND, query.id))
    }
}

#[async_trait]
impl QueryHandler<ListMyOrders> for Ordering {
    async fn ask(
        &self,
        cx: &UseCaseContext,
        query: ListMyOrders,
    ) -> Result<Page<OrderView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        let mine = self
            .ports
            .orders
            .list_by_customer(customer(cx)?, page)
            .await?;
        Ok(mine.map(|order| OrderView::from(&order)))
    }
}

/// Registers the ordering use cases with `ordering` as their handler. An
/// order is shown only to its customer or to staff who may read any.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, ordering: Arc<Ordering>) -> DispatcherBuilder {
    dispatcher
        .command::<PlaceOrder>(ordering.clone())
        .command::<SettleOrders>(ordering.clone())
        .guarded_query::<GetOrder>(ordering.clone(), OwnerOr(ORDERS_READ_ANY))
        .query::<ListMyOrders>(ordering)
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;
    use shop_domain::catalog::{MockProductRepository, Money};
    use shop_domain::ordering::{MockOrderPlacement, MockOrderRepository};
    use strata_app_api::application::{
        Dispatcher, Principal, PrincipalKind, RequestContext, middleware,
    };
    use strata_domain::ports::{MockUnitOfWork, Outcome, SystemClock};

    use super::*;

    fn pending_order(placed_at_ms: i64) -> Order {
        Order::place(
            OrderId::generate(),
            UserId::generate(),
            vec![OrderLine {
                product: ProductId::generate(),
                quantity: Quantity::new(1).expect("a quantity"),
                unit_price: Money::new(100, "EUR").expect("a price"),
            }],
            placed_at_ms,
        )
        .expect("an order")
    }

    #[tokio::test]
    async fn orders_that_stay_pending_do_not_hide_the_ones_behind_them() {
        // A full page of orders whose transactions wait for an operator,
        // then one whose transaction was confirmed.
        let stuck: Vec<Order> = (0..2).map(pending_order).collect();
        let confirmed = pending_order(5);
        let confirmed_id = confirmed.id();
        let last = (stuck[1].placed_at_ms(), stuck[1].id());
        let mut orders = MockOrderRepository::new();
        let first_page = stuck.clone();
        orders
            .expect_pending()
            .withf(|_, after, limit| after.is_none() && *limit == 2)
            .times(1)
            .returning(move |_, _, _| Ok(first_page.clone()));
        let behind = confirmed.clone();
        orders
            .expect_pending()
            .withf(move |_, after, _| *after == Some(last))
            .times(1)
            .returning(move |_, _, _| Ok(vec![behind.clone()]));
        let found = confirmed.clone();
        orders
            .expect_find()
            .with(eq(confirmed_id))
            .times(1)
            .returning(move |_| Ok(Some(found.clone())));
        orders.expect_save().times(1).returning(|_| Ok(()));
        let mut placement = MockOrderPlacement::new();
        placement.expect_placement().returning(move |id| {
            Ok(Some(if id == confirmed_id {
                Placement::Confirmed
            } else {
                Placement::Pending
            }))
        });
        placement.expect_place().never();
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .with(eq(Outcome::Commit))
            .returning(Ok);
        let unit_of_work: Arc<dyn UnitOfWork> = Arc::new(unit_of_work);
        let ordering = Arc::new(Ordering::new(
            OrderingPorts {
                orders: Arc::new(orders),
                products: Arc::new(MockProductRepository::new()),
                placement: Arc::new(placement),
                unit_of_work: Arc::clone(&unit_of_work),
                clock: Arc::new(SystemClock),
            },
            Duration::from_secs(5),
        ));
        let dispatcher = register(
            Dispatcher::builder().middleware(middleware::standard(unit_of_work)),
            ordering,
        )
        .build();
        let request = RequestContext::background().with_principal(
            Principal::new("shop", PrincipalKind::Service).with_permission(ORDERS_SETTLE),
        );
        let settled = dispatcher
            .execute(&request, SettleOrders { page: 2 })
            .await
            .expect("settled");
        assert_eq!(settled, 1);
    }
}
