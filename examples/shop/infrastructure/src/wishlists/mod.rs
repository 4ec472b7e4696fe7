//! Wishlist adapters.

mod wishlist_entity;
mod wishlist_repository;

pub use wishlist_repository::SeaOrmWishlistRepository;
