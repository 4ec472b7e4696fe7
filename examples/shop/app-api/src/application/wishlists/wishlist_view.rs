use serde::{Deserialize, Serialize};
use shop_domain::wishlists::Wishlist;
use strata_app_api::application::Owned;
use strata_domain::{AggregateRoot, Entity};

/// A wishlist as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Wishlist)]
pub struct WishlistView {
    /// Its id.
    #[schema(value_type = uuid::Uuid)]
    pub id: String,
    /// Its owner's user id.
    #[schema(value_type = uuid::Uuid)]
    pub owner: String,
    /// Its name.
    pub name: String,
    /// The product ids, in the order they were added.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub products: Vec<String>,
    /// The version to send back when changing it.
    pub version: u64,
}

impl From<&Wishlist> for WishlistView {
    fn from(wishlist: &Wishlist) -> Self {
        Self {
            id: wishlist.id().to_string(),
            owner: wishlist.owner().to_string(),
            name: wishlist.name().to_string(),
            products: wishlist
                .products()
                .iter()
                .map(ToString::to_string)
                .collect(),
            version: wishlist.version().value(),
        }
    }
}

impl Owned for WishlistView {
    const KIND: &'static str = "wishlist";

    fn owner(&self) -> &str {
        &self.owner
    }

    fn resource_id(&self) -> String {
        self.id.clone()
    }
}
