use std::sync::Arc;

use async_trait::async_trait;
use shop_domain::catalog::ProductRepository;
use shop_domain::identity::UserId;
use shop_domain::wishlists::{Wishlist, WishlistName, WishlistRepository};
use strata_app_api::application::{AppError, CommandHandler, QueryHandler, UseCaseContext};
use strata_domain::{AggregateRoot, Page, PageRequest};

use super::{AddToWishlist, CreateWishlist, GetWishlist, ListMyWishlists, WishlistView};

/// The wishlist use-case handlers.
pub struct Wishlists {
    wishlists: Arc<dyn WishlistRepository>,
    products: Arc<dyn ProductRepository>,
}

impl std::fmt::Debug for Wishlists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wishlists").finish_non_exhaustive()
    }
}

impl Wishlists {
    /// Handlers over the wishlist and product repositories.
    #[must_use]
    pub fn new(
        wishlists: Arc<dyn WishlistRepository>,
        products: Arc<dyn ProductRepository>,
    ) -> Self {
        Self {
            wishlists,
            products,
        }
    }
}

/// The signed-in customer the use case acts for.
fn customer(cx: &UseCaseContext) -> Result<UserId, AppError> {
    let principal = cx.request().principal().ok_or(AppError::Unauthenticated)?;
    principal
        .subject()
        .parse()
        .map_err(|_| AppError::Forbidden("only a signed-in user has wishlists".into()))
}

#[async_trait]
impl CommandHandler<CreateWishlist> for Wishlists {
    async fn handle(
        &self,
        cx: &UseCaseContext,
        command: CreateWishlist,
    ) -> Result<WishlistView, AppError> {
        let mut wishlist = Wishlist::create(customer(cx)?, WishlistName::parse(&command.name)?);
        self.wishlists.save(&mut wishlist).await?;
        Ok(WishlistView::from(&wishlist))
    }
}

#[async_trait]
impl CommandHandler<AddToWishlist> for Wishlists {
    async fn handle(
        &self,
        cx: &UseCaseContext,
        command: AddToWishlist,
    ) -> Result<WishlistView, AppError> {
        let owner = customer(cx)?;
        // Someone else's wishlist is answered exactly like a missing one.
        let mut wishlist = self
            .wishlists
            .find(command.wishlist)
            .await?
            .filter(|wishlist| wishlist.owner() == owner)
            .ok_or_else(|| AppError::not_found(Wishlist::KIND, command.wishlist))?;
        if self.products.find(command.product).await?.is_none() {
            return Err(AppError::RuleViolated {
                code: "unknown_product",
                message: format!("there is no product {}", command.product),
            });
        }
        wishlist.add(command.product)?;
        self.wishlists.save(&mut wishlist).await?;
        Ok(WishlistView::from(&wishlist))
    }
}

#[async_trait]
impl QueryHandler<GetWishlist> for Wishlists {
    async fn ask(
        &self,
        _cx: &UseCaseContext,
        query: GetWishlist,
    ) -> Result<WishlistView, AppError> {
        self.wishlists
            .find(query.id)
            .await?
            .map(|wishlist| WishlistView::from(&wishlist))
            .ok_or_else(|| AppError::not_found(Wishlist::KIND, query.id))
    }
}

#[async_trait]
impl QueryHandler<ListMyWishlists> for Wishlists {
    async fn ask(
        &self,
        cx: &UseCaseContext,
        query: ListMyWishlists,
    ) -> Result<Page<WishlistView>, AppError> {
        let page = PageRequest::new(query.page, query.per_page)?;
        let mine = self.wishlists.list_by_owner(customer(cx)?, page).await?;
        Ok(mine.map(|wishlist| WishlistView::from(&wishlist)))
    }
}
