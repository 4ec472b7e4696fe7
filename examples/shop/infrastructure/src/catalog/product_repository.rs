use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use shop_domain::catalog::{Money, Product, ProductId, ProductName, ProductRepository, Sku, Stock};
use strata_domain::{
    AggregateRoot, Entity as _, EventEnvelope, Id, Page, PageRequest, Repository, RepositoryError,
    ValidationFailure, Version,
};
use strata_infrastructure::{Database, missing_or_stale, repository_error};

use super::product_entity::{ActiveModel, Column, Entity as Products, Model};

/// Products stored in the `products` table through sea-orm, on SQLite or
/// PostgreSQL, with optimistic concurrency on the `version` column.
#[derive(Debug, Clone)]
pub struct SeaOrmProductRepository {
    database: Database,
}

impl SeaOrmProductRepository {
    /// A repository over `database`; it joins the unit of work of the calling task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

/// A stored row that no longer satisfies the domain's rules.
#[derive(Debug, thiserror::Error)]
#[error("stored product {id} is invalid: {failure}")]
struct CorruptProduct {
    id: uuid::Uuid,
    failure: ValidationFailure,
}

fn storage(error: DbErr) -> RepositoryError {
    RepositoryError::storage(error)
}

fn to_domain(row: Model) -> Result<Product, RepositoryError> {
    let corrupt = |failure| {
        RepositoryError::storage(CorruptProduct {
            id: row.id,
            failure,
        })
    };
    let name = ProductName::parse(&row.name).map_err(corrupt)?;
    let sku = Sku::parse(&row.sku).map_err(corrupt)?;
    let price = Money::new(row.price_minor, &row.currency).map_err(corrupt)?;
    let stock = Stock::new(row.stock).map_err(corrupt)?;
    let version = u64::try_from(row.version).unwrap_or_default();
    Ok(Product::restore(
        Id::from_uuid(row.id),
        name,
        sku,
        price,
        stock,
        Version::new(version),
    ))
}

fn stored_version(version: Version) -> i64 {
    i64::try_from(version.value()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Repository<Product> for SeaOrmProductRepository {
    async fn find(&self, id: ProductId) -> Result<Option<Product>, RepositoryError> {
        let session = self.database.session().await.map_err(storage)?;
        let row = Products::find_by_id(id.as_uuid())
            .one(&*session)
            .await
            .map_err(storage)?;
        session.finish().await.map_err(storage)?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, product: &mut Product) -> Result<(), RepositoryError> {
        let mut session = self.database.session().await.map_err(storage)?;
        let loaded = product.version();
        let next = loaded.next();
        if loaded.is_new() {
            ActiveModel {
                id: Set(product.id().as_uuid()),
                name: Set(product.name().to_string()),
                sku: Set(product.sku().to_string()),
                price_minor: Set(product.price().amount_minor()),
                currency: Set(product.price().currency().to_string()),
                stock: Set(i64::from(product.stock().units())),
                version: Set(stored_version(next)),
            }
            .insert(&*session)
            .await
            .map_err(|error| repository_error(error, Product::KIND, "sku"))?;
        } else {
            // One conditional UPDATE is the whole concurrency check: it changes the row
            // only if nobody saved it since it was loaded.
            let updated = Products::update_many()
                .col_expr(Column::Name, Expr::value(product.name().to_string()))
                .col_expr(
                    Column::PriceMinor,
                    Expr::value(product.price().amount_minor()),
                )
                .col_expr(
                    Column::Currency,
                    Expr::value(product.price().currency().to_string()),
                )
                .col_expr(
                    Column::Stock,
                    Expr::value(i64::from(product.stock().units())),
                )
                .col_expr(Column::Version, Expr::value(stored_version(next)))
                .filter(Column::Id.eq(product.id().as_uuid()))
                .filter(Column::Version.eq(stored_version(loaded)))
                .exec(&*session)
                .await
                .map_err(|error| repository_error(error, Product::KIND, "sku"))?;
            if updated.rows_affected == 0 {
                return Err(missing_or_stale::<Products>(
                    &*session,
                    product.id().as_uuid(),
                    Product::KIND,
                    loaded,
                )
                .await);
            }
        }
        let events = EventEnvelope::take_from(product).map_err(RepositoryError::storage)?;
        session.record(events);
        session.finish().await.map_err(storage)?;
        product.mark_saved(next);
        Ok(())
    }
}

#[async_trait]
impl ProductRepository for SeaOrmProductRepository {
    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<Product>, RepositoryError> {
        let session = self.database.session().await.map_err(storage)?;
        let row = Products::find()
            .filter(Column::Sku.eq(sku.as_str()))
            .one(&*session)
            .await
            .map_err(storage)?;
        session.finish().await.map_err(storage)?;
        row.map(to_domain).transpose()
    }

    async fn list(&self, page: PageRequest) -> Result<Page<Product>, RepositoryError> {
        let session = self.database.session().await.map_err(storage)?;
        let total = Products::find().count(&*session).await.map_err(storage)?;
        let rows = Products::find()
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&*session)
            .await
            .map_err(storage)?;
        session.finish().await.map_err(storage)?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}
