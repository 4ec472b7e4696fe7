//! Catalog use cases: create a product, change its price, get one, list them.

mod cache_keys;
mod commands;
mod handlers;
mod product_view;
mod queries;
mod rules;

use std::sync::Arc;

pub use commands::{ChangeProductPrice, CreateProduct, PriceInput};
pub use handlers::Catalog;
pub use product_view::{PriceView, ProductView};
pub use queries::{GetProduct, ListProducts};
use strata_app_api::application::{DispatcherBuilder, KeyRequirement};

/// Registers every catalog use case with `catalog` as its handler. Creating a
/// product accepts an `Idempotency-Key`, so a retried create makes one product.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, catalog: Arc<Catalog>) -> DispatcherBuilder {
    dispatcher
        .idempotent_command::<CreateProduct>(catalog.clone(), KeyRequirement::Optional)
        .command::<ChangeProductPrice>(catalog.clone())
        .query::<GetProduct>(catalog.clone())
        .query::<ListProducts>(catalog)
}
