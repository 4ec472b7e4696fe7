use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use shop_domain::catalog::ProductId;
use shop_domain::identity::UserId;
use shop_domain::wishlists::{Wishlist, WishlistId, WishlistName, WishlistRepository};
use strata_domain::{
    AggregateRoot, Entity as _, EventEnvelope, Id, Page, PageRequest, Repository, RepositoryError,
    Version,
};
use strata_infrastructure::{Database, missing_or_stale};

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

fn stored(version: Version) -> i64 {
    i64::try_from(version.value()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Repository<Wishlist> for SeaOrmWishlistRepository {
    async fn find(&self, id: WishlistId) -> Result<Option<Wishlist>, RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let row = Wishlists::find_by_id(id.as_uuid())
            .one(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)?;
        row.map(to_domain).transpose()
    }

    async fn save(&self, wishlist: &mut Wishlist) -> Result<(), RepositoryError> {
        let mut session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let loaded = wishlist.version();
        let next = loaded.next();
        if loaded.is_new() {
            ActiveModel {
                id: Set(wishlist.id().as_uuid()),
                owner: Set(wishlist.owner().as_uuid()),
                name: Set(wishlist.name().to_string()),
                products: Set(products_json(wishlist)),
                version: Set(stored(next)),
            }
            .insert(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        } else {
            let updated = Wishlists::update_many()
                .col_expr(Column::Name, Expr::value(wishlist.name().to_string()))
                .col_expr(Column::Products, Expr::value(products_json(wishlist)))
                .col_expr(Column::Version, Expr::value(stored(next)))
                .filter(Column::Id.eq(wishlist.id().as_uuid()))
                .filter(Column::Version.eq(stored(loaded)))
                .exec(&*session)
                .await
                .map_err(RepositoryError::storage)?;
            if updated.rows_affected == 0 {
                return Err(missing_or_stale::<Wishlists>(
                    &*session,
                    wishlist.id().as_uuid(),
                    Wishlist::KIND,
                    loaded,
                )
                .await);
            }
        }
        session.record(EventEnvelope::take_from(wishlist).map_err(RepositoryError::storage)?);
        session.finish().await.map_err(RepositoryError::storage)?;
        wishlist.mark_saved(next);
        Ok(())
    }
}

#[async_trait]
impl WishlistRepository for SeaOrmWishlistRepository {
    async fn list_by_owner(
        &self,
        owner: UserId,
        page: PageRequest,
    ) -> Result<Page<Wishlist>, RepositoryError> {
        let session = self
            .database
            .session()
            .await
            .map_err(RepositoryError::storage)?;
        let mine = Wishlists::find().filter(Column::Owner.eq(owner.as_uuid()));
        let total = mine
            .clone()
            .count(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        let rows = mine
            .order_by_asc(Column::Id)
            .offset(page.offset())
            .limit(u64::from(page.per_page()))
            .all(&*session)
            .await
            .map_err(RepositoryError::storage)?;
        session.finish().await.map_err(RepositoryError::storage)?;
        let items = rows.into_iter().map(to_domain).collect::<Result<_, _>>()?;
        Ok(Page::new(items, page, total))
    }
}
