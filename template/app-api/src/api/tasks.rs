use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use domain::tasks::{TaskId, TaskTitle};
use serde::Deserialize;
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
use crate::application::tasks::{CompleteTask, CreateTask, GetTask, ListTasks, TaskView};

/// Task reads carry an ETag, so a client holding the current copy gets 304 and
/// no body. `no-cache` makes clients ask every time: a task changes with a
/// click, and an answer reused without asking would show it unchanged.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task))
        .routes(routes!(complete_task));
    map_routes(routes, |routes| with_etags(routes, "no-cache"))
}

/// A new task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTask, example = json!({"title": "Water the plants"}))]
struct CreateTaskBody {
    /// What the task is about.
    #[schema(schema_with = title)]
    title: String,
}

fn title() -> Object {
    rules::text(1, TaskTitle::MAX_CHARS, Some(TaskTitle::PATTERN))
}

fn version() -> Object {
    rules::integer(0, i64::MAX)
}

/// The version of the task the client last saw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TaskCompletion)]
struct CompleteTaskBody {
    /// The task's version the client read.
    #[schema(schema_with = version)]
    version: u64,
}

/// One page of tasks, oldest first.
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(Paging),
    responses(
        (status = 200, description = "One page of tasks", body = PageOf<TaskView>),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "A query parameter is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The page or page size is out of range", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list_tasks(
    may: MayAsk<ListTasks>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<impl IntoResponse, AppError> {
    let (page, per_page) = paging.page_and_size();
    let query = ListTasks { page, per_page };
    Ok(Json(may.ask(query).await?))
}

/// Writes down a new task.
#[utoipa::path(
    post,
    path = "/api/tasks",
    tag = "tasks",
    security(()),
    params(IdempotencyKey),
    request_body = CreateTaskBody,
    responses(
        (status = 201, description = "The task was added (or, for a retried key, the first answer again)", body = TaskView,
            headers(("Location" = String, description = "The new task's URL"))),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running; `idempotency_key_reused`: the key came with another body", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create_task(
    may: MayExecute<CreateTask>,
    DocumentedJson(body): DocumentedJson<CreateTaskBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CreateTask { title: body.title };
    let task = may.execute(command).await?;
    let location = format!("/api/tasks/{}", task.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(task),
    ))
}

/// One task.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}",
    tag = "tasks",
    params(("id" = uuid::Uuid, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn get_task(
    may: MayAsk<GetTask>,
    ApiPath(id): ApiPath<TaskId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(may.ask(GetTask { id }).await?))
}

/// Marks a task done, provided nobody changed it since the client read it.
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/complete",
    tag = "tasks",
    security(()),
    params(("id" = uuid::Uuid, Path, description = "The task's id")),
    request_body = CompleteTaskBody,
    responses(
        (status = 200, description = "The task, done", body = TaskView),
        (status = 404, description = "No such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`stale_version`: the task changed since `version`; `already_done`: the task is done already", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn complete_task(
    may: MayExecute<CompleteTask>,
    ApiPath(id): ApiPath<TaskId>,
    DocumentedJson(body): DocumentedJson<CompleteTaskBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CompleteTask {
        id,
        expected_version: body.version,
    };
    Ok(Json(may.execute(command).await?))
}
