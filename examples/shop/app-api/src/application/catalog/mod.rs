//! Catalog use cases: create a product, change its price, get one, list them.

mod catalog;
mod commands;
mod product_view;
mod queries;

pub use catalog::Catalog;
pub use commands::{ChangeProductPrice, CreateProduct};
pub use product_view::{PriceView, ProductView};
pub use queries::{GetProduct, ListProducts};
