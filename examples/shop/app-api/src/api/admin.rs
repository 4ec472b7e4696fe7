use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use strata_app_api::application::AppError;
use strata_app_api::application::audit::{AuditEntryView, ReadAuditTrail};
use strata_app_api::application::outbox::{DeadLetterView, ListDeadLetters, RetryDeadLetter};
use strata_app_api::http::openapi::{AuditTrailParams, PageOf, Paging};
use strata_app_api::http::{ApiPath, ApiQuery, MayAsk, MayExecute, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_audit_trail))
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter))
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

/// The outbox's dead letters, the most recent first: events the broker
/// refused every time, each holding back the later events of its aggregate.
#[utoipa::path(
    get,
    path = "/api/admin/outbox/dead-letters",
    tag = "operations",
    security(("bearer" = ["outbox.operate"])),
    params(Paging),
    responses(
        (status = 200, description = "One page of dead letters", body = PageOf<DeadLetterView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_dead_letters(
    may: MayAsk<ListDeadLetters>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    Ok(Json(may.ask(ListDeadLetters { page, per_page }).await?))
}

/// Publishes a dead letter again: a fresh set of attempts, due now; the events
/// of its aggregate held back behind it follow it.
#[utoipa::path(
    post,
    path = "/api/admin/outbox/dead-letters/{id}/retry",
    tag = "operations",
    security(("bearer" = ["outbox.operate"])),
    params(("id" = uuid::Uuid, Path, description = "The event's id")),
    responses(
        (status = 204, description = "It will be published again"),
        (status = 404, description = "No dead letter has this id", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn retry_dead_letter(
    may: MayExecute<RetryDeadLetter>,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<impl IntoResponse, AppError> {
    may.execute(RetryDeadLetter { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
