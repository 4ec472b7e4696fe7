//! The catalog's cache keys and lifetimes, in one place so that what queries
//! cache and what commands invalidate cannot drift apart.

use std::time::Duration;

use shop_domain::catalog::ProductId;

/// Tags every cached page of the product listing.
pub(super) const PRODUCT_LISTINGS: &str = "catalog:products";
/// How long one product may be served from the cache.
pub(super) const PRODUCT_TTL: Duration = Duration::from_secs(300);
/// How long a listing page may be served from the cache.
pub(super) const LISTING_TTL: Duration = Duration::from_secs(60);
/// How long "no such product" may be served from the cache.
pub(super) const NOT_FOUND_TTL: Duration = Duration::from_secs(30);

/// The key of one product.
pub(super) fn product(id: ProductId) -> String {
    format!("catalog:product:{id}")
}
