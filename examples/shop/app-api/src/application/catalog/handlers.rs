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

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;
    use shop_domain::catalog::{MockProductRepository, ProductId, ProductName, Sku, Stock};
    use strata_domain::Entity;
    use strata_domain::ports::{MockUnitOfWork, Outcome};

    use super::*;

    fn committing() -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().times(1).returning(|| Ok(()));
        unit_of_work
            .expect_finish()
            .with(eq(Outcome::Commit))
            .times(1)
            .returning(Ok);
        unit_of_work
    }

    fn rolling_back() -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().times(1).returning(|| Ok(()));
        unit_of_work
            .expect_finish()
            .with(eq(Outcome::Rollback))
            .times(1)
            .returning(Ok);
        unit_of_work
    }

    fn catalog(products: MockProductRepository, unit_of_work: MockUnitOfWork) -> Catalog {
        Catalog::new(Arc::new(products), Arc::new(unit_of_work))
    }

    fn create_tea_pot() -> CreateProduct {
        CreateProduct {
            name: "Tea pot".into(),
            sku: "tea-1".into(),
            price_minor: 2_500,
            currency: "EUR".into(),
            stock: 4,
        }
    }

    fn stored(version: u64) -> Product {
        Product::restore(
            ProductId::generate(),
            ProductName::parse("Tea pot").expect("valid"),
            Sku::parse("TEA-1").expect("valid"),
            Money::new(2_500, "EUR").expect("valid"),
            Stock::new(4).expect("valid"),
            Version::new(version),
        )
    }

    #[tokio::test]
    async fn create_saves_a_new_product_once_and_commits() {
        let mut products = MockProductRepository::new();
        products
            .expect_find_by_sku()
            .withf(|sku| sku.as_str() == "TEA-1")
            .times(1)
            .returning(|_| Ok(None));
        products
            .expect_save()
            .withf(|product| product.version().is_new() && product.sku().as_str() == "TEA-1")
            .times(1)
            .returning(|product| {
                product.mark_saved(Version::new(1));
                Ok(())
            });

        let view = catalog(products, committing())
            .handle(create_tea_pot())
            .await
            .expect("created");

        assert_eq!(view.sku, "TEA-1");
        assert_eq!(view.version, 1);
    }

    #[tokio::test]
    async fn create_with_a_taken_sku_saves_nothing_and_rolls_back() {
        let mut products = MockProductRepository::new();
        products
            .expect_find_by_sku()
            .returning(|_| Ok(Some(stored(3))));
        products.expect_save().never();

        let error = catalog(products, rolling_back())
            .handle(create_tea_pot())
            .await
            .expect_err("sku is taken");

        assert!(matches!(
            error,
            AppError::Conflict {
                code: "sku_taken",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn invalid_input_touches_neither_repository_nor_unit_of_work() {
        let mut products = MockProductRepository::new();
        products.expect_find_by_sku().never();
        products.expect_save().never();
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().never();

        let command = CreateProduct {
            name: " ".into(),
            stock: -1,
            ..create_tea_pot()
        };
        let error = catalog(products, unit_of_work)
            .handle(command)
            .await
            .expect_err("invalid");

        let AppError::Invalid(failure) = error else {
            panic!("expected a validation failure, got {error:?}");
        };
        let fields: Vec<_> = failure
            .violations()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["name", "stock"]);
    }

    #[tokio::test]
    async fn a_concurrent_create_of_the_same_sku_is_a_conflict() {
        let mut products = MockProductRepository::new();
        products.expect_find_by_sku().returning(|_| Ok(None));
        products.expect_save().returning(|_| {
            Err(RepositoryError::Duplicate {
                kind: "product",
                key: "sku",
            })
        });

        let error = catalog(products, rolling_back())
            .handle(create_tea_pot())
            .await
            .expect_err("duplicate");

        assert!(matches!(
            error,
            AppError::Conflict {
                code: "sku_taken",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn change_price_saves_the_product_loaded_at_the_expected_version() {
        let product = stored(2);
        let id = product.id();
        let mut products = MockProductRepository::new();
        products
            .expect_find()
            .with(eq(id))
            .times(1)
            .returning(move |_| Ok(Some(product.clone())));
        products
            .expect_save()
            .withf(|product| product.price().amount_minor() == 1_999)
            .times(1)
            .returning(|product| {
                product.mark_saved(Version::new(3));
                Ok(())
            });

        let view = catalog(products, committing())
            .handle(ChangeProductPrice {
                id,
                price_minor: 1_999,
                currency: "EUR".into(),
                expected_version: 2,
            })
            .await
            .expect("changed");

        assert_eq!(view.price.amount_minor, 1_999);
        assert_eq!(view.version, 3);
    }

    #[tokio::test]
    async fn change_price_from_a_stale_version_is_refused_without_saving() {
        let product = stored(5);
        let id = product.id();
        let mut products = MockProductRepository::new();
        products
            .expect_find()
            .returning(move |_| Ok(Some(product.clone())));
        products.expect_save().never();

        let error = catalog(products, rolling_back())
            .handle(ChangeProductPrice {
                id,
                price_minor: 1_999,
                currency: "EUR".into(),
                expected_version: 4,
            })
            .await
            .expect_err("stale");

        assert!(matches!(
            error,
            AppError::Conflict {
                code: "stale_version",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn change_price_of_an_unknown_product_is_not_found() {
        let mut products = MockProductRepository::new();
        products.expect_find().returning(|_| Ok(None));

        let error = catalog(products, rolling_back())
            .handle(ChangeProductPrice {
                id: ProductId::generate(),
                price_minor: 1,
                currency: "EUR".into(),
                expected_version: 1,
            })
            .await
            .expect_err("unknown");

        assert!(matches!(
            error,
            AppError::NotFound {
                kind: "product",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn list_refuses_an_oversized_page_before_reading() {
        let mut products = MockProductRepository::new();
        products.expect_list().never();
        let unit_of_work = MockUnitOfWork::new();

        let error = catalog(products, unit_of_work)
            .ask(ListProducts {
                page: 1,
                per_page: 500,
            })
            .await
            .expect_err("too large");

        assert!(matches!(error, AppError::Invalid(_)));
    }

    #[tokio::test]
    async fn list_reads_the_requested_page() {
        let mut products = MockProductRepository::new();
        products
            .expect_list()
            .withf(|page| page.page() == 2 && page.per_page() == 1)
            .times(1)
            .returning(|page| Ok(Page::new(vec![stored(1)], page, 3)));

        let page = catalog(products, MockUnitOfWork::new())
            .ask(ListProducts {
                page: 2,
                per_page: 1,
            })
            .await
            .expect("listed");

        assert_eq!(page.total, 3);
        assert_eq!(page.items.len(), 1);
    }
}
