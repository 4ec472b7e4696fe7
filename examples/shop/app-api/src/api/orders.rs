use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shop_domain::inventory::Quantity;
use shop_domain::ordering::OrderId;
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::{PageOf, Paging, RequiredIdempotencyKey, rules};
use strata_app_api::http::{ApiPath, ApiQuery, DocumentedJson, MayAsk, MayExecute, Problem};
use utoipa::ToSchema;
use utoipa::openapi::schema::Object;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::application::inventory::LineRequest;
use crate::application::ordering::{GetOrder, ListMyOrders, OrderView, PlaceOrder};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mine, place))
        .routes(routes!(get_one))
}

fn quantity() -> Object {
    rules::integer(1, i64::from(Quantity::MAX))
}

/// One product of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOrderItem)]
struct ItemBody {
    /// The product's id.
    product_id: uuid::Uuid,
    /// How many units.
    #[schema(schema_with = quantity)]
    quantity: i64,
}

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOrder)]
struct PlaceBody {
    /// What to buy: each product once.
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<ItemBody>,
}

/// Places an order of the caller's at the products' current prices: the
/// stock is reserved and the money frozen, then both made final (201), or
/// both released (409 with the reason as its code). When a participant does
/// not answer in time the order is answered `pending` (202) and reaches its
/// final status by itself. The `Idempotency-Key` names the order: a retry
/// answers the same order as far as it has come.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(RequiredIdempotencyKey),
    request_body = PlaceBody,
    responses(
        (status = 201, description = "The order was confirmed: stock deducted, money debited", body = OrderView,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 202, description = "The order is pending: its transaction finishes by itself", body = OrderView,
            headers(("Location" = String, description = "The order's URL"))),
        (status = 400, description = "`idempotency_key_missing`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order was cancelled, nothing held: `out_of_stock`, `insufficient_funds` or `timeout`, with the order in `order`; or it cannot be placed: a product unknown (`unknown_product`) or on two items (`product_repeated`), prices in several currencies (`mixed_currencies`), or the key used for another order (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An item is invalid (no items, a quantity out of range)", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn place(
    may: MayExecute<PlaceOrder>,
    DocumentedJson(body): DocumentedJson<PlaceBody>,
) -> Result<Response, AppError> {
    let items = body
        .items
        .into_iter()
        .map(|item| LineRequest {
            product_id: item.product_id,
            // Out of range is refused by the command's validation.
            quantity: u32::try_from(item.quantity).unwrap_or(u32::MAX),
        })
        .collect();
    let order = may.execute(PlaceOrder { items }).await?;
    let location = format!("/api/orders/{}", order.id);
    Ok(match order.status.as_str() {
        "confirmed" => (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(order),
        )
            .into_response(),
        "cancelled" => {
            let reason = order.reason.clone().unwrap_or_else(|| "cancelled".into());
            Problem::new(StatusCode::CONFLICT, reason)
                .with_detail(format!("order {} was cancelled; nothing is held", order.id))
                .with_extension("order", serde_json::to_value(&order).unwrap_or_default())
                .into_response()
        }
        _ => (
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            Json(order),
        )
            .into_response(),
    })
}

/// One page of the caller's orders, newest first.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "One page of the caller's orders", body = PageOf<OrderView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_mine(
    may: MayAsk<ListMyOrders>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    Ok(Json(may.ask(ListMyOrders { page, per_page }).await?))
}

/// One order, shown to its customer (or staff) only.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order, or someone else's", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_one(
    may: MayAsk<GetOrder>,
    ApiPath(id): ApiPath<OrderId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetOrder { id }).await?))
}
