use serde::Serialize;
use shop_domain::catalog::ProductId;
use strata_app_api::application::{Access, Command, Invalidation};
use validator::Validate;

use super::{ProductView, cache_keys, rules};
use crate::application::permissions;

/// A price as a client sends it: minor units and a currency code.
#[derive(Debug, Clone, PartialEq, Eq, Validate, Serialize)]
pub struct PriceInput {
    /// The amount in minor units (cents).
    #[validate(custom(function = "rules::amount_minor"))]
    pub amount_minor: i64,
    /// The ISO 4217 currency code.
    #[validate(custom(function = "rules::currency"))]
    pub currency: String,
}

/// Add a product to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Validate, Serialize)]
pub struct CreateProduct {
    /// The display name.
    #[validate(custom(function = "rules::product_name"))]
    pub name: String,
    /// The stock-keeping unit, unique in the catalog.
    #[validate(custom(function = "rules::sku"))]
    pub sku: String,
    /// The price.
    #[validate(nested)]
    pub price: PriceInput,
    /// The units on hand.
    #[validate(custom(function = "rules::stock"))]
    pub stock: i64,
}

impl Command for CreateProduct {
    type Output = ProductView;
    const NAME: &'static str = "catalog.create_product";
    const ACCESS: Access = Access::Permission(permissions::CATALOG_WRITE);

    fn invalidates(&self) -> Invalidation {
        Invalidation::none().tag(cache_keys::PRODUCT_LISTINGS)
    }
}

/// Set a product's price, provided nobody changed the product since the client
/// read it at `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq, Validate)]
pub struct ChangeProductPrice {
    /// The product.
    pub id: ProductId,
    /// The new price.
    #[validate(nested)]
    pub price: PriceInput,
    /// The version the client last saw.
    pub expected_version: u64,
}

impl Command for ChangeProductPrice {
    type Output = ProductView;
    const NAME: &'static str = "catalog.change_product_price";
    const ACCESS: Access = Access::Permission(permissions::CATALOG_WRITE);

    fn invalidates(&self) -> Invalidation {
        Invalidation::none()
            .key(cache_keys::product(self.id))
            .tag(cache_keys::PRODUCT_LISTINGS)
    }
}
