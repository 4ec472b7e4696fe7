use std::sync::Arc;

use async_trait::async_trait;
use shop_domain::catalog::{Money, NewProduct, Product, ProductRepository};
use strata_app_api::application::{AppError, CommandHandler, QueryHandler, UseCaseContext};
use strata_domain::{AggregateRoot, Page, PageRequest, RepositoryError, Version};

use super::{ChangeProductPrice, CreateProduct, GetProduct, ListProducts, ProductView};

/// The catalog's use-case handlers, over the repository they need. Each holds the
/// business step alone: the pipeline validates, logs and runs the unit of work.
#[derive(Clone)]
pub struct Catalog {
    products: Arc<dyn ProductRepository>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// Handlers over a product repository.
    #[must_use]
    pub fn new(products: Arc<dyn ProductRepository>) -> Self {
        Self { products }
    }
}

fn sku_taken(sku: &str) -> AppError {
    AppError::Taken {
        code: "sku_taken",
        field: "sku".into(),
        message: format!("a product with SKU {sku} already exists"),
    }
}

#[async_trait]
impl CommandHandler<CreateProduct> for Catalog {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: CreateProduct,
    ) -> Result<ProductView, AppError> {
        let mut product = Product::create(NewProduct {
            name: command.name,
            sku: command.sku,
            price_minor: command.price.amount_minor,
            currency: command.price.currency,
            stock: command.stock,
        })?;
        let sku = product.sku().clone();
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
            })?;
        Ok(ProductView::from(&product))
    }
}

#[async_trait]
impl CommandHandler<ChangeProductPrice> for Catalog {
    async fn handle(
        &self,
        _cx: &UseCaseContext,
        command: ChangeProductPrice,
    ) -> Result<ProductView, AppError> {
        let price = Money::new(command.price.amount_minor, &command.price.currency)?;
        let expected = Version::new(command.expected_version);
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
    }
}

#[async_trait]
impl QueryHandler<GetProduct> for Catalog {
    async fn ask(&self, _cx: &UseCaseContext, query: GetProduct) -> Result<ProductView, AppError> {
        self.products
            .find(query.id)
            .await?
            .map(|product| ProductView::from(&product))
            .ok_or_else(|| AppError::not_found(Product::KIND, query.id))
    }
}

#[async_trait]
impl QueryHandler<ListProducts> for Catalog {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: ListProducts,
    ) -> Result<Page<ProductView>, AppError> {
        let request = PageRequest::new(query.page, query.per_page)?;
        let page = self.products.list(query.matching, request).await?;
        Ok(page.map(|product| ProductView::from(&product)))
    }
}

#[cfg(test)]
mod tests {
    //! The handlers run through the real pipeline, with mockall doubles of the ports.

    use mockall::predicate::eq;
    use shop_domain::catalog::{MockProductRepository, ProductId, ProductName, Sku, Stock};
    use strata_app_api::application::{
        Dispatcher, Principal, PrincipalKind, RequestContext, middleware,
    };
    use strata_domain::Entity;
    use strata_domain::ports::{MockUnitOfWork, Outcome, Propagation};

    use super::*;
    use crate::application::catalog::{PriceInput, register};
    use crate::application::permissions::CATALOG_WRITE;

