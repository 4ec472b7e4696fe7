//! Ordering: a customer's order of products at their current prices, placed
//! as a distributed transaction over the inventory (stock reserved, then
//! deducted or released) and the wallet (money frozen, then debited or
//! unfrozen). An order is `pending` until that transaction ends, then
//! `confirmed`, or `cancelled` with its reason.

use std::collections::HashSet;

use async_trait::async_trait;
use serde::Serialize;
use strata_domain::{
    AggregateRoot, AggregateState, DomainError, DomainEvent, Entity, Id, Page, PageRequest,
    Repository, RepositoryError, Version,
};

use crate::catalog::{Money, ProductId};
use crate::identity::UserId;
use crate::inventory::Quantity;

/// An order's identity; also its distributed transaction's.
pub type OrderId = Id<Order>;

/// One product of an order, at the price it had when the order was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub product: ProductId,
    /// How many units.
    pub quantity: Quantity,
    /// The price of one unit.
    pub unit_price: Money,
}

impl OrderLine {
    /// The line's amount in minor units: quantity × unit price.
    #[must_use]
    pub fn amount_minor(&self) -> i64 {
        i64::from(self.quantity.units()).saturating_mul(self.unit_price.amount_minor())
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Its transaction is under way.
    Pending,
    /// Stock deducted and money debited.
    Confirmed,
    /// Nothing held: see the reason.
    Cancelled,
}

impl OrderStatus {
    /// Its name, as stored and shown.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Confirmed, Self::Cancelled]
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// A product had fewer units available than ordered.
    OutOfStock,
    /// The wallet held less than the total.
    InsufficientFunds,
    /// The transaction could not finish in time (a participant did not
    /// answer).
    Timeout,
}

impl CancelReason {
    /// Its name, as stored and shown; also the code of the refusal.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => crate::inventory::OUT_OF_STOCK,
            Self::InsufficientFunds => crate::wallet::INSUFFICIENT_FUNDS,
            Self::Timeout => "timeout",
        }
    }

    /// The reason named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::OutOfStock, Self::InsufficientFunds, Self::Timeout]
            .into_iter()
            .find(|reason| reason.as_str() == name)
    }
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderEvent {
    /// The customer placed it; its transaction begins.
    Placed {
        /// The order.
        id: OrderId,
        /// Whose it is.
        customer: UserId,
        /// What it costs.
        total: Money,
    },
    /// Stock deducted and money debited: a sale.
    Confirmed {
        /// The order.
        id: OrderId,
        /// What was sold, at what price.
        lines: Vec<OrderLine>,
        /// What it cost.
        total: Money,
        /// When it was placed, in milliseconds since the Unix epoch.
        placed_at_ms: i64,
    },
    /// Cancelled, nothing held.
    Cancelled {
        /// The order.
        id: OrderId,
        /// Why.
        reason: CancelReason,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "ordering.order_placed",
            Self::Confirmed { .. } => "ordering.order_confirmed",
            Self::Cancelled { .. } => "ordering.order_cancelled",
        }
    }
}

/// A customer's order: the ordering context's aggregate root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    customer: UserId,
    lines: Vec<OrderLine>,
    total: Money,
    status: OrderStatus,
    reason: Option<CancelReason>,
    placed_at_ms: i64,
    state: AggregateState<OrderEvent>,
}

impl Order {
    /// The most lines one order has.
    pub const MAX_LINES: usize = 50;

    /// A pending order `id` of `customer` for `lines`. The id is the
    /// caller's, so a retried request can name the order it placed before.
    ///
    /// # Errors
    /// `order_empty` with no line, `order_too_large` with more than
    /// [`Order::MAX_LINES`], `product_repeated` when a product is on two
    /// lines, `mixed_currencies` when prices are in more than one currency,
    /// `total_too_large` past [`Money::MAX_MINOR`].
    pub fn place(
        id: OrderId,
        customer: UserId,
        lines: Vec<OrderLine>,
        placed_at_ms: i64,
    ) -> Result<Self, DomainError> {
        let rule =
            |code: &'static str, message: String| DomainError::RuleViolated { code, message };
        let Some(first) = lines.first() else {
            return Err(rule("order_empty", "an order has at least one line".into()));
        };
        if lines.len() > Self::MAX_LINES {
            return Err(rule(
                "order_too_large",
                format!("an order has at most {} lines", Self::MAX_LINES),
            ));
        }
        let mut seen = HashSet::new();
        if let Some(line) = lines.iter().find(|line| !seen.insert(line.product)) {
            return Err(rule(
                "product_repeated",
                format!("product {} is on more than one line", line.product),
            ));
        }
        let currency = first.unit_price.currency();
        if lines
            .iter()
            .any(|line| line.unit_price.currency() != currency)
        {
            return Err(rule(
                "mixed_currencies",
                "every product of an order must be priced in one currency".into(),
            ));
        }
        let total_minor = lines
            .iter()
            .try_fold(0_i64, |sum, line| sum.checked_add(line.amount_minor()))
            .filter(|total| *total <= Money::MAX_MINOR);
        let total = total_minor
            .and_then(|total| Money::new(total, currency.as_str()).ok())
            .ok_or_else(|| {
                rule(
                    "total_too_large",
                    format!(
                        "an order's total is at most {} minor units",
                        Money::MAX_MINOR
                    ),
                )
            })?;
        let mut order = Self {
            id,
            customer,
            lines,
            total,
            status: OrderStatus::Pending,
            reason: None,
            placed_at_ms,
            state: AggregateState::new(),
        };
        order.record(OrderEvent::Placed {
            id,
            customer,
            total,
        });
        Ok(order)
    }

