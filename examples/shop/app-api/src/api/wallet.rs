use axum::Json;
use axum::response::IntoResponse;
use serde::Deserialize;
use strata_app_api::application::AppError;
use strata_app_api::http::openapi::RequiredIdempotencyKey;
use strata_app_api::http::{DocumentedJson, MayAsk, MayExecute, Problem};
use strata_app_api::tcc::participant_routes;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalog::PriceBody;
use crate::application::catalog::PriceInput;
use crate::application::wallet::{GetMyWallet, MoneyBranch, TopUp, WalletView};

/// Where ordering calls the wallet's branch of an order's transaction.
pub const BRANCH_PATH: &str = "/internal/wallet/branch";

/// The wallet's routes, served over `state` (the wallet's dispatcher): the
/// customer's wallet and top-ups.
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_mine))
        .routes(routes!(top_up))
        .with_state(state)
}

/// The branch ordering calls, served over `state` (the wallet's dispatcher)
/// on the internal listener, which only other services reach.
pub fn branch_routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::from(participant_routes::<MoneyBranch, AppState>(BRANCH_PATH)).with_state(state)
}

/// Money to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TopUp)]
struct TopUpBody {
    /// The amount, in the wallet's currency.
    amount: PriceBody,
}

/// The caller's wallet: the balance to spend and what is frozen for orders
/// under way.
#[utoipa::path(
    get,
    path = "/api/wallet",
    tag = "wallet",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's wallet", body = WalletView),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_mine(may: MayAsk<GetMyWallet>) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetMyWallet {}).await?))
}

/// Adds money to the caller's wallet; a wallet takes the currency of its
/// first top-up.
#[utoipa::path(
    post,
    path = "/api/wallet/top-ups",
    tag = "wallet",
    security(("bearer" = [])),
    params(RequiredIdempotencyKey),
    request_body = TopUpBody,
    responses(
        (status = 200, description = "The wallet after the top-up (or, for a retried key, the first answer again)", body = WalletView),
        (status = 400, description = "`idempotency_key_missing`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running; `idempotency_key_reused`: the key came with another body; the amount is zero (`top_up_empty`), in another currency than the wallet's (`currency_mismatch`) or too large (`balance_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The amount is invalid", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn top_up(
    may: MayExecute<TopUp>,
    DocumentedJson(body): DocumentedJson<TopUpBody>,
) -> Result<impl IntoResponse, AppError> {
    let amount = PriceInput::from(body.amount);
    Ok(Json(may.execute(TopUp { amount }).await?))
}
