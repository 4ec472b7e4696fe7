//! Wishlist use cases. A customer sees and changes only their own wishlists.

mod commands;
mod handlers;
mod queries;
mod wishlist_view;

use std::sync::Arc;

pub use commands::{AddToWishlist, CreateWishlist};
pub use handlers::Wishlists;
pub use queries::{GetWishlist, ListMyWishlists};
use strata_app_api::application::{DispatcherBuilder, KeyRequirement, OwnerOr};
pub use wishlist_view::WishlistView;

use crate::application::permissions::WISHLISTS_READ_ANY;

/// Registers every wishlist use case with `wishlists` as its handler. A wishlist
/// is shown only to its owner or to staff who may read any; creating one needs an
/// `Idempotency-Key`, so a client retrying after a lost answer makes one wishlist.
#[must_use]
pub fn register(dispatcher: DispatcherBuilder, wishlists: Arc<Wishlists>) -> DispatcherBuilder {
    dispatcher
        .idempotent_command::<CreateWishlist>(wishlists.clone(), KeyRequirement::Required)
        .command::<AddToWishlist>(wishlists.clone())
        .guarded_query::<GetWishlist>(wishlists.clone(), OwnerOr(WISHLISTS_READ_ANY))
        .query::<ListMyWishlists>(wishlists)
}