    /// Rebuilds a stored order.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        id: OrderId,
        customer: UserId,
        lines: Vec<OrderLine>,
        total: Money,
        status: OrderStatus,
        reason: Option<CancelReason>,
        placed_at_ms: i64,
        version: Version,
    ) -> Self {
        Self {
            id,
            customer,
            lines,
            total,
            status,
            reason,
            placed_at_ms,
            state: AggregateState::loaded(version),
        }
    }

    /// Marks the order confirmed; `false` when it was already.
    ///
    /// # Errors
    /// `order_cancelled` when it was cancelled.
    pub fn confirm(&mut self) -> Result<bool, DomainError> {
        match self.status {
            OrderStatus::Confirmed => Ok(false),
            OrderStatus::Cancelled => Err(DomainError::RuleViolated {
                code: "order_cancelled",
                message: format!("order {} was cancelled", self.id),
            }),
            OrderStatus::Pending => {
                self.status = OrderStatus::Confirmed;
                self.record(OrderEvent::Confirmed {
                    id: self.id,
                    lines: self.lines.clone(),
                    total: self.total,
                    placed_at_ms: self.placed_at_ms,
                });
                Ok(true)
            }
        }
    }

    /// Marks the order cancelled for `reason`; `false` when it was already.
    ///
    /// # Errors
    /// `order_confirmed` when it was confirmed.
    pub fn cancel(&mut self, reason: CancelReason) -> Result<bool, DomainError> {
        match self.status {
            OrderStatus::Cancelled => Ok(false),
            OrderStatus::Confirmed => Err(DomainError::RuleViolated {
                code: "order_confirmed",
                message: format!("order {} was confirmed", self.id),
            }),
            OrderStatus::Pending => {
                self.status = OrderStatus::Cancelled;
                self.reason = Some(reason);
                self.record(OrderEvent::Cancelled {
                    id: self.id,
                    reason,
                });
                Ok(true)
            }
        }
    }

    /// Whose it is.
    #[must_use]
    pub fn customer(&self) -> UserId {
        self.customer
    }

    /// Its lines.
    #[must_use]
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }

    /// What it costs.
    #[must_use]
    pub fn total(&self) -> Money {
        self.total
    }

    /// Where it stands.
    #[must_use]
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// Why it was cancelled, once it was.
    #[must_use]
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason
    }

    /// When it was placed, in milliseconds since the Unix epoch.
    #[must_use]
    pub fn placed_at_ms(&self) -> i64 {
        self.placed_at_ms
    }
}

impl Entity for Order {
    type Id = OrderId;

    fn id(&self) -> OrderId {
        self.id
    }
}

impl AggregateRoot for Order {
    type Event = OrderEvent;
    const KIND: &'static str = "order";

    fn state(&self) -> &AggregateState<OrderEvent> {
        &self.state
    }

    fn state_mut(&mut self) -> &mut AggregateState<OrderEvent> {
        &mut self.state
    }
}

/// Where orders are kept.
#[async_trait]
pub trait OrderRepository: Repository<Order> {
    /// One page of `customer`'s orders, newest first.
    async fn list_by_customer(
        &self,
        customer: UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, RepositoryError>;

    /// Up to `limit` pending orders placed before `placed_before_ms`, oldest
    /// first (by placement time, then id), after `after` (an order's
    /// placement time and id) when given: a cursor, so orders that stay
    /// pending never hide the ones behind them.
    async fn pending(
        &self,
        placed_before_ms: i64,
        after: Option<(i64, OrderId)>,
        limit: u64,
    ) -> Result<Vec<Order>, RepositoryError>;
}

/// How far an order's transaction came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Stock deducted and money debited.
    Confirmed,
    /// Everything released.
    Cancelled(CancelReason),
    /// Not finished yet; it finishes by itself.
    Pending,
}

