use shop_domain::catalog::ProductId;
use strata_app_api::application::Command;

use super::ProductView;

/// Add a product to the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateProduct {
    /// The display name.
    pub name: String,
    /// The stock-keeping unit, unique in the catalog.
    pub sku: String,
    /// The price in minor units.
    pub price_minor: i64,
    /// The price's currency code.
    pub currency: String,
    /// The units on hand.
    pub stock: i64,
}

impl Command for CreateProduct {
    type Output = ProductView;
    const NAME: &'static str = "catalog.create_product";
}

/// Set a product's price, provided nobody changed the product since the client
/// read it at `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeProductPrice {
    /// The product.
    pub id: ProductId,
    /// The new price in minor units.
    pub price_minor: i64,
    /// The new price's currency code.
    pub currency: String,
    /// The version the client last saw.
    pub expected_version: u64,
}

impl Command for ChangeProductPrice {
    type Output = ProductView;
    const NAME: &'static str = "catalog.change_product_price";
}
