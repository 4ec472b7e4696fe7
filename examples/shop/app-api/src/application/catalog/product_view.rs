use serde::{Deserialize, Serialize};
use shop_domain::catalog::{Product, ProductId};
use strata_domain::{AggregateRoot, Entity};

/// A product as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Product)]
pub struct ProductView {
    /// The product's id.
    #[schema(value_type = uuid::Uuid)]
    pub id: ProductId,
    /// The display name.
    pub name: String,
    /// The stock-keeping unit.
    pub sku: String,
    /// The current price.
    pub price: PriceView,
    /// The version to send back when changing the product.
    pub version: u64,
}

/// A price in minor units of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Price)]
pub struct PriceView {
    /// The amount in minor units (cents).
    pub amount_minor: i64,
    /// The ISO 4217 currency code.
    pub currency: String,
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id(),
            name: product.name().to_string(),
            sku: product.sku().to_string(),
            price: PriceView {
                amount_minor: product.price().amount_minor(),
                currency: product.price().currency().to_string(),
            },
            version: product.version().value(),
        }
    }
}
