//! Catalog use cases: create a product, change its price, get one, list them.

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
use strata_app_api::application::DispatcherBuilder;

/// Registers every catalog use case with `catalog` as its handler.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, catalog: Arc<Catalog>) -> DispatcherBuilder {
    dispatcher
        .command::<CreateProduct>(catalog.clone())
        .command::<ChangeProductPrice>(catalog.clone())
        .query::<GetProduct>(catalog.clone())
        .query::<ListProducts>(catalog)
}
