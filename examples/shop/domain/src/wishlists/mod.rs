//! Wishlists: products a customer keeps for later. Each belongs to one customer.

mod wishlist;

#[cfg(feature = "mock")]
pub use wishlist::MockWishlistRepository;
pub use wishlist::{Wishlist, WishlistEvent, WishlistId, WishlistName, WishlistRepository};
