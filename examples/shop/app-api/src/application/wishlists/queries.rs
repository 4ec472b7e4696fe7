use shop_domain::wishlists::WishlistId;
use strata_app_api::application::{Access, Query};
use strata_domain::Page;
use validator::Validate;

use super::WishlistView;

/// One wishlist, shown only to its owner (or staff).
#[derive(Debug, Clone, Copy, Validate)]
pub struct GetWishlist {
    /// The wishlist.
    pub id: WishlistId,
}

impl Query for GetWishlist {
    type Output = WishlistView;
    const NAME: &'static str = "wishlists.get";
    const ACCESS: Access = Access::SignedIn;
}

/// One page of the caller's own wishlists.
#[derive(Debug, Clone, Copy, Validate)]
pub struct ListMyWishlists {
    /// The 1-based page number.
    #[validate(range(min = 1, message = "must be 1 or more"))]
    pub page: u32,
    /// The page size.
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    pub per_page: u32,
}

impl Query for ListMyWishlists {
    type Output = Page<WishlistView>;
    const NAME: &'static str = "wishlists.list_mine";
    const ACCESS: Access = Access::SignedIn;
}
