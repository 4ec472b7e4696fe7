use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_domain::catalog::ProductId;
use shop_domain::wishlists::{WishlistId, WishlistName};
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::{PageOf, Paging, RequiredIdempotencyKey, rules};
use strata_app_api::http::{ApiPath, ApiQuery, DocumentedJson, MayAsk, MayExecute, Problem};
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::wishlists::{
    AddToWishlist, CreateWishlist, GetWishlist, ListMyWishlists, WishlistView,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mine, create))
        .routes(routes!(get_one))
        .routes(routes!(add_product))
}

/// A new wishlist.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWishlist)]
struct CreateBody {
    /// The wishlist's name.
    #[schema(schema_with = wishlist_name)]
    name: String,
}

fn wishlist_name() -> Object {
    rules::text(1, WishlistName::MAX_CHARS, Some(WishlistName::PATTERN))
}

/// The product to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WishlistItem)]
struct AddProductBody {
    /// The product's id.
    #[schema(value_type = uuid::Uuid)]
    product_id: ProductId,
}

/// Starts a wishlist of the caller's own.
#[utoipa::path(
    post,
    path = "/api/wishlists",
    tag = "wishlists",
    security(("bearer" = [])),
    params(RequiredIdempotencyKey),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The wishlist was made (or, for a retried key, the first answer again)", body = WishlistView,
            headers(("Location" = String, description = "The new wishlist's URL"))),
        (status = 400, description = "`idempotency_key_missing`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running; `idempotency_key_reused`: the key came with another body", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create(
    may: MayExecute<CreateWishlist>,
    DocumentedJson(body): DocumentedJson<CreateBody>,
) -> Result<impl IntoResponse, AppError> {
    let wishlist = may.execute(CreateWishlist { name: body.name }).await?;
    let location = format!("/api/wishlists/{}", wishlist.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(wishlist),
    ))
}

/// One page of the caller's own wishlists.
#[utoipa::path(
    get,
    path = "/api/wishlists",
    tag = "wishlists",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "One page of the caller's wishlists", body = PageOf<WishlistView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_mine(
    may: MayAsk<ListMyWishlists>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    let query = ListMyWishlists { page, per_page };
    Ok(Json(may.ask(query).await?))
}

/// One wishlist, shown to its owner (or staff) only.
#[utoipa::path(
    get,
    path = "/api/wishlists/{id}",
    tag = "wishlists",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The wishlist's id")),
    responses(
        (status = 200, description = "The wishlist", body = WishlistView),
        (status = 404, description = "No such wishlist, or someone else's", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_one(
    may: MayAsk<GetWishlist>,
    ApiPath(id): ApiPath<WishlistId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetWishlist { id }).await?))
}

/// Adds a product to one of the caller's wishlists.
#[utoipa::path(
    post,
    path = "/api/wishlists/{id}/products",
    tag = "wishlists",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The wishlist's id")),
    request_body = AddProductBody,
    responses(
        (status = 200, description = "The wishlist with the product added", body = WishlistView),
        (status = 404, description = "No such wishlist, or someone else's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`unknown_product`: no such product in the catalog; `wishlist_full`: the wishlist holds as many products as it may", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn add_product(
    may: MayExecute<AddToWishlist>,
    ApiPath(id): ApiPath<WishlistId>,
    DocumentedJson(body): DocumentedJson<AddProductBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = AddToWishlist {
        wishlist: id,
        product: body.product_id,
    };
    Ok(Json(may.execute(command).await?))
}
