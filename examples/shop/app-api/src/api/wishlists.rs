use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shop_domain::catalog::ProductId;
use shop_domain::wishlists::WishlistId;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::{ApiJson, ApiPath, ApiQuery};
use strata_domain::PageRequest;

use super::AppState;
use crate::application::wishlists::{AddToWishlist, CreateWishlist, GetWishlist, ListMyWishlists};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_mine).post(create))
        .route("/{id}", get(get_one))
        .route("/{id}/products", post(add_product))
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
}

#[derive(Debug, Deserialize)]
struct AddProductBody {
    product_id: ProductId,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn create(
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

async fn list_mine(
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

async fn get_one(
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<WishlistId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state.dispatcher.ask(&request, GetWishlist { id }).await?,
    ))
}

async fn add_product(
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
