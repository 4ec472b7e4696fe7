//! Catalog adapters.

mod product_entity;
mod product_repository;
mod seed;

pub use product_repository::SeaOrmProductRepository;
pub use seed::{SeedError, seed_catalog};
