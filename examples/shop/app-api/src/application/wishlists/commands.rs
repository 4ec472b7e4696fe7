use serde::Serialize;
use shop_domain::catalog::ProductId;
use shop_domain::wishlists::{WishlistId, WishlistName};
use strata_app_api::application::{Access, Command};
use validator::{Validate, ValidationError};

use super::WishlistView;

fn wishlist_name(name: &str) -> Result<(), ValidationError> {
    WishlistName::parse(name)
        .map(drop)
        .map_err(|failure| failure.to_field_error())
}

/// Start a wishlist of the caller's own.
#[derive(Debug, Clone, Validate, Serialize)]
pub struct CreateWishlist {
    /// Its name.
    #[validate(custom(function = "wishlist_name"))]
    pub name: String,
}

impl Command for CreateWishlist {
    type Output = WishlistView;
    const NAME: &'static str = "wishlists.create";
    const ACCESS: Access = Access::SignedIn;
}

/// Add a product to one of the caller's wishlists.
#[derive(Debug, Clone, Validate)]
pub struct AddToWishlist {
    /// The wishlist.
    pub wishlist: WishlistId,
    /// The product.
    pub product: ProductId,
}

impl Command for AddToWishlist {
    type Output = WishlistView;
    const NAME: &'static str = "wishlists.add_product";
    const ACCESS: Access = Access::SignedIn;
}
