use async_trait::async_trait;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use shop_domain::catalog::ProductId;
use shop_domain::identity::UserId;
use shop_domain::wishlists::{Wishlist, WishlistId, WishlistName, WishlistRepository};
use strata_domain::{Entity as _, Id, Page, PageRequest, Repository, RepositoryError, Version};
use strata_infrastructure::{Database, save_versioned, storage_error};

use super::wishlist_entity::{ActiveModel, Column, Entity as Wishlists, Model};

/// Wishlists in the `wishlists` table, with optimistic concurrency on `version`.
#[derive(Debug, Clone)]
pub struct SeaOrmWishlistRepository {
    database: Database,
}

impl SeaOrmWishlistRepository {
    /// A repository over `database`; it joins the unit of work of the calling task.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored wishlist {id} is invalid: {reason}")]
struct CorruptWishlist {
    id: uuid::Uuid,
    reason: String,
}

fn to_domain(row: Model) -> Result<Wishlist, RepositoryError> {
    let corrupt = |reason: String| RepositoryError::storage(CorruptWishlist { id: row.id, reason });
    let name = WishlistName::parse(&row.name).map_err(|failure| corrupt(failure.to_string()))?;
    let products: Vec<uuid::Uuid> =
        serde_json::from_str(&row.products).map_err(|error| corrupt(error.to_string()))?;
    Ok(Wishlist::restore(
        Id::from_uuid(row.id),
        Id::from_uuid(row.owner),
        name,
        products.into_iter().map(ProductId::from_uuid).collect(),
        Version::new(u64::try_from(row.version).unwrap_or_default()),
    ))
}

fn products_json(wishlist: &Wishlist) -> String {
    let ids: Vec<uuid::Uuid> = wishlist.products().iter().map(|id| id.as_uuid()).collect();
    serde_json::Value::from(ids.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

#[async_trait]
impl Repository<Wishlist> for SeaOrmWishlistRepository {
    async fn find(&self, id: WishlistId) -> Result<Option<Wishlist>, RepositoryError> {
        let session = self.database.reader().await?;
        let row = Wishlists::find_by_id(id.as_uuid())
            .one(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, wishlist: &mut Wishlist) -> Result<(), RepositoryError> {
        let id = wishlist.id().as_uuid();
        let owner = wishlist.owner().as_uuid();
        let name = wishlist.name().to_string();
        let products = products_json(wishlist);
        save_versioned(
            &self.database,
            wishlist,
            id,
            (Column::Id, Column::Version),
            &[("id", "id")],
            move |version| ActiveModel {
                id: Set(id),
                owner: Set(owner),
                name: Set(name),
                products: Set(products),
                version: Set(version),
            },
        )
        .await
    }
}

#[async_trait]
impl WishlistRepository for SeaOrmWishlistRepository {
    async fn list_by_owner(
        &self,
        owner: UserId,
        page: PageRequest,
    ) -> Result<Page<Wishlist>, RepositoryError> {
        let session = self.database.reader().await?;
        let mine = Wishlists::find().filter(Column::Owner.eq(owner.as_uuid()));
        let total = mine.clone().count(&session).await.map_err(storage_error)?;
        let rows = mine
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&session)
            .await
            .map_err(storage_error)?;
        session.finish().await?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}
