use async_trait::async_trait;
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_domain::catalog::{Money, Product, ProductId, ProductName, ProductRepository, Sku, Stock};
use strata_domain::{
    Entity as _, Id, Page, PageRequest, Repository, RepositoryError, ValidationFailure, Version,
};
use strata_infrastructure::{Database, save_versioned, storage_error};

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

#[async_trait]
impl Repository<Product> for SeaOrmProductRepository {
    async fn find(&self, id: ProductId) -> Result<Option<Product>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Products::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, product: &mut Product) -> Result<(), RepositoryError> {
        let (id, name, sku) = (
            product.id().as_uuid(),
            product.name().to_string(),
            product.sku().to_string(),
        );
        let (price, stock) = (product.price(), i64::from(product.stock().units()));
        save_versioned(
            &self.database,
            product,
            id,
            (Column::Id, Column::Version),
            &[("sku", "sku"), ("id", "id")],
            move |version| ActiveModel {
                id: Set(id),
                name: Set(name),
                sku: Set(sku),
                price_minor: Set(price.amount_minor()),
                currency: Set(price.currency().to_string()),
                stock: Set(stock),
                version: Set(version),
            },
        )
        .await
    }
}

#[async_trait]
impl ProductRepository for SeaOrmProductRepository {
    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<Product>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Products::find()
            .filter(Column::Sku.eq(sku.as_str()))
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn list(
        &self,
        matching: Option<String>,
        page: PageRequest,
    ) -> Result<Page<Product>, RepositoryError> {
        let condition = matching.as_deref().map_or_else(Condition::all, containing);
        let session = self.database.reader().await?;
        let total = Products::find()
            .filter(condition.clone())
            .count(&session)
            .await
            .map_err(storage_error)?;
        let rows = Products::find()
            .filter(condition)
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}

/// Name or SKU contains `text`, ignoring case; `%`, `_` and `\\` in it match
/// themselves.
fn containing(text: &str) -> Condition {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    let like = || LikeExpr::new(pattern.clone()).escape('\\');
    Condition::any()
        .add(Expr::expr(Func::lower(Expr::col(Column::Name))).like(like()))
        .add(Expr::expr(Func::lower(Expr::col(Column::Sku))).like(like()))
}
