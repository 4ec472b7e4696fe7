use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::tasks::TaskId;
use serde::Deserialize;
use strata_app_api::application::{AppError, RequestContext};
use strata_app_api::http::{ApiJson, ApiPath, ApiQuery};
use strata_domain::PageRequest;

use super::AppState;
use crate::application::tasks::{CompleteTask, CreateTask, GetTask, ListTasks};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_tasks).post(create_task))
        .route("/{id}", get(get_task))
        .route("/{id}/complete", post(complete_task))
}

#[derive(Debug, Deserialize)]
struct CreateTaskBody {
    title: String,
}

#[derive(Debug, Deserialize)]
struct CompleteTaskBody {
    version: u64,
}

#[derive(Debug, Deserialize)]
struct ListParams {
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list_tasks(
    State(state): State<AppState>,
    request: RequestContext,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<impl IntoResponse, AppError> {
    let query = ListTasks {
        page: params.page.unwrap_or(1),
        per_page: params.per_page.unwrap_or(PageRequest::DEFAULT_PER_PAGE),
    };
    Ok(Json(state.use_cases.ask(&request, query).await?))
}

async fn create_task(
    State(state): State<AppState>,
    request: RequestContext,
    ApiJson(body): ApiJson<CreateTaskBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CreateTask { title: body.title };
    let task = state.use_cases.execute(&request, command).await?;
    let location = format!("/api/tasks/{}", task.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(task),
    ))
}

async fn get_task(
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<TaskId>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.use_cases.ask(&request, GetTask { id }).await?))
}

async fn complete_task(
    State(state): State<AppState>,
    request: RequestContext,
    ApiPath(id): ApiPath<TaskId>,
    ApiJson(body): ApiJson<CompleteTaskBody>,
) -> Result<impl IntoResponse, AppError> {
    let command = CompleteTask {
        id,
        expected_version: body.version,
    };
    Ok(Json(state.use_cases.execute(&request, command).await?))
}
