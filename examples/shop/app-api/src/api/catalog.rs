use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use shop_domain::catalog::ProductId;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::{ApiJson, ApiPath, ApiQuery};
use strata_domain::PageRequest;

use super::AppState;
use crate::application::catalog::{
    ChangeProductPrice, CreateProduct, GetProduct, ListProducts, PriceInput,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_products).post(create_product))
        .route("/{id}", get(get_product))
        .route("/{id}/price", put(change_price))
}

#[derive(Debug, Deserialize)]
struct PriceBody {
    amount_minor: i64,
    currency: String,
}

impl From<PriceBody> for PriceInput {
    fn from(body: PriceBody) -> Self {
        Self {
            amount_minor: body.amount_minor,
            currency: body.currency,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CreateProductBody {
    name: String,
    sku: String,
    price: PriceBody,
    stock: i64,
}

#[derive(Debug, Deserialize)]
struct ChangePriceBody {
    price: PriceBody,
    version: u64,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list_products(
    State(state): State<AppState>,
    request: RequestContext,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<impl IntoResponse, AppError> {
    let query = ListProducts {
        page: params.page.unwrap_or(1),
        per_page: params.per_page.unwrap_or(PageRequest::DEFAULT_PER_PAGE),
    };
    Ok(Json(state.dispatcher.ask(&request, query).await?))
}

async fn create_product(
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<CreateProductBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CreateProduct {
        name: body.name,
        sku: body.sku,
        price: body.price.into(),
        stock: body.stock,
    };
    let product = state.dispatcher.execute(&request, command).await?;
    let location = format!("/api/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product),
    ))
}

async fn get_product(
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state.dispatcher.ask(&request, GetProduct { id }).await?,
    ))
}

async fn change_price(
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<ProductId>,
    ApiJson(body): ApiJson<ChangePriceBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = ChangeProductPrice {
        id,
        price: body.price.into(),
        expected_version: body.version,
    };
    Ok(Json(state.dispatcher.execute(&request, command).await?))
}
