//! Catalog use cases: create a product, change its price, get one, list them.

mod commands;
mod handlers;
mod product_view;
mod queries;

pub use commands::{ChangeProductPrice, CreateProduct};
pub use handlers::Catalog;
pub use product_view::{PriceView, ProductView};
pub use queries::{GetProduct, ListProducts};
