use axum::Json;
use axum::response::IntoResponse;
use strata_app_api::application::AppError;
use strata_app_api::application::audit::{AuditEntryView, ReadAuditTrail};
use strata_app_api::http::openapi::{AuditTrailParams, PageOf};
use strata_app_api::http::{ApiQuery, MayAsk, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_audit_trail))
}

/// The audit trail, newest first: every command run, by whom, how it ended and
/// what it changed.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "operations",
    security(("bearer" = ["audit.read"])),
    params(AuditTrailParams),
    responses(
        (status = 200, description = "One page of audit entries", body = PageOf<AuditEntryView>),
        (status = 422, description = "A filter or the page is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn read_audit_trail(
    may: MayAsk<ReadAuditTrail>,
    ApiQuery(params): ApiQuery<AuditTrailParams>,
) -> Result<impl IntoResponse, AppError> {
    let query = ReadAuditTrail::from(params);
    Ok(Json(may.ask(query).await?))
}
