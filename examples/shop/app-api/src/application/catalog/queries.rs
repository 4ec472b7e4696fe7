use shop_domain::catalog::ProductId;
use strata_app_api::application::{Access, CachePolicy, Query};
use strata_domain::Page;
use validator::Validate;

use super::{ProductView, cache_keys};

/// One product by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Validate)]
pub struct GetProduct {
    /// The product.
    pub id: ProductId,
}

impl Query for GetProduct {
    type Output = ProductView;
    const NAME: &'static str = "catalog.get_product";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        Some(
            CachePolicy::new(cache_keys::product(self.id), cache_keys::PRODUCT_TTL)
                .remember_not_found(cache_keys::NOT_FOUND_TTL),
        )
    }
}

/// One page of the catalog, oldest product first; with `matching`, only the
/// products whose name or SKU contains it, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Validate)]
pub struct ListProducts {
    /// The 1-based page number.
    #[validate(range(min = 1, message = "must be 1 or more"))]
    pub page: u32,
    /// The page size, at most [`strata_domain::PageRequest::MAX_PER_PAGE`].
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub per_page: u32,
    /// What the name or SKU must contain, if anything.
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    pub matching: Option<String>,
}

impl Query for ListProducts {
    type Output = Page<ProductView>;
    const NAME: &'static str = "catalog.list_products";
    const ACCESS: Access = Access::Anyone;

    fn cache_policy(&self) -> Option<CachePolicy> {
        let key = match &self.matching {
            None => format!("catalog:products:{}:{}", self.page, self.per_page),
            Some(text) => format!("catalog:products:{}:{}:{text}", self.page, self.per_page),
        };
        Some(CachePolicy::new(key, cache_keys::LISTING_TTL).tagged(cache_keys::PRODUCT_LISTINGS))
    }
}
