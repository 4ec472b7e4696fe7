use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_domain::catalog::ProductId;
use shop_domain::wishlists::WishlistId;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::openapi::PageOf;
use strata_app_api::http::{ApiJson, ApiPath, ApiQuery, MayAsk, MayExecute, Problem};
use strata_domain::PageRequest;
use utoipa::{IntoParams, ToSchema};
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
#[schema(as = NewWishlist)]
struct CreateBody {
    name: String,
}

/// The product to add.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = WishlistItem)]
struct AddProductBody {
    #[schema(value_type = uuid::Uuid)]
    product_id: ProductId,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// The 1-based page number (default 1).
    #[param(minimum = 1)]
    page: Option<u32>,
    /// The page size (default 20, at most 100).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// Starts a wishlist of the caller's own.
#[utoipa::path(
    post,
    path = "/api/wishlists",
    tag = "wishlists",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required: the same key and body within 24 hours answers with the first result instead of making another wishlist")),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The wishlist was made (or, for a retried key, the first answer again)", body = WishlistView,
            headers(("Location" = String, description = "The new wishlist's URL"))),
        (status = 400, description = "`idempotency_key_missing`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create(
    _: MayExecute<CreateWishlist>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, AppError> {
    let wishlist = state
        .dispatcher
        .execute(&request, CreateWishlist { name: body.name })
        .await?;
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
    params(ListParams),
    responses(
        (status = 200, description = "One page of the caller's wishlists", body = PageOf<WishlistView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_mine(
    _: MayAsk<ListMyWishlists>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<impl IntoResponse, AppError> {
    let query = ListMyWishlists {
        page: params.page.unwrap_or(1),
        per_page: params.per_page.unwrap_or(PageRequest::DEFAULT_PER_PAGE),
    };
    Ok(Json(state.dispatcher.ask(&request, query).await?))
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
    _: MayAsk<GetWishlist>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<WishlistId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state.dispatcher.ask(&request, GetWishlist { id }).await?,
    ))
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
        (status = 422, description = "`unknown_product` or `wishlist_full`", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn add_product(
    _: MayExecute<AddToWishlist>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<WishlistId>,
    ApiJson(body): ApiJson<AddProductBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = AddToWishlist {
        wishlist: id,
        product: body.product_id,
    };
    Ok(Json(state.dispatcher.execute(&request, command).await?))
}
