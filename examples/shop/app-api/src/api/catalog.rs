use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_domain::catalog::ProductId;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::openapi::{PageOf, map_routes};
use strata_app_api::http::{ApiJson, ApiPath, ApiQuery, MayAsk, MayExecute, Problem, with_etags};
use strata_domain::PageRequest;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::catalog::{
    ChangeProductPrice, CreateProduct, GetProduct, ListProducts, PriceInput, ProductView,
};

/// Catalog reads carry an ETag (304 for a client holding the current copy) and
/// may be reused for a short while by clients and proxies.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product))
        .routes(routes!(change_price));
    map_routes(routes, |routes| {
        with_etags(routes, "public, max-age=5, must-revalidate")
    })
}

/// A price: minor units of an ISO 4217 currency.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PriceInput, example = json!({"amount_minor": 4900, "currency": "EUR"}))]
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

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewProduct)]
struct CreateProductBody {
    name: String,
    sku: String,
    price: PriceBody,
    stock: i64,
}

/// A new price, and the version of the product the client last saw.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PriceChange)]
struct ChangePriceBody {
    price: PriceBody,
    version: u64,
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

/// One page of the catalog, oldest product first.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "catalog",
    params(ListParams),
    responses(
        (status = 200, description = "One page of products", body = PageOf<ProductView>),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_products(
    _: MayAsk<ListProducts>,
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

/// Adds a product to the catalog.
#[utoipa::path(
    post,
    path = "/api/products",
    tag = "catalog",
    security(("bearer" = ["catalog.write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same key and body within 24 hours answers with the first result instead of adding another product")),
    request_body = CreateProductBody,
    responses(
        (status = 201, description = "The product was added (or, for a retried key, the first answer again)", body = ProductView,
            headers(("Location" = String, description = "The new product's URL"))),
        (status = 409, description = "`sku_taken`: another product has this SKU; `idempotency_key_in_use`: a request with this key is still running", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create_product(
    _: MayExecute<CreateProduct>,
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

/// One product.
#[utoipa::path(
    get,
    path = "/api/products/{id}",
    tag = "catalog",
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product", body = ProductView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_product(
    _: MayAsk<GetProduct>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state.dispatcher.ask(&request, GetProduct { id }).await?,
    ))
}

/// Sets a product's price, provided nobody changed the product since the
/// client read it.
#[utoipa::path(
    put,
    path = "/api/products/{id}/price",
    tag = "catalog",
    security(("bearer" = ["catalog.write"])),
    params(("id" = uuid::Uuid, Path, description = "The product's id")),
    request_body = ChangePriceBody,
    responses(
        (status = 200, description = "The product with its new price", body = ProductView),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`stale_version`: the product changed since `version`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field, or `currency_mismatch`: the price is in another currency", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn change_price(
    _: MayExecute<ChangeProductPrice>,
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
