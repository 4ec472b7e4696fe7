use std::sync::Arc;

use async_trait::async_trait;
use shop_domain::catalog::{Money, NewProduct, Product, ProductRepository};
use strata_app_api::application::{AppError, CommandHandler, QueryHandler};
use strata_domain::ports::in_unit_of_work;
use strata_domain::{
    AggregateRoot, Page, PageRequest, RepositoryError, UnitOfWork, ValidationFailure, Version,
};

use super::{ChangeProductPrice, CreateProduct, GetProduct, ListProducts, ProductView};

/// The catalog's use-case handlers, over the ports they need.
#[derive(Clone)]
pub struct Catalog {
    products: Arc<dyn ProductRepository>,
    unit_of_work: Arc<dyn UnitOfWork>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// Handlers over a product repository and the unit of work it joins.
    #[must_use]
    pub fn new(products: Arc<dyn ProductRepository>, unit_of_work: Arc<dyn UnitOfWork>) -> Self {
        Self {
            products,
            unit_of_work,
        }
    }
}

fn sku_taken(sku: &str) -> AppError {
    AppError::Conflict {
        code: "sku_taken",
        message: format!("a product with SKU {sku} already exists"),
    }
}

#[async_trait]
impl CommandHandler<CreateProduct> for Catalog {
    async fn handle(&self, command: CreateProduct) -> Result<ProductView, AppError> {
        let mut product = Product::create(NewProduct {
            name: command.name,
            sku: command.sku,
            price_minor: command.price_minor,
            currency: command.currency,
            stock: command.stock,
        })?;
        let sku = product.sku().clone();
        in_unit_of_work(self.unit_of_work.as_ref(), async {
            if self.products.find_by_sku(&sku).await?.is_some() {
                return Err(sku_taken(sku.as_str()));
            }
            // The unique index still guards against a concurrent create of the same SKU.
            self.products
                .save(&mut product)
                .await
                .map_err(|error| match error {
                    RepositoryError::Duplicate { .. } => sku_taken(sku.as_str()),
                    other => other.into(),
                })
        })
        .await?;
        Ok(ProductView::from(&product))
    }
}

#[async_trait]
impl CommandHandler<ChangeProductPrice> for Catalog {
    async fn handle(&self, command: ChangeProductPrice) -> Result<ProductView, AppError> {
        let price = Money::new(command.price_minor, &command.currency).map_err(|failure| {
            let mut nested = ValidationFailure::default();
            nested.absorb("price", failure);
            AppError::Invalid(nested)
        })?;
        let expected = Version::new(command.expected_version);
        in_unit_of_work(self.unit_of_work.as_ref(), async {
            let mut product = self
                .products
                .find(command.id)
                .await?
                .ok_or_else(|| AppError::not_found(Product::KIND, command.id))?;
            if product.version() != expected {
                return Err(RepositoryError::Conflict {
                    kind: Product::KIND,
                    id: command.id.to_string(),
                    expected,
                }
                .into());
            }
            product.change_price(price)?;
            self.products.save(&mut product).await?;
            Ok(ProductView::from(&product))
        })
        .await
    }
}

#[async_trait]
impl QueryHandler<GetProduct> for Catalog {
    async fn ask(&self, query: GetProduct) -> Result<ProductView, AppError> {
        self.products
            .find(query.id)
            .await?
            .map(|product| ProductView::from(&product))
            .ok_or_else(|| AppError::not_found(Product::KIND, query.id))
    }
}

#[async_trait]
impl QueryHandler<ListProducts> for Catalog {
    async fn ask(&self, query: ListProducts) -> Result<Page<ProductView>, AppError> {
        let request = PageRequest::new(query.page, query.per_page)?;
        let page = self.products.list(request).await?;
        Ok(page.map(|product| ProductView::from(&product)))
    }
}
