use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use strata_app_api::application::AppError;
use strata_app_api::application::audit::{AuditEntryView, ReadAuditTrail};
use strata_app_api::application::consumers::{
    ConsumerDeadLetterView, ListConsumerDeadLetters, MAX_CONSUMER_CHARS, RetryConsumerDeadLetter,
};
use strata_app_api::application::outbox::{DeadLetterView, ListDeadLetters, RetryDeadLetter};
use strata_app_api::application::transactions::{
    ForceTransaction, GetTransaction, ListTransactions, MAX_GID_CHARS, RetryTransaction,
    STATE_PATTERN, TransactionView,
};
use strata_app_api::http::openapi::{AuditTrailParams, PageOf, Paging, rules};
use strata_app_api::http::{ApiPath, ApiQuery, DocumentedJson, MayAsk, MayExecute, Problem};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_audit_trail))
        .routes(routes!(list_dead_letters))
        .routes(routes!(retry_dead_letter))
        .routes(routes!(list_consumer_dead_letters))
        .routes(routes!(retry_consumer_dead_letter))
        .routes(routes!(list_transactions))
        .routes(routes!(get_transaction))
        .routes(routes!(retry_transaction))
        .routes(routes!(force_transaction))
}

/// A consumer's dead letters, the most recent first: messages it gave up on,
/// with the reason.
#[utoipa::path(
    get,
    path = "/api/admin/consumers/{consumer}/dead-letters",
    tag = "operations",
    security(("bearer" = ["outbox.operate"])),
    params(("consumer" = String, Path, max_length = 64, description = "The consumer's name, such as `sales_report`"), Paging),
    responses(
        (status = 200, description = "One page of the consumer's dead letters", body = PageOf<ConsumerDeadLetterView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The service has no such consumer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The consumer's name is longer than 64 characters, or the page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_consumer_dead_letters(
    may: MayAsk<ListConsumerDeadLetters>,
    ApiPath(consumer): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    let query = ListConsumerDeadLetters {
        consumer,
        page,
        per_page,
    };
    Ok(Json(may.ask(query).await?))
}

/// Applies a consumer's dead letter again, through the consumer, once what
/// made it fail is fixed; it is gone once applied.
#[utoipa::path(
    post,
    path = "/api/admin/consumers/{consumer}/dead-letters/{number}/retry",
    tag = "operations",
    security(("bearer" = ["outbox.operate"])),
    params(
        ("consumer" = String, Path, max_length = 64, description = "The consumer's name"),
        ("number" = i64, Path, description = "The dead letter's number"),
    ),
    responses(
        (status = 204, description = "It was applied"),
        (status = 400, description = "The number is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such consumer or dead letter", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`dead_letter_failed`: it failed again, and stays", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The consumer's name is longer than 64 characters", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn retry_consumer_dead_letter(
    may: MayExecute<RetryConsumerDeadLetter>,
    ApiPath((consumer, number)): ApiPath<(String, i64)>,
) -> Result<impl IntoResponse, AppError> {
    may.execute(RetryConsumerDeadLetter { consumer, number })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

const _: () = assert!(MAX_CONSUMER_CHARS == 64);

fn state_filter() -> Object {
    rules::text(6, 9, Some(STATE_PATTERN))
}

fn terminal_state() -> Object {
    rules::text(6, 9, Some("^(succeeded|failed)$"))
}

/// Which transactions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TransactionFilter {
    /// Only those in this state; `flagged`: those waiting for an operator.
    #[param(schema_with = state_filter)]
    state: Option<String>,
}

/// Where an operator puts a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ForceTransaction)]
struct ForceBody {
    /// `succeeded` or `failed`.
    #[schema(schema_with = terminal_state)]
    state: String,
}

/// The distributed transactions, newest first: state, attempts, last error
/// and next retry of each.
#[utoipa::path(
    get,
    path = "/api/admin/transactions",
    tag = "operations",
    security(("bearer" = ["tcc.operate"])),
    params(TransactionFilter, Paging),
    responses(
        (status = 200, description = "One page of transactions", body = PageOf<TransactionView>),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The state or page is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_transactions(
    may: MayAsk<ListTransactions>,
    ApiQuery(filter): ApiQuery<TransactionFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    let query = ListTransactions {
        state: filter.state,
        page,
        per_page,
    };
    Ok(Json(may.ask(query).await?))
}

/// One distributed transaction with its branches: each one's state,
/// attempts and last error.
#[utoipa::path(
    get,
    path = "/api/admin/transactions/{gid}",
    tag = "operations",
    security(("bearer" = ["tcc.operate"])),
    params(("gid" = String, Path, max_length = 64, description = "The transaction's id")),
    responses(
        (status = 200, description = "The transaction", body = TransactionView),
        (status = 404, description = "No transaction has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is longer than 64 characters", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_transaction(
    may: MayAsk<GetTransaction>,
    ApiPath(gid): ApiPath<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetTransaction { gid }).await?))
}

/// Takes a transaction up again at once with a fresh set of retries (one
/// flagged for an operator, say, once its participant is back).
#[utoipa::path(
    post,
    path = "/api/admin/transactions/{gid}/retry",
    tag = "operations",
    security(("bearer" = ["tcc.operate"])),
    params(("gid" = String, Path, max_length = 64, description = "The transaction's id")),
    responses(
        (status = 204, description = "The recovery worker takes it up at once"),
        (status = 404, description = "No transaction has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`transaction_state`: it is finished", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is longer than 64 characters", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn retry_transaction(
    may: MayExecute<RetryTransaction>,
    ApiPath(gid): ApiPath<String>,
) -> Result<impl IntoResponse, AppError> {
    may.execute(RetryTransaction { gid }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a transaction to `succeeded` or `failed` without calling its
/// branches, for an operator who repaired them by hand.
#[utoipa::path(
    post,
    path = "/api/admin/transactions/{gid}/force",
    tag = "operations",
    security(("bearer" = ["tcc.operate"])),
    params(("gid" = String, Path, max_length = 64, description = "The transaction's id")),
    request_body = ForceBody,
    responses(
        (status = 204, description = "It is in that state now"),
        (status = 404, description = "No transaction has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`transaction_state`: it is finished already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The state is not `succeeded` or `failed`, or the id is longer than 64 characters", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn force_transaction(
    may: MayExecute<ForceTransaction>,
    ApiPath(gid): ApiPath<String>,
    DocumentedJson(body): DocumentedJson<ForceBody>,
) -> Result<impl IntoResponse, AppError> {
    may.execute(ForceTransaction {
        gid,
        state: body.state,
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

const _: () = assert!(MAX_GID_CHARS == 64);

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
