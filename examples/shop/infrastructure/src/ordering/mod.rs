//! Orders in the shop's database, and the distributed transaction that places
//! them over the inventory and the wallet.

mod order_entity;

use async_trait::async_trait;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shop_domain::catalog::{Money, ProductId};
use shop_domain::identity::UserId;
use shop_domain::inventory::Quantity;
use shop_domain::ordering::{
    CancelReason, Order, OrderId, OrderLine, OrderPlacement, OrderRepository, OrderStatus,
    Placement,
};
use strata_domain::{Entity as _, Id, Page, PageRequest, Repository, RepositoryError, Version};
use strata_infrastructure::tcc::{BranchSpec, Coordinator, Outcome, TccError, TransactionState};
use strata_infrastructure::{Database, save_versioned, storage_error};

use order_entity::{ActiveModel, Column, Entity as Orders, Model};

/// Orders in the `orders` table, with optimistic concurrency on `version`.
#[derive(Debug, Clone)]
pub struct SeaOrmOrderRepository {
    database: Database,
}

impl SeaOrmOrderRepository {
    /// A repository over `database`; it joins the unit of work of the calling
    /// task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// A line as stored in the `lines` column.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLine {
    product: uuid::Uuid,
    quantity: u32,
    unit_price_minor: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("stored order {id} is invalid: {reason}")]
struct CorruptOrder {
    id: uuid::Uuid,
    reason: String,
}