/// The distributed transaction that places an order across the inventory
/// and the wallet: the ordering context's outbound port.
#[async_trait]
pub trait OrderPlacement: Send + Sync {
    /// Runs `order`'s transaction (its id is the transaction's), its calls
    /// carrying `traceparent` (W3C trace context), and answers how far it
    /// came.
    async fn place(
        &self,
        order: &Order,
        traceparent: Option<String>,
    ) -> Result<Placement, RepositoryError>;

    /// How far order `id`'s transaction has come, if it was begun.
    async fn placement(&self, id: OrderId) -> Result<Option<Placement>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`OrderRepository`] for application tests.
    pub OrderRepository {}

    #[async_trait]
    impl Repository<Order> for OrderRepository {
        async fn find(&self, id: OrderId) -> Result<Option<Order>, RepositoryError>;
        async fn save(&self, aggregate: &mut Order) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl OrderRepository for OrderRepository {
        async fn list_by_customer(
            &self,
            customer: UserId,
            page: PageRequest,
        ) -> Result<Page<Order>, RepositoryError>;
        async fn pending(
            &self,
            placed_before_ms: i64,
            after: Option<(i64, OrderId)>,
            limit: u64,
        ) -> Result<Vec<Order>, RepositoryError>;
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`OrderPlacement`] for application tests.
    pub OrderPlacement {}

    #[async_trait]
    impl OrderPlacement for OrderPlacement {
        async fn place(&self, order: &Order, traceparent: Option<String>) -> Result<Placement, RepositoryError>;
        async fn placement(&self, id: OrderId) -> Result<Option<Placement>, RepositoryError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(price: i64, currency: &str, units: i64) -> OrderLine {
        OrderLine {
            product: ProductId::generate(),
            quantity: Quantity::new(units).expect("quantity"),
            unit_price: Money::new(price, currency).expect("price"),
        }
    }

    fn code(error: DomainError) -> &'static str {
        match error {
            DomainError::RuleViolated { code, .. } => code,
            other => panic!("not a rule: {other:?}"),
        }
    }

    #[test]
    fn an_order_totals_its_lines_and_starts_pending() {
        let order = Order::place(
            OrderId::generate(),
            UserId::generate(),
            vec![line(250, "EUR", 2), line(1_000, "EUR", 1)],
            1,
        )
        .expect("placed");
        assert_eq!(order.total().amount_minor(), 1_500);
        assert_eq!(order.status(), OrderStatus::Pending);
        assert_eq!(order.pending_events().len(), 1);
    }

    #[test]
    fn an_order_refuses_what_cannot_be_sold_together() {
        let customer = UserId::generate();
        assert_eq!(
            code(Order::place(OrderId::generate(), customer, Vec::new(), 1).expect_err("empty")),
            "order_empty"
        );
        assert_eq!(
            code(
                Order::place(
                    OrderId::generate(),
                    customer,
                    vec![line(1, "EUR", 1), line(1, "USD", 1)],
                    1
                )
                .expect_err("mixed")
            ),
            "mixed_currencies"
        );
        let twice = line(1, "EUR", 1);
        assert_eq!(
            code(
                Order::place(OrderId::generate(), customer, vec![twice, twice], 1)
                    .expect_err("repeated")
            ),
            "product_repeated"
        );
        assert_eq!(
            code(
                Order::place(
                    OrderId::generate(),
                    customer,
                    vec![line(Money::MAX_MINOR, "EUR", 2)],
                    1
                )
                .expect_err("too large")
            ),
            "total_too_large"
        );
        assert_eq!(
            code(
                Order::place(
                    OrderId::generate(),
                    customer,
                    vec![line(1, "EUR", 1); Order::MAX_LINES + 1],
                    1
                )
                .expect_err("too many")
            ),
            "order_too_large"
        );
    }

    #[test]
    fn an_order_ends_once_confirmed_or_cancelled() {
        let mut order = Order::place(
            OrderId::generate(),
            UserId::generate(),
            vec![line(1, "EUR", 1)],
            1,
        )
        .expect("placed");
        assert_eq!(order.confirm().ok(), Some(true));
        assert_eq!(order.confirm().ok(), Some(false));
        assert_eq!(
            code(order.cancel(CancelReason::Timeout).expect_err("confirmed")),
            "order_confirmed"
        );

        let mut order = Order::place(
            OrderId::generate(),
            UserId::generate(),
            vec![line(1, "EUR", 1)],
            1,
        )
        .expect("placed");
        assert_eq!(order.cancel(CancelReason::OutOfStock).ok(), Some(true));
        assert_eq!(order.reason(), Some(CancelReason::OutOfStock));
        assert_eq!(
            code(order.confirm().expect_err("cancelled")),
            "order_cancelled"
        );
    }
}
