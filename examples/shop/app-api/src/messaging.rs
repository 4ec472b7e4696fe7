//! Inbound adapters for messages, as `api` is for HTTP requests: each maps a
//! message to a command and dispatches it through the same pipeline.

use async_trait::async_trait;
use serde::Deserialize;
use shop_domain::catalog::Money;
use strata_app_api::application::{AppError, Dispatcher, Principal, PrincipalKind, RequestContext};
use strata_app_api::messaging::MessageHandler;
use strata_domain::Id;
use strata_domain::ports::Message;

use crate::application::inventory::OpenStock;
use crate::application::permissions::{REPORTS_WRITE, STOCK_OPEN};
use crate::application::reports::{CatalogChange, RecordCatalogEvent, RecordSale, SoldLine};

/// Counts the catalog's and the orders' events in the sales report
/// (consumer `sales_report`).
#[derive(Debug, Clone)]
pub struct EventsToReport {
    dispatcher: Dispatcher,
}

impl EventsToReport {
    /// The adapter, dispatching through `dispatcher`.
    #[must_use]
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

/// A product event as the catalog publishes it; fields the report does not
/// need are passed over.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ProductEventPayload {
    Created {},
    PriceChanged { id: uuid::Uuid, to: PricePayload },
}

#[derive(Debug, Deserialize)]
struct PricePayload {
    amount_minor: i64,
    currency: String,
}

impl PricePayload {
    fn money(&self) -> Result<Money, AppError> {
        Money::new(self.amount_minor, &self.currency).map_err(|failure| AppError::RuleViolated {
            code: "unreadable_event",
            message: format!("a price in the event is not a price: {failure}"),
        })
    }
}

/// An order event as ordering publishes it; the report counts the confirmed
/// ones.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OrderEventPayload {
    Confirmed {
        lines: Vec<OrderLinePayload>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct OrderLinePayload {
    product: uuid::Uuid,
    quantity: u32,
    unit_price: PricePayload,
}

fn unreadable(message: &Message, error: &serde_json::Error) -> AppError {
    AppError::RuleViolated {
        code: "unreadable_event",
        message: format!("`{}` cannot be read: {error}", message.event_type),
    }
}

impl EventsToReport {
    async fn order_event(
        &self,
        request: &RequestContext,
        message: &Message,
    ) -> Result<(), AppError> {
        let payload = OrderEventPayload::deserialize(&message.payload)
            .map_err(|error| unreadable(message, &error))?;
        let OrderEventPayload::Confirmed { lines } = payload else {
            return Ok(());
        };
        let lines = lines
            .iter()
            .map(|line| {
                let price = line.unit_price.money()?;
                let revenue = i64::from(line.quantity)
                    .checked_mul(price.amount_minor())
                    .and_then(|minor| Money::new(minor, price.currency().as_str()).ok())
                    .ok_or_else(|| AppError::RuleViolated {
                        code: "unreadable_event",
                        message: "a line's revenue is out of range".into(),
                    })?;
                Ok(SoldLine {
                    product: Id::from_uuid(line.product),
                    units: line.quantity,
                    revenue,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        self.dispatcher
            .execute(
                request,
                RecordSale {
                    lines,
                    recorded_at_ms: message.recorded_at_ms,
                },
            )
            .await
    }
}

#[async_trait]
impl MessageHandler for EventsToReport {
    fn wants(&self, topic: &str) -> bool {
        topic == "product" || topic == "order"
    }

    fn principal(&self, consumer: &str) -> Principal {
        Principal::new(consumer, PrincipalKind::Service).with_permission(REPORTS_WRITE)
    }

    async fn handle(&self, request: &RequestContext, message: &Message) -> Result<(), AppError> {
        if message.topic == "order" {
            return self.order_event(request, message).await;
        }
        let payload = ProductEventPayload::deserialize(&message.payload).map_err(|error| {
            AppError::RuleViolated {
                code: "unreadable_event",
                message: format!("`{}` is not a product event: {error}", message.event_type),
            }
        })?;
        let change = match payload {
            ProductEventPayload::Created {} => CatalogChange::ProductAdded,
            ProductEventPayload::PriceChanged { id, to } => CatalogChange::PriceChanged {
                product: Id::from_uuid(id),
                price: to.money()?,
            },
        };
        self.dispatcher
            .execute(
                request,
                RecordCatalogEvent {
                    change,
                    recorded_at_ms: message.recorded_at_ms,
                },
            )
            .await
    }
}

/// Gives each new product of the catalog its first stock in the inventory
/// (consumer `inventory_stock`).
#[derive(Debug, Clone)]
pub struct CatalogEventsToInventory {
    dispatcher: Dispatcher,
}

impl CatalogEventsToInventory {
    /// The adapter, dispatching through `dispatcher` (the inventory's).
    #[must_use]
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

/// A new product as the inventory reads it; other product events are passed
/// over.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum NewProductPayload {
    Created {
        id: uuid::Uuid,
        #[serde(default)]
        stock: u32,
    },
    #[serde(other)]
    Other,
}

#[async_trait]
impl MessageHandler for CatalogEventsToInventory {
    fn wants(&self, topic: &str) -> bool {
        topic == "product"
    }

    fn principal(&self, consumer: &str) -> Principal {
        Principal::new(consumer, PrincipalKind::Service).with_permission(STOCK_OPEN)
    }

    async fn handle(&self, request: &RequestContext, message: &Message) -> Result<(), AppError> {
        let payload = NewProductPayload::deserialize(&message.payload).map_err(|error| {
            AppError::RuleViolated {
                code: "unreadable_event",
                message: format!("`{}` is not a product event: {error}", message.event_type),
            }
        })?;
        let NewProductPayload::Created { id, stock } = payload else {
            return Ok(());
        };
        self.dispatcher
            .execute(
                request,
                OpenStock {
                    product: Id::from_uuid(id),
                    units: stock,
                },
            )
            .await?;
        Ok(())
    }
}