fn to_domain(row: Model) -> Result<Order, RepositoryError> {
    let id = row.id;
    let corrupt = |reason: String| RepositoryError::storage(CorruptOrder { id, reason });
    let stored: Vec<StoredLine> =
        serde_json::from_str(&row.lines).map_err(|error| corrupt(error.to_string()))?;
    let lines = stored
        .into_iter()
        .map(|line| {
            Ok(OrderLine {
                product: ProductId::from_uuid(line.product),
                quantity: Quantity::new(i64::from(line.quantity))
                    .map_err(|failure| corrupt(failure.to_string()))?,
                unit_price: Money::new(line.unit_price_minor, &row.currency)
                    .map_err(|failure| corrupt(failure.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, RepositoryError>>()?;
    let total = Money::new(row.total_minor, &row.currency)
        .map_err(|failure| corrupt(failure.to_string()))?;
    let status = OrderStatus::from_name(&row.status)
        .ok_or_else(|| corrupt(format!("unknown status `{}`", row.status)))?;
    let reason = match &row.reason {
        Some(reason) => Some(
            CancelReason::from_name(reason)
                .ok_or_else(|| corrupt(format!("unknown reason `{reason}`")))?,
        ),
        None => None,
    };
    Ok(Order::restore(
        Id::from_uuid(row.id),
        Id::from_uuid(row.customer),
        lines,
        total,
        status,
        reason,
        row.placed_at,
        Version::new(u64::try_from(row.version).unwrap_or_default()),
    ))
}

fn lines_json(order: &Order) -> Result<String, RepositoryError> {
    let lines: Vec<StoredLine> = order
        .lines()
        .iter()
        .map(|line| StoredLine {
            product: line.product.as_uuid(),
            quantity: line.quantity.units(),
            unit_price_minor: line.unit_price.amount_minor(),
        })
        .collect();
    serde_json::to_string(&lines).map_err(RepositoryError::storage)
}

#[async_trait]
impl Repository<Order> for SeaOrmOrderRepository {
    async fn find(&self, id: OrderId) -> Result<Option<Order>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Orders::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, order: &mut Order) -> Result<(), RepositoryError> {
        let id = order.id().as_uuid();
        let customer = order.customer().as_uuid();
        let status = order.status().as_str().to_owned();
        let reason = order.reason().map(|reason| reason.as_str().to_owned());
        let total = order.total();
        let lines = lines_json(order)?;
        let placed_at = order.placed_at_ms();
        save_versioned(
            &self.database,
            order,
            id,
            (Column::Id, Column::Version),
            &[],
            move |version| ActiveModel {
                id: Set(id),
                customer: Set(customer),
                status: Set(status),
                reason: Set(reason),
                total_minor: Set(total.amount_minor()),
                currency: Set(total.currency().to_string()),
                lines: Set(lines),
                placed_at: Set(placed_at),
                version: Set(version),
            },
        )
        .await
    }
}

#[async_trait]
impl OrderRepository for SeaOrmOrderRepository {
    async fn list_by_customer(
        &self,
        customer: UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, RepositoryError> {
        let session = self.database.reader().await?;
        let theirs = Orders::find().filter(Column::Customer.eq(customer.as_uuid()));
        let total = theirs
            .clone()
            .count(&session)
            .await
            .map_err(storage_error)?;
        let rows = theirs
            .order_by_desc(Column::PlacedAt)
            .order_by_desc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }

    async fn pending(
        &self,
        placed_before_ms: i64,
        after: Option<(i64, OrderId)>,
        limit: u64,
    ) -> Result<Vec<Order>, RepositoryError> {
        let mut pending = Orders::find()
            .filter(Column::Status.eq(OrderStatus::Pending.as_str()))
            .filter(Column::PlacedAt.lt(placed_before_ms));
        if let Some((placed_at, id)) = after {
            pending = pending.filter(
                Condition::any().add(Column::PlacedAt.gt(placed_at)).add(
                    Condition::all()
                        .add(Column::PlacedAt.eq(placed_at))
                        .add(Column::Id.gt(id.as_uuid())),
                ),
            );
        }
        let session = self.database.reader().await?;
        let rows = pending
            .order_by_asc(Column::PlacedAt)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        rows.into_iter().map(to_domain).collect()
    }
}

/// Places orders as TCC transactions of the coordinator, over the inventory's
/// and the wallet's participant routes: stock reserved and money frozen in
/// parallel, then both made final or both released.
#[derive(Debug, Clone)]
pub struct TccOrderPlacement {
    coordinator: Coordinator,
    inventory: String,
    wallet: String,
}

impl TccOrderPlacement {
    /// Placement through `coordinator`, calling the inventory's branch at
    /// `inventory` and the wallet's at `wallet` (their `try`, `confirm` and
    /// `cancel` are appended).
    #[must_use]
    pub fn new(coordinator: Coordinator, inventory: String, wallet: String) -> Self {
        Self {
            coordinator,
            inventory,
            wallet,
        }
    }
}

/// What an aborted transaction's reason (the first refusal's problem
/// document, or why a participant did not answer) says about the order.
fn cancel_reason(reason: Option<&str>) -> CancelReason {
    #[derive(Deserialize)]
    struct Refusal {
        code: String,
    }
    reason
        .and_then(|text| serde_json::from_str::<Refusal>(text).ok())
        .and_then(|refusal| CancelReason::from_name(&refusal.code))
        .unwrap_or(CancelReason::Timeout)
}

fn placement_of(state: TransactionState, reason: Option<&str>) -> Placement {
    match state {
        TransactionState::Succeeded => Placement::Confirmed,
        TransactionState::Failed => Placement::Cancelled(cancel_reason(reason)),
        TransactionState::Prepared | TransactionState::Submitted | TransactionState::Aborting => {
            Placement::Pending
        }
    }
}

#[async_trait]
impl OrderPlacement for TccOrderPlacement {
    async fn place(
        &self,
        order: &Order,
        traceparent: Option<String>,
    ) -> Result<Placement, RepositoryError> {
        let gid = order.id().to_string();
        let lines: Vec<_> = order
            .lines()
            .iter()
            .map(|line| json!({ "product_id": line.product, "quantity": line.quantity }))
            .collect();
        let total = order.total();
        let branches = vec![
            BranchSpec {
                url: self.inventory.clone(),
                payload: json!({ "order_id": gid, "lines": lines }),
            },
            BranchSpec {
                url: self.wallet.clone(),
                payload: json!({
                    "order_id": gid,
                    "owner_id": order.customer(),
                    "amount": {
                        "amount_minor": total.amount_minor(),
                        "currency": total.currency().as_str(),
                    },
                }),
            },
        ];
        match self
            .coordinator
            .tcc(&gid, branches, traceparent.as_deref())
            .await
        {
            Ok(Outcome::Succeeded) => Ok(Placement::Confirmed),
            Ok(Outcome::Failed { reason }) => {
                Ok(Placement::Cancelled(cancel_reason(Some(&reason))))
            }
            Ok(Outcome::Pending { .. }) => Ok(Placement::Pending),
            // Begun already (a retry of the same order): where it stands.
            Err(TccError::Duplicate(_)) => Ok(self
                .placement(order.id())
                .await?
                .unwrap_or(Placement::Pending)),
            Err(error) => Err(error.into()),
        }
    }

    async fn placement(&self, id: OrderId) -> Result<Option<Placement>, RepositoryError> {
        Ok(self
            .coordinator
            .get(&id.to_string())
            .await
            .map_err(RepositoryError::from)?
            .map(|view| placement_of(view.state, view.reason.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_reason_and_anything_else_is_a_timeout() {
        let refusal = r#"{"type":"about:blank","status":409,"code":"out_of_stock"}"#;
        assert_eq!(cancel_reason(Some(refusal)), CancelReason::OutOfStock);
        let refusal = r#"{"status":409,"code":"insufficient_funds"}"#;
        assert_eq!(
            cancel_reason(Some(refusal)),
            CancelReason::InsufficientFunds
        );
        assert_eq!(
            cancel_reason(Some("a participant did not answer: refused")),
            CancelReason::Timeout
        );
        assert_eq!(cancel_reason(Some("timeout")), CancelReason::Timeout);
        assert_eq!(cancel_reason(None), CancelReason::Timeout);
    }
}