    fn unit_of_work_expecting(outcome: Outcome) -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work
            .expect_begin()
            .with(eq(Propagation::Required))
            .times(1)
            .returning(|_| Ok(()));
        unit_of_work
            .expect_finish()
            .with(eq(outcome))
            .times(1)
            .returning(Ok);
        unit_of_work
    }

    fn untouched_unit_of_work() -> MockUnitOfWork {
        let mut unit_of_work = MockUnitOfWork::new();
        unit_of_work.expect_begin().never();
        unit_of_work
    }

    fn dispatcher(products: MockProductRepository, unit_of_work: MockUnitOfWork) -> Dispatcher {
        let catalog = Arc::new(Catalog::new(Arc::new(products)));
        register(
            Dispatcher::builder().middleware(middleware::standard(Arc::new(unit_of_work))),
            catalog,
        )
        .build()
    }

    fn eur(amount_minor: i64) -> PriceInput {
        PriceInput {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    fn create_tea_pot() -> CreateProduct {
        CreateProduct {
            name: "Tea pot".into(),
            sku: "tea-1".into(),
            price: eur(2_500),
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

    /// A request from staff allowed to change the catalog.
    fn request() -> RequestContext {
        RequestContext::background().with_principal(
            Principal::new("staff-1", PrincipalKind::User).with_permission(CATALOG_WRITE),
        )
    }

    #[tokio::test]
    async fn a_caller_without_the_catalog_permission_changes_nothing() {
        let mut products = MockProductRepository::new();
        products.expect_find_by_sku().never();
        products.expect_save().never();

        let customer = RequestContext::background()
            .with_principal(Principal::new("cust-1", PrincipalKind::User).with_role("customer"));
        let error = dispatcher(products, untouched_unit_of_work())
            .execute(&customer, create_tea_pot())
            .await
            .expect_err("not staff");

        assert!(matches!(error, AppError::Forbidden(_)));
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

        let view = dispatcher(products, unit_of_work_expecting(Outcome::Commit))
            .execute(&request(), create_tea_pot())
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

        let error = dispatcher(products, unit_of_work_expecting(Outcome::Rollback))
            .execute(&request(), create_tea_pot())
            .await
            .expect_err("sku is taken");

        assert!(matches!(
            error,
            AppError::Taken {
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

        let command = CreateProduct {
            name: " ".into(),
            stock: -1,
            price: PriceInput {
                amount_minor: -5,
                currency: "EURO".into(),
            },
            ..create_tea_pot()
        };
        let error = dispatcher(products, untouched_unit_of_work())
            .execute(&request(), command)
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
        assert_eq!(
            fields,
            ["name", "price.amount_minor", "price.currency", "stock"]
        );
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

        let error = dispatcher(products, unit_of_work_expecting(Outcome::Rollback))
            .execute(&request(), create_tea_pot())
            .await
            .expect_err("duplicate");

        assert!(matches!(
            error,
            AppError::Taken {
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

        let view = dispatcher(products, unit_of_work_expecting(Outcome::Commit))
            .execute(
                &request(),
                ChangeProductPrice {
                    id,
                    price: eur(1_999),
                    expected_version: 2,
                },
            )
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

        let error = dispatcher(products, unit_of_work_expecting(Outcome::Rollback))
            .execute(
                &request(),
                ChangeProductPrice {
                    id,
                    price: eur(1_999),
                    expected_version: 4,
                },
            )
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

        let error = dispatcher(products, unit_of_work_expecting(Outcome::Rollback))
            .execute(
                &request(),
                ChangeProductPrice {
                    id: ProductId::generate(),
                    price: eur(1),
                    expected_version: 1,
                },
            )
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
    async fn queries_run_without_a_unit_of_work() {
        let mut products = MockProductRepository::new();
        products
            .expect_list()
            .withf(|matching, page| {
                matching.as_deref() == Some("tea") && page.page() == 2 && page.per_page() == 1
            })
            .times(1)
            .returning(|_, page| Ok(Page::new(vec![stored(1)], page, 3)));

        let page = dispatcher(products, untouched_unit_of_work())
            .ask(
                &request(),
                ListProducts {
                    page: 2,
                    per_page: 1,
                    matching: Some("tea".into()),
                },
            )
            .await
            .expect("listed");

        assert_eq!(page.total, 3);
        assert_eq!(page.items.len(), 1);
    }

    #[tokio::test]
    async fn an_oversized_page_is_refused_before_reading() {
        let mut products = MockProductRepository::new();
        products.expect_list().never();

        let error = dispatcher(products, untouched_unit_of_work())
            .ask(
                &request(),
                ListProducts {
                    page: 1,
                    per_page: 500,
                    matching: None,
                },
            )
            .await
            .expect_err("too large");

        assert!(matches!(error, AppError::Invalid(_)));
    }
}
