use async_trait::async_trait;
use strata_domain::{Page, PageRequest, Repository, RepositoryError};

use super::{Product, Sku};

/// Where products are kept: the catalog's repository port.
#[async_trait]
pub trait ProductRepository: Repository<Product> {
    /// The product with this SKU, if there is one.
    async fn find_by_sku(&self, sku: &Sku) -> Result<Option<Product>, RepositoryError>;

    /// One page of products, oldest first; with `matching`, only those whose
    /// name or SKU contains it, ignoring case.
    async fn list(
        &self,
        matching: Option<String>,
        page: PageRequest,
    ) -> Result<Page<Product>, RepositoryError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall double of [`ProductRepository`] for application tests.
    pub ProductRepository {}

    #[async_trait]
    impl Repository<Product> for ProductRepository {
        async fn find(&self, id: super::ProductId) -> Result<Option<Product>, RepositoryError>;
        async fn save(&self, aggregate: &mut Product) -> Result<(), RepositoryError>;
    }

    #[async_trait]
    impl ProductRepository for ProductRepository {
        async fn find_by_sku(&self, sku: &Sku) -> Result<Option<Product>, RepositoryError>;
        async fn list(
            &self,
            matching: Option<String>,
            page: PageRequest,
        ) -> Result<Page<Product>, RepositoryError>;
    }
}
