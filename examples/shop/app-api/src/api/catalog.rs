use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_domain::catalog::{Currency, Money, ProductId, ProductName, Sku, Stock};
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::{IdempotencyKey, PageOf, Paging, map_routes, rules};
use strata_app_api::http::{
    ApiPath, ApiQuery, DocumentedJson, MayAsk, MayExecute, Problem, with_etags,
};
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;
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
#[serde(deny_unknown_fields)]
#[schema(as = PriceInput, example = json!({"amount_minor": 4900, "currency": "EUR"}))]
pub(super) struct PriceBody {
    /// The amount in the currency's minor unit (cents for EUR).
    #[schema(schema_with = amount_minor)]
    pub(super) amount_minor: i64,
    /// The ISO 4217 code, upper case.
    #[schema(schema_with = currency)]
    pub(super) currency: String,
}

fn amount_minor() -> Object {
    rules::integer(0, Money::MAX_MINOR)
}

fn currency() -> Object {
    rules::text(3, 3, Some(Currency::PATTERN))
}

fn product_name() -> Object {
    rules::text(1, ProductName::MAX_CHARS, Some(ProductName::PATTERN))
}

fn sku() -> Object {
    rules::text(Sku::MIN_CHARS, Sku::MAX_CHARS, Some(Sku::PATTERN))
}

fn stock() -> Object {
    rules::integer(0, i64::from(Stock::MAX))
}

fn version() -> Object {
    rules::integer(0, i64::MAX)
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
#[serde(deny_unknown_fields)]
#[schema(as = NewProduct)]
struct CreateProductBody {
    /// The display name.
    #[schema(schema_with = product_name)]
    name: String,
    /// The stock-keeping unit, unique in the catalog.
    #[schema(schema_with = sku)]
    sku: String,
    price: PriceBody,
    /// Units in stock.
    #[schema(schema_with = stock)]
    stock: i64,
}

/// A new price, and the version of the product the client last saw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PriceChange)]
struct ChangePriceBody {
    price: PriceBody,
    /// The product's version the client read.
    #[schema(schema_with = version)]
    version: u64,
}

/// What a catalog listing is narrowed to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProductFilter {
    /// Only products whose name or SKU contains this, ignoring case.
    #[param(schema_with = search_text)]
    q: Option<String>,
}

fn search_text() -> Object {
    rules::text(1, 100, None)
}

/// One page of the catalog, oldest product first; `q` narrows it to the
/// products whose name or SKU contains it.
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "catalog",
    params(ProductFilter, Paging),
    responses(
        (status = 200, description = "One page of products", body = PageOf<ProductView>),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range, or `q` is empty or longer than 100 characters", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_products(
    may: MayAsk<ListProducts>,
    ApiQuery(filter): ApiQuery<ProductFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    let query = ListProducts {
        page,
        per_page,
        matching: filter.q,
    };
    Ok(Json(may.ask(query).await?))
}

/// Adds a product to the catalog.
#[utoipa::path(
    post,
    path = "/api/products",
    tag = "catalog",
    security(("bearer" = ["catalog.write"])),
    params(IdempotencyKey),
    request_body = CreateProductBody,
    responses(
        (status = 201, description = "The product was added (or, for a retried key, the first answer again)", body = ProductView,
            headers(("Location" = String, description = "The new product's URL"))),
        (status = 409, description = "`sku_taken`: another product has this SKU (the field is named in `errors`); `idempotency_key_in_use`: a request with this key is still running; `idempotency_key_reused`: the key came with another body", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create_product(
    may: MayExecute<CreateProduct>,
    DocumentedJson(body): DocumentedJson<CreateProductBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CreateProduct {
        name: body.name,
        sku: body.sku,
        price: body.price.into(),
        stock: body.stock,
    };
    let product = may.execute(command).await?;
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
    may: MayAsk<GetProduct>,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetProduct { id }).await?))
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
        (status = 409, description = "`stale_version`: the product changed since `version`; `currency_mismatch`: the price is in another currency than the product's", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn change_price(
    may: MayExecute<ChangeProductPrice>,
    ApiPath(id): ApiPath<ProductId>,
    DocumentedJson(body): DocumentedJson<ChangePriceBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = ChangeProductPrice {
        id,
        price: body.price.into(),
        expected_version: body.version,
    };
    Ok(Json(may.execute(command).await?))
}
