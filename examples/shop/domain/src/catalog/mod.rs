//! The catalog: products, their prices and how many are in stock.

mod money;
mod product;
mod product_name;
mod product_repository;
mod sku;
mod stock;

pub use money::{Currency, Money};
pub use product::{NewProduct, Product, ProductEvent, ProductId};
pub use product_name::ProductName;
#[cfg(feature = "mock")]
pub use product_repository::MockProductRepository;
pub use product_repository::ProductRepository;
pub use sku::Sku;
pub use stock::Stock;
