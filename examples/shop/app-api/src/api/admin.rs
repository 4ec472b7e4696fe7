use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use strata_app_api::application::audit::{AuditEntryView, ReadAuditTrail};
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::openapi::PageOf;
use strata_app_api::http::{ApiQuery, MayAsk, Problem};
use strata_domain::PageRequest;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_audit_trail))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Run by this principal (user id or service name).
    #[param(min_length = 1, max_length = 255)]
    principal: Option<String>,
    /// Of this use case, such as `catalog.change_product_price`.
    #[param(min_length = 1, max_length = 128)]
    use_case: Option<String>,
    /// That changed the aggregate with this id.
    #[param(min_length = 1, max_length = 255)]
    aggregate: Option<String>,
    /// Started at or after this time, in milliseconds since the Unix epoch.
    #[param(minimum = 0)]
    from: Option<i64>,
    /// Started before this time, in milliseconds since the Unix epoch.
    #[param(minimum = 0)]
    to: Option<i64>,
    /// The 1-based page number (default 1).
    #[param(minimum = 1)]
    page: Option<u32>,
    /// The page size (default 20, at most 100).
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

/// The audit trail, newest first: every command run, by whom, how it ended and
/// what it changed.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "operations",
    security(("bearer" = ["audit.read"])),
    params(AuditParams),
    responses(
        (status = 200, description = "One page of audit entries", body = PageOf<AuditEntryView>),
        (status = 422, description = "A filter or the page is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn read_audit_trail(
    _: MayAsk<ReadAuditTrail>,
    State(state): State<AppState>,
    request: RequestContext,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<impl IntoResponse, AppError> {
    let query = ReadAuditTrail {
        principal: params.principal,
        use_case: params.use_case,
        aggregate: params.aggregate,
        from_ms: params.from,
        to_ms: params.to,
        page: params.page.unwrap_or(1),
        per_page: params.per_page.unwrap_or(PageRequest::DEFAULT_PER_PAGE),
    };
    Ok(Json(state.dispatcher.ask(&request, query).await?))
}
