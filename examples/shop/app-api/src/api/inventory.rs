use axum::Json;
use axum::response::IntoResponse;
use shop_domain::catalog::ProductId;
use strata_app_api::application::AppError;
use strata_app_api::http::{ApiPath, MayAsk, Problem};
use strata_app_api::tcc::participant_routes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::inventory::{GetStock, StockBranch, StockView};

/// Where ordering calls the inventory's branch of an order's transaction.
pub const BRANCH_PATH: &str = "/internal/inventory/branch";

/// The inventory's routes, served over `state` (the inventory's
/// dispatcher): stock as anyone reads it.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_stock))
        .with_state(state)
}

/// The branch ordering calls, served over `state` (the inventory's dispatcher)
/// on the internal listener, which only other services reach.
pub fn branch_routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::from(participant_routes::<StockBranch, AppState>(BRANCH_PATH)).with_state(state)
}

/// A product's stock: units available to order, reserved for orders under
/// way, and sold.
#[utoipa::path(
    get,
    path = "/api/inventory/{product_id}",
    tag = "inventory",
    params(("product_id" = uuid::Uuid, Path, description = "The product's id")),
    responses(
        (status = 200, description = "The product's stock", body = StockView),
        (status = 404, description = "No stock for this product (unknown, or just created)", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_stock(
    may: MayAsk<GetStock>,
    ApiPath(product): ApiPath<ProductId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetStock { product }).await?))
}
